package cluster

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/strand-io/strand/cluster/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func electLeaders(t *testing.T, cl *kgo.Client, typ int8, topics map[string][]int32) *kmsg.ElectLeadersResponse {
	t.Helper()
	req := kmsg.NewPtrElectLeadersRequest()
	req.ElectionType, req.TimeoutMillis = typ, 30000
	if topics != nil {
		req.Topics = []kmsg.ElectLeadersRequestTopic{}
	}
	for name, ps := range topics {
		rt := kmsg.NewElectLeadersRequestTopic()
		rt.Topic, rt.Partitions = name, ps
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func electionCodes(resp *kmsg.ElectLeadersResponse) map[string]int16 {
	out := map[string]int16{}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			out[rt.Topic+"-"+string(rune('0'+rp.Partition))] = rp.ErrorCode
		}
	}
	return out
}

// rejoin has the metadata take broker id back into t-p's in-sync set, as
// the partition's leader does once the follower caught up.
func rejoin(t *testing.T, n *Node, topic string, p int32, id metadata.BrokerID) {
	t.Helper()
	cur, _ := n.raft.View().Partition(topic, p)
	if err := n.propose(&metadata.ChangePartition{Topic: topic, Partition: p, LeaderEpoch: cur.LeaderEpoch,
		PartitionEpoch: cur.PartitionEpoch, Leader: cur.Leader, ISR: append(slices.Clone(cur.ISR), id)}); err != nil {
		t.Fatal(err)
	}
}

// TestElectLeaders: ElectLeaders (API 43) gives leadership back to the
// preferred replica only once it is live and in sync, answers
// ELECTION_NOT_NEEDED and PREFERRED_LEADER_NOT_AVAILABLE as Kafka does,
// leaves ELECTION_NOT_NEEDED out of an all-partitions answer, and an
// unclean election brings back a partition whose in-sync replica is gone.
func TestElectLeaders(t *testing.T) {
	n, cl := startWithPeers(t, 2, Config{LeaderRebalanceDelay: -1})
	if code := createTopic(t, cl, "e", -1, -1, [][]int32{{1, 0}, {0, 1}}); code != 0 {
		t.Fatalf("create: %v", kerr.ErrorForCode(code))
	}
	want := func(resp *kmsg.ElectLeadersResponse, w map[string]int16) {
		t.Helper()
		if got := electionCodes(resp); !maps.Equal(got, w) {
			t.Fatalf("election codes %v, want %v", got, w)
		}
	}
	want(electLeaders(t, cl, 0, map[string][]int32{"e": {0, 1}, "nope": {0}}),
		map[string]int16{"e-0": kerr.ElectionNotNeeded.Code, "e-1": kerr.ElectionNotNeeded.Code, "nope-0": kerr.UnknownTopicOrPartition.Code})

	if err := n.propose(&metadata.FenceBroker{ID: 1}); err != nil {
		t.Fatal(err)
	}
	want(electLeaders(t, cl, 0, map[string][]int32{"e": {0}}), map[string]int16{"e-0": kerr.PreferredLeaderNotAvailable.Code})
	if err := n.propose(&metadata.UnfenceBroker{ID: 1}); err != nil {
		t.Fatal(err)
	}
	// Live again but not yet back in sync.
	want(electLeaders(t, cl, 0, map[string][]int32{"e": {0}}), map[string]int16{"e-0": kerr.PreferredLeaderNotAvailable.Code})
	rejoin(t, n, "e", 0, 1)
	// All partitions: e-0 is elected, e-1 (not needed) left out.
	want(electLeaders(t, cl, 0, nil), map[string]int16{"e-0": 0})
	p := describe(t, cl, "e").Partitions[0]
	if p.Leader != 1 || p.LeaderEpoch != 2 {
		t.Fatalf("e-0 after preferred election: leader %d epoch %d, want 1 epoch 2", p.Leader, p.LeaderEpoch)
	}

	// Unclean: e-1's only in-sync replica (0 after 1 is dropped) is not
	// fenceable here, so use broker 2 alone.
	if code := createTopic(t, cl, "u", -1, -1, [][]int32{{2, 1}}); code != 0 {
		t.Fatalf("create u: %v", kerr.ErrorForCode(code))
	}
	cur, _ := n.raft.View().Partition("u", 0)
	if err := n.propose(&metadata.ChangePartition{Topic: "u", LeaderEpoch: cur.LeaderEpoch, PartitionEpoch: cur.PartitionEpoch,
		Leader: 2, ISR: []metadata.BrokerID{2}}); err != nil {
		t.Fatal(err)
	}
	if err := n.propose(&metadata.FenceBroker{ID: 2}); err != nil {
		t.Fatal(err)
	}
	want(electLeaders(t, cl, 1, map[string][]int32{"u": {0}, "e": {0}}),
		map[string]int16{"u-0": 0, "e-0": kerr.ElectionNotNeeded.Code})
	if p := describe(t, cl, "u").Partitions[0]; p.Leader != 1 || !slices.Equal(p.ISR, []int32{1}) {
		t.Fatalf("u-0 after unclean election: leader %d isr %v", p.Leader, p.ISR)
	}
	req := kmsg.NewPtrElectLeadersRequest()
	req.ElectionType = 7
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil || resp.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("election type 7: %v %v", err, resp)
	}
}

// TestAutoLeaderRebalance: the controller's check gives a returned broker
// back the partitions it is the preferred replica of, only once it has
// been unfenced for the delay and is in their in-sync sets.
func TestAutoLeaderRebalance(t *testing.T) {
	n, cl := startWithPeers(t, 1, Config{LeaderRebalanceDelay: -1})
	if code := createTopic(t, cl, "a", -1, -1, [][]int32{{1, 0}}); code != 0 {
		t.Fatalf("create: %v", kerr.ErrorForCode(code))
	}
	if err := n.propose(&metadata.FenceBroker{ID: 1}); err != nil {
		t.Fatal(err)
	}
	r := &leaderRebalance{n: n, delay: time.Minute, unfencedSince: map[metadata.BrokerID]time.Time{}}
	t0 := time.Now()
	r.round(n.raft.View(), t0)
	if err := n.propose(&metadata.UnfenceBroker{ID: 1}); err != nil {
		t.Fatal(err)
	}
	r.round(n.raft.View(), t0) // broker 1 seen unfenced from t0
	rejoin(t, n, "a", 0, 1)
	leader := func() metadata.BrokerID {
		p, _ := n.raft.View().Partition("a", 0)
		return p.Leader
	}
	r.round(n.raft.View(), t0.Add(59*time.Second))
	if r.running.Load() || leader() != 0 {
		t.Fatalf("elected before the delay: leader %d", leader())
	}
	r.round(n.raft.View(), t0.Add(time.Minute))
	waitFor(t, "preferred leader back", func() bool { return leader() == 1 })
	waitFor(t, "rebalance done", func() bool { return !r.running.Load() })
	r.round(n.raft.View(), t0.Add(2*time.Minute))
	if r.running.Load() {
		t.Fatal("a balanced partition elected again")
	}
}
