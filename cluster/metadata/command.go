package metadata

import (
	"errors"
	"fmt"
)

// Kind is a command's type, the first byte of its encoding.
type Kind byte

// Command kinds. The numbers are on disk (in every Raft log and snapshot):
// never reuse or renumber one.
const (
	KindRegisterBroker      Kind = 1
	KindBrokerHeartbeat     Kind = 2
	KindFenceBroker         Kind = 3
	KindUnfenceBroker       Kind = 4
	KindRemoveBroker        Kind = 5
	KindCreateTopic         Kind = 6
	KindDeleteTopic         Kind = 7
	KindCreatePartitions    Kind = 8
	KindAlterTopicConfigs   Kind = 9
	KindChangePartition     Kind = 10
	KindMoveReplicaCore     Kind = 11
	KindAllocateProducerIDs Kind = 12
	KindShrinkPartitions    Kind = 13
	KindAlterBrokerConfigs  Kind = 14
	KindElectLeader         Kind = 15
	KindReassignPartition   Kind = 16
)

var kindNames = map[Kind]string{
	KindRegisterBroker: "RegisterBroker", KindBrokerHeartbeat: "BrokerHeartbeat",
	KindFenceBroker: "FenceBroker", KindUnfenceBroker: "UnfenceBroker",
	KindRemoveBroker: "RemoveBroker", KindCreateTopic: "CreateTopic",
	KindDeleteTopic: "DeleteTopic", KindCreatePartitions: "CreatePartitions",
	KindAlterTopicConfigs: "AlterTopicConfigs", KindChangePartition: "ChangePartition",
	KindMoveReplicaCore: "MoveReplicaCore", KindAllocateProducerIDs: "AllocateProducerIDs",
	KindShrinkPartitions: "ShrinkPartitions", KindAlterBrokerConfigs: "AlterBrokerConfigs",
	KindElectLeader: "ElectLeader", KindReassignPartition: "ReassignPartition",
}

func (k Kind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("Kind(%d)", byte(k))
}

// commandVersion is the encoding version of every kind whose fields never
// changed. A kind whose fields grew implements versioned: it writes the
// oldest version that holds its values, so a command that needs none of
// the new fields keeps the bytes older brokers wrote and read.
const commandVersion = 0

// versioned is a kind with more than one encoding version.
type versioned interface {
	// version is the version Encode writes for this value.
	version() byte
	// maxVersion is the newest version this code decodes.
	maxVersion() byte
}

func versionOf(c Command) byte {
	if v, ok := c.(versioned); ok {
		return v.version()
	}
	return commandVersion
}

func maxVersionOf(c Command) byte {
	if v, ok := c.(versioned); ok {
		return v.maxVersion()
	}
	return commandVersion
}

// ErrUnsupported is wrapped by DecodeCommand for a kind or version this code
// does not know: a newer broker wrote it. Applying around it would let
// replicas diverge, so the Raft wiring stops instead (see metaraft).
var ErrUnsupported = errors.New("metadata: unsupported command kind or version")

// Command is one change to the metadata. Each kind is a struct in this
// file; Encode gives its canonical bytes:
//
//	byte 0   kind
//	byte 1   version (0)
//	bytes 2… the kind's fields in declaration order: integers as varints
//	         (encoding/binary, zigzag for signed), strings and lists as a
//	         uvarint length then the elements, maps as a sorted list of
//	         key/value pairs, a topic id as 16 raw bytes, a bool as 0 or 1.
type Command interface {
	Kind() Kind
	encode(e *encoder)
	decode(d *decoder)
}

// Encode returns c's canonical encoding.
func Encode(c Command) []byte {
	e := encoder{b: make([]byte, 0, 64)}
	e.byte(byte(c.Kind()))
	e.byte(versionOf(c))
	c.encode(&e)
	return e.b
}

