package replication

import (
	"maps"
	"slices"
)

// ControllerConfig holds the controller's policy.
type ControllerConfig struct {
	// SessionTimeoutMs fences a broker whose heartbeats stop for this long.
	SessionTimeoutMs Millis
	// UncleanLeaderElection lets a replica outside the in-sync set lead
	// when no in-sync replica can (unclean.leader.election.enable): the
	// partition comes back, and acknowledged records may be lost.
	UncleanLeaderElection bool
}

// Controller is the replication half of the controller as a pure state
// machine: broker incarnations and liveness, leader election and the
// in-sync set. Each method returns the partitions it changed; the host
// writes them to the metadata log, which carries them to every broker as
// PartitionUpdates. It reads no clock: time comes with each call.
type Controller struct {
	cfg             ControllerConfig
	brokers         map[BrokerID]*brokerInfo
	brokerIDs       []BrokerID // sorted: decisions never depend on map order
	lastBrokerEpoch BrokerEpoch
	parts           map[PartitionID]*PartitionState
	partIDs         []PartitionID // sorted
	order           proposalOrder
}

// proposalOrder holds, per partition, the leader epoch and sequence
// number of the last numbered AlterPartition decided. A controller decides
// a leader's proposals in order, once: a late or repeated one is refused
// after a newer one was decided, so a leader can take the refusal of its
// newest as final for every older one (Leading.Answered). The metadata
// log gives brokers the same order.
type proposalOrder map[PartitionID]decidedSeq

type decidedSeq struct {
	epoch Epoch
	seq   uint64
}

// stale records req as decided unless it is not newer than the last one
// decided in its leader epoch (current, the partition's), which it
// reports. Unnumbered requests (Seq 0) are never stale.
func (o proposalOrder) stale(req AlterPartitionRequest, current Epoch) bool {
	if req.Seq == 0 || req.LeaderEpoch != current {
		return false
	}
	if last := o[req.Partition]; last.epoch == req.LeaderEpoch && req.Seq <= last.seq {
		return true
	}
	o[req.Partition] = decidedSeq{epoch: req.LeaderEpoch, seq: req.Seq}
	return false
}

type brokerInfo struct {
	incarnation   uint64
	logDirID      uint64
	epoch         BrokerEpoch
	fenced        bool
	lastHeartbeat Millis
}

// NewController starts with the given partitions, each with an empty log
// on every replica: every replica is in sync, and none leads until a
// broker registers.
func NewController(cfg ControllerConfig, parts []PartitionState) *Controller {
	c := &Controller{cfg: cfg, brokers: map[BrokerID]*brokerInfo{}, parts: map[PartitionID]*PartitionState{},
		order: proposalOrder{}}
	for _, p := range parts {
		s := p.Clone()
		s.ISR = slices.Clone(s.Replicas)
		s.Leader = NoLeader
		s.PartitionEpoch = 1
		c.parts[p.Partition] = &s
	}
	c.partIDs = slices.Sorted(maps.Keys(c.parts))
	return c
}

// State is the controller's record of partition p.
func (c *Controller) State(p PartitionID) PartitionState { return c.parts[p].Clone() }

// States is every partition's record, in partition order.
func (c *Controller) States() []PartitionState {
	var out []PartitionState
	for _, id := range c.partIDs {
		out = append(out, c.parts[id].Clone())
	}
	return out
}

// Fenced reports whether broker b is fenced (or never registered).
func (c *Controller) Fenced(b BrokerID) bool {
	bi := c.brokers[b]
	return bi == nil || bi.fenced
}

