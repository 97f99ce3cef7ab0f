package metadata

import (
	"errors"
	"maps"
	"math"
	"slices"
	"strconv"
)

// State is the metadata state machine. Only its owner (the Raft apply
// goroutine) calls its methods; readers use View.
//
// Maps are copy-on-write: View marks them shared, and the first change
// after that copies the map (topics themselves are never changed in place,
// a change builds a new *Topic), so a published View never changes.
type State struct {
	version        uint64
	nextProducerID int64

	brokers   map[BrokerID]*Broker
	brokerIDs []BrokerID // sorted
	topics    map[string]*Topic
	names     []string // sorted
	byID      map[TopicID]string
	// brokerConfigs are the dynamic BROKER resource configs
	// (brokerconfigs.go); nil until the first is set.
	brokerConfigs map[string]map[string]string

	brokersShared       bool // brokers and brokerIDs are referenced by a View
	topicsShared        bool // topics, names and byID are referenced by a View
	brokerConfigsShared bool // brokerConfigs is referenced by a View
	view                *View
}

// New returns an empty state at version 0.
func New() *State {
	return &State{
		brokers: map[BrokerID]*Broker{},
		topics:  map[string]*Topic{},
		byID:    map[TopicID]string{},
	}
}

// Version is the number of commands applied so far.
func (s *State) Version() uint64 { return s.version }

// View returns an immutable view of the current state. It is cached, so
// calling it after every Apply costs nothing when a command was rejected,
// and one small allocation otherwise.
func (s *State) View() *View {
	if s.view != nil && s.view.version == s.version {
		return s.view
	}
	s.brokersShared, s.topicsShared, s.brokerConfigsShared = true, true, true
	s.view = &View{
		version: s.version, nextProducerID: s.nextProducerID,
		brokers: s.brokers, brokerIDs: s.brokerIDs,
		topics: s.topics, names: s.names, byID: s.byID,
		brokerConfigs: s.brokerConfigs,
	}
	return s.view
}

// ApplyBytes decodes and applies one encoded command. A command that does
// not decode is rejected with ErrMalformed, except one of an unknown kind
// or version, which returns the decode error (wrapping ErrUnsupported):
// rejecting it would let this replica diverge from newer ones that apply
// it, so the caller must stop instead.
func (s *State) ApplyBytes(b []byte) (Result, error) {
	c, err := DecodeCommand(b)
	if err != nil {
		if isUnsupported(err) {
			return Result{}, err
		}
		r := reject(ErrMalformed, "%v", err)
		r.Version = s.version
		return r, nil
	}
	return s.Apply(c), nil
}

// Apply applies c, or rejects it and leaves the state as it was.
func (s *State) Apply(c Command) Result {
	var r Result
	switch c := c.(type) {
	case *RegisterBroker:
		r = s.registerBroker(c)
	case *BrokerHeartbeat:
		r = s.heartbeat(c)
	case *FenceBroker:
		r = s.fence(c.ID)
	case *UnfenceBroker:
		r = s.unfence(c.ID)
	case *RemoveBroker:
		r = s.removeBroker(c.ID)
	case *CreateTopic:
		r = s.createTopic(c)
	case *DeleteTopic:
		r = s.deleteTopic(c)
	case *CreatePartitions:
		r = s.createPartitions(c)
	case *ShrinkPartitions:
		r = s.shrinkPartitions(c)
	case *AlterTopicConfigs:
		r = s.alterConfigs(c)
	case *ChangePartition:
		r = s.changePartition(c)
	case *MoveReplicaCore:
		r = s.moveReplicaCore(c)
	case *AllocateProducerIDs:
		r = s.allocateProducerIDs(c)
	case *AlterBrokerConfigs:
		r = s.alterBrokerConfigs(c)
	case *ElectLeader:
		r = s.electLeader(c)
	case *ReassignPartition:
		r = s.reassign(c)
	default:
		r = reject(ErrMalformed, "unknown command %T", c)
	}
	if r.Code == OK {
		s.version++
	}
	r.Version = s.version
	return r
}