// DecodeCommand decodes one command. Every byte must belong to it, and the
// input must be in the canonical form Encode writes, so that
// Encode(DecodeCommand(b)) == b. It never panics and allocates no more than
// a small multiple of len(b).
func DecodeCommand(b []byte) (Command, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("metadata: command of %d bytes", len(b))
	}
	c := newCommand(Kind(b[0]))
	if c == nil {
		return nil, fmt.Errorf("%w: kind %d", ErrUnsupported, b[0])
	}
	if b[1] > maxVersionOf(c) {
		return nil, fmt.Errorf("%w: %v version %d", ErrUnsupported, c.Kind(), b[1])
	}
	d := decoder{b: b, off: 2, version: b[1]}
	c.decode(&d)
	if err := d.end(); err != nil {
		return nil, err
	}
	// Canonical: a value is written in one version only.
	if versionOf(c) != b[1] {
		return nil, fmt.Errorf("metadata: %v in version %d, which its values do not need", c.Kind(), b[1])
	}
	return c, nil
}

func newCommand(k Kind) Command {
	switch k {
	case KindRegisterBroker:
		return &RegisterBroker{}
	case KindBrokerHeartbeat:
		return &BrokerHeartbeat{}
	case KindFenceBroker:
		return &FenceBroker{}
	case KindUnfenceBroker:
		return &UnfenceBroker{}
	case KindRemoveBroker:
		return &RemoveBroker{}
	case KindCreateTopic:
		return &CreateTopic{}
	case KindDeleteTopic:
		return &DeleteTopic{}
	case KindCreatePartitions:
		return &CreatePartitions{}
	case KindAlterTopicConfigs:
		return &AlterTopicConfigs{}
	case KindChangePartition:
		return &ChangePartition{}
	case KindMoveReplicaCore:
		return &MoveReplicaCore{}
	case KindAllocateProducerIDs:
		return &AllocateProducerIDs{}
	case KindShrinkPartitions:
		return &ShrinkPartitions{}
	case KindAlterBrokerConfigs:
		return &AlterBrokerConfigs{}
	case KindElectLeader:
		return &ElectLeader{}
	case KindReassignPartition:
		return &ReassignPartition{}
	}
	return nil
}

// RegisterBroker adds a broker or re-registers one after a restart (same
// id; its addresses and rack may change). Either way the broker ends up
// fenced, as in KRaft: a restarted broker must reopen its logs before the
// controller unfences it, and until then its partitions move to other
// in-sync replicas or have no leader.
//
// A re-registration with a LogDirID other than the recorded one (both
// non-zero) comes from a replaced data dir: the broker's replicas are
// empty, so in the same step it leaves every in-sync set, even as the last
// member (KIP-858's rule: a replica on a new directory is not in sync).
// A partition that loses its last in-sync replica that way stays without a
// leader, unless unclean election is enabled for its topic.
type RegisterBroker struct {
	ID        BrokerID
	KafkaAddr string
	RaftAddr  string
	Rack      string
	Cores     int32
	NowMs     int64 // the controller's clock; becomes LastHeartbeatMs
	// LogDirID is the broker's data dir id (Broker.LogDirID); 0 = not
	// sent (encoding version 0). Version 1 carries it.
	LogDirID uint64
}

// BrokerHeartbeat records that the controller heard from a live broker.
type BrokerHeartbeat struct {
	ID    BrokerID
	NowMs int64
}

// FenceBroker takes a broker out of service (its lease ran out, or it is
// shutting down). In the same step every partition it leads gets a new
// leader (the first other unfenced in-sync replica, in replica order) or
// none, and it leaves every in-sync set it is not the last member of.
type FenceBroker struct{ ID BrokerID }

// UnfenceBroker returns a fenced broker to service. In the same step it
// becomes leader of every leaderless partition whose in-sync set holds it.
type UnfenceBroker struct{ ID BrokerID }

// RemoveBroker forgets a broker. It is rejected while the broker holds any
// replica (so it leads nothing either): reassign first.
type RemoveBroker struct{ ID BrokerID }

// Assignment is one partition's replicas and the core of each on its
// broker, as computed by Place.
type Assignment struct {
	Replicas []BrokerID
	Cores    []CoreID
}

// CreateTopic creates a topic with an explicit placement. Every replica
// starts in sync (the logs are empty); the leader is the first replica on
// an unfenced broker, or none.
type CreateTopic struct {
	Name       string
	ID         TopicID
	Internal   bool
	Configs    map[string]string
	Partitions []Assignment
}

