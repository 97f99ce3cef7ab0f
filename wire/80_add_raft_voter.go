package wire

import (
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleAddRaftVoter adds a broker to the metadata group (KIP-853's API,
// which `strand serve --join` sends). The first listener is the new
// replica's Raft address.
func (c *conn) handleAddRaftVoter(s *slot, req *kmsg.AddRaftVoterRequest) {
	resp := req.ResponseKind().(*kmsg.AddRaftVoterResponse)
	if req.ClusterID == nil || len(req.Listeners) == 0 {
		resp.ErrorCode = kerr.InvalidRequest.Code
		msg := "AddRaftVoter needs a cluster id and the new replica's Raft listener"
		resp.ErrorMessage = &msg
		c.complete(s, resp)
		return
	}
	l := req.Listeners[0]
	addr := net.JoinHostPort(l.Host, strconv.Itoa(int(l.Port)))
	c.cb.AddRaftVoter(*req.ClusterID, req.VoterID, req.VoterDirectoryID, addr, func(code int16, msg string) {
		defer c.recoverPanic()
		resp.ErrorCode = code
		if msg != "" {
			resp.ErrorMessage = &msg
		}
		c.complete(s, resp)
	})
}