// --- copy-on-write plumbing ---

func (s *State) mutBrokers() {
	if s.brokersShared {
		s.brokers = maps.Clone(s.brokers)
		s.brokerIDs = slices.Clone(s.brokerIDs)
		s.brokersShared = false
	}
}

func (s *State) mutTopics() {
	if s.topicsShared {
		s.topics = maps.Clone(s.topics)
		s.names = slices.Clone(s.names)
		s.byID = maps.Clone(s.byID)
		s.topicsShared = false
	}
}

func (s *State) putBroker(b *Broker) {
	s.mutBrokers()
	if _, ok := s.brokers[b.ID]; !ok {
		i, _ := slices.BinarySearch(s.brokerIDs, b.ID)
		s.brokerIDs = slices.Insert(s.brokerIDs, i, b.ID)
	}
	s.brokers[b.ID] = b
}

func (s *State) delBroker(id BrokerID) {
	s.mutBrokers()
	delete(s.brokers, id)
	if i, ok := slices.BinarySearch(s.brokerIDs, id); ok {
		s.brokerIDs = slices.Delete(s.brokerIDs, i, i+1)
	}
}

// putTopic adds t or replaces the topic of the same name (and id).
func (s *State) putTopic(t *Topic) {
	s.mutTopics()
	if _, ok := s.topics[t.Name]; !ok {
		i, _ := slices.BinarySearch(s.names, t.Name)
		s.names = slices.Insert(s.names, i, t.Name)
		s.byID[t.ID] = t.Name
	}
	s.topics[t.Name] = t
}

func (s *State) delTopic(t *Topic) {
	s.mutTopics()
	delete(s.topics, t.Name)
	delete(s.byID, t.ID)
	if i, ok := slices.BinarySearch(s.names, t.Name); ok {
		s.names = slices.Delete(s.names, i, i+1)
	}
}

// --- brokers ---

func (s *State) registerBroker(c *RegisterBroker) Result {
	if c.ID < 0 {
		return reject(ErrInvalidArgument, "broker id %d is negative", c.ID)
	}
	if r, ok := checkAddr("kafka address", c.KafkaAddr); !ok {
		return r
	}
	if r, ok := checkAddr("raft address", c.RaftAddr); !ok {
		return r
	}
	if len(c.Rack) > RackLenMax {
		return reject(ErrInvalidArgument, "rack of %d bytes (max %d)", len(c.Rack), RackLenMax)
	}
	if c.Cores < 1 || c.Cores > coresMax {
		return reject(ErrInvalidArgument, "broker %d: %d cores (1..%d)", c.ID, c.Cores, coresMax)
	}
	for _, id := range s.brokerIDs {
		o := s.brokers[id]
		if id == c.ID {
			continue
		}
		if o.KafkaAddr == c.KafkaAddr || o.RaftAddr == c.RaftAddr {
			return reject(ErrBrokerConflict, "broker %d: broker %d already has address %s or %s",
				c.ID, id, c.KafkaAddr, c.RaftAddr)
		}
	}
	old, exists := s.brokers[c.ID]
	newDir := exists && old.LogDirID != 0 && c.LogDirID != 0 && c.LogDirID != old.LogDirID
	if exists {
		if used := s.coresUsed(c.ID); used > c.Cores {
			return reject(ErrBrokerConflict, "broker %d: %d cores, but its replicas use cores up to %d",
				c.ID, c.Cores, used-1)
		}
		inISR := func(p *Partition) bool { return p.Leader == c.ID || slices.Contains(p.ISR, c.ID) }
		if r := s.checkEpochRoom(inISR); r.Code != OK {
			return r
		}
		if !old.Fenced {
			s.fence(c.ID) // cannot fail: the broker exists, the epochs have room
		}
	}
	dirID := c.LogDirID
	if dirID == 0 && exists {
		dirID = old.LogDirID // a registration that does not know its dir id keeps the recorded one
	}
	s.putBroker(&Broker{ID: c.ID, KafkaAddr: c.KafkaAddr, RaftAddr: c.RaftAddr, Rack: c.Rack,
		Cores: c.Cores, Fenced: true, LastHeartbeatMs: c.NowMs, LogDirID: dirID})
	if newDir {
		s.forgetLogDir(c.ID)
	}
	return Result{}
}

