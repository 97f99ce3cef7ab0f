package cluster

import (
	"cmp"
	"slices"

	"github.com/strand-io/strand/reactor"
)

// Move is one partition's move between two cores of this broker.
type Move struct {
	Topic     string
	Partition int32
	From, To  reactor.CoreID
	// Load is the partition's measured bytes in and out per second.
	Load float64
}

// planRebalance is the greedy plan over view: while the hottest core has a
// partition whose move to another core lowers the hottest load of all
// cores by at least margin (a fraction of it), make the move that lowers
// it most. The margin is the hysteresis: a placement near balance is
// left alone, so measurement noise does not make partitions flap. movable
// says which partitions may move to which cores; at most maxMoves are
// planned, and cut
// says a further move would have qualified. It is deterministic for a
// given view.
func planRebalance(view PlacementView, margin float64, maxMoves int, movable func(p PartitionLoad, to reactor.CoreID) bool) (moves []Move, cut bool) {
	loads := make([]float64, len(view.Cores))
	for i, c := range view.Cores {
		loads[i] = c.Load()
	}
	parts := slices.Clone(view.Partitions)
	// Heaviest first, so that of equal improvements the bigger move wins
	// and ties resolve the same way every time.
	slices.SortStableFunc(parts, func(a, b PartitionLoad) int { return cmp.Compare(b.Load(), a.Load()) })
	moves = []Move{}
	for len(loads) > 1 {
		hot := 0
		for c := range loads {
			if loads[c] > loads[hot] {
				hot = c
			}
		}
		best, bestTo, bestMax := -1, 0, loads[hot]
		for i, p := range parts {
			if int(p.Core) != hot || p.Load() <= 0 {
				continue
			}
			for to := range loads {
				if to == hot || !movable(p, reactor.CoreID(to)) {
					continue
				}
				if m := maxAfter(loads, hot, to, p.Load()); m < bestMax {
					best, bestTo, bestMax = i, to, m
				}
			}
		}
		if best < 0 || bestMax > loads[hot]*(1-margin) {
			break
		}
		if len(moves) == maxMoves {
			return moves, true
		}
		p := &parts[best]
		moves = append(moves, Move{Topic: p.Topic, Partition: p.Partition, From: p.Core, To: reactor.CoreID(bestTo), Load: p.Load()})
		loads[hot] -= p.Load()
		loads[bestTo] += p.Load()
		p.Core = reactor.CoreID(bestTo)
	}
	return moves, false
}

// maxAfter is the hottest load once load moves from core from to core to.
func maxAfter(loads []float64, from, to int, load float64) float64 {
	m := 0.0
	for c, l := range loads {
		switch c {
		case from:
			l -= load
		case to:
			l += load
		}
		m = max(m, l)
	}
	return m
}
