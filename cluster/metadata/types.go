package metadata

import (
	"encoding/hex"
	"slices"
	"sort"
)

// BrokerID names a broker. It is the Kafka broker id (node.id), so it is
// never negative; NoLeader marks a partition without a leader.
type BrokerID int32

// NoLeader is a partition's leader while it has none (Kafka's -1).
const NoLeader BrokerID = -1

// CoreID is a core on one broker, 0..Broker.Cores-1. It mirrors
// reactor.CoreID without importing the runtime.
type CoreID int32

// Epoch is a partition leader epoch; it grows by one on every leader change.
type Epoch int32

// TopicID is a topic's Kafka UUID. The zero value is Kafka's null id and is
// never a valid topic id.
type TopicID [16]byte

// IsZero reports whether id is the null id.
func (id TopicID) IsZero() bool { return id == TopicID{} }

func (id TopicID) String() string { return hex.EncodeToString(id[:]) }

// Broker is one registered broker. Values reachable from a View are shared
// and must not be modified.
type Broker struct {
	ID        BrokerID
	KafkaAddr string // host:port clients connect to
	RaftAddr  string // host:port of its metadata Raft replica
	Rack      string // "" = none
	Cores     int32  // reactor cores; a replica's core is below this
	// Fenced brokers lead nothing and are left out of placement. A broker
	// is fenced from registration until the controller unfences it.
	Fenced bool
	// LastHeartbeatMs is the time the controller stamped on the broker's
	// last heartbeat command (Unix ms, the proposer's clock, never this
	// state machine's).
	LastHeartbeatMs int64
	// LogDirID identifies the broker's data dir (made at its first start,
	// kept in its cluster.json). A registration with another one means the
	// data dir was replaced: its replicas are empty. 0 = not known (a
	// registration from before log dir ids).
	LogDirID uint64
}

// Topic is one topic. Values reachable from a View are shared and must not
// be modified: a change builds a new Topic.
type Topic struct {
	Name       string
	ID         TopicID
	Internal   bool
	Configs    map[string]string // overrides only; validated by the proposer
	Partitions []Partition       // indexed by partition number
}

// Partition is one partition's replica set and leadership.
type Partition struct {
	Replicas []BrokerID // preferred order; Replicas[0] is the preferred leader
	Cores    []CoreID   // Cores[i] is Replicas[i]'s core on that broker
	// ISR is the in-sync replicas, a subset of Replicas. It is empty only
	// while no replica is known to hold every acknowledged record (the
	// last in-sync one lost its data dir): then Leader is NoLeader until
	// an unclean election.
	ISR    []BrokerID
	Leader BrokerID // NoLeader, or a member of ISR on an unfenced broker
	// LeaderEpoch grows by one whenever Leader changes (to NoLeader too).
	LeaderEpoch Epoch
	// PartitionEpoch grows by one on every change to the partition, so a
	// proposer's compare-and-set on it catches any concurrent change.
	PartitionEpoch int32
	// Adding and Removing describe a reassignment in progress, as in
	// Kafka: Replicas is the target followed by the replicas being
	// removed, Adding the target's replicas that were not replicas
	// before. Both nil when none is in progress (see reassign.go).
	Adding, Removing []BrokerID
}

// Reassigning reports whether a reassignment of p is in progress.
func (p *Partition) Reassigning() bool { return len(p.Adding) > 0 || len(p.Removing) > 0 }

// Target is the replica set p is being reassigned to (Replicas less
// Removing), or Replicas when no reassignment is in progress. The slice
// may be shared: do not modify it.
func (p *Partition) Target() []BrokerID {
	if len(p.Removing) == 0 {
		return p.Replicas
	}
	return p.Replicas[:len(p.Replicas)-len(p.Removing)]
}

// CoreOf returns the core broker b's replica lives on.
func (p *Partition) CoreOf(b BrokerID) (CoreID, bool) {
	i := slices.Index(p.Replicas, b)
	if i < 0 {
		return 0, false
	}
	return p.Cores[i], true
}

// clone copies p's slices, so the copy can be changed without touching a
// value some View still shares.
func (p Partition) clone() Partition {
	p.Replicas = slices.Clone(p.Replicas)
	p.Cores = slices.Clone(p.Cores)
	p.ISR = slices.Clone(p.ISR)
	p.Adding = slices.Clone(p.Adding)
	p.Removing = slices.Clone(p.Removing)
	return p
}

// withPartitions returns a shallow copy of t with its own Partitions slice.
func (t *Topic) withPartitions() *Topic {
	c := *t
	c.Partitions = slices.Clone(t.Partitions)
	return &c
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Limits on names and sizes, checked when commands are applied. They bound
// what one command can make the state hold, and match Kafka where Kafka has
// a limit.
const (
	topicNameLenMax = 249 // Kafka's limit
	addrLenMax      = 255
	// RackLenMax bounds a broker's rack name (strand serve --rack).
	RackLenMax         = 255
	configKeyLenMax    = 255
	configValueLenMax  = 32 << 10
	partitionsMax      = 1 << 20 // per topic
	replicasMax        = 64      // per partition
	coresMax           = 4096    // per broker
	producerIDBlockMax = 1 << 20
)
