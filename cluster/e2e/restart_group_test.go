package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rider is a group member that records everything it consumes and every
// assignment change its callbacks report.
type rider struct {
	name    string
	cl      *kgo.Client
	cancel  context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	got     map[int32]map[uint64]bool // partition -> record sequence numbers consumed
	changes int                       // assigned + revoked + lost callbacks naming partitions
	fatal   []error                   // group session errors: the member stopped
	other   []error                   // anything else a poll returned
}

func startRider(t testing.TB, addr, group, topic, name string, o *owners, progress chan<- struct{}) *rider {
	t.Helper()
	r := &rider{name: name, got: map[int32]map[uint64]bool{}, done: make(chan struct{})}
	logs := newLogBuf()
	logs.dumpOnFailure(t, "member "+name)
	report := func(assigned bool) func(context.Context, *kgo.Client, map[string][]int32) {
		return func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			if len(a[topic]) > 0 { // cooperative sessions also report empty changes
				r.mu.Lock()
				r.changes++
				r.mu.Unlock()
			}
			o.update(name, a[topic], assigned)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.FetchMaxWait(time.Second), kgo.WithLogger(kgo.BasicLogger(logs, kgo.LogLevelInfo, stamp)),
		kgo.OnPartitionsAssigned(report(true)), kgo.OnPartitionsRevoked(report(false)), kgo.OnPartitionsLost(report(false)))
	if err != nil {
		t.Fatal(err)
	}
	r.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		for {
			fs := cl.PollFetches(ctx)
			r.mu.Lock()
			fs.EachRecord(func(rec *kgo.Record) {
				m := r.got[rec.Partition]
				if m == nil {
					m = map[uint64]bool{}
					r.got[rec.Partition] = m
				}
				m[binary.BigEndian.Uint64(rec.Value)] = true
			})
			fs.EachError(func(_ string, _ int32, err error) {
				var gs *kgo.ErrGroupSession
				switch {
				case errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed):
				case errors.As(err, &gs):
					r.fatal = append(r.fatal, err)
				default:
					r.other = append(r.other, err)
				}
			})
			r.mu.Unlock()
			select {
			case progress <- struct{}{}:
			default:
			}
			if ctx.Err() != nil || fs.IsClientClosed() {
				return
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-r.done; cl.Close() })
	return r
}

// stamp prefixes client log lines with the time, to line them up with the
// broker's.
func stamp() string { return time.Now().Format("15:04:05.000000 ") }

func (r *rider) state() (changes int, fatal, other []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changes, append([]error(nil), r.fatal...), append([]error(nil), r.other...)
}

