package wire

import (
	"net"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// dispatchGroup runs the handler of a consumer-group key or
// InitProducerID. versionRange admits those keys only when the Backend is
// also a GroupBackend, so a nil gb here is a bug in dispatch: the
// connection closes rather than answer.
func (c *conn) dispatchGroup(s *slot, req kmsg.Request, clientID []byte) {
	if c.gb == nil {
		c.protocolError("no handler", "key", kmsg.NameForKey(req.Key()))
		return
	}
	switch q := req.(type) {
	case *kmsg.OffsetCommitRequest:
		c.handleOffsetCommit(s, q, clientID)
	case *kmsg.OffsetFetchRequest:
		c.handleOffsetFetch(s, q, clientID)
	case *kmsg.FindCoordinatorRequest:
		c.handleFindCoordinator(s, q)
	case *kmsg.JoinGroupRequest:
		c.handleJoinGroup(s, q, clientID)
	case *kmsg.HeartbeatRequest:
		c.handleHeartbeat(s, q, clientID)
	case *kmsg.LeaveGroupRequest:
		c.handleLeaveGroup(s, q, clientID)
	case *kmsg.SyncGroupRequest:
		c.handleSyncGroup(s, q, clientID)
	case *kmsg.DescribeGroupsRequest:
		c.handleDescribeGroups(s, q, clientID)
	case *kmsg.ListGroupsRequest:
		c.handleListGroups(s, q, clientID)
	case *kmsg.InitProducerIDRequest:
		c.handleInitProducerID(s, q)
	case *kmsg.DeleteGroupsRequest:
		c.handleDeleteGroups(s, q, clientID)
	case *kmsg.OffsetDeleteRequest:
		c.handleOffsetDelete(s, q, clientID)
	default:
		c.protocolError("no handler", "key", kmsg.NameForKey(req.Key()))
	}
}

// groupClient describes the client behind s for the GroupBackend: the
// header's client id, the peer host in Kafka's "/ip" form, and whether the
// request arrived while draining (so the drain does not wait for it).
func (c *conn) groupClient(s *slot, clientID []byte) ClientInfo {
	ci := ClientInfo{ID: string(clientID), Draining: !s.held}
	if addr := c.nc.RemoteAddr(); addr != nil {
		host := addr.String()
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		ci.Host = "/" + host
	}
	return ci
}
