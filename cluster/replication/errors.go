package replication

import "github.com/twmb/franz-go/pkg/kerr"

// The errors this package answers with are Kafka's own kerr values, so the
// protocol edge's one mapping (wire.ErrorCode) passes their codes through and
// nothing here spells a number.
var (
	ErrNotLeader              error = kerr.NotLeaderForPartition // NOT_LEADER_OR_FOLLOWER
	ErrNotEnoughReplicas      error = kerr.NotEnoughReplicas
	ErrNotEnoughReplicasAfter error = kerr.NotEnoughReplicasAfterAppend
	ErrOutOfOrderSequence     error = kerr.OutOfOrderSequenceNumber
	ErrRequestTimedOut        error = kerr.RequestTimedOut
	ErrFencedLeaderEpoch      error = kerr.FencedLeaderEpoch
	ErrUnknownLeaderEpoch     error = kerr.UnknownLeaderEpoch
	ErrInvalidUpdateVersion   error = kerr.InvalidUpdateVersion
	ErrIneligibleReplica      error = kerr.IneligibleReplica
	ErrStaleBrokerEpoch       error = kerr.StaleBrokerEpoch
	ErrOffsetOutOfRange       error = kerr.OffsetOutOfRange
	ErrLeaderNotAvailable     error = kerr.LeaderNotAvailable
	ErrPreferredNotAvailable  error = kerr.PreferredLeaderNotAvailable
	ErrElectionNotNeeded      error = kerr.ElectionNotNeeded
	ErrDuplicateRegistration  error = kerr.DuplicateBrokerRegistration
	ErrOffsetNotAvailable     error = kerr.OffsetNotAvailable
)
