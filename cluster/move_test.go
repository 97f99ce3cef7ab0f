package cluster

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strand-io/strand/reactor"
)

func startTwoCores(t *testing.T, dir string, logs *syncBuf) *Node {
	t.Helper()
	n, err := Start(Config{DataDir: dir, Listen: "127.0.0.1:0", LoadSampleInterval: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if len(n.cores) < 2 {
		n.Close(context.Background())
		t.Fatalf("moving partitions between cores needs two cores; this machine gives the broker %d", len(n.cores))
	}
	return n
}

func coreOf(n *Node, topic string, p int32) reactor.CoreID {
	for _, t := range n.Topics() {
		if t.Name == topic {
			return t.Cores[p]
		}
	}
	return -1
}

// TestMovePartitionLive moves a partition between two cores again and
// again while an idempotent acks=all producer writes to it: every
// acknowledged record is in the log exactly once and in order, the
// producer sees at most retriable errors, and the last core survives a
// restart.
func TestMovePartitionLive(t *testing.T) {
	dir, logs := t.TempDir(), &syncBuf{}
	n := startTwoCores(t, dir, logs)
	defer func() { n.Close(context.Background()) }()
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()), kgo.DefaultProduceTopic("moving"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0), kgo.MaxBufferedRecords(256))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 2, 1, nil, "moving"); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	acked := map[int]bool{}
	var produceErr error
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			i := i
			cl.Produce(ctx, &kgo.Record{Partition: 0, Value: []byte(strconv.Itoa(i))}, func(_ *kgo.Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil && produceErr == nil {
					produceErr = err
				}
				if err == nil {
					acked[i] = true
				}
			})
		}
	}()
	ackedCount := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	waitAcks := func(atLeast int) {
		for deadline := time.Now().Add(30 * time.Second); ackedCount() < atLeast; {
			if time.Now().After(deadline) {
				t.Fatalf("only %d records acknowledged, waiting for %d", ackedCount(), atLeast)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for i := range 6 {
		waitAcks((i + 1) * 200)
		from := coreOf(n, "moving", 0)
		to := 1 - from
		start := time.Now()
		got, err := n.MovePartition(ctx, "moving", 0, to)
		t.Logf("move %d, core %d to %d under load: %v", i, from, to, time.Since(start))
		if err != nil || got != from {
			t.Fatalf("move %d: from %d, %v; want from %d", i, got, err, from)
		}
		if c := coreOf(n, "moving", 0); c != to {
			t.Fatalf("move %d: metadata says core %d, want %d", i, c, to)
		}
	}
	waitAcks(7 * 200)
	close(stop)
	wg.Wait()
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if produceErr != nil {
		t.Fatalf("a produce failed, where a move should cost only retries: %v", produceErr)
	}
	want := len(acked)
	mu.Unlock()
	final := coreOf(n, "moving", 0)

	// Every acknowledged record exactly once, at consecutive offsets.
	readAll := func(addr string) map[int]int {
		c, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
			"moving": {0: kgo.NewOffset().AtStart()}}))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		seen := map[int]int{}
		next := int64(0)
		for len(seen) < want {
			fs := c.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				t.Fatalf("read %d of %d records", len(seen), want)
			}
			fs.EachError(func(_ string, _ int32, err error) { t.Logf("fetch: %v", err) })
			fs.EachRecord(func(r *kgo.Record) {
				if r.Offset != next {
					t.Errorf("offset %d after %d", r.Offset, next-1)
				}
				next = r.Offset + 1
				v, _ := strconv.Atoi(string(r.Value))
				seen[v]++
			})
		}
		return seen
	}
	check := func(seen map[int]int) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		for v, k := range seen {
			if k != 1 {
				t.Errorf("record %d is in the log %d times", v, k)
			}
		}
		for v := range acked {
			if seen[v] != 1 {
				t.Errorf("acknowledged record %d is not in the log", v)
			}
		}
	}
	check(readAll(n.Addr()))

	// The core survives a restart.
	if err := n.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	n = startTwoCores(t, dir, logs)
	if c := coreOf(n, "moving", 0); c != final {
		t.Fatalf("after restart on core %d, want %d", c, final)
	}
	check(readAll(n.Addr()))
}