// Register handles a broker process start. A new incarnation fences the
// previous one first: whatever leadership or in-sync membership it held
// was earned by a log the restart may have changed. Incarnations only
// grow (the broker persists a counter), so a registration from an older
// process that arrives late is refused rather than fencing a newer one.
func (c *Controller) Register(req RegisterRequest, now Millis) (RegisterResponse, []PartitionState) {
	var changed []PartitionState
	bi := c.brokers[req.Broker]
	if bi != nil && req.Incarnation < bi.incarnation {
		return RegisterResponse{Broker: req.Broker, Incarnation: req.Incarnation, Err: ErrDuplicateRegistration}, nil
	}
	if bi == nil || bi.incarnation != req.Incarnation {
		if bi != nil && !bi.fenced {
			changed = append(changed, c.fence(req.Broker)...)
		}
		if bi != nil && bi.logDirID != req.LogDirID {
			changed = append(changed, c.forgetReplicas(req.Broker)...)
		}
		c.lastBrokerEpoch++
		if c.brokers[req.Broker] == nil {
			c.brokerIDs = append(c.brokerIDs, req.Broker)
			slices.Sort(c.brokerIDs)
		}
		bi = &brokerInfo{incarnation: req.Incarnation, logDirID: req.LogDirID, epoch: c.lastBrokerEpoch, fenced: true}
		c.brokers[req.Broker] = bi
		bi.lastHeartbeat = now
		changed = append(changed, c.unfence(req.Broker)...)
	}
	resp := RegisterResponse{Broker: req.Broker, Incarnation: req.Incarnation, BrokerEpoch: bi.epoch}
	for _, s := range c.States() {
		if contains(s.Replicas, req.Broker) {
			resp.States = append(resp.States, s)
		}
	}
	return resp, changed
}

// Heartbeat keeps a broker's current incarnation alive and unfences it if
// it had been fenced for silence.
func (c *Controller) Heartbeat(hb Heartbeat, now Millis) []PartitionState {
	bi := c.brokers[hb.Broker]
	if bi == nil || bi.epoch != hb.BrokerEpoch {
		return nil
	}
	bi.lastHeartbeat = now
	if bi.fenced {
		return c.unfence(hb.Broker)
	}
	return nil
}

// Tick fences brokers whose session expired.
func (c *Controller) Tick(now Millis) []PartitionState {
	var changed []PartitionState
	for _, b := range c.brokerIDs {
		if bi := c.brokers[b]; !bi.fenced && now-bi.lastHeartbeat > c.cfg.SessionTimeoutMs {
			changed = append(changed, c.fence(b)...)
		}
	}
	return changed
}

// fence takes b out of every in-sync set and leadership. The last member
// of an in-sync set stays in it (Kafka's rule before KIP-966): it is the
// one replica known to hold every acknowledged record, and it leads again
// when it returns.
func (c *Controller) fence(b BrokerID) []PartitionState {
	c.brokers[b].fenced = true
	var changed []PartitionState
	for _, id := range c.partIDs {
		s := c.parts[id]
		before := s.Clone()
		if contains(s.ISR, b) && len(s.ISR) > 1 {
			s.ISR = without(s.ISR, b)
		}
		if s.Leader == b {
			c.elect(s, NoLeader)
		}
		if s.PartitionEpoch != before.PartitionEpoch || !slices.Equal(s.ISR, before.ISR) {
			if s.PartitionEpoch == before.PartitionEpoch {
				s.PartitionEpoch++
			}
			changed = append(changed, s.Clone())
		}
	}
	return changed
}

// forgetReplicas takes a (fenced) broker whose log directory is new out of
// every in-sync set, even as the last member: its replicas are empty, and
// electing it would silently drop every acknowledged record. A partition
// whose only in-sync replica that was stays without a leader, unless
// unclean election is on.
func (c *Controller) forgetReplicas(b BrokerID) []PartitionState {
	var changed []PartitionState
	for _, id := range c.partIDs {
		s := c.parts[id]
		if !contains(s.ISR, b) {
			continue
		}
		s.ISR = without(s.ISR, b)
		s.PartitionEpoch++
		changed = append(changed, s.Clone())
	}
	return changed
}

func (c *Controller) unfence(b BrokerID) []PartitionState {
	c.brokers[b].fenced = false
	var changed []PartitionState
	for _, id := range c.partIDs {
		if s := c.parts[id]; s.Leader == NoLeader && contains(s.Replicas, b) {
			if c.elect(s, NoLeader) {
				changed = append(changed, s.Clone())
			}
		}
	}
	return changed
}

