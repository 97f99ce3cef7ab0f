package replication

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var flagRewrite = flag.Bool("rewrite", false, "rewrite the expected output of testdata/scenarios/*.txt")

// Scenario files (testdata/scenarios/*.txt) drive three replicas of one
// partition by hand, as etcd-raft's interaction tests do. Each command is
// a line, then "----", then the output it must produce, then a blank line:
//
//	state leader=1 epoch=1 isr=1,2,3 [pe=N] [to=1,2,3]   apply a partition state
//	produce seq=S [n=N] [acks=all|1]                       a batch to the state's leader
//	deliver [drop] [to=B]                                  deliver (or drop) the queued messages once
//	sync b=B                                               complete broker B's fsync to its log end
//	tick ms=M                                              advance every replica's clock
//	alter accept|reject                                    answer the queued AlterPartition requests
//	print                                                  every replica's view and log
//
// Every output a replica produces is printed. -rewrite regenerates the
// expected output.
func TestScenarios(t *testing.T) {
	files, _ := filepath.Glob("testdata/scenarios/*.txt")
	if len(files) == 0 {
		t.Fatal("no scenario files")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { runScenario(t, f) })
	}
}

type scenario struct {
	now      Millis
	replicas map[BrokerID]*Replica
	state    PartitionState
	queue    []scenarioMsg
	alters   []scenarioMsg
	out      strings.Builder
}

type scenarioMsg struct {
	from, to BrokerID
	body     any
}