func checkAddr(what, a string) (Result, bool) {
	if a == "" || len(a) > addrLenMax {
		return reject(ErrInvalidArgument, "%s of %d bytes (1..%d)", what, len(a), addrLenMax), false
	}
	return Result{}, true
}

// coresUsed is one more than the highest core any replica on broker b uses
// (0 when it holds none).
func (s *State) coresUsed(b BrokerID) int32 {
	var n int32
	for _, t := range s.topics {
		for i := range t.Partitions {
			if c, ok := t.Partitions[i].CoreOf(b); ok && int32(c)+1 > n {
				n = int32(c) + 1
			}
		}
	}
	return n
}

func (s *State) heartbeat(c *BrokerHeartbeat) Result {
	b, ok := s.brokers[c.ID]
	if !ok {
		return reject(ErrUnknownBroker, "broker %d", c.ID)
	}
	nb := *b
	nb.LastHeartbeatMs = c.NowMs
	s.putBroker(&nb)
	return Result{}
}

// fence marks broker id fenced and moves leadership off it (FenceBroker).
func (s *State) fence(id BrokerID) Result {
	b, ok := s.brokers[id]
	if !ok {
		return reject(ErrUnknownBroker, "broker %d", id)
	}
	// Everything is checked before anything changes.
	touches := func(p *Partition) bool { return p.Leader == id || slices.Contains(p.ISR, id) }
	if r := s.checkEpochRoom(touches); r.Code != OK {
		return r
	}
	nb := *b
	nb.Fenced = true
	s.putBroker(&nb)
	s.changePartitions(func(t *Topic, p *Partition) bool {
		if !touches(p) {
			return false
		}
		if p.Leader == id {
			s.reelect(t, p, id)
		}
		// The last in-sync replica stays: it holds every acknowledged
		// record, so only it may lead again (unless an unclean election
		// just made another the whole set).
		if slices.Contains(p.ISR, id) && len(p.ISR) > 1 {
			p.ISR = slices.DeleteFunc(p.ISR, func(r BrokerID) bool { return r == id })
		}
		return true
	})
	return Result{}
}

// forgetLogDir takes a (fenced) broker whose data dir was replaced out of
// every in-sync set, even as the last member: its replicas are empty, and
// electing it would silently drop every acknowledged record. A partition
// left with no in-sync replica gets an unclean leader if its topic allows
// that, and otherwise waits leaderless with an empty in-sync set.
func (s *State) forgetLogDir(id BrokerID) {
	s.changePartitions(func(t *Topic, p *Partition) bool {
		if !slices.Contains(p.ISR, id) {
			return false
		}
		p.ISR = slices.DeleteFunc(p.ISR, func(r BrokerID) bool { return r == id })
		if len(p.ISR) == 0 && p.Leader == NoLeader && s.uncleanEnabled(t) && p.LeaderEpoch != maxEpoch {
			if r := s.uncleanCandidate(p, id); r != NoLeader {
				p.Leader, p.ISR = r, []BrokerID{r}
				p.LeaderEpoch++
			}
		}
		return true
	})
}

func (s *State) unfence(id BrokerID) Result {
	b, ok := s.brokers[id]
	if !ok {
		return reject(ErrUnknownBroker, "broker %d", id)
	}
	takes := func(p *Partition) bool { return p.Leader == NoLeader && slices.Contains(p.ISR, id) }
	if r := s.checkEpochRoom(takes); r.Code != OK {
		return r
	}
	nb := *b
	nb.Fenced = false
	s.putBroker(&nb)
	s.changePartitions(func(_ *Topic, p *Partition) bool {
		if !takes(p) {
			return false
		}
		p.Leader = id
		p.LeaderEpoch++
		return true
	})
	s.uncleanSweep()
	return Result{}
}

