package wire

import "github.com/twmb/franz-go/pkg/kmsg"

// handleUnregisterBroker removes a broker that holds no partition from
// the cluster (its registration and its metadata Raft replica).
func (c *conn) handleUnregisterBroker(s *slot, req *kmsg.UnregisterBrokerRequest) {
	c.cb.UnregisterBroker(req.BrokerID, func(code int16, msg string) {
		defer c.recoverPanic()
		resp := req.ResponseKind().(*kmsg.UnregisterBrokerResponse)
		resp.ErrorCode = code
		if msg != "" {
			resp.ErrorMessage = &msg
		}
		c.complete(s, resp)
	})
}