// elect chooses a leader for s: want if given and eligible, else the first
// unfenced in-sync replica in preference order, else (unclean election
// only) the first unfenced replica, which becomes the whole in-sync set.
// It bumps both epochs when the leader changes and reports whether it did.
func (c *Controller) elect(s *PartitionState, want BrokerID) bool {
	leader := NoLeader
	for _, b := range s.Replicas {
		if contains(s.ISR, b) && !c.Fenced(b) && b != s.Leader && (want == NoLeader || b == want) {
			leader = b
			break
		}
	}
	if leader == NoLeader && want == NoLeader && c.cfg.UncleanLeaderElection {
		for _, b := range s.Replicas {
			if !c.Fenced(b) && b != s.Leader {
				leader = b
				s.ISR = []BrokerID{b}
				break
			}
		}
	}
	if leader == NoLeader && (s.Leader == NoLeader || !c.Fenced(s.Leader)) {
		return false
	}
	s.Leader = leader
	s.LeaderBrokerEpoch = 0
	if leader != NoLeader {
		s.LeaderBrokerEpoch = c.brokers[leader].epoch
	}
	s.LeaderEpoch++
	s.PartitionEpoch++
	return true
}

// ElectPreferred moves leadership of p to its preferred replica (ElectLeaders
// with PREFERRED), which must be unfenced and in sync.
func (c *Controller) ElectPreferred(p PartitionID) ([]PartitionState, error) {
	s := c.parts[p]
	pref := s.Replicas[0]
	switch {
	case s.Leader == pref:
		return nil, ErrElectionNotNeeded
	case !contains(s.ISR, pref) || c.Fenced(pref):
		return nil, ErrPreferredNotAvailable
	}
	c.elect(s, pref)
	return []PartitionState{s.Clone()}, nil
}

// AlterPartition accepts or rejects a leader's proposed in-sync set. It
// must come from the current leader's incarnation in the current leader
// epoch, computed against the current partition epoch; a member it adds
// must be unfenced in the incarnation whose fetches the leader counted.
func (c *Controller) AlterPartition(req AlterPartitionRequest) (AlterPartitionResponse, []PartitionState) {
	s := c.parts[req.Partition]
	reject := func(err error) (AlterPartitionResponse, []PartitionState) {
		return AlterPartitionResponse{Partition: req.Partition, LeaderEpoch: req.LeaderEpoch, Seq: req.Seq, Err: err, State: s.Clone()}, nil
	}
	if c.order.stale(req, s.LeaderEpoch) {
		return reject(ErrInvalidUpdateVersion)
	}
	newISR := make([]BrokerID, 0, len(req.NewISR))
	for _, m := range req.NewISR {
		newISR = append(newISR, m.Broker)
	}
	switch {
	case c.brokers[req.Leader] == nil || c.brokers[req.Leader].epoch != req.LeaderBrokerEpoch:
		return reject(ErrStaleBrokerEpoch)
	case req.LeaderEpoch != s.LeaderEpoch:
		return reject(ErrFencedLeaderEpoch)
	case req.Leader != s.Leader:
		return reject(ErrNotLeader)
	case req.PartitionEpoch != s.PartitionEpoch:
		if slices.Equal(sorted(newISR), sorted(s.ISR)) {
			return AlterPartitionResponse{Partition: req.Partition, LeaderEpoch: req.LeaderEpoch, Seq: req.Seq, State: s.Clone()}, nil // a retry that already won
		}
		return reject(ErrInvalidUpdateVersion)
	case !contains(newISR, req.Leader):
		return reject(ErrIneligibleReplica)
	}
	for i, m := range req.NewISR {
		if !contains(s.Replicas, m.Broker) || slices.Contains(newISR[:i], m.Broker) {
			return reject(ErrIneligibleReplica)
		}
		if !contains(s.ISR, m.Broker) {
			bi := c.brokers[m.Broker]
			if bi == nil || bi.fenced || bi.epoch != m.BrokerEpoch {
				return reject(ErrIneligibleReplica)
			}
		}
	}
	if slices.Equal(sorted(newISR), sorted(s.ISR)) {
		return AlterPartitionResponse{Partition: req.Partition, LeaderEpoch: req.LeaderEpoch, Seq: req.Seq, State: s.Clone()}, nil
	}
	var isr []BrokerID
	for _, b := range s.Replicas {
		if contains(newISR, b) {
			isr = append(isr, b)
		}
	}
	s.ISR = isr
	s.PartitionEpoch++
	return AlterPartitionResponse{Partition: req.Partition, LeaderEpoch: req.LeaderEpoch, Seq: req.Seq, State: s.Clone()}, []PartitionState{s.Clone()}
}
