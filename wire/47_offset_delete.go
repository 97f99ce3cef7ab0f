package wire

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleOffsetDelete deletes a group's committed offsets (KIP-496). A
// group still subscribed to the topics is refused per partition; any other
// error is the whole request's.
func (c *conn) handleOffsetDelete(s *slot, req *kmsg.OffsetDeleteRequest, clientID []byte) {
	var tps []PartitionRef
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			tps = append(tps, PartitionRef{Topic: t.Topic, Partition: p.Partition})
		}
	}
	c.gb.OffsetDelete(c.groupClient(s, clientID), req.Group, tps, func(err error) {
		defer c.recoverPanic()
		resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
		if err != nil && !errors.Is(err, kerr.GroupSubscribedToTopic) {
			resp.ErrorCode = ErrorCode(err)
			c.complete(s, resp)
			return
		}
		code := ErrorCode(err)
		for _, t := range req.Topics {
			rt := kmsg.NewOffsetDeleteResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetDeleteResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		c.complete(s, resp)
	})
}
