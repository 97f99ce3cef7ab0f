package wire

import (
	"github.com/strand-io/strand/cluster/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleProduce validates each partition's batch and appends the good ones.
//
// Each batch is copied exactly once, here: the request aliases gnet's input
// buffer, which is reused after OnTraffic returns, and the copy becomes the
// backend's own (it rewrites the base offset in place). The response goes
// out when every Append has called back; with acks=0 there is no response,
// and a failure closes the connection instead (Kafka's way of telling an
// acks=0 producer to refresh its metadata).
func (c *conn) handleProduce(s *slot, req *kmsg.ProduceRequest) {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	acks := req.Acks
	badAcks := acks != 0 && acks != 1 && acks != -1
	failed := false
	fan := &fanIn{pending: 1, finish: func() {
		if acks == 0 {
			c.completeSilent(s, failed)
			return
		}
		c.complete(s, resp)
	}}
	// One closure per request, not per partition: the Append callbacks
	// capture it, so a per-partition one was a heap allocation each.
	fail := func(rp *kmsg.ProduceResponseTopicPartition, code int16, msg string) {
		failed = true
		rp.ErrorCode = code
		if msg != "" {
			rp.ErrorMessage = kmsg.StringPtr(msg)
		}
	}
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	autoCreate := c.be.AutoCreateTopics()
	for i := range req.Topics {
		t := &req.Topics[i]
		rt := &resp.Topics[i]
		*rt = kmsg.NewProduceResponseTopic()
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(t.Partitions))
		nparts, exists := c.be.PartitionCount(t.Topic)
		if !exists && autoCreate && !badAcks && metadata.TopicNameProblem(t.Topic) == "" {
			// The client learns the partitions from Metadata and retries;
			// UNKNOWN_TOPIC_OR_PARTITION is retriable.
			c.be.CreateTopic(NewTopic{Name: t.Topic, Partitions: -1, ReplicationFactor: -1, Implicit: true}, false, func(int16, string) {})
		}
		for j := range t.Partitions {
			p := &t.Partitions[j]
			rp := &rt.Partitions[j]
			*rp = kmsg.NewProduceResponseTopicPartition()
			rp.Partition, rp.BaseOffset = p.Partition, -1
			switch {
			case badAcks:
				fail(rp, errInvalidRequiredAcks, "acks must be 0, 1 or -1")
				continue
			case !exists || p.Partition < 0 || p.Partition >= nparts:
				fail(rp, errUnknownTopicOrPartition, "")
				continue
			}
			if code, msg := validateProduceBatch(p.Records, c.srv.cfg.MaxRequestBytes); code != errNone {
				if code == kerr.MessageTooLarge.Code {
					logDecompressLimit(c.srv.log, t.Topic, p.Partition, c.srv.cfg.MaxRequestBytes, msg)
				}
				fail(rp, code, msg)
				continue
			}
			fan.add()
			c.be.Append(PartitionRef{Topic: t.Topic, Partition: p.Partition}, p.Records, acks, func(r AppendResult) {
				defer c.recoverPanic()
				if r.ErrCode != errNone {
					fail(rp, r.ErrCode, r.ErrMsg)
				} else {
					rp.BaseOffset, rp.LogAppendTime, rp.LogStartOffset = r.BaseOffset, r.LogAppendTimeMs, r.LogStartOffset
				}
				fan.done()
			})
		}
	}
	fan.done()
}
