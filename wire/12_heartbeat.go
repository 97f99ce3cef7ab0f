package wire

import "github.com/twmb/franz-go/pkg/kmsg"

// handleHeartbeat keeps a member's session alive and tells it when a
// rebalance has begun (REBALANCE_IN_PROGRESS).
func (c *conn) handleHeartbeat(s *slot, req *kmsg.HeartbeatRequest, clientID []byte) {
	r := HeartbeatRequest{Group: req.Group, MemberID: req.MemberID, InstanceID: req.InstanceID, Generation: req.Generation}
	c.gb.Heartbeat(c.groupClient(s, clientID), r, func(err error) {
		defer c.recoverPanic()
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = ErrorCode(err)
		c.complete(s, resp)
	})
}
