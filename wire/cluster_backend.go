package wire

// ClusterBackend is what a broker that is one of a cluster of brokers
// serves besides Backend: DescribeCluster, AddRaftVoter (how a new
// broker asks a running one to add it to the metadata group) and
// UnregisterBroker. A Backend
// that implements it gets those APIs advertised.
type ClusterBackend interface {
	// ClusterID is the cluster's id as clients see it.
	ClusterID() string
	// AddRaftVoter adds broker nodeID, whose metadata Raft replica listens
	// at raftAddr, to the metadata group of cluster clusterID. The
	// callback runs on this core with a Kafka error code and message.
	// dirID is the new replica's data dir id (KIP-853's directory id; zero
	// when the sender has none): a broker that lost its data dir rejoins
	// under its node id with a new one, and replaces its old replica.
	AddRaftVoter(clusterID string, nodeID int32, dirID [16]byte, raftAddr string, cb func(errCode int16, msg string))
	// UnregisterBroker removes broker nodeID, which must hold no
	// partition, from the cluster. The callback runs on this core.
	UnregisterBroker(nodeID int32, cb func(errCode int16, msg string))
	// ElectLeaders runs a preferred (or, with unclean, an unclean) leader
	// election for each partition of parts, or for every partition when
	// parts is nil; the callback runs on this core with one result per
	// partition named (for nil, one per partition an election was tried
	// for, ELECTION_NOT_NEEDED left out, as Kafka answers).
	ElectLeaders(unclean bool, parts []PartitionRef, cb func([]PartitionResult))
	// AlterPartitionReassignments starts (or, with nil Replicas, cancels)
	// each partition's reassignment; with keepRF, a target of another
	// replication factor is refused. The callback runs on this core with
	// one result per partition, in order.
	AlterPartitionReassignments(rs []Reassignment, keepRF bool, cb func([]PartitionResult))
	// ListPartitionReassignments lists the reassignments in progress among
	// parts (nil: all).
	ListPartitionReassignments(parts []PartitionRef) []ReassignmentStatus
}

// PartitionResult is one partition's outcome of a per-partition admin
// request (ElectLeaders, AlterPartitionReassignments).
type PartitionResult struct {
	PartitionRef
	ErrCode int16
	Msg     string
}

// Reassignment is one partition's target replicas; nil cancels.
type Reassignment struct {
	PartitionRef
	Replicas []int32
}

// ReassignmentStatus is a reassignment in progress: every replica held
// now, and those being added and removed.
type ReassignmentStatus struct {
	PartitionRef
	Replicas, Adding, Removing []int32
}
