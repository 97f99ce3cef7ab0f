package cluster

import (
	"testing"

	"github.com/strand-io/strand/reactor"
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
