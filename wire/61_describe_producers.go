package wire

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleDescribeProducers lists each named partition's idempotent
// producers. Strand has no transactions, so CoordinatorEpoch and
// CurrentTxnStartOffset are always -1 (Kafka's values for a producer
// outside any transaction).
func (c *conn) handleDescribeProducers(s *slot, req *kmsg.DescribeProducersRequest) {
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	resp.Topics = make([]kmsg.DescribeProducersResponseTopic, len(req.Topics))
	fan := c.answerAfter(s, resp)
	for i := range req.Topics {
		t := &req.Topics[i]
		rt := &resp.Topics[i]
		*rt = kmsg.NewDescribeProducersResponseTopic()
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.DescribeProducersResponseTopicPartition, len(t.Partitions))
		nparts, exists := c.be.PartitionCount(t.Topic)
		for j, part := range t.Partitions {
			rp := &rt.Partitions[j]
			*rp = kmsg.NewDescribeProducersResponseTopicPartition()
			rp.Partition = part
			if !exists || part < 0 || part >= nparts {
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			}
			fan.add()
			c.be.Producers(PartitionRef{Topic: t.Topic, Partition: part}, func(ps []ProducerInfo, code int16) {
				defer c.recoverPanic()
				rp.ErrorCode = code
				for _, p := range ps {
					ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
					ap.ProducerID, ap.ProducerEpoch, ap.LastSequence = p.ProducerID, int32(p.Epoch), p.LastSequence
					ap.LastTimestamp, ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = p.LastTimestamp, -1, -1
					rp.ActiveProducers = append(rp.ActiveProducers, ap)
				}
				fan.done()
			})
		}
	}
	fan.done()
}
