package cluster

import (
	"reflect"
	"testing"

	"github.com/strand-io/strand/cluster/group"
	"github.com/strand-io/strand/shard"
)

func TestOffsetRecordsRoundTrip(t *testing.T) {
	meta := "m"
	recs := []group.Record{
		{Group: "g1", TP: group.TopicPartition{Topic: "t", Partition: 3}, Offset: &group.CommittedOffset{Offset: 42, LeaderEpoch: 7, Metadata: &meta, CommitTimestampMs: 99}},
		{Group: "g1", TP: group.TopicPartition{Topic: "u", Partition: 0}, Offset: &group.CommittedOffset{Offset: 0, LeaderEpoch: -1, CommitTimestampMs: 1}},
		{Group: "g2", TP: group.TopicPartition{Topic: "t", Partition: 1}}, // tombstone
		{Group: "g3", IsMeta: true, Meta: &group.GroupMeta{ProtocolType: "consumer", Generation: 7, Protocol: "range", Leader: "m1",
			StateTimestampMs: 123, Members: []group.MemberMeta{
				{MemberID: "m1", ClientID: "c1", ClientHost: "/127.0.0.1", RebalanceTimeoutMs: 60000, SessionTimeoutMs: 45000,
					Subscription: []byte("sub"), Assignment: []byte("asg")},
				{MemberID: "m2", InstanceID: &meta, ClientID: "c2", ClientHost: "/h", RebalanceTimeoutMs: 1, SessionTimeoutMs: 2,
					Subscription: []byte{}, Assignment: []byte{}},
			}}},
		{Group: "g4", IsMeta: true}, // group tombstone
	}
	b1, b2 := encodeBatch(recs[:2], 5), encodeBatch(recs[2:], 6)
	for _, b := range [][]byte{b1, b2} {
		if _, err := shard.ValidateBatch(b, 0); err != nil {
			t.Fatalf("encoded batch is not a valid v2 batch: %v", err)
		}
	}
	var got []group.Record
	if err := decodeBatches(append(b1, b2...), func(r group.Record) { got = append(got, r) }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, recs) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, recs)
	}
	// Damage is reported, not silently skipped.
	bad := append([]byte(nil), b1...)
	bad = bad[:len(bad)-3]
	bad[11] -= 3 // keep batchLength consistent with the cut
	if err := decodeBatches(bad, func(group.Record) {}); err == nil {
		t.Fatal("truncated records decoded without error")
	}
}
