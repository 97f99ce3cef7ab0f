package cluster

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/strand-io/strand/reactor"
	"github.com/strand-io/strand/wire"
)

func sampleAt(core reactor.CoreID, at time.Time, busy time.Duration, parts map[string]partCounters) loadSample {
	s := loadSample{core: core, at: at, busy: busy, parts: map[wire.PartitionRef]partCounters{}}
	for name, c := range parts {
		s.parts[wire.PartitionRef{Topic: name, Partition: 0}] = c
	}
	return s
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b)) }

// TestLoadMeterRates: rates are bytes over the steps kept, which cover the
// window and no more; a partition that moved keeps what it did on its old
// core, and its counters starting again from zero on the new one count as
// new bytes, not as a negative step.
func TestLoadMeterRates(t *testing.T) {
	m := newLoadMeter(2 * time.Second)
	t0 := time.Unix(1000, 0)
	sec := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	m.observe([]loadSample{
		sampleAt(0, sec(0), 0, map[string]partCounters{"a": {0, 0}, "b": {0, 0}}),
		sampleAt(1, sec(0), 0, nil),
	})
	// Second 1: a takes 1000 in and 500 out, b 3000 in; core 0 busy half.
	m.observe([]loadSample{
		sampleAt(0, sec(1), 500*time.Millisecond, map[string]partCounters{"a": {1000, 500}, "b": {3000, 0}}),
		sampleAt(1, sec(1), 0, nil),
	})
	r := m.report(2)
	if r.Window != time.Second || !near(r.Cores[0].Load(), 4500) || !near(r.Cores[0].Busy, 0.5) || r.Cores[1].Load() != 0 {
		t.Fatalf("after 1 s: %+v", r)
	}
	if p := r.Partitions[0]; p.Topic != "a" || !near(p.BytesInPerSec, 1000) || !near(p.BytesOutPerSec, 500) || !near(p.Busy, 0.5*1500/4500) {
		t.Fatalf("a: %+v", p)
	}
	// Second 2: b moved to core 1 and counted 1000 there since.
	m.observe([]loadSample{
		sampleAt(0, sec(2), 1000*time.Millisecond, map[string]partCounters{"a": {2000, 1000}}),
		sampleAt(1, sec(2), 100*time.Millisecond, map[string]partCounters{"b": {1000, 0}}),
	})
	r = m.report(2)
	if r.Window != 2*time.Second {
		t.Fatalf("window %v", r.Window)
	}
	if b := r.Partitions[1]; b.Topic != "b" || b.Core != 1 || !near(b.BytesInPerSec, 2000) {
		t.Fatalf("b after its move: %+v", b)
	}
	if !near(r.Cores[0].Load(), 1500) || !near(r.Cores[1].Load(), 2000) || r.Cores[1].Partitions != 1 {
		t.Fatalf("cores after the move: %+v", r.Cores)
	}
	// Second 3: the first step falls out of the 2 s window.
	m.observe([]loadSample{
		sampleAt(0, sec(3), 1000*time.Millisecond, map[string]partCounters{"a": {2000, 1000}}),
		sampleAt(1, sec(3), 100*time.Millisecond, map[string]partCounters{"b": {1000, 0}}),
	})
	r = m.report(2)
	if r.Window != 2*time.Second || !near(r.Partitions[0].BytesInPerSec, 500) || !near(r.Partitions[1].BytesInPerSec, 500) {
		t.Fatalf("after the window slid: %+v", r)
	}
	// A deleted partition is not reported.
	m.observe([]loadSample{sampleAt(0, sec(4), time.Second, nil), sampleAt(1, sec(4), 0, nil)})
	if r := m.report(2); len(r.Partitions) != 0 {
		t.Fatalf("deleted partitions reported: %+v", r.Partitions)
	}
}

func view(parts ...PartitionLoad) PlacementView {
	v := PlacementView{Cores: make([]CoreLoad, 3), Partitions: parts}
	for i := range v.Cores {
		v.Cores[i].Core = reactor.CoreID(i)
	}
	for _, p := range parts {
		v.Cores[p.Core].BytesInPerSec += p.Load()
	}
	return v
}