// checkEpochRoom rejects when a partition matching f could not take one
// more leader epoch. Two billion leader changes will not happen, but the
// state must stay valid even then.
func (s *State) checkEpochRoom(f func(p *Partition) bool) Result {
	for _, n := range s.names {
		t := s.topics[n]
		for i := range t.Partitions {
			p := &t.Partitions[i]
			if f(p) && (p.LeaderEpoch == maxEpoch || p.PartitionEpoch == maxEpoch) {
				return reject(ErrExhausted, "%s-%d: epoch exhausted", n, i)
			}
		}
	}
	return Result{}
}

// changePartitions calls f on a private copy of every partition; where f
// returns true the copy replaces the partition (with its partition epoch
// bumped) in a new Topic.
func (s *State) changePartitions(f func(t *Topic, p *Partition) bool) {
	for _, n := range s.names {
		t := s.topics[n]
		var nt *Topic
		for i := range t.Partitions {
			p := t.Partitions[i].clone()
			if !f(t, &p) {
				continue
			}
			p.PartitionEpoch++
			if nt == nil {
				nt = t.withPartitions()
			}
			nt.Partitions[i] = p
		}
		if nt != nil {
			s.putTopic(nt)
		}
	}
}

func (s *State) removeBroker(id BrokerID) Result {
	if _, ok := s.brokers[id]; !ok {
		return reject(ErrUnknownBroker, "broker %d", id)
	}
	for _, n := range s.names {
		t := s.topics[n]
		for i := range t.Partitions {
			p := &t.Partitions[i]
			if p.Leader == id {
				return reject(ErrBrokerInUse, "broker %d leads %s-%d", id, n, i)
			}
			if slices.Contains(p.Replicas, id) {
				return reject(ErrBrokerInUse, "broker %d holds a replica of %s-%d", id, n, i)
			}
		}
	}
	s.delBroker(id)
	return Result{}
}

// --- topics ---

// ValidTopicName reports whether name is a legal Kafka topic name: 1 to 249
// characters from [a-zA-Z0-9._-], and neither "." nor "..".
func ValidTopicName(name string) bool { return TopicNameProblem(name) == "" }

// TopicNameProblem says why name is not a legal Kafka topic name, or ""
// when it is. It is the one definition of the rule: the protocol edge
// answers INVALID_TOPIC_EXCEPTION with its words, the controller and the
// data-dir sweep use it, and the state machine rejects commands by it.
func TopicNameProblem(name string) string {
	switch {
	case name == "":
		return "topic name is empty"
	case name == "." || name == "..":
		return "topic name cannot be \".\" or \"..\""
	case len(name) > topicNameLenMax:
		return "topic name is longer than " + strconv.Itoa(topicNameLenMax)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return "topic name may contain only ASCII letters, digits, '.', '_' and '-'"
		}
	}
	return ""
}

func checkConfigs(m map[string]string) (Result, bool) {
	for _, k := range sortedKeys(m) {
		if k == "" || len(k) > configKeyLenMax {
			return reject(ErrInvalidArgument, "config key of %d bytes (1..%d)", len(k), configKeyLenMax), false
		}
		if len(m[k]) > configValueLenMax {
			return reject(ErrInvalidArgument, "config %s: value of %d bytes (max %d)", k, len(m[k]), configValueLenMax), false
		}
	}
	return Result{}, true
}

// checkAssignment validates one partition's replicas against the brokers.
func (s *State) checkAssignment(where string, a *Assignment) (Result, bool) {
	if len(a.Replicas) == 0 || len(a.Replicas) > replicasMax {
		return reject(ErrInvalidReplicas, "%s: %d replicas (1..%d)", where, len(a.Replicas), replicasMax), false
	}
	if len(a.Cores) != len(a.Replicas) {
		return reject(ErrInvalidReplicas, "%s: %d cores for %d replicas", where, len(a.Cores), len(a.Replicas)), false
	}
	for i, r := range a.Replicas {
		b, ok := s.brokers[r]
		if !ok {
			return reject(ErrInvalidReplicas, "%s: unknown broker %d", where, r), false
		}
		if slices.Contains(a.Replicas[:i], r) {
			return reject(ErrInvalidReplicas, "%s: broker %d twice", where, r), false
		}
		if c := a.Cores[i]; c < 0 || int32(c) >= b.Cores {
			return reject(ErrInvalidReplicas, "%s: core %d on broker %d of %d cores", where, c, r, b.Cores), false
		}
	}
	return Result{}, true
}

