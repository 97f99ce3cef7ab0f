package wire

import "github.com/twmb/franz-go/pkg/kmsg"

// handleDescribeGroups describes each named group; one that does not exist
// is answered in state Dead, as Kafka does.
func (c *conn) handleDescribeGroups(s *slot, req *kmsg.DescribeGroupsRequest, clientID []byte) {
	c.gb.DescribeGroups(c.groupClient(s, clientID), req.Groups, func(ds []GroupDescription) {
		defer c.recoverPanic()
		resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
		for i, name := range req.Groups {
			d := answerAt(ds, i)
			rg := kmsg.NewDescribeGroupsResponseGroup()
			rg.Group, rg.ErrorCode = name, ErrorCode(d.Err)
			rg.State, rg.ProtocolType, rg.Protocol = d.State, d.ProtocolType, d.Protocol
			for _, m := range d.Members {
				rm := kmsg.NewDescribeGroupsResponseGroupMember()
				rm.MemberID, rm.InstanceID, rm.ClientID, rm.ClientHost = m.MemberID, m.InstanceID, m.ClientID, m.ClientHost
				rm.ProtocolMetadata, rm.MemberAssignment = m.Metadata, m.Assignment
				rg.Members = append(rg.Members, rm)
			}
			resp.Groups = append(resp.Groups, rg)
		}
		c.complete(s, resp)
	})
}
