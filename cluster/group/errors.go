package group

// Kafka error codes the coordinator answers with.
const (
	errNone                    int16 = 0
	ErrCoordinatorNotAvailable int16 = 15
	ErrIllegalGeneration       int16 = 22
	ErrInconsistentProtocol    int16 = 23
	ErrUnknownMember           int16 = 25
	ErrInvalidSessionTimeout   int16 = 26
	ErrRebalanceInProgress     int16 = 27
	ErrGroupIDNotFound         int16 = 69
	ErrNonEmptyGroup           int16 = 68
	ErrGroupMaxSize            int16 = 81
	ErrMemberIDRequired        int16 = 79
	ErrFencedInstanceID        int16 = 82
	ErrInvalidGroupID          int16 = 24
	ErrUnknownTopicOrPartition int16 = 3
)
