package cluster

import (
	"context"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func alterReassignments(t *testing.T, cl *kgo.Client, allowRF bool, topic string, targets map[int32][]int32) map[int32]int16 {
	t.Helper()
	req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	req.TimeoutMillis, req.AllowReplicationFactorChange = 30000, allowRF
	rt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
	rt.Topic = topic
	for p, r := range targets {
		rp := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
		rp.Partition, rp.Replicas = p, r
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int16{}
	for _, rp := range resp.Topics[0].Partitions {
		out[rp.Partition] = rp.ErrorCode
	}
	return out
}

func listReassignments(t *testing.T, cl *kgo.Client) []kmsg.ListPartitionReassignmentsResponseTopicPartition {
	t.Helper()
	resp, err := kmsg.NewPtrListPartitionReassignmentsRequest().RequestWith(context.Background(), cl)
	if err != nil || resp.ErrorCode != 0 {
		t.Fatalf("list reassignments: %v %+v", err, resp)
	}
	var out []kmsg.ListPartitionReassignmentsResponseTopicPartition
	for _, rt := range resp.Topics {
		out = append(out, rt.Partitions...)
	}
	return out
}

// TestPartitionReassignment: AlterPartitionReassignments (API 45) moves a
// replica through the metadata: the union is held, listed by
// ListPartitionReassignments (46) and reported by Metadata, until the new
// replica is in sync, which completes it; a cancel without one in
// progress, an unknown broker and a replication factor change not allowed
// are refused as in Kafka.
func TestPartitionReassignment(t *testing.T) {
	n, cl := startWithPeers(t, 2, Config{LeaderRebalanceDelay: -1})
	if code := createTopic(t, cl, "m", -1, -1, [][]int32{{0, 1}, {1, 0}}); code != 0 {
		t.Fatalf("create: %v", kerr.ErrorForCode(code))
	}
	got := alterReassignments(t, cl, true, "m", map[int32][]int32{0: {0, 2}, 1: nil, 5: {0}})
	want := map[int32]int16{0: 0, 1: kerr.NoReassignmentInProgress.Code, 5: kerr.UnknownTopicOrPartition.Code}
	for p, c := range want {
		if got[p] != c {
			t.Fatalf("alter reassignments: %v, want %v", got, want)
		}
	}
	ls := listReassignments(t, cl)
	if len(ls) != 1 || ls[0].Partition != 0 || !slices.Equal(ls[0].Replicas, []int32{0, 2, 1}) ||
		!slices.Equal(ls[0].AddingReplicas, []int32{2}) || !slices.Equal(ls[0].RemovingReplicas, []int32{1}) {
		t.Fatalf("reassignments %+v", ls)
	}
	reassigning := func(mt kmsg.MetadataResponseTopic) bool {
		p := mt.Partitions[0]
		return slices.Equal(p.Replicas, []int32{0, 2, 1}) && p.Leader == 0
	}
	if mt := describeWhen(t, cl, "m", reassigning); !reassigning(mt) {
		p := mt.Partitions[0]
		t.Fatalf("m-0 while reassigning: replicas %v leader %d", p.Replicas, p.Leader)
	}
	if got := alterReassignments(t, cl, true, "m", map[int32][]int32{1: {1, 7}}); got[1] != kerr.InvalidReplicaAssignment.Code {
		t.Fatalf("unknown broker: %v", kerr.ErrorForCode(got[1]))
	}
	if got := alterReassignments(t, cl, false, "m", map[int32][]int32{1: {1, 0, 2}}); got[1] != kerr.InvalidReplicationFactor.Code {
		t.Fatalf("replication factor change not allowed: %v", kerr.ErrorForCode(got[1]))
	}
	rejoin(t, n, "m", 0, 2)
	if ls := listReassignments(t, cl); len(ls) != 0 {
		t.Fatalf("reassignments after the target is in sync: %+v", ls)
	}
	done := func(mt kmsg.MetadataResponseTopic) bool {
		p := mt.Partitions[0]
		return slices.Equal(p.Replicas, []int32{0, 2}) && slices.Equal(p.ISR, []int32{0, 2})
	}
	if mt := describeWhen(t, cl, "m", done); !done(mt) {
		p := mt.Partitions[0]
		t.Fatalf("m-0 after the reassignment: replicas %v isr %v", p.Replicas, p.ISR)
	}
	// Cancel reverts.
	if got := alterReassignments(t, cl, true, "m", map[int32][]int32{1: {2, 0}}); got[1] != 0 {
		t.Fatalf("reassign m-1: %v", kerr.ErrorForCode(got[1]))
	}
	if got := alterReassignments(t, cl, true, "m", map[int32][]int32{1: nil}); got[1] != 0 {
		t.Fatalf("cancel m-1: %v", kerr.ErrorForCode(got[1]))
	}
	// Replicas less the one being added, in the reassignment's order (as
	// Kafka reverts).
	reverted := func(mt kmsg.MetadataResponseTopic) bool {
		return slices.Equal(mt.Partitions[1].Replicas, []int32{0, 1})
	}
	if mt := describeWhen(t, cl, "m", reverted); !reverted(mt) {
		p := mt.Partitions[1]
		t.Fatalf("m-1 after cancel: replicas %v", p.Replicas)
	}
}
