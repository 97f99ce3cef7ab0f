package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strand-io/strand/cluster"
	"github.com/strand-io/strand/cluster/adminapi"
)

// placementJSON is GET /v1/placement, the fields these tests read.
type placementJSON struct {
	WindowSeconds float64 `json:"window_seconds"`
	Cores         []struct {
		Core int     `json:"core"`
		Load float64 `json:"load"`
	} `json:"cores"`
	Partitions []struct {
		Topic     string  `json:"topic"`
		Partition int32   `json:"partition"`
		Core      int     `json:"core"`
		Load      float64 `json:"load"`
	} `json:"partitions"`
}

func getPlacement(t testing.TB, admin string) placementJSON {
	t.Helper()
	resp, err := http.Get(admin + "/v1/placement")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p placementJSON
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /v1/placement: %d %v", resp.StatusCode, err)
	}
	return p
}

func (p placementJSON) coreOf(topic string, part int32) int {
	for _, x := range p.Partitions {
		if x.Topic == topic && x.Partition == part {
			return x.Core
		}
	}
	return -1
}

// placementWindow is the load window of these tests: long enough to
// smooth a producer's batches, short enough to follow a move quickly.
const placementWindow = 4 * time.Second

// hotCores is the placement test's setup: a two-core broker with its
// admin API, and a topic whose two partitions are both on one core while
// an idempotent acks=all producer writes to both at one rate and a group
// consumer reads them. It returns once the load shows one hot core.
type hotCores struct {
	admin string
	topic string
	hot   int
	logs  *logBuf
	prod  *kgo.Client
	// produced closes when the producer loop has returned.
	produced chan struct{}
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	acked    map[string]bool
	seen     map[string]int
	errs     []error
	cancel   context.CancelFunc
}

// startHotCores starts the broker in this process, or with auto as the
// strand binary with --auto-rebalance (the flag is what is under test
// then).
func startHotCores(t *testing.T, auto bool) *hotCores {
	h := &hotCores{produced: make(chan struct{}), topic: fmt.Sprintf("hot-%v", auto),
		stop: make(chan struct{}), acked: map[string]bool{}, seen: map[string]int{}}
	var addr string
	if auto {
		adminAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		p := startProc(t, testDataDir(t), "--admin-listen", adminAddr, "--auto-rebalance",
			"--auto-rebalance-interval", "1s", "--load-window", placementWindow.String())
		h.logs, h.admin, addr = p.logs, "http://"+adminAddr, p.addr
		waitFor(t, 30*time.Second, "the admin API to be ready", func() (bool, string) {
			resp, err := http.Get(h.admin + "/v1/ready")
			if err != nil {
				return false, err.Error()
			}
			resp.Body.Close()
			return resp.StatusCode == 200, resp.Status
		})
	} else {
		h.logs = newLogBuf()
		h.logs.dumpOnFailure(t, "broker")
		n := startNode(t, testDataDir(t), func(c *cluster.Config) {
			c.LoadWindow, c.LoadSampleInterval = placementWindow, 200*time.Millisecond
			c.Logger = slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		})
		srv, err := adminapi.Listen(adminapi.Config{Listen: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close(context.Background()) })
		srv.SetBroker(n)
		h.admin, addr = "http://"+srv.Addr(), n.Addr()
	}
	if got := len(getPlacement(t, h.admin).Cores); got < 2 {
		t.Fatalf("the placement test needs a broker of two cores; this machine gives it %d", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	t.Cleanup(h.halt)

	admin := newClient(t, addr)
	createTopic(t, admin, h.topic, 2)
	// Both partitions on one core, the other core idle.
	h.hot = getPlacement(t, h.admin).coreOf(h.topic, 0)
	body := fmt.Sprintf(`{"topic": %q, "partition": 1, "core": %d}`, h.topic, h.hot)
	resp, err := http.Post(h.admin+"/v1/placement/move", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("moving %s/1 to core %d: %s", h.topic, h.hot, resp.Status)
	}

	prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DefaultProduceTopic(h.topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		// Uncompressed, so that the bytes the broker counts are the
		// bytes the test meant to send.
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	h.prod = prod
	cons, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(h.topic),
		kgo.ConsumerGroup("placement-"+h.topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cons.Close)

	// The producer: 1 KiB records, alternating partitions, paced at about
	// 600 a second (300 KiB/s each way per partition), well above the
	// rebalance floor and light on a shared machine.
	h.wg.Add(2)
	go func() {
		defer h.wg.Done()
		defer close(h.produced)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		pad := make([]byte, 1000)
		for i := 0; ; i++ {
			select {
			case <-h.stop:
				return
			case <-tick.C:
			}
			for j := range 3 {
				v := strconv.Itoa(3*i + j)
				rec := &kgo.Record{Partition: int32((3*i + j) % 2), Key: []byte(v), Value: pad}
				prod.Produce(ctx, rec, func(r *kgo.Record, err error) {
					h.mu.Lock()
					defer h.mu.Unlock()
					if err != nil {
						h.errs = append(h.errs, err)
						return
					}
					h.acked[string(r.Key)] = true
				})
			}
		}
	}()
	go func() {
		defer h.wg.Done()
		for ctx.Err() == nil {
			fs := cons.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) {
				h.mu.Lock()
				h.seen[string(r.Key)]++
				h.mu.Unlock()
			})
		}
	}()
	// Wait until the window shows the hot core (with --auto-rebalance
	// the broker may move first: balanced checks what follows).
	if auto {
		return h
	}
	waitFor(t, 30*time.Second, "one hot core", func() (bool, string) {
		p := getPlacement(t, h.admin)
		hot, idle := p.Cores[h.hot].Load, p.Cores[1-h.hot].Load
		return p.WindowSeconds >= placementWindow.Seconds()*0.9 && hot > 256<<10 && idle < hot/4,
			fmt.Sprintf("%+v", p.Cores)
	})
	return h
}

// halt stops the producer and consumer.
func (h *hotCores) halt() {
	select {
	case <-h.stop:
	default:
		close(h.stop)
	}
	h.cancel()
	h.wg.Wait()
}

// balanced waits until the two cores' loads are within 20% of each other,
// with one partition on each.
func (h *hotCores) balanced(t *testing.T) {
	waitFor(t, 30*time.Second, "loads within 20%", func() (bool, string) {
		p := getPlacement(t, h.admin)
		a, b := p.Cores[0].Load, p.Cores[1].Load
		split := p.coreOf(h.topic, 0) != p.coreOf(h.topic, 1)
		busy := min(a, b) > 128<<10 // both carry a partition's traffic
		return split && busy && math.Abs(a-b) <= 0.2*math.Max(a, b), fmt.Sprintf("%+v", p.Cores)
	})
}

// exactlyOnce stops the producer, waits for the consumer to read every
// acknowledged record, and checks that it read each exactly once.
func (h *hotCores) exactlyOnce(t *testing.T) {
	close(h.stop)
	<-h.produced
	// Every record produced is acknowledged (or failed) before the reads
	// are checked: one read before its acknowledgement arrived is not one
	// read without it.
	if err := h.prod.Flush(ctxFor(t, 60*time.Second)); err != nil {
		t.Fatalf("flushing the producer: %v", err)
	}
	waitFor(t, 60*time.Second, "the consumer to read every acknowledged record", func() (bool, string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		missing := 0
		for k := range h.acked {
			if h.seen[k] == 0 {
				missing++
			}
		}
		return missing == 0, fmt.Sprintf("%d of %d acknowledged records not read", missing, len(h.acked))
	})
	h.cancel()
	h.wg.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.errs) > 0 {
		t.Fatalf("%d produces failed, first: %v", len(h.errs), h.errs[0])
	}
	for k, c := range h.seen {
		if c != 1 {
			t.Errorf("record %s read %d times", k, c)
		}
		if !h.acked[k] {
			t.Errorf("record %s read but never acknowledged", k)
		}
	}
	t.Logf("%d records produced and read exactly once", len(h.acked))
}

