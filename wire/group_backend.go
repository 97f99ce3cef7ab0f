package wire

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
// DescribeGroups, ListGroups, DeleteGroups, OffsetDelete) and producer ids
// (InitProducerID) with typed values, as Backend serves Produce and Fetch.
// The wire layer owns the protocol: versions, kmsg translation, which
// error lands in which field; the coordinator logic lives with the broker,
// which routes each group to the core that coordinates it.
//
// Errors are Go errors (nil, or kerr values for the group protocol's
// answers); the handlers turn them into codes with ErrorCode. The
// threading contract is Backend's: called on the connection's loop, cb
// runs on that loop, exactly once, unless the backend leaves a request
// that arrived while draining unanswered (ClientInfo.Draining). Requests
// are the backend's to keep: their byte fields are copies, not views of
// the read buffer.
type GroupBackend interface {
	// FindCoordinator names the broker coordinating the group or
	// transactional id key.
	FindCoordinator(key string) (BrokerInfo, error)
	// JoinGroup adds a member to the group's next generation; the answer
	// may wait for the rebalance to complete.
	JoinGroup(c ClientInfo, r JoinGroupRequest, cb func(JoinGroupResult))
	// SyncGroup hands the member its assignment once the leader sent them.
	SyncGroup(c ClientInfo, r SyncGroupRequest, cb func(SyncGroupResult))
	// Heartbeat keeps the member's session alive.
	Heartbeat(c ClientInfo, r HeartbeatRequest, cb func(error))
	// LeaveGroup removes members; the callback gets an error for the whole
	// request and one per member (nil when the whole request failed).
	LeaveGroup(c ClientInfo, group string, members []LeaveMember, cb func(err error, perMember []error))
	// OffsetCommit commits offsets; the callback gets one error per entry
	// of r.Offsets, in order.
	OffsetCommit(c ClientInfo, r OffsetCommitRequest, cb func([]error))
	// OffsetFetch answers each group in order.
	OffsetFetch(c ClientInfo, groups []OffsetFetchGroup, cb func([]OffsetFetchResult))
	// DescribeGroups describes each group in order; a group that does not
	// exist is described in state Dead.
	DescribeGroups(c ClientInfo, groups []string, cb func([]GroupDescription))
	// ListGroups lists every group the broker coordinates, in no
	// particular order.
	ListGroups(c ClientInfo, cb func([]GroupListing))
	// DeleteGroups deletes empty groups; one error per group, in order.
	DeleteGroups(c ClientInfo, groups []string, cb func([]error))
	// OffsetDelete deletes committed offsets of a group that is not
	// subscribed to their topics (kerr.GroupSubscribedToTopic if it is).
	OffsetDelete(c ClientInfo, group string, partitions []PartitionRef, cb func(error))
	// InitProducerID hands out a producer id, or bumps the epoch of the
	// one the request names.
	InitProducerID(r InitProducerIDRequest, cb func(InitProducerIDResult))
}

// GroupProtocol is one assignment protocol a joining member supports.
type GroupProtocol struct {
	Name     string
	Metadata []byte
}

// JoinGroupRequest is a JoinGroup, whatever its version.
type JoinGroupRequest struct {
	Group              string
	MemberID           string
	InstanceID         *string // static membership (group.instance.id)
	SessionTimeoutMs   int32
	RebalanceTimeoutMs int32 // -1 (v0): the session timeout
	ProtocolType       string
	Protocols          []GroupProtocol
	// RequireKnownMemberID is true from v4: a first join gets a member id
	// with MEMBER_ID_REQUIRED and must come back with it.
	RequireKnownMemberID bool
}

// JoinGroupMember is one member as the leader's JoinGroup answer lists it.
type JoinGroupMember struct {
	MemberID   string
	InstanceID *string
	Metadata   []byte
}

// JoinGroupResult completes JoinGroup.
type JoinGroupResult struct {
	Err          error
	Generation   int32
	ProtocolType string
	Protocol     string
	LeaderID     string
	MemberID     string
	Members      []JoinGroupMember // only for the leader
}

// SyncGroupRequest is a SyncGroup; the leader's carries the assignments.
type SyncGroupRequest struct {
	Group       string
	MemberID    string
	InstanceID  *string
	Generation  int32
	Assignments []MemberAssignment
}

// MemberAssignment is the leader's assignment for one member.
type MemberAssignment struct {
	MemberID   string
	Assignment []byte
}

// SyncGroupResult completes SyncGroup.
type SyncGroupResult struct {
	Err          error
	ProtocolType string
	Protocol     string
	Assignment   []byte
}

// HeartbeatRequest is a Heartbeat.
type HeartbeatRequest struct {
	Group      string
	MemberID   string
	InstanceID *string
	Generation int32
}

// LeaveMember is one member leaving a group.
type LeaveMember struct {
	MemberID   string
	InstanceID *string
}

// OffsetCommitRequest is an OffsetCommit. Generation -1 and an empty
// MemberID commit outside any generation (v0, or a simple consumer).
type OffsetCommitRequest struct {
	Group      string
	MemberID   string
	InstanceID *string
	Generation int32
	Offsets    []CommitOffset
}

// CommitOffset is one partition's committed position.
type CommitOffset struct {
	PartitionRef
	Offset      int64
	LeaderEpoch int32 // -1: unknown (before v6)
	Metadata    *string
}

// OffsetFetchGroup asks for one group's committed offsets: those of
// Partitions, or every committed one when Partitions is nil.
type OffsetFetchGroup struct {
	Group      string
	Partitions []PartitionRef
}

// OffsetFetchResult answers one OffsetFetchGroup: the asked partitions in
// order (offset -1 where nothing is committed), or every committed one
// sorted by topic and partition.
type OffsetFetchResult struct {
	Err     error
	Offsets []CommitOffset
}

// GroupDescription is a group as DescribeGroups reports it.
type GroupDescription struct {
	Group        string
	Err          error
	State        string
	ProtocolType string
	Protocol     string
	Members      []GroupMemberDescription
}

// GroupMemberDescription is one member in a GroupDescription.
type GroupMemberDescription struct {
	MemberID   string
	InstanceID *string
	ClientID   string
	ClientHost string
	Metadata   []byte
	Assignment []byte
}

// GroupListing is one group as ListGroups reports it.
type GroupListing struct {
	Group        string
	ProtocolType string
	State        string
}

// InitProducerIDRequest asks for a producer id. ProducerID and
// ProducerEpoch are -1 unless the producer asks to bump its epoch
// (KIP-360, v3+).
type InitProducerIDRequest struct {
	TransactionalID *string
	ProducerID      int64
	ProducerEpoch   int16
}

// InitProducerIDResult completes InitProducerID.
type InitProducerIDResult struct {
	Err           error
	ProducerID    int64
	ProducerEpoch int16
}

// answerAt is a GroupBackend answer's entry i, or the zero value (no
// error, nothing found) when the answer is shorter than the request, so
// a short answer cannot index out of range in a handler's callback.
func answerAt[T any](answers []T, i int) T {
	if i < len(answers) {
		return answers[i]
	}
	var zero T
	return zero
}
