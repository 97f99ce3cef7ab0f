package cluster

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strand-io/strand/reactor"
)

// TestMoveOffsetsPartitionLive moves the offsets partition hosting a
// group's coordinator between two cores again and again while a group
// consumer reads and commits after every poll, and a producer writes. Every
// commit answered success before a move is what OffsetFetch returns after
// it, no commit fails, the member is never reassigned (no rebalance: its
// membership moves with the log), so it never reads a record twice; and
// the last core and offsets survive a restart.
func TestMoveOffsetsPartitionLive(t *testing.T) {
	dir, logs := t.TempDir(), &syncBuf{}
	n := startTwoCores(t, dir, logs)
	defer func() { n.Close(context.Background()) }()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const group, topic = "movers", "src"

	prod, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	adm := kadm.NewClient(prod)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	produced := 0
	stopProducing := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i += 10 {
			select {
			case <-stopProducing:
				return
			default:
			}
			recs := make([]*kgo.Record, 10)
			for j := range recs {
				recs[j] = &kgo.Record{Value: []byte(strconv.Itoa(i + j))}
			}
			if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Errorf("produce: %v", err)
				return
			}
			mu.Lock()
			produced = i + 10
			mu.Unlock()
		}
	}()

	assigned, lost := 0, 0
	retried := &retryCounter{}
	cons, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.WithLogger(retried),
		kgo.DisableAutoCommit(), kgo.FetchMaxWait(50*time.Millisecond),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) { mu.Lock(); assigned++; mu.Unlock() }),
		kgo.OnPartitionsRevoked(func(context.Context, *kgo.Client, map[string][]int32) { mu.Lock(); lost++; mu.Unlock() }),
		kgo.OnPartitionsLost(func(context.Context, *kgo.Client, map[string][]int32) { mu.Lock(); lost++; mu.Unlock() }))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := map[int]int{}
	var commitErr error
	committedOK, commits := int64(-1), 0 // the last commit answered success
	consCtx, stopConsuming := context.WithCancel(ctx)
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for {
			fs := cons.PollRecords(consCtx, 20)
			if consCtx.Err() != nil {
				return
			}
			fs.EachError(func(_ string, _ int32, err error) { t.Logf("fetch: %v", err) })
			var last int64 = -1
			fs.EachRecord(func(r *kgo.Record) {
				v, _ := strconv.Atoi(string(r.Value))
				mu.Lock()
				seen[v]++
				mu.Unlock()
				last = r.Offset
			})
			if last < 0 {
				continue
			}
			err := cons.CommitUncommittedOffsets(consCtx)
			mu.Lock()
			if err != nil && commitErr == nil && consCtx.Err() == nil {
				commitErr = err
			}
			if err == nil {
				committedOK, commits = last+1, commits+1
			}
			mu.Unlock()
		}
	}()
	state := func() (int64, int) { mu.Lock(); defer mu.Unlock(); return committedOK, commits }
	waitCommits := func(atLeast int) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; {
			if _, c := state(); c >= atLeast {
				return
			}
			if time.Now().After(deadline) {
				_, c := state()
				t.Fatalf("only %d commits, waiting for %d", c, atLeast)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	fetchCommitted := func(addr string) int64 {
		t.Helper()
		c, err := kgo.NewClient(kgo.SeedBrokers(addr))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		os, err := kadm.NewClient(c).FetchOffsets(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		o, ok := os.Lookup(topic, 0)
		if !ok || o.Err != nil {
			t.Fatalf("OffsetFetch: %+v %v", o, ok)
		}
		return o.At
	}

	p := offsetsPartitionFor(group, n.meta.Load().topics[OffsetsTopic].Partitions())
	const moves = 6
	for i := range moves {
		waitCommits((i + 1) * 10)
		before, _ := state()
		from := coreOf(n, OffsetsTopic, p)
		to := 1 - from
		start := time.Now()
		got, err := n.MovePartition(ctx, OffsetsTopic, p, to)
		t.Logf("move %d of %s/%d, core %d to %d, under commits: %v", i, OffsetsTopic, p, from, to, time.Since(start))
		if err != nil || got != from {
			t.Fatalf("move %d: from %d, %v; want from %d", i, got, err, from)
		}
		if c := coreOf(n, OffsetsTopic, p); c != to {
			t.Fatalf("move %d: metadata says core %d, want %d", i, c, to)
		}
		if at := fetchCommitted(n.Addr()); at < before {
			t.Fatalf("move %d: OffsetFetch says %d after a commit of %d was answered", i, at, before)
		}
	}
	waitCommits((moves + 1) * 10)
	close(stopProducing)
	wg.Wait()
	mu.Lock()
	total := produced
	mu.Unlock()
	// Read to the end, then stop.
	for deadline := time.Now().Add(30 * time.Second); ; {
		if c, _ := state(); c >= int64(total) {
			break
		}
		if time.Now().After(deadline) {
			c, _ := state()
			t.Fatalf("committed %d of %d records", c, total)
		}
		time.Sleep(5 * time.Millisecond)
	}
	stopConsuming()
	<-consumed

	last, _ := state()
	if at := fetchCommitted(n.Addr()); at != last {
		t.Fatalf("OffsetFetch says %d, the last commit answered success was %d", at, last)
	}
	t.Logf("%d commits; the consumer's client retried %d requests its coordinator answered with a retriable error", commits, retried.n.Load())
	mu.Lock()
	if commitErr != nil {
		t.Errorf("a commit failed, where a move should cost only retries: %v", commitErr)
	}
	if assigned != 1 || lost != 0 {
		t.Errorf("the member was assigned %d times and lost or revoked partitions %d times; a move should not rebalance the group", assigned, lost)
	}
	again := 0
	for v := range total {
		switch k := seen[v]; {
		case k == 0:
			t.Errorf("record %d never read", v)
		case k > 1:
			again += k - 1
		}
	}
	if again > 0 {
		t.Errorf("%d records read again over %d moves", again, moves)
	}
	mu.Unlock()
	cons.Close()
	prod.Close()

	final := coreOf(n, OffsetsTopic, p)
	if err := n.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	n = startTwoCores(t, dir, logs)
	if c := coreOf(n, OffsetsTopic, p); c != final {
		t.Fatalf("after restart %s/%d is on core %d, want %d", OffsetsTopic, p, c, final)
	}
	if at := fetchCommitted(n.Addr()); at != last {
		t.Fatalf("after restart OffsetFetch says %d, want %d", at, last)
	}
}

// retryCounter is a kgo.Logger counting the requests the client retried
// because the group coordinator answered with a retriable error.
type retryCounter struct{ n atomic.Int64 }

func (*retryCounter) Level() kgo.LogLevel { return kgo.LogLevelDebug }

func (r *retryCounter) Log(_ kgo.LogLevel, msg string, kv ...any) {
	for i := 1; i < len(kv); i += 2 {
		if err, ok := kv[i].(error); ok && (errors.Is(err, kerr.CoordinatorLoadInProgress) ||
			errors.Is(err, kerr.NotCoordinator) || errors.Is(err, kerr.CoordinatorNotAvailable)) && strings.Contains(msg, "retry") {
			r.n.Add(1)
		}
	}
}

// TestMoveOffsetsPartitionWaitsForPurge: a move of an offsets partition
// is refused while a topic deletion purges committed offsets, and a
// deletion waits for a move under way (offsetsGate).
func TestMoveOffsetsPartitionWaitsForPurge(t *testing.T) {
	var g offsetsGate
	if !g.beginPurge() {
		t.Fatal("an idle gate refused a purge")
	}
	if g.beginMove() {
		t.Fatal("a move began during a purge")
	}
	g.endPurge()
	if !g.beginMove() {
		t.Fatal("a move was refused after the purge ended")
	}
	if g.beginPurge() {
		t.Fatal("a purge began during a move")
	}
	g.endMove()
	if !g.beginPurge() {
		t.Fatal("a purge was refused after the move ended")
	}

	n := startTwoCores(t, t.TempDir(), &syncBuf{})
	defer n.Close(context.Background())
	n.offsetsGate.beginPurge()
	c := coreOf(n, OffsetsTopic, 0)
	if _, err := n.MovePartition(context.Background(), OffsetsTopic, 0, 1-c); !errors.Is(err, ErrPlacementBusy) {
		t.Fatalf("moving an offsets partition during a purge: %v, want ErrPlacementBusy", err)
	}
	n.offsetsGate.endPurge()
	if _, err := n.MovePartition(context.Background(), OffsetsTopic, 0, 1-c); err != nil {
		t.Fatalf("moving it once the purge ended: %v", err)
	}
}

// TestMoveOffsetsPartitionDuringRebalance moves a group's offsets
// partition while a new member's JoinGroup waits for the old member to
// rejoin: the waiting join is answered with a retriable error, not left
// hanging on the retired coordinator, and the group settles with both
// members on the new core.
func TestMoveOffsetsPartitionDuringRebalance(t *testing.T) {
	n := startTwoCores(t, t.TempDir(), &syncBuf{})
	defer n.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const group, topic = "joiners", "two"
	adm, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	kadmCl := kadm.NewClient(adm)
	if _, err := kadmCl.CreateTopic(ctx, 2, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	assigned := map[string]int{}
	member := func(name string) *kgo.Client {
		t.Helper()
		c, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.HeartbeatInterval(time.Second),
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
				mu.Lock()
				assigned[name] += len(a[topic])
				mu.Unlock()
			}),
			kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
				mu.Lock()
				assigned[name] -= len(r[topic])
				mu.Unlock()
			}))
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for ctx.Err() == nil && !c.PollFetches(ctx).IsClientClosed() {
			}
		}()
		return c
	}
	waitGroup := func(what string, ok func(kadm.DescribedGroup) bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; {
			gs, err := kadmCl.DescribeGroups(ctx, group)
			if err == nil && ok(gs[group]) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("group never %s: %+v %v", what, gs[group], err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	a := member("a")
	defer a.Close()
	waitGroup("stable with one member", func(g kadm.DescribedGroup) bool { return g.State == "Stable" && len(g.Members) == 1 })
	b := member("b")
	defer b.Close()
	waitGroup("rebalancing", func(g kadm.DescribedGroup) bool { return g.State == "PreparingRebalance" })

	p := offsetsPartitionFor(group, n.meta.Load().topics[OffsetsTopic].Partitions())
	from := coreOf(n, OffsetsTopic, p)
	if _, err := n.MovePartition(ctx, OffsetsTopic, p, 1-from); err != nil {
		t.Fatal(err)
	}
	waitGroup("stable with both members", func(g kadm.DescribedGroup) bool { return g.State == "Stable" && len(g.Members) == 2 })
	for deadline := time.Now().Add(30 * time.Second); ; {
		mu.Lock()
		done := assigned["a"] == 1 && assigned["b"] == 1
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("assignments never settled one partition each: %v", assigned)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRetiredCoordinatorAnswersLoadInProgress: while an offsets partition
// moves, its groups' requests get COORDINATOR_LOAD_IN_PROGRESS, which
// KafkaJS retries, rather than NOT_COORDINATOR, on which it rejoins its
// group (a rebalance), or COORDINATOR_NOT_AVAILABLE.
func TestRetiredCoordinatorAnswersLoadInProgress(t *testing.T) {
	n := startTwoCores(t, t.TempDir(), &syncBuf{})
	defer n.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const group = "retired"
	p := offsetsPartitionFor(group, n.meta.Load().topics[OffsetsTopic].Partitions())
	core := coreOf(n, OffsetsTopic, p)
	stopped := make(chan struct{})
	if err := n.rt.Post(core, func(*reactor.Core) { n.cores[core].stopCoordinator(p); close(stopped) }); err != nil {
		t.Fatal(err)
	}
	<-stopped
	// No retries: the client would retry this answer until its timeout.
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()), kgo.RequestRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	f := kmsg.NewPtrOffsetFetchRequest()
	f.Group = group
	resp, err := f.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != kerr.CoordinatorLoadInProgress {
		t.Fatalf("OffsetFetch to a retired coordinator: %v, want COORDINATOR_LOAD_IN_PROGRESS", err)
	}
}