// DeleteTopic deletes a topic. A non-zero ID must match, so a delete aimed
// at an old incarnation cannot remove a re-created topic of the same name.
type DeleteTopic struct {
	Name string
	ID   TopicID
}

// CreatePartitions appends partitions to a topic (never removes any). A
// non-zero ID must match, as in DeleteTopic.
type CreatePartitions struct {
	Name       string
	ID         TopicID
	Partitions []Assignment
}

// AlterTopicConfigs changes a topic's config overrides: with Replace, the
// overrides become Set; otherwise Set is merged in and Delete removed. A key
// may not be in both.
type AlterTopicConfigs struct {
	Name    string
	Replace bool
	Set     map[string]string
	Delete  []string
}

// ChangePartition sets a partition's leader and in-sync set, as a
// compare-and-set: LeaderEpoch and PartitionEpoch must be the partition's
// current ones, so a proposal made from a stale view is rejected rather
// than undoing a newer change. A new leader bumps the leader epoch.
//
// ISRDirs, when set, names for each ISR member the log dir id (KIP-858)
// of the copy the leader counted: the one its follower's fetches came
// from. A member joining the in-sync set must still have that dir: one
// whose broker came back with a replaced data dir since is refused, as
// its replica is empty now whatever its previous process's fetches said.
// 0 for a member means not known (not checked). Encoding version 1
// carries it.
type ChangePartition struct {
	Topic          string
	Partition      int32
	LeaderEpoch    Epoch
	PartitionEpoch int32
	Leader         BrokerID
	ISR            []BrokerID
	ISRDirs        []uint64
}

// MoveReplicaCore records that a replica now lives on another core of its
// broker. Moving the data is the broker's job, before it proposes this.
type MoveReplicaCore struct {
	Topic     string
	Partition int32
	Broker    BrokerID
	Core      CoreID
}

// AllocateProducerIDs hands a broker the next Count producer ids; the
// Result's Value is the first of them.
type AllocateProducerIDs struct {
	Broker BrokerID
	Count  int32
}

// ShrinkPartitions drops a topic's partitions from Count on, keeping the
// first Count. It exists to undo a CreatePartitions whose partitions could
// not be opened, in one entry: undoing it as a DeleteTopic and a CreateTopic
// left a crash point with the topic missing, and a broker removes the data
// of topics its metadata does not name. Kafka has no such request, so
// nothing but that undo may propose it. ID must be non-zero and match, and
// Count must be between 1 and the topic's partitions less one.
type ShrinkPartitions struct {
	Topic string
	ID    TopicID
	Count int32
}

// AlterBrokerConfigs changes one broker resource's dynamic configs, as
// Kafka's ConfigRecord does for a BROKER resource: Resource is a broker id
// in decimal, or "" for the cluster-wide default every broker inherits.
// With Replace the configs become Set; otherwise Set is merged in and
// Delete removed. Keys and values are validated by the proposer, as topic
// configs are; a broker id need not be registered (Kafka lets an operator
// configure a broker before it joins).
type AlterBrokerConfigs struct {
	Resource string
	Replace  bool
	Set      map[string]string
	Delete   []string
}

// ElectLeader is one partition's ElectLeaders election (Kafka's API 43).
// Preferred (Unclean false): the preferred replica (Replicas[0]) becomes
// leader if it is in sync and unfenced; rejected with
// ErrElectionNotNeeded when it already leads, ErrPreferredNotAvailable
// when it cannot. Unclean: a partition without a live leader gets the
// first live in-sync replica, else the first live replica as its whole
// in-sync set, whatever the topic's unclean.leader.election.enable (an
// operator asked); ErrElectionNotNeeded when it has a leader,
// ErrEligibleNotAvailable when no replica is live. A new leader bumps the
// leader epoch.
type ElectLeader struct {
	Topic     string
	Partition int32
	Unclean   bool
}

