package wire

import "github.com/twmb/franz-go/pkg/kmsg"

// handleDescribeCluster lists the live brokers and the controller (the
// broker leading the metadata Raft group), from the core's metadata copy.
func (c *conn) handleDescribeCluster(s *slot, req *kmsg.DescribeClusterRequest) {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.ClusterID = c.cb.ClusterID()
	resp.ControllerID = c.be.ControllerID()
	resp.ClusterAuthorizedOperations = -2147483648 // not asked for, or unknown
	for _, b := range c.be.Brokers() {
		rb := kmsg.NewDescribeClusterResponseBroker()
		rb.NodeID, rb.Host, rb.Port, rb.Rack = b.NodeID, b.Host, b.Port, b.Rack
		resp.Brokers = append(resp.Brokers, rb)
	}
	c.complete(s, resp)
}