func pl(topic string, core reactor.CoreID, load float64) PartitionLoad {
	return PartitionLoad{Topic: topic, Core: core, BytesInPerSec: load}
}

func TestPlanRebalance(t *testing.T) {
	all := func(PartitionLoad, reactor.CoreID) bool { return true }
	// Two busy partitions on core 0, cores 1 and 2 idle: one moves, to the
	// lowest idle core, and the plan stops once balanced.
	got, _ := planRebalance(view(pl("a", 0, 100), pl("b", 0, 100)), 0.1, 10, all)
	if want := []Move{{Topic: "a", From: 0, To: 1, Load: 100}}; !slices.Equal(got, want) {
		t.Fatalf("two on one core: %+v, want %+v", got, want)
	}
	// Hysteresis: moving b would lower the hottest core from 55 to 53,
	// less than the 10% margin, so nothing moves; with a 1% margin it does.
	near := view(pl("a", 0, 52), pl("b", 0, 3), pl("c", 1, 50), pl("d", 2, 50))
	if got, _ := planRebalance(near, 0.1, 10, all); len(got) != 0 {
		t.Fatalf("near balance moved %+v", got)
	}
	if got, _ := planRebalance(near, 0.01, 10, all); len(got) != 1 || got[0].Topic != "b" {
		t.Fatalf("1%% margin: %+v", got)
	}
	// Several moves until balanced.
	got, cut := planRebalance(view(pl("a", 0, 40), pl("b", 0, 30), pl("c", 0, 20), pl("d", 0, 10)), 0.1, 10, all)
	loads := make([]float64, 3)
	for _, p := range []PartitionLoad{pl("a", 0, 40), pl("b", 0, 30), pl("c", 0, 20), pl("d", 0, 10)} {
		c := p.Core
		for _, m := range got {
			if m.Topic == p.Topic {
				c = m.To
			}
		}
		loads[c] += p.Load()
	}
	if slices.Max(loads) > 40 || cut {
		t.Fatalf("four partitions on three cores: loads %v after %+v", loads, got)
	}
	// A partition that may not move stays; the limit on moves holds.
	got, _ = planRebalance(view(pl("a", 0, 100), pl("b", 0, 100)), 0.1, 10, func(p PartitionLoad, _ reactor.CoreID) bool { return p.Topic != "a" })
	if len(got) != 1 || got[0].Topic != "b" {
		t.Fatalf("with a pinned: %+v", got)
	}
	// A partition that may not go to core 1 goes to core 2.
	got, _ = planRebalance(view(pl("a", 0, 100), pl("b", 0, 100)), 0.1, 10, func(_ PartitionLoad, to reactor.CoreID) bool { return to != 1 })
	if len(got) != 1 || got[0].To != 2 {
		t.Fatalf("core 1 excluded: %+v", got)
	}
	// Past maxMoves: the plan stops and says a move was left.
	if got, cut := planRebalance(view(pl("a", 0, 40), pl("b", 0, 30), pl("c", 0, 20)), 0.1, 1, all); len(got) != 1 || !cut {
		t.Fatalf("maxMoves 1: %+v, cut %v", got, cut)
	}
}

// TestPlacementWeigh: with measured loads, new partitions go to the
// least-loaded cores and spread by the expected load each brings.
func TestPlacementWeigh(t *testing.T) {
	q := NewPlacement(3)
	q.Assign("t", 3)
	q.Weigh([]float64{300, 0, 100}, 100)
	got := q.Assign("new", 3)
	// core 1 (0) → 100; then cores 1 and 2 tie at 100, core 2 has fewer
	// partitions (1 vs 2) → 200; then core 1 (100) → 200.
	if want := []reactor.CoreID{1, 2, 1}; !slices.Equal(got, want) {
		t.Fatalf("weighted assign %v, want %v", got, want)
	}
}