func (*RegisterBroker) Kind() Kind      { return KindRegisterBroker }
func (*BrokerHeartbeat) Kind() Kind     { return KindBrokerHeartbeat }
func (*FenceBroker) Kind() Kind         { return KindFenceBroker }
func (*UnfenceBroker) Kind() Kind       { return KindUnfenceBroker }
func (*RemoveBroker) Kind() Kind        { return KindRemoveBroker }
func (*CreateTopic) Kind() Kind         { return KindCreateTopic }
func (*DeleteTopic) Kind() Kind         { return KindDeleteTopic }
func (*CreatePartitions) Kind() Kind    { return KindCreatePartitions }
func (*AlterTopicConfigs) Kind() Kind   { return KindAlterTopicConfigs }
func (*ChangePartition) Kind() Kind     { return KindChangePartition }
func (*MoveReplicaCore) Kind() Kind     { return KindMoveReplicaCore }
func (*AllocateProducerIDs) Kind() Kind { return KindAllocateProducerIDs }
func (*ShrinkPartitions) Kind() Kind    { return KindShrinkPartitions }
func (*AlterBrokerConfigs) Kind() Kind  { return KindAlterBrokerConfigs }
func (*ElectLeader) Kind() Kind         { return KindElectLeader }

func (c *ElectLeader) encode(e *encoder) {
	e.str(c.Topic)
	e.varint(int64(c.Partition))
	e.bool(c.Unclean)
}
func (c *ElectLeader) decode(d *decoder) {
	c.Topic = d.str("topic")
	c.Partition = d.int32("partition")
	c.Unclean = d.bool("unclean")
}

func (c *RegisterBroker) version() byte {
	if c.LogDirID != 0 {
		return 1
	}
	return 0
}

func (*RegisterBroker) maxVersion() byte { return 1 }

func (c *RegisterBroker) encode(e *encoder) {
	e.broker(c.ID)
	e.str(c.KafkaAddr)
	e.str(c.RaftAddr)
	e.str(c.Rack)
	e.varint(int64(c.Cores))
	e.varint(c.NowMs)
	if c.LogDirID != 0 {
		e.uvarint(c.LogDirID)
	}
}

func (c *RegisterBroker) decode(d *decoder) {
	c.ID = d.broker("id")
	c.KafkaAddr = d.str("kafka addr")
	c.RaftAddr = d.str("raft addr")
	c.Rack = d.str("rack")
	c.Cores = d.int32("cores")
	c.NowMs = d.varint("now")
	if d.version >= 1 {
		c.LogDirID = d.uvarint("log dir id")
	}
}

func (c *BrokerHeartbeat) encode(e *encoder) { e.broker(c.ID); e.varint(c.NowMs) }
func (c *BrokerHeartbeat) decode(d *decoder) { c.ID = d.broker("id"); c.NowMs = d.varint("now") }
func (c *FenceBroker) encode(e *encoder)     { e.broker(c.ID) }
func (c *FenceBroker) decode(d *decoder)     { c.ID = d.broker("id") }
func (c *UnfenceBroker) encode(e *encoder)   { e.broker(c.ID) }
func (c *UnfenceBroker) decode(d *decoder)   { c.ID = d.broker("id") }
func (c *RemoveBroker) encode(e *encoder)    { e.broker(c.ID) }
func (c *RemoveBroker) decode(d *decoder)    { c.ID = d.broker("id") }

func encodeAssignments(e *encoder, as []Assignment) {
	e.uvarint(uint64(len(as)))
	for _, a := range as {
		e.brokers(a.Replicas)
		e.cores(a.Cores)
	}
}

func decodeAssignments(d *decoder) []Assignment {
	n := d.count("partitions", 2)
	if n == 0 {
		return nil
	}
	out := make([]Assignment, n)
	for i := 0; i < n && d.err == nil; i++ {
		out[i].Replicas = d.brokers("replicas")
		out[i].Cores = d.cores("cores")
	}
	return out
}

func (c *CreateTopic) encode(e *encoder) {
	e.str(c.Name)
	e.id(c.ID)
	e.bool(c.Internal)
	e.strMap(c.Configs)
	encodeAssignments(e, c.Partitions)
}

func (c *CreateTopic) decode(d *decoder) {
	c.Name = d.str("name")
	c.ID = d.id("topic id")
	c.Internal = d.bool("internal")
	c.Configs = d.strMap("configs")
	c.Partitions = decodeAssignments(d)
}

