package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strand-io/strand/wire"
)

// isrOf maps each partition of topic to its in-sync set, as broker id
// reports it.
func (c *testCluster) isrOf(ctx context.Context, id int32, topic string) ([][]int32, error) {
	m, err := c.metadataOf(ctx, id, topic)
	if err != nil {
		return nil, err
	}
	if len(m.Topics) != 1 || m.Topics[0].ErrorCode != 0 {
		return nil, fmt.Errorf("metadata of %s from broker %d: %+v", topic, id, m.Topics)
	}
	out := make([][]int32, len(m.Topics[0].Partitions))
	for _, p := range m.Topics[0].Partitions {
		out[p.Partition] = p.ISR
	}
	return out, nil
}

// TestReplicatedBasics: three brokers, a topic of replication factor 3.
// acks=all records produced through each partition's leader are in every
// replica: after the leader of partition 0 is SIGKILLed, another in-sync
// replica leads it (with a larger leader epoch) and serves every
// acknowledged record, and the partition takes new ones; the killed
// broker, restarted, catches up and is back in every in-sync set.
// min.insync.replicas=3 then refuses acks=all produces with
// NOT_ENOUGH_REPLICAS while one replica is out. Last, a SIGTERMed leader

// waitPairInSync waits until partition 0 of topic (two replicas) has a
// leader and both replicas in sync, and returns the leader and the
// follower.
func (c *testCluster) waitPairInSync(t *testing.T, ctx context.Context, topic string) (leader, follower int32) {
	t.Helper()
	waitUntil(t, 30*time.Second, "both replicas in sync", func() error {
		m, err := c.metadataOf(ctx, 1, topic)
		if err != nil || len(m.Topics) != 1 || len(m.Topics[0].Partitions) != 1 {
			return fmt.Errorf("metadata: %v", err)
		}
		p := m.Topics[0].Partitions[0]
		if len(p.ISR) != 2 || p.Leader < 0 {
			return fmt.Errorf("leader %d isr %v", p.Leader, p.ISR)
		}
		leader = p.Leader
		for _, r := range p.Replicas {
			if r != leader {
				follower = r
			}
		}
		return nil
	})
	return leader, follower
}

// produceReq is a Produce (v9) of one batch holding value to partition 0
// of topic.
func produceReq(topic string, acks int16, value string) *kmsg.ProduceRequest {
	pr := kmsg.NewPtrProduceRequest()
	pr.Version, pr.Acks, pr.TimeoutMillis = 9, acks, 5000
	prt := kmsg.NewProduceRequestTopic()
	prt.Topic = topic
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = makeBatch([]byte(value))
	prt.Partitions = append(prt.Partitions, pp)
	pr.Topics = append(pr.Topics, prt)
	return pr
}

// replicaFetchReq is a follower's Fetch (v12, no wait) of partition 0 of
// topic from offset, as broker replica; dirID, unless 0, goes in Strand's
// data dir tag (wire.TagFollowerLogDir).
func replicaFetchReq(topic string, replica int32, offset int64, dirID uint64) *kmsg.FetchRequest {
	f := kmsg.NewPtrFetchRequest()
	f.SetVersion(12)
	f.ReplicaID, f.MaxBytes, f.MaxWaitMillis, f.SessionEpoch = replica, 1<<20, 0, -1
	if dirID != 0 {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], dirID)
		f.UnknownTags.Set(wire.TagFollowerLogDir, b[:])
	}
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	p := kmsg.NewFetchRequestTopicPartition()
	p.FetchOffset, p.PartitionMaxBytes, p.CurrentLeaderEpoch, p.LastFetchedEpoch, p.LogStartOffset = offset, 1<<20, -1, -1, -1
	ft.Partitions = append(ft.Partitions, p)
	f.Topics = append(f.Topics, ft)
	return f
}