// waitFor polls cond every 100 ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; last: %s", d, what, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPlacementRebalance: two busy partitions on one core and an idle
// core; `strand placement rebalance` moves one of them while an
// idempotent acks=all producer and a group consumer run; the consumer
// reads every acknowledged record exactly once and the two cores' loads
// end within 20% of each other.
func TestPlacementRebalance(t *testing.T) {
	h := startHotCores(t, false)
	out, err := exec.Command(strandBin(t), "placement", "rebalance", "--json", "--admin", h.admin).CombinedOutput()
	if err != nil {
		t.Fatalf("strand placement rebalance: %v\n%s", err, out)
	}
	var rb struct {
		Moves []struct {
			Topic     string `json:"topic"`
			Partition int32  `json:"partition"`
			FromCore  int    `json:"from_core"`
			ToCore    int    `json:"to_core"`
		} `json:"moves"`
	}
	if err := json.Unmarshal(out, &rb); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if len(rb.Moves) != 1 || rb.Moves[0].Topic != h.topic || rb.Moves[0].ToCore != 1-h.hot {
		t.Fatalf("rebalance moved %s; want one partition of %s to core %d", out, h.topic, 1-h.hot)
	}
	h.balanced(t)
	h.exactlyOnce(t)
}

// TestPlacementAutoRebalance is TestPlacementRebalance with `strand serve
// --auto-rebalance` and no command: the broker makes the one move itself,
// says so in its log, and makes no other.
func TestPlacementAutoRebalance(t *testing.T) {
	h := startHotCores(t, true)
	h.balanced(t)
	// Let several more rounds run under load (a few seconds of traffic)
	// before stopping, so that a flapping rebalancer would show.
	h.mu.Lock()
	base := len(h.acked)
	h.mu.Unlock()
	waitFor(t, 60*time.Second, "2,000 more records after the balance", func() (bool, string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.acked) >= base+2000, fmt.Sprintf("%d acknowledged", len(h.acked))
	})
	h.exactlyOnce(t)
	p := getPlacement(t, h.admin)
	if p.coreOf(h.topic, 0) == p.coreOf(h.topic, 1) {
		t.Fatalf("partitions back on one core: %+v", p)
	}
	// Hysteresis: once balanced, nothing flapped back.
	if moves := strings.Count(h.logs.String(), "auto-rebalance: moved partition"); moves != 1 {
		t.Fatalf("%d automatic moves logged, want 1", moves)
	}
}