// TestMovePartitionRefusals: errors say what went wrong and nothing moves.
func TestMovePartitionRefusals(t *testing.T) {
	logs := &syncBuf{}
	n := startTwoCores(t, t.TempDir(), logs)
	defer n.Close(context.Background())
	ctx := context.Background()
	cases := []struct {
		topic string
		p     int32
		core  reactor.CoreID
		want  error
	}{
		{"nope", 0, 1, ErrUnknownPartition},
		{OffsetsTopic, 99, 1, ErrUnknownPartition},
		{OffsetsTopic, 0, 7, ErrUnknownCore},
	}
	for _, c := range cases {
		if _, err := n.MovePartition(ctx, c.topic, c.p, c.core); !errors.Is(err, c.want) {
			t.Errorf("move %s/%d to %d: %v, want %v", c.topic, c.p, c.core, err, c.want)
		}
	}
	// Moving to the core it is on does nothing.
	c := coreOf(n, OffsetsTopic, 0)
	if from, err := n.MovePartition(ctx, OffsetsTopic, 0, c); err != nil || from != c {
		t.Fatalf("no-op move: %d, %v", from, err)
	}
	// An offsets partition is no longer refused (ErrNotMovable): it moves
	// with its group coordinator (TestMoveOffsetsPartitionLive).
	if from, err := n.MovePartition(ctx, OffsetsTopic, 0, 1-c); err != nil || from != c || coreOf(n, OffsetsTopic, 0) != 1-c {
		t.Fatalf("moving an offsets partition: from %d, %v; now on core %d", from, err, coreOf(n, OffsetsTopic, 0))
	}
}