// hands leadership over before it exits.
func TestReplicatedBasics(t *testing.T) {
	c := startCluster(t, 3, "--replica-lag-time-max", "3s")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	admin := c.client()
	const topic, parts = "rep", 3
	if err := createTopicRF(ctx, admin, topic, parts, 3, nil); err != nil {
		t.Fatalf("create: %v", err)
	}
	full := func() error {
		isr, err := c.isrOf(ctx, 1, topic)
		if err != nil {
			return err
		}
		for p, s := range isr {
			if len(s) != 3 {
				return fmt.Errorf("partition %d in-sync set %v", p, s)
			}
		}
		return nil
	}
	waitUntil(t, 30*time.Second, "full in-sync sets", full)
	acked := produceAll(t, ctx, c.client(kgo.RequiredAcks(kgo.AllISRAcks())), topic, parts, 200)
	consumeCounts(t, ctx, c.seeds(), topic, acked)

	leaders, err := c.leaders(ctx, 1, topic)
	if err != nil {
		t.Fatal(err)
	}
	victim := leaders[0]
	m0, _ := c.metadataOf(ctx, victim, topic)
	epoch0 := m0.Topics[0].Partitions[0].LeaderEpoch
	c.procs[victim].kill()
	other := int32(1)
	if victim == 1 {
		other = 2
	}
	waitUntil(t, 20*time.Second, "a new leader for partition 0", func() error {
		m, err := c.metadataOf(ctx, other, topic)
		if err != nil {
			return err
		}
		p := m.Topics[0].Partitions[0]
		if p.Leader == victim || p.Leader < 0 || p.ErrorCode != 0 {
			return fmt.Errorf("leader %d (%v)", p.Leader, kerr.ErrorForCode(p.ErrorCode))
		}
		if p.LeaderEpoch <= epoch0 {
			return fmt.Errorf("leader epoch %d, was %d", p.LeaderEpoch, epoch0)
		}
		return nil
	})
	consumeCounts(t, ctx, c.seeds(), topic, acked)
	var rs []*kgo.Record
	for p := range int32(parts) {
		for i := range 100 {
			rs = append(rs, &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "%s-%d-%d", topic, p, acked[p]+int64(i))})
		}
	}
	for _, r := range c.client(kgo.RequiredAcks(kgo.AllISRAcks())).ProduceSync(ctx, rs...) {
		if r.Err != nil {
			t.Fatalf("produce to %s-%d after the kill: %v", topic, r.Record.Partition, r.Err)
		}
	}
	for p := range acked {
		acked[p] += 100
	}
	c.procs[victim].start()
	waitUntil(t, 40*time.Second, "the restarted broker back in every in-sync set", full)
	consumeCounts(t, ctx, c.seeds(), topic, acked)

	// A SIGTERM hands leadership over before the process exits (a
	// controlled shutdown): the other brokers name new leaders at once,
	// not a broker lease (2 s here) after the exit.
	if leaders, err = c.leaders(ctx, 1, topic); err != nil {
		t.Fatal(err)
	}
	stopping := leaders[1]
	if code := c.procs[stopping].term(30 * time.Second); code != 0 {
		t.Fatalf("SIGTERM exit code %d", code)
	}
	exited := time.Now()
	other = 1
	if stopping == 1 {
		other = 2
	}
	waitUntil(t, 20*time.Second, "new leaders after the SIGTERM", func() error {
		l, err := c.leaders(ctx, other, topic)
		if err != nil {
			return err
		}
		for p, b := range l {
			if b == stopping || b < 0 {
				return fmt.Errorf("partition %d leader %d", p, b)
			}
		}
		return nil
	})
	if d := time.Since(exited); d > time.Second {
		t.Errorf("leadership moved %v after the SIGTERMed broker exited: it was not handed over", d)
	}
	consumeCounts(t, ctx, c.seeds(), topic, acked)

	// Two in-sync replicas now: min.insync.replicas=3 refuses acks=all
	// before appending anything, and acks=1 still goes through.
	ac := kmsg.NewPtrIncrementalAlterConfigsRequest()
	ar := kmsg.NewIncrementalAlterConfigsRequestResource()
	ar.ResourceType, ar.ResourceName = kmsg.ConfigResourceTypeTopic, topic
	ac0 := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	ac0.Name, ac0.Value = "min.insync.replicas", kmsg.StringPtr("3")
	ar.Configs = append(ar.Configs, ac0)
	ac.Resources = append(ac.Resources, ar)
	// The SIGTERMed broker may have led the metadata group: a change can
	// time out (REQUEST_TIMED_OUT, retriable) until another is elected.
	waitUntil(t, 30*time.Second, "min.insync.replicas=3", func() error {
		resp, err := ac.RequestWith(ctx, c.client())
		if err != nil {
			return err
		}
		if code := resp.Resources[0].ErrorCode; code != 0 {
			return fmt.Errorf("%s: %v", codeName(code), resp.Resources[0].ErrorMessage)
		}
		return nil
	})
	if leaders, err = c.leaders(ctx, other, topic); err != nil {
		t.Fatal(err)
	}
	produceRaw := func(acks int16) int16 {
		t.Helper()
		var code int16
		waitUntil(t, 20*time.Second, "the config reaching the leader", func() error {
			resp, err := c.request(leaders[0], produceReq(topic, acks, "min-isr"))
			if err != nil {
				return err
			}
			code = resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
			switch {
			case acks == -1 && code == 0:
				return fmt.Errorf("acks=all acknowledged with two in-sync replicas")
			case code == kerr.NotLeaderForPartition.Code:
				// Settling: the leader's lease waits for the probes of
				// a controller that may have moved with the SIGTERM.
				return fmt.Errorf("%s", codeName(code))
			}
			return nil
		})
		return code
	}
	if code := produceRaw(-1); code != kerr.NotEnoughReplicas.Code {
		t.Fatalf("acks=all with 2 in-sync replicas and min.insync.replicas=3: %s, want NOT_ENOUGH_REPLICAS", codeName(code))
	}
	if code := produceRaw(1); code != 0 {
		t.Fatalf("acks=1 with 2 in-sync replicas: %s", codeName(code))
	}
}

