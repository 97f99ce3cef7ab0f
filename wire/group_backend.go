package wire

import "github.com/twmb/franz-go/pkg/kmsg"

// ClientInfo identifies the client behind a connection, for DescribeGroups.
type ClientInfo struct {
	ID   string // the request header's client id
	Host string // the peer's address
	// Draining: the request arrived after the server began draining, so
	// the drain does not wait for it (see drain.go); a backend may leave
	// it unanswered, to end with the connection.
	Draining bool
}

// GroupBackend serves the consumer-group APIs (FindCoordinator, JoinGroup,
// SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch,
// DescribeGroups, ListGroups, DeleteGroups, OffsetDelete) and producer ids.
// The wire layer checks the version, hands over the decoded request, and
// writes the response it gets back; the coordinator logic lives with the
// broker, which routes each group to the core that coordinates it. The
// threading contract is Backend's: called on the connection's loop, cb runs
// on that loop, exactly once. The response must come from
// req.ResponseKind() so its version matches. The request is the backend's
// to keep: its byte fields are copies, not views of the read buffer.
type GroupBackend interface {
	GroupRequest(client ClientInfo, req kmsg.Request, cb func(kmsg.Response))
	InitProducerID(req *kmsg.InitProducerIDRequest, cb func(*kmsg.InitProducerIDResponse))
}
