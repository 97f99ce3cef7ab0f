package wire

import "github.com/twmb/franz-go/pkg/kmsg"

// handleLeaveGroup removes one member (v0-v2) or a batch of them (v3+,
// KIP-345, which also answers per member).
func (c *conn) handleLeaveGroup(s *slot, req *kmsg.LeaveGroupRequest, clientID []byte) {
	var ms []LeaveMember
	if req.Version < 3 {
		ms = []LeaveMember{{MemberID: req.MemberID}}
	} else {
		for _, m := range req.Members {
			ms = append(ms, LeaveMember{MemberID: m.MemberID, InstanceID: m.InstanceID})
		}
	}
	c.gb.LeaveGroup(c.groupClient(s, clientID), req.Group, ms, func(err error, perMember []error) {
		defer c.recoverPanic()
		resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = ErrorCode(err)
		if req.Version < 3 {
			if err == nil && len(perMember) == 1 {
				resp.ErrorCode = ErrorCode(perMember[0])
			}
		} else {
			for i, m := range req.Members {
				rm := kmsg.NewLeaveGroupResponseMember()
				rm.MemberID, rm.InstanceID = m.MemberID, m.InstanceID
				rm.ErrorCode = ErrorCode(answerAt(perMember, i))
				resp.Members = append(resp.Members, rm)
			}
		}
		c.complete(s, resp)
	})
}