// newPartition is a fresh partition on a: all replicas in sync (the logs
// are empty), led by the first unfenced one.
func (s *State) newPartition(a *Assignment) Partition {
	p := Partition{Replicas: slices.Clone(a.Replicas), Cores: slices.Clone(a.Cores),
		ISR: slices.Clone(a.Replicas), Leader: NoLeader}
	for _, r := range a.Replicas {
		if !s.brokers[r].Fenced {
			p.Leader = r
			break
		}
	}
	return p
}

func (s *State) checkNewPartitions(name string, first int, as []Assignment) (Result, bool) {
	if len(as) == 0 {
		return reject(ErrInvalidArgument, "topic %s: no partitions", name), false
	}
	if first+len(as) > partitionsMax {
		return reject(ErrInvalidArgument, "topic %s: %d partitions (max %d)", name, first+len(as), partitionsMax), false
	}
	for i := range as {
		if r, ok := s.checkAssignment(name+"-"+itoa(first+i), &as[i]); !ok {
			return r, false
		}
	}
	return Result{}, true
}

func (s *State) createTopic(c *CreateTopic) Result {
	if !ValidTopicName(c.Name) {
		return reject(ErrInvalidArgument, "illegal topic name %q", c.Name)
	}
	if c.ID.IsZero() {
		return reject(ErrInvalidArgument, "topic %s: null topic id", c.Name)
	}
	if _, ok := s.topics[c.Name]; ok {
		return reject(ErrTopicExists, "topic %s exists", c.Name)
	}
	if n, ok := s.byID[c.ID]; ok {
		return reject(ErrTopicExists, "topic id %s is topic %s's", c.ID, n)
	}
	if r, ok := checkConfigs(c.Configs); !ok {
		return r
	}
	if r, ok := s.checkNewPartitions(c.Name, 0, c.Partitions); !ok {
		return r
	}
	t := &Topic{Name: c.Name, ID: c.ID, Internal: c.Internal, Partitions: make([]Partition, len(c.Partitions))}
	if len(c.Configs) > 0 {
		t.Configs = maps.Clone(c.Configs)
	}
	for i := range c.Partitions {
		t.Partitions[i] = s.newPartition(&c.Partitions[i])
	}
	s.putTopic(t)
	return Result{}
}

// lookupTopic finds name, checking a non-zero id against it.
func (s *State) lookupTopic(name string, id TopicID) (*Topic, Result, bool) {
	t, ok := s.topics[name]
	if !ok {
		return nil, reject(ErrUnknownTopic, "topic %s", name), false
	}
	if !id.IsZero() && id != t.ID {
		return nil, reject(ErrUnknownTopic, "topic %s has id %s, not %s", name, t.ID, id), false
	}
	return t, Result{}, true
}

func (s *State) deleteTopic(c *DeleteTopic) Result {
	t, r, ok := s.lookupTopic(c.Name, c.ID)
	if !ok {
		return r
	}
	s.delTopic(t)
	return Result{}
}

func (s *State) createPartitions(c *CreatePartitions) Result {
	t, r, ok := s.lookupTopic(c.Name, c.ID)
	if !ok {
		return r
	}
	if r, ok := s.checkNewPartitions(c.Name, len(t.Partitions), c.Partitions); !ok {
		return r
	}
	nt := *t
	nt.Partitions = make([]Partition, len(t.Partitions), len(t.Partitions)+len(c.Partitions))
	copy(nt.Partitions, t.Partitions)
	for i := range c.Partitions {
		nt.Partitions = append(nt.Partitions, s.newPartition(&c.Partitions[i]))
	}
	s.putTopic(&nt)
	return Result{}
}

