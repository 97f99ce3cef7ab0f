package wire

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleCreatePartitions grows topics to the requested total count.
// Explicit assignments are refused: placement belongs to the broker.
func (c *conn) handleCreatePartitions(s *slot, req *kmsg.CreatePartitionsRequest) {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	counts := make(map[string]int, len(req.Topics))
	for _, t := range req.Topics {
		counts[t.Topic]++
	}
	resp.Topics = make([]kmsg.CreatePartitionsResponseTopic, len(req.Topics))
	fan := c.answerAfter(s, resp)
	for i, t := range req.Topics {
		rt := &resp.Topics[i]
		*rt = kmsg.NewCreatePartitionsResponseTopic()
		rt.Topic = t.Topic
		fail := func(code int16, msg string) { rt.ErrorCode, rt.ErrorMessage = code, kmsg.StringPtr(msg) }
		ti, exists := c.be.Topic(t.Topic)
		switch {
		case counts[t.Topic] > 1:
			fail(errInvalidRequest, "topic named more than once in the request")
			continue
		case !exists:
			fail(errUnknownTopicOrPartition, "unknown topic")
			continue
		case len(t.Assignment) > 0:
			fail(errInvalidReplicaAssignment, "manual replica assignment is not supported")
			continue
		case int(t.Count) <= len(ti.Partitions):
			fail(errInvalidPartitions, "topic already has "+strconv.Itoa(len(ti.Partitions))+" partitions")
			continue
		}
		fan.add()
		c.be.CreatePartitions(t.Topic, t.Count, req.ValidateOnly, func(code int16, msg string) {
			defer c.recoverPanic()
			rt.ErrorCode = code
			if msg != "" {
				rt.ErrorMessage = kmsg.StringPtr(msg)
			}
			fan.done()
		})
	}
	fan.done()
}