// TestRestartKeepsConsumerGroup: a SIGTERM and restart of the broker under
// a live consumer group (three franz-go members) and an idempotent acks=all
// producer is something they ride through: no member stops, every
// acknowledged record is consumed, and the group does not rebalance (every
// member keeps its member id and generation, and no assignment callback
// fires). Before, the restarted broker had no group: heartbeats got
// UNKNOWN_MEMBER_ID and every member rejoined as a new one. Later, it
// failed in CI because the port refused connections for the whole start
// (and was reset until serving): franz-go does not retry a coordinator
// lookup that cannot connect, so a member whose heartbeat hit that window
// ended its session (see TestClientHeldDuringStart). The members' and the
// producer's logs carry times, to line them up with the broker's.
func TestRestartKeepsConsumerGroup(t *testing.T) {
	const topic, group, parts = "riders", "riders-group", 6
	bp := startProc(t, testDataDir(t))
	createTopic(t, newClient(t, bp.addr), topic, parts)

	// Members join one at a time, so the generation before the restart is
	// past the first one a fresh group would reach again.
	o := newOwners()
	progress := make(chan struct{}, 1)
	var riders []*rider
	var names []string
	for i := range 3 {
		name := fmt.Sprint("r", i)
		names = append(names, name)
		riders = append(riders, startRider(t, bp.addr, group, topic, name, o, progress))
		o.waitFor(t, name+" sharing the partitions", 90*time.Second, func() bool { return o.sharedBy(parts, names, nil, true) })
	}
	type identity struct {
		member string
		gen    int32
	}
	ids := make([]identity, len(riders))
	settled := time.After(90 * time.Second)
	for {
		same := true
		for i, r := range riders {
			m, g := r.cl.GroupMetadata()
			ids[i] = identity{m, g}
			same = same && m != "" && g == ids[0].gen
		}
		if same && o.sharedBy(parts, names, nil, true) {
			break
		}
		// A member's new generation signals nothing: franz-go stores it
		// in its group goroutine, and a member whose assignment did not
		// change fires no callback, and its PollFetches may not return
		// (nothing is produced yet). So look again every 50 ms as well.
		select {
		case <-progress:
		case <-time.After(50 * time.Millisecond):
		case <-settled:
			t.Fatalf("the group never settled: %v, assignment %s", ids, o)
		}
	}
	changesBefore := make([]int, len(riders))
	for i, r := range riders {
		changesBefore[i], _, _ = r.state()
	}
	t.Logf("group settled at generation %d: %v", ids[0].gen, ids)

	// An idempotent acks=all producer (franz-go's defaults) writes
	// numbered records to every partition until told to stop.
	// Produce blocks at 1000 buffered records: a steady stream, not a flood.
	plogs := newLogBuf()
	plogs.dumpOnFailure(t, "producer")
	prod := defaultClient(t, bp.addr, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.MaxBufferedRecords(1000),
		kgo.WithLogger(kgo.BasicLogger(plogs, kgo.LogLevelInfo, stamp)))
	var (
		ackMu sync.Mutex
		acked = map[int32][]uint64{}
		nAck  int
		pErrs []error
	)
	ackCount := func() int { ackMu.Lock(); defer ackMu.Unlock(); return nAck }
	stop := make(chan struct{})
	var pwg sync.WaitGroup
	pwg.Add(1)
	go func() {
		defer pwg.Done()
		for seq := uint64(0); ; seq++ {
			select {
			case <-stop:
				return
			default:
			}
			p := int32(seq % parts)
			v := binary.BigEndian.AppendUint64(nil, seq)
			pwg.Add(1)
			prod.Produce(context.Background(), &kgo.Record{Topic: topic, Partition: p, Value: v}, func(r *kgo.Record, err error) {
				defer pwg.Done()
				ackMu.Lock()
				defer ackMu.Unlock()
				if err != nil {
					pErrs = append(pErrs, err)
					return
				}
				acked[r.Partition] = append(acked[r.Partition], binary.BigEndian.Uint64(r.Value))
				nAck++
			})
		}
	}()
	waitAcks := func(n int, what string) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for ackCount() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: only %d records acknowledged", what, ackCount())
			}
			select {
			case <-progress:
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	waitAcks(2000, "before the restart")
	t.Logf("%sSIGTERM", stamp())
	if code := bp.term(60 * time.Second); code != 0 {
		t.Fatalf("SIGTERM exit code %d, want 0", code)
	}
	t.Logf("%sexited; restarting", stamp())
	bp.start()
	t.Logf("%sready again", stamp())
	after := ackCount()
	waitAcks(after+2000, "after the restart")
	close(stop)
	prod.Flush(ctxFor(t, 60*time.Second))
	pwg.Wait()
	ackMu.Lock()
	if len(pErrs) > 0 {
		t.Errorf("%d produce failures, first: %v", len(pErrs), pErrs[0])
	}
	want := acked
	total := nAck
	ackMu.Unlock()

	// Every acknowledged record reaches the group.
	missing := func() (int, string) {
		n, example := 0, ""
		for p, seqs := range want {
			for _, s := range seqs {
				found := false
				for _, r := range riders {
					r.mu.Lock()
					found = found || r.got[p][s]
					r.mu.Unlock()
				}
				if !found {
					if n == 0 {
						example = fmt.Sprintf("partition %d record %d", p, s)
					}
					n++
				}
			}
		}
		return n, example
	}
	deadline := time.After(90 * time.Second)
	for {
		n, example := missing()
		if n == 0 {
			break
		}
		select {
		case <-progress:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%d of %d acknowledged records never consumed (e.g. %s)", n, total, example)
		}
	}
	for i, r := range riders {
		m, g := r.cl.GroupMetadata()
		changes, fatal, other := r.state()
		if len(fatal) > 0 {
			t.Errorf("%s stopped: %v", r.name, fatal)
		}
		if len(other) > 0 {
			t.Logf("%s: %d poll errors, first: %v", r.name, len(other), other[0])
		}
		if m != ids[i].member || g != ids[i].gen {
			t.Errorf("%s rejoined: member %s generation %d before the restart, %s %d after", r.name, ids[i].member, ids[i].gen, m, g)
		}
		if changes != changesBefore[i] {
			t.Errorf("%s: %d assignment callbacks across the restart (a rebalance)", r.name, changes-changesBefore[i])
		}
	}
	t.Logf("%d records acknowledged (%d after the restart), all consumed; generation %d kept", total, total-after, ids[0].gen)
}

