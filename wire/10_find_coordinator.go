package wire

import "github.com/twmb/franz-go/pkg/kmsg"

// handleFindCoordinator answers one key (v0-v3) or a batch of them (v4+,
// KIP-699).
func (c *conn) handleFindCoordinator(s *slot, req *kmsg.FindCoordinatorRequest) {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	if req.Version < 4 {
		b, err := c.gb.FindCoordinator(req.CoordinatorKey)
		resp.ErrorCode = ErrorCode(err)
		if err != nil {
			b = BrokerInfo{NodeID: -1, Port: -1}
		}
		resp.NodeID, resp.Host, resp.Port = b.NodeID, b.Host, b.Port
		c.complete(s, resp)
		return
	}
	for _, k := range req.CoordinatorKeys {
		b, err := c.gb.FindCoordinator(k)
		rc := kmsg.NewFindCoordinatorResponseCoordinator()
		rc.Key, rc.ErrorCode = k, ErrorCode(err)
		if err != nil {
			b = BrokerInfo{NodeID: -1, Port: -1}
		}
		rc.NodeID, rc.Host, rc.Port = b.NodeID, b.Host, b.Port
		resp.Coordinators = append(resp.Coordinators, rc)
	}
	c.complete(s, resp)
}
