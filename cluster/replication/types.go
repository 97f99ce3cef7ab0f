package replication

import "slices"

// Offset is a record offset within one partition: the same space as
// shard.Offset (the wiring converts at the edge; this package stays free of
// the storage packages so it builds and simulates without them).
type Offset int64

// Epoch is a partition leader epoch (Kafka's LeaderEpoch), the same space as
// shard.Epoch.
type Epoch int32

// NoEpoch is Kafka's "undefined epoch" (-1) in OffsetForLeaderEpoch answers.
const NoEpoch Epoch = -1

// PartitionEpoch is Kafka's partition epoch (KIP-497): it grows with every
// change to a partition's leader or in-sync set, and an AlterPartition
// request names the one it was computed from.
type PartitionEpoch int32

// BrokerID is a broker's node id.
type BrokerID int32

// NoLeader is the leader id of a partition that has none (Kafka's -1).
const NoLeader BrokerID = -1

// BrokerEpoch identifies one incarnation of a broker process (KRaft's broker
// epoch): the controller hands out a new one at each registration, so a
// restarted broker can never act on leadership granted to its previous life.
type BrokerEpoch int64

// PartitionID names a partition in this package (topic index and partition
// number collapse into one integer; the wiring keeps the topic name).
type PartitionID int32

// Millis is a point in time in milliseconds, supplied by the caller: the
// state machines never read a clock.
type Millis int64

// Batch is one record batch as replication sees it: where it sits, which
// leader epoch wrote it, and the idempotent-producer fields that the new
// leader needs to keep deduplicating retries. Values stands in for the
// encoded records (one value per record); the wiring carries raw batches.
type Batch struct {
	Base       Offset
	Epoch      Epoch
	ProducerID int64 // 0: not idempotent
	BaseSeq    int32
	Values     []uint64
}

// End is the offset after the batch's last record.
func (b Batch) End() Offset { return b.Base + Offset(len(b.Values)) }

// PartitionState is the controller's record of one partition, field for
// field what KRaft's PartitionRecord/PartitionChangeRecord carry (minus
// reassignment fields). LeaderBrokerEpoch is the incarnation the leadership
// was granted to.
type PartitionState struct {
	Partition         PartitionID
	Replicas          []BrokerID // preference order: Replicas[0] is the preferred leader
	ISR               []BrokerID
	Leader            BrokerID
	LeaderBrokerEpoch BrokerEpoch
	LeaderEpoch       Epoch
	PartitionEpoch    PartitionEpoch
}

// Clone returns a copy that shares no slices with s.
func (s PartitionState) Clone() PartitionState {
	s.Replicas = slices.Clone(s.Replicas)
	s.ISR = slices.Clone(s.ISR)
	return s
}

func contains(ids []BrokerID, id BrokerID) bool { return slices.Contains(ids, id) }

func without(ids []BrokerID, id BrokerID) []BrokerID {
	out := make([]BrokerID, 0, len(ids))
	for _, x := range ids {
		if x != id {
			out = append(out, x)
		}
	}
	return out
}

func sorted(ids []BrokerID) []BrokerID {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}