func (c *DeleteTopic) encode(e *encoder) { e.str(c.Name); e.id(c.ID) }
func (c *DeleteTopic) decode(d *decoder) { c.Name = d.str("name"); c.ID = d.id("topic id") }

func (c *CreatePartitions) encode(e *encoder) {
	e.str(c.Name)
	e.id(c.ID)
	encodeAssignments(e, c.Partitions)
}

func (c *CreatePartitions) decode(d *decoder) {
	c.Name = d.str("name")
	c.ID = d.id("topic id")
	c.Partitions = decodeAssignments(d)
}

func (c *AlterTopicConfigs) encode(e *encoder) {
	e.str(c.Name)
	e.bool(c.Replace)
	e.strMap(c.Set)
	e.uvarint(uint64(len(c.Delete)))
	for _, k := range c.Delete {
		e.str(k)
	}
}

func (c *AlterTopicConfigs) decode(d *decoder) {
	c.Name = d.str("name")
	c.Replace = d.bool("replace")
	c.Set = d.strMap("set")
	n := d.count("delete", 1)
	if n > 0 {
		c.Delete = make([]string, n)
		for i := 0; i < n && d.err == nil; i++ {
			c.Delete[i] = d.str("delete")
		}
	}
}

func (c *ChangePartition) version() byte {
	if len(c.ISRDirs) > 0 {
		return 1
	}
	return 0
}

func (*ChangePartition) maxVersion() byte { return 1 }

func (c *ChangePartition) encode(e *encoder) {
	e.str(c.Topic)
	e.varint(int64(c.Partition))
	e.varint(int64(c.LeaderEpoch))
	e.varint(int64(c.PartitionEpoch))
	e.broker(c.Leader)
	e.brokers(c.ISR)
	if len(c.ISRDirs) > 0 {
		e.uvarint(uint64(len(c.ISRDirs)))
		for _, d := range c.ISRDirs {
			e.uvarint(d)
		}
	}
}

func (c *ChangePartition) decode(d *decoder) {
	c.Topic = d.str("topic")
	c.Partition = d.int32("partition")
	c.LeaderEpoch = Epoch(d.int32("leader epoch"))
	c.PartitionEpoch = d.int32("partition epoch")
	c.Leader = d.broker("leader")
	c.ISR = d.brokers("isr")
	if d.version >= 1 {
		if n := d.count("isr dirs", 1); n > 0 {
			c.ISRDirs = make([]uint64, n)
			for i := range c.ISRDirs {
				c.ISRDirs[i] = d.uvarint("isr dir")
			}
		}
	}
}

func (c *MoveReplicaCore) encode(e *encoder) {
	e.str(c.Topic)
	e.varint(int64(c.Partition))
	e.broker(c.Broker)
	e.varint(int64(c.Core))
}

func (c *MoveReplicaCore) decode(d *decoder) {
	c.Topic = d.str("topic")
	c.Partition = d.int32("partition")
	c.Broker = d.broker("broker")
	c.Core = CoreID(d.int32("core"))
}

func (c *AllocateProducerIDs) encode(e *encoder) { e.broker(c.Broker); e.varint(int64(c.Count)) }
func (c *AllocateProducerIDs) decode(d *decoder) {
	c.Broker = d.broker("broker")
	c.Count = d.int32("count")
}

func (c *ShrinkPartitions) encode(e *encoder) { e.str(c.Topic); e.id(c.ID); e.varint(int64(c.Count)) }
func (c *ShrinkPartitions) decode(d *decoder) {
	c.Topic = d.str("topic")
	c.ID = d.id("topic id")
	c.Count = d.int32("count")
}

func (c *AlterBrokerConfigs) encode(e *encoder) {
	e.str(c.Resource)
	e.bool(c.Replace)
	e.strMap(c.Set)
	e.strList(c.Delete)
}

func (c *AlterBrokerConfigs) decode(d *decoder) {
	c.Resource = d.str("resource")
	c.Replace = d.bool("replace")
	c.Set = d.strMap("set")
	c.Delete = d.strList("delete")
}
