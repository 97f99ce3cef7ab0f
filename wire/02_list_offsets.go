package wire

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Special ListOffsets timestamps and the version that introduced each.
const (
	listLatest        int64 = -1
	listEarliest      int64 = -2
	listMaxTimestamp  int64 = -3 // v7, KIP-734
	listEarliestLocal int64 = -4 // v8, KIP-405: no tiers here, so = earliest
	listLatestTiered  int64 = -5 // v9, KIP-1005: nothing is tiered, so none
)

// listSpecVersion is the first ListOffsets version that may carry ts, or
// -1 if no advertised version can.
func listSpecVersion(ts int64) int16 {
	switch ts {
	case listLatest, listEarliest:
		return 0
	case listMaxTimestamp:
		return 7
	case listEarliestLocal:
		return 8
	case listLatestTiered:
		return 9
	}
	return -1
}

// handleListOffsets resolves -1 (latest), -2 (earliest), -3 (max
// timestamp), -4 (earliest local), -5 (latest tiered) and timestamps per
// partition. A special timestamp sent at a version older than the one that
// introduced it is UNSUPPORTED_VERSION, as in Kafka. v0 answers in OldStyleOffsets (a one-element list, as Kafka
// does for MaxNumOffsets >= 1).
func (c *conn) handleListOffsets(s *slot, req *kmsg.ListOffsetsRequest) {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	resp.Topics = make([]kmsg.ListOffsetsResponseTopic, len(req.Topics))
	fan := c.answerAfter(s, resp)
	for i := range req.Topics {
		t := &req.Topics[i]
		rt := &resp.Topics[i]
		*rt = kmsg.NewListOffsetsResponseTopic()
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.ListOffsetsResponseTopicPartition, len(t.Partitions))
		// The partition count, not the topic's description: a
		// description of a 1,000-partition topic costs about 2,000
		// allocations, and the leader epoch comes with each answer.
		count, exists := c.be.PartitionCount(t.Topic)
		for j := range t.Partitions {
			p := &t.Partitions[j]
			rp := &rt.Partitions[j]
			*rp = kmsg.NewListOffsetsResponseTopicPartition()
			rp.Partition = p.Partition
			switch {
			case !exists || p.Partition < 0 || p.Partition >= count:
				rp.ErrorCode = errUnknownTopicOrPartition
				continue
			case p.Timestamp < 0 && (listSpecVersion(p.Timestamp) < 0 || req.Version < listSpecVersion(p.Timestamp)):
				rp.ErrorCode = kerr.UnsupportedVersion.Code
				continue
			case p.Timestamp == listLatestTiered:
				rp.Offset, rp.Timestamp = -1, -1
				continue
			}
			v0 := req.Version == 0 && p.MaxNumOffsets > 0
			ref := PartitionRef{Topic: t.Topic, Partition: p.Partition}
			fan.add()
			cb := func(r ListOffsetResult) {
				defer c.recoverPanic()
				rp.ErrorCode = r.ErrCode
				if r.ErrCode == errNone {
					rp.Offset, rp.Timestamp, rp.LeaderEpoch = r.Offset, r.TimestampMs, r.LeaderEpoch
					if v0 && r.Offset >= 0 {
						rp.OldStyleOffsets = []int64{r.Offset}
					}
				}
				fan.done()
			}
			switch p.Timestamp {
			case listMaxTimestamp:
				c.be.MaxTimestamp(ref, cb)
			case listEarliestLocal:
				c.be.ListOffset(ref, listEarliest, cb)
			default:
				c.be.ListOffset(ref, p.Timestamp, cb)
			}
		}
	}
	fan.done()
}
