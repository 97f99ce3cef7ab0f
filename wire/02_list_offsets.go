package wire

import "github.com/twmb/franz-go/pkg/kmsg"

// Special ListOffsets timestamps understood at the advertised versions.
const (
	listLatest   int64 = -1
	listEarliest int64 = -2
)

// handleListOffsets resolves -1 (latest), -2 (earliest) and timestamps per
// partition. v0 answers in OldStyleOffsets (a one-element list, as Kafka
// does for MaxNumOffsets >= 1).
func (c *conn) handleListOffsets(s *slot, req *kmsg.ListOffsetsRequest) {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	resp.Topics = make([]kmsg.ListOffsetsResponseTopic, len(req.Topics))
	pending := 1
	done := func() {
		if pending--; pending == 0 {
			c.complete(s, resp)
		}
	}
	for i := range req.Topics {
		t := &req.Topics[i]
		rt := &resp.Topics[i]
		*rt = kmsg.NewListOffsetsResponseTopic()
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.ListOffsetsResponseTopicPartition, len(t.Partitions))
		ti, exists := c.be.Topic(t.Topic)
		for j := range t.Partitions {
			p := &t.Partitions[j]
			rp := &rt.Partitions[j]
			*rp = kmsg.NewListOffsetsResponseTopicPartition()
			rp.Partition = p.Partition
			switch {
			case !exists || p.Partition < 0 || int(p.Partition) >= len(ti.Partitions):
				rp.ErrorCode = errUnknownTopicOrPartition
				continue
			case p.Timestamp < listEarliest:
				// -3 and below need versions we do not advertise.
				rp.ErrorCode = errUnsupportedVersion
				continue
			}
			epoch := ti.Partitions[p.Partition].LeaderEpoch
			v0 := req.Version == 0 && p.MaxNumOffsets > 0
			pending++
			c.be.ListOffset(PartitionRef{Topic: t.Topic, Partition: p.Partition}, p.Timestamp, func(r ListOffsetResult) {
				defer c.recoverPanic()
				rp.ErrorCode = r.ErrCode
				if r.ErrCode == errNone {
					rp.Offset, rp.Timestamp, rp.LeaderEpoch = r.Offset, r.TimestampMs, epoch
					if v0 && r.Offset >= 0 {
						rp.OldStyleOffsets = []int64{r.Offset}
					}
				}
				done()
			})
		}
	}
	done()
}
