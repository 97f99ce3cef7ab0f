package wire

import (
	"bytes"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleJoinGroup adds a member to a group's next generation. The answer
// comes when the rebalance completes, so it may take up to the rebalance
// timeout.
func (c *conn) handleJoinGroup(s *slot, req *kmsg.JoinGroupRequest, clientID []byte) {
	r := JoinGroupRequest{Group: req.Group, MemberID: req.MemberID, InstanceID: req.InstanceID,
		SessionTimeoutMs: req.SessionTimeoutMillis, RebalanceTimeoutMs: req.RebalanceTimeoutMillis,
		ProtocolType: req.ProtocolType, RequireKnownMemberID: req.Version >= 4}
	if req.Version == 0 { // no rebalance timeout before v1
		r.RebalanceTimeoutMs = -1
	}
	for _, p := range req.Protocols {
		// kmsg decodes byte fields as views of the read buffer, which gnet
		// reuses once OnTraffic returns; the coordinator keeps members'
		// metadata across requests and hands it to the leader.
		r.Protocols = append(r.Protocols, GroupProtocol{Name: p.Name, Metadata: bytes.Clone(p.Metadata)})
	}
	c.gb.JoinGroup(c.groupClient(s, clientID), r, func(res JoinGroupResult) {
		defer c.recoverPanic()
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode, resp.Generation, resp.LeaderID, resp.MemberID = ErrorCode(res.Err), res.Generation, res.LeaderID, res.MemberID
		if res.Err == nil {
			pt, pn := res.ProtocolType, res.Protocol
			resp.ProtocolType, resp.Protocol = &pt, &pn
		} else if req.Version < 7 { // not nullable before v7
			empty := ""
			resp.Protocol = &empty
		}
		for _, m := range res.Members {
			jm := kmsg.NewJoinGroupResponseMember()
			jm.MemberID, jm.InstanceID, jm.ProtocolMetadata = m.MemberID, m.InstanceID, m.Metadata
			resp.Members = append(resp.Members, jm)
		}
		c.complete(s, resp)
	})
}
