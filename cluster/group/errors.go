package group

import "github.com/twmb/franz-go/pkg/kerr"

// Kafka error codes the coordinator answers with, by their kerr names: the
// group protocol is Kafka's, and its answers are spelled once, in kerr.
var (
	errNone                    int16
	ErrCoordinatorNotAvailable = kerr.CoordinatorNotAvailable.Code
	ErrIllegalGeneration       = kerr.IllegalGeneration.Code
	ErrInconsistentProtocol    = kerr.InconsistentGroupProtocol.Code
	ErrUnknownMember           = kerr.UnknownMemberID.Code
	ErrInvalidSessionTimeout   = kerr.InvalidSessionTimeout.Code
	ErrRebalanceInProgress     = kerr.RebalanceInProgress.Code
	ErrGroupIDNotFound         = kerr.GroupIDNotFound.Code
	ErrNonEmptyGroup           = kerr.NonEmptyGroup.Code
	ErrGroupMaxSize            = kerr.GroupMaxSizeReached.Code
	ErrMemberIDRequired        = kerr.MemberIDRequired.Code
	ErrFencedInstanceID        = kerr.FencedInstanceID.Code
	ErrInvalidGroupID          = kerr.InvalidGroupID.Code
	ErrUnknownTopicOrPartition = kerr.UnknownTopicOrPartition.Code
	ErrGroupSubscribedToTopic  = kerr.GroupSubscribedToTopic.Code
)
