package wire

import "github.com/twmb/franz-go/pkg/kmsg"

// handleDeleteTopics deletes topics named (v0-v5) or named or identified by
// topic ID (v6+).
func (c *conn) handleDeleteTopics(s *slot, req *kmsg.DeleteTopicsRequest) {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	targets := req.Topics
	for _, name := range req.TopicNames { // v0-v5 form
		t := kmsg.NewDeleteTopicsRequestTopic()
		t.Topic = kmsg.StringPtr(name)
		targets = append(targets, t)
	}
	resp.Topics = make([]kmsg.DeleteTopicsResponseTopic, len(targets))
	fan := c.answerAfter(s, resp)
	for i, t := range targets {
		rt := &resp.Topics[i]
		*rt = kmsg.NewDeleteTopicsResponseTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		name, ok := "", false
		if t.Topic != nil {
			name, ok = *t.Topic, true
		} else if t.TopicID != [16]byte{} {
			for _, ti := range c.be.Topics() {
				if ti.ID == t.TopicID {
					name, ok = ti.Name, true
					rt.Topic = kmsg.StringPtr(ti.Name)
					break
				}
			}
			if !ok {
				rt.ErrorCode = errUnknownTopicID
				continue
			}
		}
		if !ok {
			rt.ErrorCode = errInvalidRequest
			continue
		}
		fan.add()
		c.be.DeleteTopic(name, func(code int16, msg string) {
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