func (s *State) shrinkPartitions(c *ShrinkPartitions) Result {
	// Unlike the other topic commands, a zero id does not mean "any": a
	// shrink aimed at an earlier incarnation would drop a newer one's data.
	if c.ID.IsZero() {
		return reject(ErrInvalidArgument, "topic %s: shrink without a topic id", c.Topic)
	}
	t, r, ok := s.lookupTopic(c.Topic, c.ID)
	if !ok {
		return r
	}
	if c.Count < 1 || int(c.Count) >= len(t.Partitions) {
		return reject(ErrInvalidArgument, "topic %s: shrink to %d partitions (has %d)", c.Topic, c.Count, len(t.Partitions))
	}
	nt := *t
	nt.Partitions = slices.Clone(t.Partitions[:c.Count])
	s.putTopic(&nt)
	return Result{}
}

func (s *State) alterConfigs(c *AlterTopicConfigs) Result {
	t, r, ok := s.lookupTopic(c.Name, TopicID{})
	if !ok {
		return r
	}
	if r, ok := checkConfigs(c.Set); !ok {
		return r
	}
	if c.Replace && len(c.Delete) > 0 {
		return reject(ErrInvalidArgument, "topic %s: replace with deletes", c.Name)
	}
	for _, k := range c.Delete {
		if _, ok := c.Set[k]; ok || k == "" {
			return reject(ErrInvalidArgument, "topic %s: config key %q both set and deleted, or empty", c.Name, k)
		}
	}
	var m map[string]string
	if !c.Replace {
		m = maps.Clone(t.Configs)
	}
	if m == nil {
		m = map[string]string{}
	}
	maps.Copy(m, c.Set)
	for _, k := range c.Delete {
		delete(m, k)
	}
	if len(m) == 0 {
		m = nil
	}
	nt := *t
	nt.Configs = m
	s.putTopic(&nt)
	s.uncleanSweep()
	return Result{}
}

// --- partitions ---

func (s *State) lookupPartition(topic string, partition int32) (*Topic, Result, bool) {
	t, ok := s.topics[topic]
	if !ok {
		return nil, reject(ErrUnknownTopic, "topic %s", topic), false
	}
	if partition < 0 || int(partition) >= len(t.Partitions) {
		return nil, reject(ErrUnknownPartition, "%s-%d (topic has %d)", topic, partition, len(t.Partitions)), false
	}
	return t, Result{}, true
}

