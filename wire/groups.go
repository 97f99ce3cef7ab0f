package wire

import (
	"bytes"
	"net"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleGroup passes a consumer-group request to the GroupBackend and
// writes whatever response it returns. The wire layer owns only framing,
// version checks and ordering here; coordinator semantics live in the
// broker.
func (c *conn) handleGroup(s *slot, req kmsg.Request, clientID []byte) {
	if c.gb == nil { // unreachable: group keys are admitted only with gb
		c.protocolError("no handler", "key", kmsg.NameForKey(req.Key()))
		return
	}
	detachGroupRequest(req)
	ci := c.clientInfo(clientID)
	ci.Draining = !s.held
	c.gb.GroupRequest(ci, req, func(resp kmsg.Response) {
		defer c.recoverPanic()
		c.completeChecked(s, req, resp)
	})
}

// detachGroupRequest copies the byte fields of a group request, which kmsg
// decodes as slices of the connection's read buffer; gnet reuses that
// buffer once OnTraffic returns. The coordinator runs on another core and
// keeps members' protocol metadata and assignments across requests, so
// without the copy it reads, and hands to other members, whatever bytes
// arrive on this connection next. (Strings are copied by kmsg already.)
func detachGroupRequest(req kmsg.Request) {
	switch r := req.(type) {
	case *kmsg.JoinGroupRequest:
		for i := range r.Protocols {
			r.Protocols[i].Metadata = bytes.Clone(r.Protocols[i].Metadata)
		}
	case *kmsg.SyncGroupRequest:
		for i := range r.GroupAssignment {
			r.GroupAssignment[i].MemberAssignment = bytes.Clone(r.GroupAssignment[i].MemberAssignment)
		}
	}
}

// handleInitProducerID hands out producer ids (idempotent producers).
func (c *conn) handleInitProducerID(s *slot, req *kmsg.InitProducerIDRequest) {
	if c.gb == nil {
		c.protocolError("no handler", "key", kmsg.NameForKey(req.Key()))
		return
	}
	c.gb.InitProducerID(req, func(resp *kmsg.InitProducerIDResponse) {
		defer c.recoverPanic()
		c.completeChecked(s, req, resp)
	})
}

// completeChecked completes s with a response built by the broker, which
// must match the request's key and version (it comes from ResponseKind);
// anything else would be encoded in a layout the client cannot read, so the
// connection is closed instead.
func (c *conn) completeChecked(s *slot, req kmsg.Request, resp kmsg.Response) {
	if resp == nil || resp.Key() != req.Key() || resp.GetVersion() != req.GetVersion() {
		c.log.Error("wire: backend returned a mismatched response; closing connection",
			"key", kmsg.NameForKey(req.Key()), "version", req.GetVersion())
		c.abort()
		return
	}
	c.complete(s, resp)
}

// clientInfo describes the client for DescribeGroups: the header's client
// id and the peer host in Kafka's "/ip" form.
func (c *conn) clientInfo(clientID []byte) ClientInfo {
	ci := ClientInfo{ID: string(clientID)}
	if addr := c.nc.RemoteAddr(); addr != nil {
		host := addr.String()
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		ci.Host = "/" + host
	}
	return ci
}