// TestPausedLeaderRefusesAcks1: a leader paused (SIGSTOP) past its broker
// lease is fenced and replaced; an acks=1 produce it reads only after
// SIGCONT, sent on a connection opened before the pause, is refused
// (NOT_LEADER_OR_FOLLOWER), not acknowledged: the new leader would never
// have the record. acks=1 needs no follower, so only the leadership lease
// (cluster/lease.go) stops a deposed leader that has not yet heard of its
// replacement.
func TestPausedLeaderRefusesAcks1(t *testing.T) {
	c := startCluster(t, 3, "--replica-lag-time-max", "3s")
	ctx := ctxFor(t, 90*time.Second)
	const topic = "paused"
	if err := createTopicRF(ctx, c.client(), topic, 1, 3, nil); err != nil {
		t.Fatalf("create: %v", err)
	}
	// Leading and taking produces.
	produceAll(t, ctx, c.client(kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()), topic, 1, 10)
	// Broker 1 may publish the topic a moment after the broker that
	// answered the create.
	var victim int32
	waitUntil(t, 20*time.Second, "broker 1 naming the leader", func() error {
		l, err := c.leaders(ctx, 1, topic)
		if err != nil {
			return err
		}
		if victim = l[0]; victim < 0 {
			return fmt.Errorf("no leader")
		}
		return nil
	})
	rc := dialRaw(t, c.procs[victim].addr)
	p := c.procs[victim]
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	cont := sync.OnceFunc(func() { _ = p.cmd.Process.Signal(syscall.SIGCONT) })
	t.Cleanup(cont)
	other := int32(1)
	if victim == 1 {
		other = 2
	}
	waitUntil(t, 30*time.Second, "a new leader", func() error {
		l, err := c.leaders(ctx, other, topic)
		if err != nil {
			return err
		}
		if l[0] == victim || l[0] < 0 {
			return fmt.Errorf("leader %d", l[0])
		}
		return nil
	})
	pr := produceReq(topic, 1, "from the past")
	type answer struct {
		resp kmsg.Response
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		resp, err := rc.roundTrip(pr, 30*time.Second)
		got <- answer{resp, err}
	}()
	time.Sleep(100 * time.Millisecond) // the request is in the paused broker's socket buffer
	cont()
	a := <-got
	if a.err != nil {
		t.Fatalf("the paused leader's answer: %v", a.err)
	}
	part := a.resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	if part.ErrorCode == 0 {
		t.Fatalf("the deposed leader acknowledged an acks=1 produce at offset %d after it was replaced", part.BaseOffset)
	}
	if part.ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Fatalf("answer %s, want NOT_LEADER_OR_FOLLOWER", codeName(part.ErrorCode))
	}
}

