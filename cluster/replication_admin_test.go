package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/strand-io/strand/cluster/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// startWithPeers starts a broker (id 0) and registers brokers 1..peers as
// unfenced members of its metadata, with addresses nothing listens on: a
// cluster as the metadata sees it, enough to place, elect and describe
// replicated partitions without more processes. The lease is long, so
// the liveness probes never fence the absent peers on their own.
func startWithPeers(t *testing.T, peers int, cfg Config) (*Node, *kgo.Client) {
	t.Helper()
	cfg.DataDir, cfg.Listen = t.TempDir(), "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.BrokerLease = time.Hour
	n, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	for id := 1; id <= peers; id++ {
		addPeer(t, n, metadata.BrokerID(id))
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return n, cl
}

func addPeer(t *testing.T, n *Node, id metadata.BrokerID) {
	t.Helper()
	if err := n.propose(&metadata.RegisterBroker{ID: id, KafkaAddr: fmt.Sprintf("127.0.0.1:%d", 1+id), RaftAddr: fmt.Sprintf("127.0.0.1:%d", 100+id),
		Cores: 2, NowMs: time.Now().UnixMilli(), LogDirID: uint64(id) + 1}); err != nil {
		t.Fatal(err)
	}
	if err := n.propose(&metadata.UnfenceBroker{ID: id}); err != nil {
		t.Fatal(err)
	}
}

func createTopic(t *testing.T, cl *kgo.Client, name string, parts int32, rf int16, assign [][]int32) int16 {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, parts, rf
	for i, a := range assign {
		ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		ra.Partition, ra.Replicas = int32(i), a
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].ErrorCode
}

// describeWhen is describe until ok holds (at most 10 s): Metadata
// answers from the published snapshot, which follows a change applied by
// the metadata group a moment later (the controller core reconciles it).
func describeWhen(t *testing.T, cl *kgo.Client, name string, ok func(kmsg.MetadataResponseTopic) bool) kmsg.MetadataResponseTopic {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mt := describe(t, cl, name)
		if ok(mt) || time.Now().After(deadline) {
			return mt
		}
		time.Sleep(10 * time.Millisecond) // polling another goroutine's publication
	}
}

func describe(t *testing.T, cl *kgo.Client, name string) kmsg.MetadataResponseTopic {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(name)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	mt := resp.Topics[0]
	slices.SortFunc(mt.Partitions, func(a, b kmsg.MetadataResponseTopicPartition) int { return int(a.Partition - b.Partition) })
	return mt
}