func (s *State) changePartition(c *ChangePartition) Result {
	t, r, ok := s.lookupPartition(c.Topic, c.Partition)
	if !ok {
		return r
	}
	cur := &t.Partitions[c.Partition]
	if c.LeaderEpoch != cur.LeaderEpoch || c.PartitionEpoch != cur.PartitionEpoch {
		return reject(ErrStaleEpoch, "%s-%d: epochs %d/%d, current %d/%d", c.Topic, c.Partition,
			c.LeaderEpoch, c.PartitionEpoch, cur.LeaderEpoch, cur.PartitionEpoch)
	}
	if cur.PartitionEpoch == math.MaxInt32 || (c.Leader != cur.Leader && cur.LeaderEpoch == math.MaxInt32) {
		return reject(ErrExhausted, "%s-%d: epoch exhausted", c.Topic, c.Partition)
	}
	if len(c.ISR) == 0 {
		return reject(ErrInvalidISR, "%s-%d: empty in-sync set", c.Topic, c.Partition)
	}
	for i, r := range c.ISR {
		if !slices.Contains(cur.Replicas, r) {
			return reject(ErrInvalidISR, "%s-%d: in-sync broker %d is not a replica", c.Topic, c.Partition, r)
		}
		if slices.Contains(c.ISR[:i], r) {
			return reject(ErrInvalidISR, "%s-%d: in-sync broker %d twice", c.Topic, c.Partition, r)
		}
	}
	if len(c.ISRDirs) > 0 && len(c.ISRDirs) != len(c.ISR) {
		return reject(ErrInvalidISR, "%s-%d: %d log dir ids for %d in-sync brokers", c.Topic, c.Partition, len(c.ISRDirs), len(c.ISR))
	}
	for i, r := range c.ISR {
		// A joining member's copy must be the one the leader counted:
		// a replaced data dir (a wiped broker back under its id) is
		// empty, whatever its previous process's fetches said.
		if len(c.ISRDirs) == 0 || c.ISRDirs[i] == 0 || slices.Contains(cur.ISR, r) {
			continue
		}
		if d := s.brokers[r].LogDirID; d != 0 && d != c.ISRDirs[i] {
			return reject(ErrInvalidISR, "%s-%d: in-sync broker %d's data dir %016x is not the one its fetches came from (%016x)",
				c.Topic, c.Partition, r, d, c.ISRDirs[i])
		}
	}
	if c.Leader != NoLeader {
		if !slices.Contains(c.ISR, c.Leader) {
			return reject(ErrInvalidISR, "%s-%d: leader %d not in sync", c.Topic, c.Partition, c.Leader)
		}
		if s.brokers[c.Leader].Fenced {
			return reject(ErrInvalidISR, "%s-%d: leader %d is fenced", c.Topic, c.Partition, c.Leader)
		}
	}
	p := cur.clone()
	p.ISR = slices.Clone(c.ISR)
	if c.Leader != cur.Leader {
		p.Leader = c.Leader
		p.LeaderEpoch++
	}
	if p.Reassigning() {
		if p.LeaderEpoch == maxEpoch && !slices.Contains(p.Target(), p.Leader) {
			return reject(ErrExhausted, "%s-%d: epoch exhausted", c.Topic, c.Partition)
		}
		s.completeReassignment(&p) // the in-sync set may now cover the target
	}
	p.PartitionEpoch++
	nt := t.withPartitions()
	nt.Partitions[c.Partition] = p
	s.putTopic(nt)
	return Result{}
}

func (s *State) moveReplicaCore(c *MoveReplicaCore) Result {
	t, r, ok := s.lookupPartition(c.Topic, c.Partition)
	if !ok {
		return r
	}
	cur := &t.Partitions[c.Partition]
	i := slices.Index(cur.Replicas, c.Broker)
	if i < 0 {
		return reject(ErrInvalidReplicas, "%s-%d: broker %d holds no replica", c.Topic, c.Partition, c.Broker)
	}
	if c.Core < 0 || int32(c.Core) >= s.brokers[c.Broker].Cores {
		return reject(ErrInvalidReplicas, "%s-%d: core %d on broker %d of %d cores", c.Topic, c.Partition,
			c.Core, c.Broker, s.brokers[c.Broker].Cores)
	}
	if cur.PartitionEpoch == math.MaxInt32 {
		return reject(ErrExhausted, "%s-%d: epoch exhausted", c.Topic, c.Partition)
	}
	p := cur.clone()
	p.Cores[i] = c.Core
	p.PartitionEpoch++
	nt := t.withPartitions()
	nt.Partitions[c.Partition] = p
	s.putTopic(nt)
	return Result{}
}

// --- producer ids ---

func (s *State) allocateProducerIDs(c *AllocateProducerIDs) Result {
	if _, ok := s.brokers[c.Broker]; !ok {
		return reject(ErrUnknownBroker, "broker %d", c.Broker)
	}
	if c.Count < 1 || c.Count > producerIDBlockMax {
		return reject(ErrInvalidArgument, "block of %d producer ids (1..%d)", c.Count, producerIDBlockMax)
	}
	if s.nextProducerID > math.MaxInt64-int64(c.Count) {
		return reject(ErrExhausted, "producer ids exhausted at %d", s.nextProducerID)
	}
	first := s.nextProducerID
	s.nextProducerID += int64(c.Count)
	return Result{Value: first}
}

func itoa(i int) string { return strconv.Itoa(i) }

// maxEpoch is the last leader or partition epoch: a partition at it takes
// no more changes.
const maxEpoch = math.MaxInt32

func isUnsupported(err error) bool { return errors.Is(err, ErrUnsupported) }