// TestReplicaFetchPastLogEndNotCounted: a Fetch naming a follower's
// replica id with an offset past the leader's log end (a confused or
// hostile client; replica fetches are not authenticated) is refused with
// OFFSET_OUT_OF_RANGE and does not count as that follower's durable end:
// with the real follower paused (still in sync under a long lease), a
// record the leader alone holds stays above the high watermark. Before,
// the claim carried the high watermark to the log end.
func TestReplicaFetchPastLogEndNotCounted(t *testing.T) {
	c := startCluster(t, 3, "--broker-lease", "60s", "--replica-lag-time-max", "60s")
	ctx := ctxFor(t, 90*time.Second)
	const topic = "spoof"
	if err := createTopicRF(ctx, c.client(), topic, 1, 2, nil); err != nil {
		t.Fatalf("create: %v", err)
	}
	leader, follower := c.waitPairInSync(t, ctx, topic)
	produceAll(t, ctx, c.client(kgo.RequiredAcks(kgo.AllISRAcks())), topic, 1, 1)
	fp := c.procs[follower]
	if err := fp.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fp.cmd.Process.Signal(syscall.SIGCONT) })
	// A record only the leader holds: acks=1.
	pr := produceReq(topic, 1, "leader only")
	waitUntil(t, 20*time.Second, "an acks=1 produce", func() error {
		resp, err := c.request(leader, pr)
		if err != nil {
			return err
		}
		if code := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; code != 0 {
			return fmt.Errorf("%s", codeName(code))
		}
		return nil
	})
	resp, err := c.request(leader, replicaFetchReq(topic, follower, 1<<40, 0))
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode; code != kerr.OffsetOutOfRange.Code {
		t.Fatalf("replica fetch past the log end: %s, want OFFSET_OUT_OF_RANGE", codeName(code))
	}
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.Version = 4
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = topic
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Timestamp, lp.CurrentLeaderEpoch = -1, -1
	lt.Partitions = append(lt.Partitions, lp)
	lo.Topics = append(lo.Topics, lt)
	lr, err := c.request(leader, lo)
	if err != nil {
		t.Fatal(err)
	}
	if hw := lr.(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].Offset; hw != 1 {
		t.Fatalf("high watermark %d after the claim, want 1: the record the paused follower lacks was exposed", hw)
	}
}

