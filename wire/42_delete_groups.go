package wire

import "github.com/twmb/franz-go/pkg/kmsg"

// handleDeleteGroups deletes empty groups and their committed offsets.
func (c *conn) handleDeleteGroups(s *slot, req *kmsg.DeleteGroupsRequest, clientID []byte) {
	c.gb.DeleteGroups(c.groupClient(s, clientID), req.Groups, func(errs []error) {
		defer c.recoverPanic()
		resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
		for i, g := range req.Groups {
			rg := kmsg.NewDeleteGroupsResponseGroup()
			rg.Group, rg.ErrorCode = g, ErrorCode(answerAt(errs, i))
			resp.Groups = append(resp.Groups, rg)
		}
		c.complete(s, resp)
	})
}
