package metadata

import (
	"slices"
)

// Reassignment, as Kafka's KRaft controller does it (KIP-455): starting
// one makes Replicas the target followed by the old replicas not in it
// (Removing), and records the target's new replicas (Adding); the new
// replicas catch up as followers, and the ChangePartition that brings the
// last of the target into the in-sync set completes it in the same step:
// Replicas becomes the target, the in-sync set loses the removed
// replicas, and a leader being removed hands over to the first live
// in-sync replica of the target (bumping the leader epoch). Cancelling
// reverts to the replicas before it (Replicas less Adding).

// ReassignPartition starts, replaces or cancels one partition's
// reassignment (AlterPartitionReassignments, API 45). Target nil cancels
// the one in progress (ErrNoReassignment when none is); otherwise Cores[i]
// is Target[i]'s core on its broker, used for the replicas being added
// (those already held keep their core). A new target replaces one in
// progress, counted from the replicas before it. A target the partition's
// in-sync set already covers completes at once (a reorder, or a shrink).
type ReassignPartition struct {
	Topic     string
	Partition int32
	Target    []BrokerID
	Cores     []CoreID
}

func (*ReassignPartition) Kind() Kind { return KindReassignPartition }

func (c *ReassignPartition) encode(e *encoder) {
	e.str(c.Topic)
	e.varint(int64(c.Partition))
	e.brokers(c.Target)
	e.cores(c.Cores)
}

func (c *ReassignPartition) decode(d *decoder) {
	c.Topic = d.str("topic")
	c.Partition = d.int32("partition")
	c.Target = d.brokers("target")
	c.Cores = d.cores("cores")
}

func (s *State) reassign(c *ReassignPartition) Result {
	t, r, ok := s.lookupPartition(c.Topic, c.Partition)
	if !ok {
		return r
	}
	cur := &t.Partitions[c.Partition]
	where := c.Topic + "-" + itoa(int(c.Partition))
	if cur.LeaderEpoch >= maxEpoch-1 || cur.PartitionEpoch == maxEpoch { // up to two leader changes
		return reject(ErrExhausted, "%s: epoch exhausted", where)
	}
	// The replicas before any reassignment in progress, with their cores.
	var base Partition
	base.Replicas, base.Cores = without(cur.Replicas, cur.Cores, cur.Adding)
	p := cur.clone()
	if c.Target == nil {
		if !cur.Reassigning() {
			return reject(ErrNoReassignment, "%s: no reassignment in progress", where)
		}
		if c.Cores != nil {
			return reject(ErrInvalidReplicas, "%s: cores without a target", where)
		}
		p.Replicas, p.Cores = base.Replicas, base.Cores
	} else {
		a := Assignment{Replicas: c.Target, Cores: c.Cores}
		if r, ok := s.checkAssignment(where, &a); !ok {
			return r
		}
		removing := slices.DeleteFunc(slices.Clone(base.Replicas), func(b BrokerID) bool { return slices.Contains(c.Target, b) })
		if len(c.Target)+len(removing) > replicasMax {
			return reject(ErrInvalidReplicas, "%s: %d replicas while reassigning (max %d)", where, len(c.Target)+len(removing), replicasMax)
		}
		p.Replicas = append(slices.Clone(c.Target), removing...)
		p.Cores = make([]CoreID, 0, len(p.Replicas))
		for i, b := range p.Replicas {
			if core, ok := base.CoreOf(b); ok {
				p.Cores = append(p.Cores, core)
			} else {
				p.Cores = append(p.Cores, c.Cores[i])
			}
		}
		p.Adding = slices.DeleteFunc(slices.Clone(c.Target), func(b BrokerID) bool { return slices.Contains(base.Replicas, b) })
		p.Removing = removing
	}
	if c.Target == nil || len(p.Adding) == 0 && len(p.Removing) == 0 {
		p.Adding, p.Removing = nil, nil
	}
	if len(p.Adding) == 0 {
		p.Adding = nil
	}
	if len(p.Removing) == 0 {
		p.Removing = nil
	}
	// A replica no longer held leaves the in-sync set, and leadership.
	isr := slices.DeleteFunc(slices.Clone(p.ISR), func(b BrokerID) bool { return !slices.Contains(p.Replicas, b) })
	if len(isr) == 0 {
		return reject(ErrInvalidISR, "%s: no replica of %v is in sync (isr %v)", where, p.Replicas, cur.ISR)
	}
	p.ISR = isr
	if p.Leader != NoLeader && !slices.Contains(p.ISR, p.Leader) {
		s.reelectClean(&p)
	}
	s.completeReassignment(&p)
	p.PartitionEpoch++
	nt := t.withPartitions()
	nt.Partitions[c.Partition] = p
	s.putTopic(nt)
	return Result{}
}

// completeReassignment ends p's reassignment if every target replica is in
// sync: Replicas becomes the target, the removed replicas leave the
// in-sync set, and a removed leader hands over (leader epoch + 1). The
// caller bumps the partition epoch.
func (s *State) completeReassignment(p *Partition) {
	target := p.Target()
	if !p.Reassigning() && slices.Equal(target, p.Replicas) {
		return
	}
	for _, b := range target {
		if !slices.Contains(p.ISR, b) {
			return
		}
	}
	n := len(target)
	p.Replicas, p.Cores = slices.Clone(p.Replicas[:n]), slices.Clone(p.Cores[:n])
	p.ISR = slices.DeleteFunc(p.ISR, func(b BrokerID) bool { return !slices.Contains(target, b) })
	p.Adding, p.Removing = nil, nil
	if p.Leader != NoLeader && !slices.Contains(p.Replicas, p.Leader) {
		s.reelectClean(p)
	}
}

// reelectClean gives p the first live in-sync replica as leader (or none),
// bumping the leader epoch: its leader left the replicas.
func (s *State) reelectClean(p *Partition) {
	p.Leader = s.cleanCandidate(p, NoLeader)
	p.LeaderEpoch++
}

// without returns replicas and their cores less the brokers in drop.
func without(replicas []BrokerID, cores []CoreID, drop []BrokerID) ([]BrokerID, []CoreID) {
	rs, cs := make([]BrokerID, 0, len(replicas)), make([]CoreID, 0, len(cores))
	for i, b := range replicas {
		if !slices.Contains(drop, b) {
			rs, cs = append(rs, b), append(cs, cores[i])
		}
	}
	return rs, cs
}
