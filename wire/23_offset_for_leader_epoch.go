package wire

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleOffsetForLeaderEpoch answers where each named epoch ends in the
// partition's log (KIP-101, KIP-279), from the broker's leader-epoch
// cache: a follower truncates there before it fetches, and a consumer
// (KIP-320) checks that the offset it holds was not truncated away.
//
// Per partition, in Kafka's order (Partition.lastOffsetForLeaderEpoch):
//
//	unknown topic or partition                UNKNOWN_TOPIC_OR_PARTITION
//	CurrentLeaderEpoch (v2+, -1 = absent)
//	  older than the partition's              FENCED_LEADER_EPOCH
//	  newer than the partition's              UNKNOWN_LEADER_EPOCH
//	otherwise                                 the cache's answer: the largest
//	                                          epoch <= LeaderEpoch and where
//	                                          it ends; -1/-1 when there is none
//
// ReplicaID (v3+) is not checked: Kafka requires CLUSTER_ACTION for a
// replica id other than -1, and Strand has no authorization.
func (c *conn) handleOffsetForLeaderEpoch(s *slot, req *kmsg.OffsetForLeaderEpochRequest) {
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	resp.Topics = make([]kmsg.OffsetForLeaderEpochResponseTopic, len(req.Topics))
	fan := c.answerAfter(s, resp)
	for i := range req.Topics {
		t := &req.Topics[i]
		rt := &resp.Topics[i]
		*rt = kmsg.NewOffsetForLeaderEpochResponseTopic()
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.OffsetForLeaderEpochResponseTopicPartition, len(t.Partitions))
		ti, exists := c.be.Topic(t.Topic)
		for j := range t.Partitions {
			p := &t.Partitions[j]
			rp := &rt.Partitions[j]
			*rp = kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			rp.Partition, rp.LeaderEpoch, rp.EndOffset = p.Partition, -1, -1
			if !exists || p.Partition < 0 || int(p.Partition) >= len(ti.Partitions) {
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			}
			current := p.CurrentLeaderEpoch
			if req.Version < 2 {
				current = -1
			}
			if code := checkLeaderEpoch(current, ti.Partitions[p.Partition].LeaderEpoch); code != 0 {
				rp.ErrorCode = code
				continue
			}
			fan.add()
			c.be.EndOffsetForEpoch(PartitionRef{Topic: t.Topic, Partition: p.Partition}, p.LeaderEpoch, func(r EpochEndOffset) {
				defer c.recoverPanic()
				rp.ErrorCode = r.ErrCode
				if r.ErrCode == 0 {
					rp.LeaderEpoch, rp.EndOffset = r.LeaderEpoch, r.EndOffset
				}
				fan.done()
			})
		}
	}
	fan.done()
}

// checkLeaderEpoch is KIP-320's fencing of a request that names the leader
// epoch its sender believes current (-1: it names none, nothing to check).
func checkLeaderEpoch(requestEpoch, partitionEpoch int32) int16 {
	switch {
	case requestEpoch < 0:
		return 0
	case requestEpoch < partitionEpoch:
		return kerr.FencedLeaderEpoch.Code
	case requestEpoch > partitionEpoch:
		return kerr.UnknownLeaderEpoch.Code
	}
	return 0
}
