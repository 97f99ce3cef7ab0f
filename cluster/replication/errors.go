package replication

import "github.com/twmb/franz-go/pkg/kerr"

// The errors this package answers with are Kafka's own kerr values, so the
// wiring maps them to protocol codes with KafkaCode and never spells a number.
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

// KafkaCode is the protocol error code of err (0 for nil); errors not from
// this package are UNKNOWN_SERVER_ERROR.
func KafkaCode(err error) int16 {
	if err == nil {
		return 0
	}
	if ke, ok := err.(*kerr.Error); ok {
		return ke.Code
	}
	return kerr.UnknownServerError.Code
}
