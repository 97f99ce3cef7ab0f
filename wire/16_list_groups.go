package wire

import "github.com/twmb/franz-go/pkg/kmsg"

// handleListGroups lists every group, filtered by state from v4 (KIP-518).
// Every group is a classic one (GroupType, v5, is not advertised).
func (c *conn) handleListGroups(s *slot, req *kmsg.ListGroupsRequest, clientID []byte) {
	c.gb.ListGroups(c.groupClient(s, clientID), func(ls []GroupListing) {
		defer c.recoverPanic()
		resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
		states := make(map[string]bool, len(req.StatesFilter))
		for _, st := range req.StatesFilter {
			states[st] = true
		}
		for _, l := range ls {
			if len(states) > 0 && !states[l.State] {
				continue
			}
			rg := kmsg.NewListGroupsResponseGroup()
			rg.Group, rg.ProtocolType, rg.GroupState, rg.GroupType = l.Group, l.ProtocolType, l.State, "classic"
			resp.Groups = append(resp.Groups, rg)
		}
		c.complete(s, resp)
	})
}
