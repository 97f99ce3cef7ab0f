package wire

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleDeleteRecords moves each named partition's log start (Kafka's
// DeleteRecords): offset -1 means the high watermark, an offset above it is
// OFFSET_OUT_OF_RANGE, and the answer's LowWatermark is the log start
// afterwards. The backend makes the move durable before it answers.
func (c *conn) handleDeleteRecords(s *slot, req *kmsg.DeleteRecordsRequest) {
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	resp.Topics = make([]kmsg.DeleteRecordsResponseTopic, len(req.Topics))
	fan := c.answerAfter(s, resp)
	for i := range req.Topics {
		t := &req.Topics[i]
		rt := &resp.Topics[i]
		*rt = kmsg.NewDeleteRecordsResponseTopic()
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.DeleteRecordsResponseTopicPartition, len(t.Partitions))
		ti, exists := c.be.Topic(t.Topic)
		for j := range t.Partitions {
			p := &t.Partitions[j]
			rp := &rt.Partitions[j]
			*rp = kmsg.NewDeleteRecordsResponseTopicPartition()
			rp.Partition, rp.LowWatermark = p.Partition, -1
			switch {
			case !exists || p.Partition < 0 || int(p.Partition) >= len(ti.Partitions):
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			case ti.Internal:
				// The group coordinator replays __consumer_offsets from its
				// log start; Kafka refuses this too.
				rp.ErrorCode = kerr.InvalidTopicException.Code
				continue
			case p.Offset < -1:
				rp.ErrorCode = kerr.OffsetOutOfRange.Code
				continue
			}
			fan.add()
			c.be.DeleteRecords(PartitionRef{Topic: t.Topic, Partition: p.Partition}, p.Offset, func(low int64, code int16) {
				defer c.recoverPanic()
				rp.ErrorCode = code
				if code == 0 {
					rp.LowWatermark = low
				}
				fan.done()
			})
		}
	}
	fan.done()
}