// TestReplicaFetchOverOlderConnectionRefused: a leader counts a follower's
// fetches over its newest connection only (a restarted follower, wiped or
// not, comes back on a new one, and a late fetch from before must not
// describe its log). A fetch over an older connection is refused with
// STALE_BROKER_EPOCH, and the follower's own fetcher, told so, reconnects
// and is counted again: acks=all goes on.
func TestReplicaFetchOverOlderConnectionRefused(t *testing.T) {
	c := startCluster(t, 3, "--broker-lease", "60s", "--replica-lag-time-max", "60s")
	ctx := ctxFor(t, 90*time.Second)
	const topic = "conns"
	if err := createTopicRF(ctx, c.client(), topic, 1, 2, nil); err != nil {
		t.Fatalf("create: %v", err)
	}
	leader, follower := c.waitPairInSync(t, ctx, topic)
	acksAll := c.client(kgo.RequiredAcks(kgo.AllISRAcks()))
	produceAll(t, ctx, acksAll, topic, 1, 1)
	fp := c.procs[follower]
	if err := fp.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fp.cmd.Process.Signal(syscall.SIGCONT) })

	fetch := func(rc *rawConn) int16 {
		t.Helper()
		resp, err := rc.roundTrip(replicaFetchReq(topic, follower, 1, 0), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode
	}
	older, newer := dialRaw(t, c.procs[leader].addr), dialRaw(t, c.procs[leader].addr)
	if code := fetch(older); code != 0 {
		t.Fatalf("fetch over a new connection: %s", codeName(code))
	}
	if code := fetch(newer); code != 0 {
		t.Fatalf("fetch over a newer connection: %s", codeName(code))
	}
	if code := fetch(older); code != kerr.StaleBrokerEpoch.Code {
		t.Fatalf("fetch over the older connection again: %s, want STALE_BROKER_EPOCH", codeName(code))
	}
	// The follower's own connection is older still: refused, it must
	// reconnect for the next acks=all record to be acknowledged.
	if err := fp.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := acksAll.ProduceSync(pctx, &kgo.Record{Topic: topic, Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatalf("acks=all after the follower's connection was called stale: %v", err)
	}
	isr, err := c.isrOf(ctx, leader, topic)
	if err != nil || len(isr[0]) != 2 {
		t.Fatalf("in-sync set %v (%v), want both replicas", isr, err)
	}
}

// TestFetchNamingAnotherDataDirKeepsFollowerOut: a follower's fetch names
// its data dir (wire.TagFollowerLogDir) and the leader names it when it
// proposes the follower into the in-sync set, so the metadata refuses a
// join counted on a copy that is not the broker's current one (a broker
// wiped and back under its id, while its previous process's fetches
// still count). A fetch naming another dir gets the proposal refused; one
// naming the broker's own gets it in.
func TestFetchNamingAnotherDataDirKeepsFollowerOut(t *testing.T) {
	c := startCluster(t, 3, "--broker-lease", "60s", "--replica-lag-time-max", "2s")
	ctx := ctxFor(t, 90*time.Second)
	const topic = "dirs"
	if err := createTopicRF(ctx, c.client(), topic, 1, 2, nil); err != nil {
		t.Fatalf("create: %v", err)
	}
	leader, follower := c.waitPairInSync(t, ctx, topic)
	produceAll(t, ctx, c.client(kgo.RequiredAcks(kgo.AllISRAcks())), topic, 1, 1)
	fp := c.procs[follower]
	var ident struct {
		LogDirID uint64 `json:"log_dir_id"`
	}
	if b, err := os.ReadFile(filepath.Join(fp.dir, "cluster.json")); err != nil || json.Unmarshal(b, &ident) != nil || ident.LogDirID == 0 {
		t.Fatalf("the follower's cluster.json: %v %+v", err, ident)
	}
	if err := fp.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fp.cmd.Process.Signal(syscall.SIGCONT) })
	// A record it lacks: a follower holding the whole log stays in sync.
	// Sent to the leader alone: a client would also ask the paused
	// broker for metadata, and wait out its request timeout.
	resp, err := c.request(leader, produceReq(topic, 1, "the follower lacks this"))
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("acks=1 produce to the leader: %s", codeName(code))
	}
	start := time.Now()
	waitUntil(t, 20*time.Second, "the paused follower out of the in-sync set", func() error {
		isr, err := c.isrOf(ctx, leader, topic)
		if err != nil || len(isr[0]) != 1 {
			return fmt.Errorf("isr %v (%v)", isr, err)
		}
		return nil
	})

	fetch := func(dirID uint64) {
		t.Helper()
		resp, err := dialRaw(t, c.procs[leader].addr).roundTrip(replicaFetchReq(topic, follower, 2, dirID), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if code := resp.(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("fetch: %s", codeName(code))
		}
	}
	t.Logf("the paused follower left the in-sync set after %v", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	// Caught up (offset 2 is the log end), but naming another data dir.
	fetch(ident.LogDirID ^ 1)
	lp := c.procs[leader]
	waitUntil(t, 20*time.Second, "the leader's join proposal refused for the data dir", func() error {
		if !strings.Contains(lp.logs.String(), "is not the one its fetches came from") {
			return fmt.Errorf("no refusal logged")
		}
		return nil
	})
	if isr, err := c.isrOf(ctx, leader, topic); err != nil || len(isr[0]) != 1 {
		t.Fatalf("in-sync set %v (%v) after a join counted on another data dir", isr, err)
	}
	t.Logf("the join on another data dir refused after %v", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	// Naming the follower's own dir, it joins (after the proposal retry).
	fetch(ident.LogDirID)
	waitUntil(t, 20*time.Second, "the follower back in the in-sync set", func() error {
		isr, err := c.isrOf(ctx, leader, topic)
		if err != nil || len(isr[0]) != 2 {
			return fmt.Errorf("isr %v (%v)", isr, err)
		}
		return nil
	})
	t.Logf("the join on its own data dir accepted after %v", time.Since(start).Round(time.Millisecond))
}

// TestRestartedLeaderGetsNewEpoch: a leader SIGKILLed and restarted
// within its lease is still the leader in the metadata. Its unsynced tail
// died with it but may be on its followers, so it must not lead on in the
// same epoch (they would keep those records where it writes new ones):
// it fences itself on start, and its partitions get a new leader epoch
// before it takes produces again.
func TestRestartedLeaderGetsNewEpoch(t *testing.T) {
	c := startCluster(t, 3, "--broker-lease", "60s")
	ctx := ctxFor(t, 90*time.Second)
	const topic = "restart"
	if err := createTopicRF(ctx, c.client(), topic, 3, 3, nil); err != nil {
		t.Fatalf("create: %v", err)
	}
	var victim int32 = -1
	waitUntil(t, 30*time.Second, "every partition led, every replica in sync", func() error {
		m, err := c.metadataOf(ctx, 1, topic)
		if err != nil || len(m.Topics) != 1 || len(m.Topics[0].Partitions) != 3 {
			return fmt.Errorf("metadata: %v", err)
		}
		for _, p := range m.Topics[0].Partitions {
			if p.Leader < 0 || len(p.ISR) != 3 {
				return fmt.Errorf("partition %d: leader %d isr %v", p.Partition, p.Leader, p.ISR)
			}
		}
		victim = m.Topics[0].Partitions[0].Leader
		return nil
	})
	produceAll(t, ctx, c.client(kgo.RequiredAcks(kgo.AllISRAcks())), topic, 3, 30)
	m, err := c.metadataOf(ctx, 1, topic)
	if err != nil {
		t.Fatal(err)
	}
	led := map[int32]int32{} // partition -> epoch, of those the victim leads
	for _, p := range m.Topics[0].Partitions {
		if p.Leader == victim {
			led[p.Partition] = p.LeaderEpoch
		}
	}
	p := c.procs[victim]
	p.kill()
	p.start()
	waitUntil(t, 30*time.Second, "the restarted leader's partitions in a new epoch, every replica in sync", func() error {
		m, err := c.metadataOf(ctx, victim, topic)
		if err != nil || len(m.Topics) != 1 {
			return fmt.Errorf("metadata: %v", err)
		}
		for _, mp := range m.Topics[0].Partitions {
			was, ok := led[mp.Partition]
			if !ok {
				continue
			}
			if mp.LeaderEpoch <= was || mp.Leader < 0 || len(mp.ISR) != 3 {
				return fmt.Errorf("partition %d: leader %d epoch %d (was %d), isr %v", mp.Partition, mp.Leader, mp.LeaderEpoch, was, mp.ISR)
			}
		}
		return nil
	})
	if !strings.Contains(p.logs.String(), "fencing it first") {
		t.Fatalf("the restarted broker did not log fencing itself")
	}
	produceAll(t, ctx, c.client(kgo.RequiredAcks(kgo.AllISRAcks())), topic, 3, 30)
}

// TestFollowerBelowLeaderLogStartStartsOver: a follower away while the
// leader's log start moved past its log end (DeleteRecords here; retention
// does the same) can never fetch onto its log. It starts its log over at
// the leader's log start, catches up and rejoins the in-sync set.
func TestFollowerBelowLeaderLogStartStartsOver(t *testing.T) {
	c := startCluster(t, 3, "--broker-lease", "60s", "--replica-lag-time-max", "2s")
	ctx := ctxFor(t, 90*time.Second)
	const topic = "start"
	if err := createTopicRF(ctx, c.client(), topic, 1, 2, nil); err != nil {
		t.Fatalf("create: %v", err)
	}
	leader, follower := c.waitPairInSync(t, ctx, topic)
	acksAll := c.client(kgo.RequiredAcks(kgo.AllISRAcks()))
	produceAll(t, ctx, acksAll, topic, 1, 10)
	// Killed, not paused: a paused follower's long poll would carry it
	// the next records when it resumes.
	fp := c.procs[follower]
	fp.kill()
	start := time.Now()
	acks1 := c.client(kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	produceAll(t, ctx, acks1, topic, 1, 20)
	waitUntil(t, 20*time.Second, "the killed follower out of the in-sync set", func() error {
		isr, err := c.isrOf(ctx, leader, topic)
		if err != nil || len(isr[0]) != 1 {
			return fmt.Errorf("isr %v (%v)", isr, err)
		}
		return nil
	})
	t.Logf("out of the in-sync set after %v", time.Since(start).Round(time.Millisecond))
	adm := kadm.NewClient(c.client())
	waitUntil(t, 20*time.Second, "the leader's log start at 25", func() error {
		rs, err := adm.DeleteRecords(ctx, offsetsAt(topic, 0, 25))
		if err != nil {
			return err
		}
		if r, ok := rs.Lookup(topic, 0); !ok || r.Err != nil || r.LowWatermark != 25 {
			return fmt.Errorf("DeleteRecords to 25: %+v", r)
		}
		return nil
	})
	fp.start()
	t.Logf("log start moved, follower restarted after %v", time.Since(start).Round(time.Millisecond))
	waitUntil(t, 30*time.Second, "the follower back in the in-sync set", func() error {
		isr, err := c.isrOf(ctx, leader, topic)
		if err != nil || len(isr[0]) != 2 {
			return fmt.Errorf("isr %v (%v)", isr, err)
		}
		return nil
	})
	t.Logf("back in the in-sync set after %v", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(fp.logs.String(), "starting it over there") {
		t.Fatal("the follower did not log starting its log over")
	}
	produceAll(t, ctx, acksAll, topic, 1, 10)
}
