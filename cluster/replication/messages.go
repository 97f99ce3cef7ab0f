package replication

// The messages replicas, the controller and clients exchange. Each mirrors a
// Kafka request or response (named in its comment) and carries only the
// fields the protocol decides on; the wiring fills the rest of the kmsg type.

// FetchRequest is a follower's Fetch (ReplicaID set). DurableOffset is
// Strand's addition: the end of the follower's fsynced prefix, which the
// leader's high watermark waits for (Kafka waits only for the fetch offset).
// The wiring carries it in a tagged field.
type FetchRequest struct {
	Partition          PartitionID
	Replica            BrokerID
	ReplicaBrokerEpoch BrokerEpoch // KIP-903: the follower's incarnation
	LogDirID           uint64      // KIP-858: the follower's data dir (0: not known)
	CurrentLeaderEpoch Epoch       // KIP-320 fencing
	FetchOffset        Offset
	DurableOffset      Offset
	// Seq numbers the incarnation's fetches, so the leader can tell a
	// late one from the latest (on brokers: the request's place on its
	// connection).
	Seq uint64
}

// FetchResponse answers a FetchRequest. FetchOffset echoes the request so a
// follower can drop duplicated or reordered answers.
type FetchResponse struct {
	Partition     PartitionID
	Leader        BrokerID
	LeaderEpoch   Epoch
	FetchOffset   Offset
	Err           error
	HighWatermark Offset
	Batches       []Batch
}

// EpochRequest is OffsetForLeaderEpoch from a follower: "where does your log
// end for the largest epoch at or below LeaderEpoch?"
type EpochRequest struct {
	Partition          PartitionID
	Replica            BrokerID
	CurrentLeaderEpoch Epoch
	LeaderEpoch        Epoch
}

// EpochResponse answers an EpochRequest: Epoch is the largest epoch at or
// below the requested one in the leader's log (NoEpoch if none), EndOffset
// the offset where that epoch ends there.
type EpochResponse struct {
	Partition          PartitionID
	CurrentLeaderEpoch Epoch // echoed
	Requested          Epoch // echoed
	Err                error
	Epoch              Epoch
	EndOffset          Offset
}

// ISRMember names an in-sync replica with the incarnation whose fetches put
// it there (KIP-903), so the controller refuses to count a broker whose
// restart may have changed its log.
//
// LogDirID is the data dir the member's counted fetches came from (0:
// not known): the metadata refuses a joining member whose broker has
// since come back with another (cluster/metadata.ChangePartition).
type ISRMember struct {
	Broker      BrokerID
	BrokerEpoch BrokerEpoch
	LogDirID    uint64
}

// AlterPartitionRequest is the leader's proposal to change the in-sync set,
// valid only against the partition epoch it was computed from (KIP-497).
type AlterPartitionRequest struct {
	Partition         PartitionID
	Leader            BrokerID
	LeaderBrokerEpoch BrokerEpoch
	LeaderEpoch       Epoch
	PartitionEpoch    PartitionEpoch
	NewISR            []ISRMember
	// Seq numbers a leader's proposals within its epoch (0: unnumbered).
	// The controller refuses one not newer than the last it decided, as
	// the metadata log, which applies proposals once and in order, does
	// on brokers; so a refusal of a leader's newest proposal is final
	// for all of its earlier ones too.
	Seq uint64
}

// AlterPartitionResponse is the controller's verdict; on success State is
// the partition as it now stands.
type AlterPartitionResponse struct {
	Partition   PartitionID
	LeaderEpoch Epoch  // echoed
	Seq         uint64 // echoed
	Err         error
	State       PartitionState
}

// PartitionUpdate is the controller's record of a partition as a broker
// learns it from the metadata log (KRaft PartitionChangeRecord). Brokers
// apply only updates with a larger partition epoch than they hold, so
// delayed or repeated ones are harmless.
type PartitionUpdate struct {
	State PartitionState
}

// ProduceRequest is one idempotent batch for one partition. Acks is 1 or -1
// (all); Client is echoed so the host can route the answer.
type ProduceRequest struct {
	Partition  PartitionID
	Client     int
	ProducerID int64
	BaseSeq    int32
	Values     []uint64
	Acks       int
}

// ProduceResponse answers a ProduceRequest; Base is the batch's offset
// (the original one for a retried duplicate). LeaderEpoch is the epoch the
// answering replica was in (KIP-951's CurrentLeader), so a client can tell
// a stale leader's refusal from the current one's.
type ProduceResponse struct {
	Partition   PartitionID
	LeaderEpoch Epoch
	Client      int
	ProducerID  int64
	BaseSeq     int32
	Base        Offset
	Err         error
}

// RegisterRequest is BrokerRegistration: a process start. Incarnation is
// unique per process start and grows with each (KRaft's incarnation id is
// a random UUID; an ordered one lets the controller refuse a late
// registration from a process that has since been replaced).
type RegisterRequest struct {
	Broker      BrokerID
	Incarnation uint64
	// LogDirID identifies the broker's log directory (KIP-858): a wiped or
	// replaced directory has a new one, and the replicas in it are empty.
	LogDirID uint64
}

// RegisterResponse grants the incarnation its broker epoch and carries the
// partitions the broker hosts, as a broker catching up the metadata log
// would see them before it acts.
type RegisterResponse struct {
	Broker      BrokerID
	Incarnation uint64
	Err         error
	BrokerEpoch BrokerEpoch
	States      []PartitionState
}

// Heartbeat is BrokerHeartbeat: it keeps a broker's incarnation unfenced.
type Heartbeat struct {
	Broker      BrokerID
	BrokerEpoch BrokerEpoch
}
