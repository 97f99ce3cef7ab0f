package wire

import (
	"bytes"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleSyncGroup hands out the leader's assignments. Followers wait for
// the leader's SyncGroup.
func (c *conn) handleSyncGroup(s *slot, req *kmsg.SyncGroupRequest, clientID []byte) {
	r := SyncGroupRequest{Group: req.Group, MemberID: req.MemberID, InstanceID: req.InstanceID, Generation: req.Generation}
	for _, a := range req.GroupAssignment {
		// A copy: the coordinator keeps assignments past this frame (see
		// handleJoinGroup).
		r.Assignments = append(r.Assignments, MemberAssignment{MemberID: a.MemberID, Assignment: bytes.Clone(a.MemberAssignment)})
	}
	c.gb.SyncGroup(c.groupClient(s, clientID), r, func(res SyncGroupResult) {
		defer c.recoverPanic()
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode, resp.MemberAssignment = ErrorCode(res.Err), res.Assignment
		if res.Err == nil {
			pt, pn := res.ProtocolType, res.Protocol
			resp.ProtocolType, resp.Protocol = &pt, &pn
		}
		c.complete(s, resp)
	})
}