// TestSIGTERMAnswersLongPolls (black box): a long-poll fetch waiting on an
// empty partition when the broker gets SIGTERM is answered at once and
// normally (no error, no records), long before its max wait, and the
// broker then exits cleanly. Before, it was answered LEADER_NOT_AVAILABLE
// as the logs closed, which KafkaJS answers by rejoining its group.
func TestSIGTERMAnswersLongPolls(t *testing.T) {
	bp := startProc(t, testDataDir(t))
	createTopic(t, newClient(t, bp.addr), "lp", 1)
	r := dialRaw(t, bp.addr)
	api := kmsg.NewPtrApiVersionsRequest()
	api.SetVersion(0)
	f := kmsg.NewPtrFetchRequest()
	f.SetVersion(11)
	f.MaxWaitMillis, f.MinBytes, f.MaxBytes = 60_000, 1, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "lp"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	f.Topics = append(f.Topics, ft)
	// One write: the broker parses both frames in one pass, so the
	// ApiVersions answer means the fetch is waiting.
	if _, err := r.nc.Write(append(r.fmt.AppendRequest(nil, api, 1), r.fmt.AppendRequest(nil, f, 2)...)); err != nil {
		t.Fatal(err)
	}
	read := func(req kmsg.Request, corr int32, d time.Duration) kmsg.Response {
		t.Helper()
		_ = r.nc.SetReadDeadline(time.Now().Add(d))
		var pfx [4]byte
		if _, err := io.ReadFull(r.nc, pfx[:]); err != nil {
			t.Fatalf("reading the %s answer: %v", kmsg.NameForKey(req.Key()), err)
		}
		body := make([]byte, binary.BigEndian.Uint32(pfx[:]))
		if _, err := io.ReadFull(r.nc, body); err != nil {
			t.Fatal(err)
		}
		if got := int32(binary.BigEndian.Uint32(body)); got != corr {
			t.Fatalf("correlation id %d, want %d", got, corr)
		}
		resp := req.ResponseKind()
		if err := resp.ReadFrom(body[4:]); err != nil {
			t.Fatal(err)
		}
		return resp
	}
	read(api, 1, 10*time.Second)
	if err := bp.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	resp := read(f, 2, 10*time.Second).(*kmsg.FetchResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch answer %+v", resp)
	}
	if p := resp.Topics[0].Partitions[0]; resp.ErrorCode != 0 || p.ErrorCode != 0 || len(p.RecordBatches) != 0 {
		t.Fatalf("the long-poll was answered with error %s (top %s) and %d bytes; want a normal empty answer",
			codeName(p.ErrorCode), codeName(resp.ErrorCode), len(p.RecordBatches))
	}
	bp.wait(60 * time.Second)
	if bp.waitErr != nil {
		t.Fatalf("broker exit after SIGTERM: %v", bp.waitErr)
	}
}
