package metadata

import (
	"fmt"
	"slices"
)

// Invariants checks everything Apply promises to keep true and returns the
// first violation. It walks the whole state, so tests (and Recover, on
// every loaded snapshot) call it, not the apply path.
func (s *State) Invariants() error { return s.View().Invariants() }

// Invariants checks the view; see State.Invariants.
func (v *View) Invariants() error {
	if v.nextProducerID < 0 {
		return fmt.Errorf("next producer id %d is negative", v.nextProducerID)
	}
	if len(v.brokerIDs) != len(v.brokers) || !slices.IsSorted(v.brokerIDs) {
		return fmt.Errorf("broker index out of step: %d ids, %d brokers", len(v.brokerIDs), len(v.brokers))
	}
	kafka, raft := map[string]BrokerID{}, map[string]BrokerID{}
	for i, id := range v.brokerIDs {
		b, ok := v.brokers[id]
		if !ok || b.ID != id || id < 0 || (i > 0 && v.brokerIDs[i-1] == id) {
			return fmt.Errorf("broker %d: bad index entry", id)
		}
		if b.KafkaAddr == "" || b.RaftAddr == "" || b.Cores < 1 || b.Cores > coresMax {
			return fmt.Errorf("broker %d: empty address or %d cores", id, b.Cores)
		}
		if o, dup := kafka[b.KafkaAddr]; dup {
			return fmt.Errorf("brokers %d and %d share kafka address %s", o, id, b.KafkaAddr)
		}
		if o, dup := raft[b.RaftAddr]; dup {
			return fmt.Errorf("brokers %d and %d share raft address %s", o, id, b.RaftAddr)
		}
		kafka[b.KafkaAddr], raft[b.RaftAddr] = id, id
	}
	if len(v.names) != len(v.topics) || len(v.byID) != len(v.topics) || !slices.IsSorted(v.names) {
		return fmt.Errorf("topic index out of step: %d names, %d ids, %d topics", len(v.names), len(v.byID), len(v.topics))
	}
	for i, n := range v.names {
		t, ok := v.topics[n]
		if !ok || t.Name != n || (i > 0 && v.names[i-1] == n) {
			return fmt.Errorf("topic %s: bad index entry", n)
		}
		if !ValidTopicName(n) || t.ID.IsZero() || v.byID[t.ID] != n {
			return fmt.Errorf("topic %s: bad name or id %s", n, t.ID)
		}
		if len(t.Partitions) == 0 || len(t.Partitions) > partitionsMax {
			return fmt.Errorf("topic %s: %d partitions", n, len(t.Partitions))
		}
		for p := range t.Partitions {
			if err := v.checkPartition(&t.Partitions[p]); err != nil {
				return fmt.Errorf("%s-%d: %w", n, p, err)
			}
		}
	}
	return v.checkBrokerConfigs()
}

func (v *View) checkPartition(p *Partition) error {
	if len(p.Replicas) == 0 || len(p.Replicas) > replicasMax || len(p.Cores) != len(p.Replicas) {
		return fmt.Errorf("%d replicas, %d cores", len(p.Replicas), len(p.Cores))
	}
	for i, r := range p.Replicas {
		b, ok := v.brokers[r]
		if !ok {
			return fmt.Errorf("replica on unknown broker %d", r)
		}
		if slices.Contains(p.Replicas[:i], r) {
			return fmt.Errorf("broker %d twice in replicas", r)
		}
		if c := p.Cores[i]; c < 0 || int32(c) >= b.Cores {
			return fmt.Errorf("core %d on broker %d of %d cores", c, r, b.Cores)
		}
	}
	if len(p.ISR) == 0 && p.Leader != NoLeader {
		return fmt.Errorf("empty in-sync set with leader %d", p.Leader)
	}
	for i, r := range p.ISR {
		if !slices.Contains(p.Replicas, r) || slices.Contains(p.ISR[:i], r) {
			return fmt.Errorf("in-sync set %v not a set within replicas %v", p.ISR, p.Replicas)
		}
	}
	if p.Leader != NoLeader {
		if !slices.Contains(p.ISR, p.Leader) {
			return fmt.Errorf("leader %d not in sync %v", p.Leader, p.ISR)
		}
		if v.brokers[p.Leader].Fenced {
			return fmt.Errorf("leader %d is fenced", p.Leader)
		}
	}
	if err := checkReassignment(p); err != nil {
		return err
	}
	if p.LeaderEpoch < 0 || p.PartitionEpoch < 0 {
		return fmt.Errorf("negative epoch %d/%d", p.LeaderEpoch, p.PartitionEpoch)
	}
	return nil
}

// checkReassignment: Removing is the tail of Replicas, Adding is within
// the rest (the target), each a set, nil when empty.
func checkReassignment(p *Partition) error {
	if (p.Adding != nil && len(p.Adding) == 0) || (p.Removing != nil && len(p.Removing) == 0) {
		return fmt.Errorf("empty, not nil, reassignment lists")
	}
	if len(p.Removing) >= len(p.Replicas) {
		return fmt.Errorf("removing %v of replicas %v leaves no target", p.Removing, p.Replicas)
	}
	if !slices.Equal(p.Removing, p.Replicas[len(p.Replicas)-len(p.Removing):]) {
		return fmt.Errorf("removing %v is not the tail of replicas %v", p.Removing, p.Replicas)
	}
	target := p.Target()
	for i, b := range p.Adding {
		if !slices.Contains(target, b) || slices.Contains(p.Adding[:i], b) {
			return fmt.Errorf("adding %v not a set within the target %v", p.Adding, target)
		}
	}
	return nil
}