// TestRebalanceLimits drives past --rebalance-min-bytes-per-sec (an idle
// broker: nothing moves, and the log says why) and --rebalance-max-moves
// (four busy partitions on one core of two, one move allowed: one is made
// and the log says to rebalance again).
func TestRebalanceLimits(t *testing.T) {
	logs := &syncBuf{}
	n, err := Start(Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", LoadWindow: 2 * time.Second,
		LoadSampleInterval: 100 * time.Millisecond, RebalanceMaxMoves: 1,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	if len(n.cores) < 2 {
		t.Fatalf("needs two cores; the broker has %d", len(n.cores))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()), kgo.DefaultProduceTopic("busy"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 4, 1, nil, "busy"); err != nil {
		t.Fatal(err)
	}
	if moves, err := n.Rebalance(ctx, false); err != nil || len(moves) != 0 {
		t.Fatalf("idle broker: moves %+v, %v", moves, err)
	}
	if !strings.Contains(logs.String(), "--rebalance-min-bytes-per-sec") {
		t.Fatalf("no log line for an idle rebalance:\n%s", logs.String())
	}
	for p := range int32(4) {
		if _, err := n.MovePartition(ctx, "busy", p, 0); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		v := make([]byte, 4000)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for p := range int32(4) {
				cl.Produce(ctx, &kgo.Record{Partition: p, Value: v}, nil)
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	for deadline := time.Now().Add(30 * time.Second); n.Placement().Cores[0].Load() < 4*DefaultRebalanceMinBytesPerSec; {
		if time.Now().After(deadline) {
			t.Fatalf("core 0 never got busy: %+v", n.Placement().Cores)
		}
		time.Sleep(20 * time.Millisecond)
	}
	moves, err := n.Rebalance(ctx, false)
	if err != nil || len(moves) != 1 || moves[0].To != 1 {
		t.Fatalf("max one move: %+v, %v", moves, err)
	}
	if !strings.Contains(logs.String(), "stopped at --rebalance-max-moves") {
		t.Fatalf("no log line for a rebalance cut short:\n%s", logs.String())
	}
}

// TestPinnedTopic: a topic with strand.cores gets its partitions, new ones
// too, only on those cores, cannot be moved off them, and a pin naming a
// core the broker lacks is refused.
func TestPinnedTopic(t *testing.T) {
	n := startTwoCores(t, t.TempDir(), &syncBuf{})
	defer n.Close(context.Background())
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pin := func(v string) map[string]*string { return map[string]*string{"strand.cores": &v} }
	if r, err := adm.CreateTopic(ctx, 4, 1, pin("1"), "pinned"); err != nil || r.Err != nil {
		t.Fatalf("create pinned: %v %v", err, r.Err)
	}
	if _, err := adm.CreatePartitions(ctx, 2, "pinned"); err != nil {
		t.Fatal(err)
	}
	for p := range int32(6) {
		if c := coreOf(n, "pinned", p); c != 1 {
			t.Fatalf("pinned/%d on core %d, want 1", p, c)
		}
	}
	if _, err := n.MovePartition(ctx, "pinned", 0, 0); !errors.Is(err, ErrNotMovable) || !strings.Contains(err.Error(), "strand.cores") {
		t.Fatalf("moving off the pin: %v", err)
	}
	r, err := adm.CreateTopic(ctx, 1, 1, pin("0,7"), "pinned-nowhere")
	if err == nil {
		err = r.Err
	}
	if !errors.Is(err, kerr.InvalidConfig) || !strings.Contains(r.ErrMessage, "core 7") {
		t.Fatalf("a pin to a missing core: %v (%q)", err, r.ErrMessage)
	}
	rs, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "strand.cores", Value: kmsg.StringPtr("9")}}, "pinned")
	if err != nil || len(rs) != 1 || !errors.Is(rs[0].Err, kerr.InvalidConfig) {
		t.Fatalf("altering the pin to a missing core: %v %+v", err, rs)
	}
	// Widening the pin allows the move.
	if _, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "strand.cores", Value: kmsg.StringPtr("0,1")}}, "pinned"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.MovePartition(ctx, "pinned", 0, 0); err != nil {
		t.Fatalf("moving within the widened pin: %v", err)
	}
}

// TestNewPartitionsGoToLeastLoadedCore: with one busy partition on core 0
// and more (idle) partitions on core 1, a new partition goes to core 1
// (by partition count it would go to core 0), and a new topic of two
// spreads over both cores rather than piling onto the idle one.
func TestNewPartitionsGoToLeastLoadedCore(t *testing.T) {
	n := startTwoCores(t, t.TempDir(), &syncBuf{})
	defer n.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()), kgo.DefaultProduceTopic("hot"),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	create := func(name string, parts int32) {
		t.Helper()
		if r, err := adm.CreateTopic(ctx, parts, 1, nil, name); err != nil || r.Err != nil {
			t.Fatalf("create %s: %v %v", name, err, r.Err)
		}
	}
	create("hot", 1)
	create("idle", 3)
	if _, err := n.MovePartition(ctx, "hot", 0, 0); err != nil {
		t.Fatal(err)
	}
	for p := range int32(3) {
		if _, err := n.MovePartition(ctx, "idle", p, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: make([]byte, 64<<10)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); n.Placement().Cores[0].Load() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no load measured on core 0")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if v := n.Placement(); v.Cores[0].Partitions >= v.Cores[1].Partitions {
		t.Fatalf("setup: core 0 should have fewer partitions: %+v", v.Cores)
	}
	create("fresh", 1)
	if c := coreOf(n, "fresh", 0); c != 1 {
		t.Fatalf("a new partition went to core %d, the busy one", c)
	}
	create("fresh2", 2)
	if a, b := coreOf(n, "fresh2", 0), coreOf(n, "fresh2", 1); a == b {
		t.Fatalf("a new topic's two partitions both went to core %d", a)
	}
}