// TestCreateReplicatedTopics: CreateTopics with a replication factor, with
// explicit assignments, with -1 (the broker default) and by auto-creation
// places that many replicas on distinct brokers, spreads the preferred
// leaders evenly, and Metadata reports every replica, the in-sync set and
// the leader from the metadata; more replicas than live brokers is
// INVALID_REPLICATION_FACTOR, as in Kafka. CreatePartitions gives new
// partitions the topic's replication factor.
func TestCreateReplicatedTopics(t *testing.T) {
	// One offsets partition (on broker 0, created before the peers exist)
	// keeps the preferred-leader counts even enough that each topic here
	// gets its leaders spread evenly by Place's fewest-first rule.
	n, cl := startWithPeers(t, 2, Config{DefaultReplicationFactor: 3, AutoCreateTopics: true, OffsetsPartitions: 1})
	checkSpread := func(name string, parts, rf int) {
		t.Helper()
		mt := describe(t, cl, name)
		if mt.ErrorCode != 0 || len(mt.Partitions) != parts {
			t.Fatalf("%s: error %d, %d partitions", name, mt.ErrorCode, len(mt.Partitions))
		}
		leaders := map[int32]int{}
		for _, p := range mt.Partitions {
			if len(p.Replicas) != rf || !slices.Equal(p.ISR, p.Replicas) || p.Leader != p.Replicas[0] {
				t.Fatalf("%s-%d: replicas %v isr %v leader %d", name, p.Partition, p.Replicas, p.ISR, p.Leader)
			}
			if d := slices.Clone(p.Replicas); len(slices.Compact(slices.Sorted(slices.Values(d)))) != rf {
				t.Fatalf("%s-%d: replicas %v not distinct", name, p.Partition, p.Replicas)
			}
			leaders[p.Leader]++
		}
		for b, k := range leaders {
			if k != parts/3 {
				t.Fatalf("%s: preferred leaders %v not spread evenly (broker %d leads %d)", name, leaders, b, k)
			}
		}
	}
	if code := createTopic(t, cl, "rf3", 6, 3, nil); code != 0 {
		t.Fatalf("create rf3: %v", kerr.ErrorForCode(code))
	}
	checkSpread("rf3", 6, 3)
	if code := createTopic(t, cl, "rf-default", 3, -1, nil); code != 0 {
		t.Fatalf("create rf-default: %v", kerr.ErrorForCode(code))
	}
	checkSpread("rf-default", 3, 3)
	if code := createTopic(t, cl, "rf4", 1, 4, nil); code != kerr.InvalidReplicationFactor.Code {
		t.Fatalf("create rf4 on 3 brokers: %v, want INVALID_REPLICATION_FACTOR", kerr.ErrorForCode(code))
	}
	if code := createTopic(t, cl, "explicit", -1, -1, [][]int32{{2, 0}, {0, 1}}); code != 0 {
		t.Fatalf("create explicit: %v", kerr.ErrorForCode(code))
	}
	mt := describe(t, cl, "explicit")
	if !slices.Equal(mt.Partitions[0].Replicas, []int32{2, 0}) || !slices.Equal(mt.Partitions[1].Replicas, []int32{0, 1}) ||
		mt.Partitions[0].Leader != 2 {
		t.Fatalf("explicit: %+v", mt.Partitions)
	}
	if code := createTopic(t, cl, "explicit-bad", -1, -1, [][]int32{{1, 1}}); code != kerr.InvalidReplicaAssignment.Code {
		t.Fatalf("duplicate replica: %v", kerr.ErrorForCode(code))
	}

	// Auto-creation takes --default-replication-factor.
	auto := kmsg.NewPtrMetadataRequest()
	auto.AllowAutoTopicCreation = true
	at := kmsg.NewMetadataRequestTopic()
	at.Topic = kmsg.StringPtr("auto")
	auto.Topics = append(auto.Topics, at)
	if _, err := auto.RequestWith(context.Background(), cl); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "auto-created topic", func() bool {
		mt := describe(t, cl, "auto")
		return mt.ErrorCode == 0 && len(mt.Partitions) == 1
	})
	if p := describe(t, cl, "auto").Partitions[0]; len(p.Replicas) != 3 {
		t.Fatalf("auto-created replicas %v, want 3", p.Replicas)
	}

	// New partitions get the topic's replication factor.
	adm := kmsg.NewPtrCreatePartitionsRequest()
	adm.TimeoutMillis = 30000
	ct := kmsg.NewCreatePartitionsRequestTopic()
	ct.Topic, ct.Count = "rf3", 9
	adm.Topics = append(adm.Topics, ct)
	resp, err := adm.RequestWith(context.Background(), cl)
	if err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create partitions: %v %+v", err, resp)
	}
	checkSpread("rf3", 9, 3)

	// RF 1 stays as it was: one replica.
	if code := createTopic(t, cl, "rf1", 3, 1, nil); code != 0 {
		t.Fatalf("create rf1: %v", kerr.ErrorForCode(code))
	}
	for _, p := range describe(t, cl, "rf1").Partitions {
		if len(p.Replicas) != 1 {
			t.Fatalf("rf1-%d: replicas %v", p.Partition, p.Replicas)
		}
	}
	_ = n
}

// waitFor polls cond until it holds, failing after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLeaderEpochReported: Metadata and ListOffsets report the metadata's
// leader epoch, which grows as leadership moves (here: a peer fenced and
// unfenced), so a client holding an older epoch learns of the change.
func TestLeaderEpochReported(t *testing.T) {
	n, cl := startWithPeers(t, 2, Config{})
	if code := createTopic(t, cl, "e", -1, -1, [][]int32{{0, 1}, {1, 0}}); code != 0 {
		t.Fatalf("create: %v", kerr.ErrorForCode(code))
	}
	epochs := func() []int32 {
		var out []int32
		for _, p := range describe(t, cl, "e").Partitions {
			out = append(out, p.LeaderEpoch)
		}
		return out
	}
	if got := epochs(); !slices.Equal(got, []int32{0, 0}) {
		t.Fatalf("epochs %v at creation", got)
	}
	if err := n.propose(&metadata.FenceBroker{ID: 1}); err != nil {
		t.Fatal(err)
	}
	// e-1 moved from broker 1 to broker 0: epoch 1; e-0 kept its leader.
	waitFor(t, "epoch after the fence", func() bool { return slices.Equal(epochs(), []int32{0, 1}) })
	p := describe(t, cl, "e").Partitions[1]
	if p.Leader != 0 || !slices.Equal(p.ISR, []int32{0}) {
		t.Fatalf("e-1 after fencing broker 1: leader %d isr %v", p.Leader, p.ISR)
	}
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "e"
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Partition, lp.Timestamp, lp.CurrentLeaderEpoch = 1, -1, -1
	lt.Partitions = append(lt.Partitions, lp)
	req.Topics = append(req.Topics, lt)
	lresp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if rp := lresp.Topics[0].Partitions[0]; rp.ErrorCode != 0 || rp.LeaderEpoch != 1 {
		t.Fatalf("list offsets: %v epoch %d, want epoch 1", kerr.ErrorForCode(rp.ErrorCode), rp.LeaderEpoch)
	}
}
