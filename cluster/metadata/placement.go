package metadata

import (
	"errors"
	"fmt"
	"slices"
)

// Placement errors. The broker maps them to INVALID_PARTITIONS,
// INVALID_REPLICATION_FACTOR and INVALID_REPLICA_ASSIGNMENT.
var (
	ErrInvalidPartitions        = errors.New("metadata: invalid partition count")
	ErrInvalidReplicationFactor = errors.New("metadata: invalid replication factor")
	ErrInvalidReplicaAssignment = errors.New("metadata: invalid replica assignment")
)

// PlaceRequest asks for the placement of new partitions.
type PlaceRequest struct {
	// Partitions is how many partitions to place. With Explicit it may be
	// 0 (meaning len(Explicit)); otherwise it must equal len(Explicit).
	Partitions int
	// ReplicationFactor is the replicas per partition; ignored with
	// Explicit, whose lists set it.
	ReplicationFactor int
	// Explicit, when not nil, is the client's replica list per partition
	// (CreateTopics' assignments): honoured as given after validation,
	// only the cores are chosen.
	Explicit [][]BrokerID
}

// Place is the controller's placement decision, a pure function of the
// view: the same view and request always give the same answer.
//
// Each partition's replicas go to distinct unfenced brokers. The first
// replica (the preferred leader) goes to the broker that is preferred
// leader of the fewest partitions, the others to the brokers holding the
// fewest replicas; when brokers have racks, a replica avoids the racks the
// partition already uses while any other rack has a candidate. Ties go to
// the lowest broker id. On its broker, each replica takes the core holding
// the fewest replicas, lowest core first. Every count includes the
// partitions placed earlier in the same call.
func Place(v *View, req PlaceRequest) ([]Assignment, error) {
	l := newLoads(v)
	if req.Explicit != nil {
		return l.placeExplicit(v, req)
	}
	if req.Partitions < 1 || req.Partitions > partitionsMax {
		return nil, fmt.Errorf("%w: %d (1..%d)", ErrInvalidPartitions, req.Partitions, partitionsMax)
	}
	var live []*Broker
	for _, id := range v.brokerIDs {
		if b := v.brokers[id]; !b.Fenced {
			live = append(live, b)
		}
	}
	if req.ReplicationFactor < 1 || req.ReplicationFactor > len(live) || req.ReplicationFactor > replicasMax {
		return nil, fmt.Errorf("%w: %d with %d live brokers", ErrInvalidReplicationFactor, req.ReplicationFactor, len(live))
	}
	out := make([]Assignment, req.Partitions)
	for p := range out {
		reps := make([]BrokerID, 0, req.ReplicationFactor)
		for slot := 0; slot < req.ReplicationFactor; slot++ {
			b := l.pick(live, reps, slot == 0)
			reps = append(reps, b)
			l.replicas[b]++
			if slot == 0 {
				l.leaders[b]++
			}
		}
		out[p] = Assignment{Replicas: reps, Cores: l.cores(reps)}
	}
	return out, nil
}

func (l *loads) placeExplicit(v *View, req PlaceRequest) ([]Assignment, error) {
	n := len(req.Explicit)
	if n == 0 || n > partitionsMax || (req.Partitions != 0 && req.Partitions != n) {
		return nil, fmt.Errorf("%w: %d partitions, %d assignments", ErrInvalidReplicaAssignment, req.Partitions, n)
	}
	rf := len(req.Explicit[0])
	out := make([]Assignment, n)
	for p, reps := range req.Explicit {
		if len(reps) == 0 || len(reps) != rf || len(reps) > replicasMax {
			return nil, fmt.Errorf("%w: partition %d has %d replicas, partition 0 has %d",
				ErrInvalidReplicaAssignment, p, len(reps), rf)
		}
		for i, b := range reps {
			if _, ok := v.brokers[b]; !ok {
				return nil, fmt.Errorf("%w: partition %d: unknown broker %d", ErrInvalidReplicaAssignment, p, b)
			}
			if slices.Contains(reps[:i], b) {
				return nil, fmt.Errorf("%w: partition %d: broker %d twice", ErrInvalidReplicaAssignment, p, b)
			}
		}
		out[p] = Assignment{Replicas: slices.Clone(reps), Cores: l.cores(reps)}
	}
	return out, nil
}

// loads counts what is already placed.
type loads struct {
	replicas map[BrokerID]int
	leaders  map[BrokerID]int // partitions whose first replica it is
	perCore  map[BrokerID][]int
	racks    bool // some broker has a rack
}

func newLoads(v *View) *loads {
	l := &loads{replicas: map[BrokerID]int{}, leaders: map[BrokerID]int{}, perCore: map[BrokerID][]int{}}
	for _, id := range v.brokerIDs {
		b := v.brokers[id]
		l.perCore[id] = make([]int, b.Cores)
		l.racks = l.racks || b.Rack != ""
	}
	for _, n := range v.names {
		t := v.topics[n]
		for i := range t.Partitions {
			p := &t.Partitions[i]
			l.leaders[p.Replicas[0]]++
			for j, r := range p.Replicas {
				l.replicas[r]++
				l.perCore[r][p.Cores[j]]++
			}
		}
	}
	return l
}

// pick chooses the next replica among live brokers not in chosen.
func (l *loads) pick(live []*Broker, chosen []BrokerID, leader bool) BrokerID {
	var best *Broker
	var bestKey [3]int
	for _, b := range live {
		if slices.Contains(chosen, b.ID) {
			continue
		}
		key := [3]int{0, l.replicas[b.ID], int(b.ID)}
		if leader {
			key[1] = l.leaders[b.ID]
		} else if l.racks && b.Rack != "" && l.rackUsed(live, chosen, b.Rack) {
			key[0] = 1
		}
		if best == nil || less(key, bestKey) {
			best, bestKey = b, key
		}
	}
	return best.ID
}

func less(a, b [3]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

func (l *loads) rackUsed(live []*Broker, chosen []BrokerID, rack string) bool {
	for _, b := range live {
		if b.Rack == rack && slices.Contains(chosen, b.ID) {
			return true
		}
	}
	return false
}

// CoresFor picks a core for each broker of reps as Place does: the one of
// that broker's cores holding the fewest replicas in v (0 for a broker v
// does not know; the state machine refuses those anyway).
func CoresFor(v *View, reps []BrokerID) []CoreID { return newLoads(v).cores(reps) }

// cores picks each replica's core, the least-loaded on its broker.
func (l *loads) cores(reps []BrokerID) []CoreID {
	out := make([]CoreID, len(reps))
	for i, b := range reps {
		pc := l.perCore[b]
		if len(pc) == 0 {
			continue
		}
		best := 0
		for c := 1; c < len(pc); c++ {
			if pc[c] < pc[best] {
				best = c
			}
		}
		pc[best]++
		out[i] = CoreID(best)
	}
	return out
}
