package cluster

import (
	"cmp"
	"errors"
	"slices"
	"testing"

	"github.com/strand-io/strand/reactor"
	"github.com/strand-io/strand/wire"
)

// TestRehomeFewerCores: after a restart on fewer cores, partitions whose
// core is gone move to the least-loaded surviving cores, every other one
// stays where it was, and the load ends up even.
func TestRehomeFewerCores(t *testing.T) {
	s := newSnapshot(1, map[string]*Topic{})
	s = s.with("t", &Topic{Name: "t", Cores: placeNew(s, 4, 8)}) // two per core on 4 cores
	s = s.with("u", &Topic{Name: "u", Cores: placeNew(s, 4, 2)})
	next := rehomed(s, 2)
	if next == s {
		t.Fatal("nothing moved off cores 2 and 3")
	}
	load := map[reactor.CoreID]int{}
	for _, name := range next.names {
		for p, c := range next.topics[name].Cores {
			if c > 1 {
				t.Fatalf("%s/%d still on core %d", name, p, c)
			}
			if old := s.topics[name].Cores[p]; old <= 1 && old != c {
				t.Fatalf("%s/%d moved from surviving core %d to %d", name, p, old, c)
			}
			load[c]++
		}
	}
	if load[0] != 5 || load[1] != 5 {
		t.Fatalf("loads %d/%d, want 5/5", load[0], load[1])
	}
	if again := rehomed(next, 2); again != next {
		t.Fatal("rehoming a placement that fits changed it")
	}
}

func TestPlacementAssignSpreadsEvenly(t *testing.T) {
	p := NewPlacement(3)
	got := p.Assign("a", 4)
	if want := []reactor.CoreID{0, 1, 2, 0}; !slices.Equal(got, want) {
		t.Fatalf("a: %v, want %v", got, want)
	}
	// Loads are now 2,1,1: new partitions fill the least-loaded cores first,
	// lowest id on ties.
	got = p.Assign("b", 3)
	if want := []reactor.CoreID{1, 2, 0}; !slices.Equal(got, want) {
		t.Fatalf("b: %v, want %v", got, want)
	}
	for c := reactor.CoreID(0); c < 3; c++ {
		if p.LoadOf(c) < 2 || p.LoadOf(c) > 3 {
			t.Fatalf("core %d load %d: not even", c, p.LoadOf(c))
		}
	}
	// Assign is idempotent for placed partitions and extends a topic.
	again := p.Assign("a", 6)
	if !slices.Equal(again[:4], []reactor.CoreID{0, 1, 2, 0}) {
		t.Fatalf("re-assign moved partitions: %v", again)
	}
	if p.Len() != 9 {
		t.Fatalf("Len = %d, want 9", p.Len())
	}
}

func TestPlacementDeterministic(t *testing.T) {
	build := func() *Placement {
		p := NewPlacement(4)
		p.Assign("x", 7)
		p.Assign("y", 3)
		p.Assign("z", 5)
		return p
	}
	a, b := build(), build()
	for _, k := range a.sortedKeys() {
		ca, _ := a.Lookup(k.Topic, k.Partition)
		cb, _ := b.Lookup(k.Topic, k.Partition)
		if ca != cb {
			t.Fatalf("%v: %d vs %d", k, ca, cb)
		}
	}
}

func TestPlacementMoveAndRemove(t *testing.T) {
	p := NewPlacement(2)
	p.Assign("t", 2) // t/0→0, t/1→1
	v := p.Version()
	if err := p.Move("t", 0, 1); err != nil {
		t.Fatal(err)
	}
	if c, _ := p.Lookup("t", 0); c != 1 || p.LoadOf(0) != 0 || p.LoadOf(1) != 2 {
		t.Fatalf("after move: core %d loads %d/%d", c, p.LoadOf(0), p.LoadOf(1))
	}
	if p.Version() <= v {
		t.Fatal("Move did not bump the version")
	}
	if err := p.Move("t", 0, 2); !errors.Is(err, reactor.ErrNoCore) {
		t.Fatalf("move to core 2 of 2: %v", err)
	}
	if n := p.Remove("t"); n != 2 || p.Len() != 0 || p.LoadOf(1) != 0 {
		t.Fatalf("Remove = %d, Len %d, load %d", n, p.Len(), p.LoadOf(1))
	}
}

// sortedKeys returns the placed partitions ordered by (topic, partition).
func (p *Placement) sortedKeys() []wire.PartitionRef {
	keys := make([]wire.PartitionRef, 0, len(p.owner))
	for k := range p.owner {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b wire.PartitionRef) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return keys
}