func runScenario(t *testing.T, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := &scenario{replicas: map[BrokerID]*Replica{}}
	for _, b := range []BrokerID{1, 2, 3} {
		sc.replicas[b] = NewReplica(cfgFor(b), 1, nil, PartitionState{}, 0)
	}
	var rewritten strings.Builder
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			rewritten.WriteString(line + "\n")
			continue
		}
		// The command, its separator and its expected output.
		j := i + 1
		if j >= len(lines) || lines[j] != "----" {
			t.Fatalf("%s:%d: command without ----", path, i+1)
		}
		k := j + 1
		for k < len(lines) && lines[k] != "" {
			k++
		}
		want := strings.Join(lines[j+1:k], "\n")
		sc.out.Reset()
		if err := sc.run(line); err != nil {
			t.Fatalf("%s:%d: %s: %v", path, i+1, line, err)
		}
		got := strings.TrimRight(sc.out.String(), "\n")
		if got == "" {
			got = "ok"
		}
		if got != want && !*flagRewrite {
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", path, i+1, line, got, want)
		}
		rewritten.WriteString(line + "\n----\n" + got + "\n")
		i = k - 1
	}
	if *flagRewrite {
		if err := os.WriteFile(path, []byte(strings.TrimRight(rewritten.String(), "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func args(fields []string) map[string]string {
	m := map[string]string{}
	for _, f := range fields {
		k, v, _ := strings.Cut(f, "=")
		m[k] = v
	}
	return m
}

func ids(s string) []BrokerID {
	var out []BrokerID
	for _, x := range strings.Split(s, ",") {
		n, _ := strconv.Atoi(x)
		out = append(out, BrokerID(n))
	}
	return out
}

func num(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func (sc *scenario) run(line string) error {
	f := strings.Fields(line)
	a := args(f[1:])
	switch f[0] {
	case "state":
		st := sc.state
		st.Replicas = []BrokerID{1, 2, 3}
		st.Leader = BrokerID(num(a["leader"]))
		st.LeaderBrokerEpoch = 1
		st.LeaderEpoch = Epoch(num(a["epoch"]))
		st.ISR = ids(a["isr"])
		st.PartitionEpoch++
		if a["pe"] != "" {
			st.PartitionEpoch = PartitionEpoch(num(a["pe"]))
		}
		sc.state = st
		to := []BrokerID{1, 2, 3}
		if a["to"] != "" {
			to = ids(a["to"])
		}
		for _, b := range to {
			sc.replicas[b].ApplyState(st, sc.now)
			sc.collect(b)
		}
	case "produce":
		n := max(1, num(a["n"]))
		req := ProduceRequest{ProducerID: 1, BaseSeq: int32(num(a["seq"])), Acks: -1}
		if a["acks"] == "1" {
			req.Acks = 1
		}
		for i := range n {
			req.Values = append(req.Values, uint64(100*num(a["seq"])+i))
		}
		sc.replicas[sc.state.Leader].Produce(req, sc.now)
		sc.collect(sc.state.Leader)
	case "deliver":
		q := sc.queue
		sc.queue = nil
		for _, m := range q {
			if a["to"] != "" && m.to != BrokerID(num(a["to"])) {
				sc.queue = append(sc.queue, m)
				continue
			}
			if _, drop := a["drop"]; drop {
				fmt.Fprintf(&sc.out, "dropped %d->%d %s\n", m.from, m.to, describe(m.body))
				continue
			}
			sc.replicas[m.to].Step(m.from, m.body, sc.now)
			sc.collect(m.to)
		}
	case "sync":
		b := BrokerID(num(a["b"]))
		r := sc.replicas[b]
		r.Synced(r.LogEnd(), sc.now)
		sc.collect(b)
	case "tick":
		sc.now += Millis(num(a["ms"]))
		for _, b := range []BrokerID{1, 2, 3} {
			sc.replicas[b].Tick(sc.now)
			sc.collect(b)
		}
	case "alter":
		q := sc.alters
		sc.alters = nil
		for _, m := range q {
			req := m.body.(AlterPartitionRequest)
			resp := AlterPartitionResponse{Partition: req.Partition, State: sc.state}
			if f[1] == "accept" {
				sc.state.ISR = nil
				for _, x := range req.NewISR {
					sc.state.ISR = append(sc.state.ISR, x.Broker)
				}
				sc.state.PartitionEpoch++
				resp.State = sc.state
			} else {
				resp.Err = ErrInvalidUpdateVersion
			}
			sc.replicas[m.from].Step(0, resp, sc.now)
			sc.collect(m.from)
		}
	case "print":
		for _, b := range []BrokerID{1, 2, 3} {
			r := sc.replicas[b]
			fmt.Fprintf(&sc.out, "%v log=%s\n", r, logString(r.Log()))
		}
	default:
		return fmt.Errorf("unknown command %q", f[0])
	}
	return nil
}

// collect prints what broker b's replica asked for and queues its messages.
func (sc *scenario) collect(b BrokerID) {
	rd := sc.replicas[b].Ready()
	for _, op := range rd.LogOps {
		if op.Kind == OpTruncate {
			fmt.Fprintf(&sc.out, "b%d: truncate to %d\n", b, op.Offset)
		} else {
			fmt.Fprintf(&sc.out, "b%d: append %s\n", b, logString(op.Batches))
		}
	}
	if rd.SyncTo > 0 {
		fmt.Fprintf(&sc.out, "b%d: fsync to %d\n", b, rd.SyncTo)
	}
	for _, e := range rd.ToBrokers {
		fmt.Fprintf(&sc.out, "b%d->b%d: %s\n", b, e.To, describe(e.Body))
		sc.queue = append(sc.queue, scenarioMsg{from: b, to: e.To, body: e.Body})
	}
	for _, req := range rd.ToController {
		var isr []BrokerID
		for _, m := range req.NewISR {
			isr = append(isr, m.Broker)
		}
		fmt.Fprintf(&sc.out, "b%d->controller: AlterPartition e%d pe%d isr=%v\n", b, req.LeaderEpoch, req.PartitionEpoch, isr)
		sc.alters = append(sc.alters, scenarioMsg{from: b, body: req})
	}
	for _, p := range rd.Produced {
		err := "ok"
		if p.Err != nil {
			err = strings.SplitN(p.Err.Error(), ":", 2)[0]
		}
		fmt.Fprintf(&sc.out, "b%d->producer: seq %d base %d %s\n", b, p.BaseSeq, p.Base, err)
	}
}

func logString(bs []Batch) string {
	var parts []string
	for _, b := range bs {
		parts = append(parts, fmt.Sprintf("[%d-%d e%d]", b.Base, b.End()-1, b.Epoch))
	}
	if len(parts) == 0 {
		return "[]"
	}
	return strings.Join(slices.Clip(parts), "")
}
