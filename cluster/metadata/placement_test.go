package metadata

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
)

func brokers(t *testing.T, racks ...string) *State {
	t.Helper()
	s := New()
	for i, r := range racks {
		mustApply(t, s, register(BrokerID(i+1), 2, r))
		mustApply(t, s, &UnfenceBroker{ID: BrokerID(i + 1)})
	}
	return s
}

func create(t *testing.T, s *State, name string, as []Assignment) {
	t.Helper()
	mustApply(t, s, &CreateTopic{Name: name, ID: tid(byte(s.View().NumTopics() + 1)), Partitions: as})
}

func counts(v *View) (replicas, leaders map[BrokerID]int) {
	replicas, leaders = map[BrokerID]int{}, map[BrokerID]int{}
	for _, n := range v.TopicNames() {
		tp, _ := v.Topic(n)
		for _, p := range tp.Partitions {
			leaders[p.Replicas[0]]++
			for _, r := range p.Replicas {
				replicas[r]++
			}
		}
	}
	return
}

func TestPlaceSpreadsEvenly(t *testing.T) {
	s := brokers(t, "", "", "")
	for i := range 4 {
		as, err := Place(s.View(), PlaceRequest{Partitions: 3, ReplicationFactor: 2})
		if err != nil {
			t.Fatal(err)
		}
		create(t, s, fmt.Sprint("t", i), as)
	}
	replicas, leaders := counts(s.View())
	for id := BrokerID(1); id <= 3; id++ {
		if replicas[id] != 8 || leaders[id] != 4 {
			t.Fatalf("broker %d: %d replicas, %d leaders; want 8 and 4 (%v %v)", id, replicas[id], leaders[id], replicas, leaders)
		}
	}
	// Each broker's replicas split over its two cores.
	perCore := map[[2]int]int{}
	for _, n := range s.View().TopicNames() {
		tp, _ := s.View().Topic(n)
		for _, p := range tp.Partitions {
			for i, r := range p.Replicas {
				perCore[[2]int{int(r), int(p.Cores[i])}]++
			}
		}
	}
	for k, n := range perCore {
		if n != 4 {
			t.Fatalf("broker %d core %d holds %d replicas, want 4 (%v)", k[0], k[1], n, perCore)
		}
	}
}

func TestPlaceFewestFirst(t *testing.T) {
	s := brokers(t, "", "", "")
	create(t, s, "busy", []Assignment{
		{Replicas: []BrokerID{1}, Cores: []CoreID{0}}, {Replicas: []BrokerID{1}, Cores: []CoreID{0}},
		{Replicas: []BrokerID{2}, Cores: []CoreID{0}}})
	as, err := Place(s.View(), PlaceRequest{Partitions: 2, ReplicationFactor: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Broker 3 holds nothing, so it comes first; then brokers 2 and 3 each
	// lead one partition and hold one replica, and the lower id wins. On
	// broker 2, core 0 is taken, so core 1.
	want := []Assignment{{Replicas: []BrokerID{3}, Cores: []CoreID{0}}, {Replicas: []BrokerID{2}, Cores: []CoreID{1}}}
	if !reflect.DeepEqual(as, want) {
		t.Fatalf("placed %+v, want %+v", as, want)
	}
}

func TestPlaceSkipsFencedBrokers(t *testing.T) {
	s := brokers(t, "", "", "")
	mustApply(t, s, &FenceBroker{ID: 2})
	as, err := Place(s.View(), PlaceRequest{Partitions: 4, ReplicationFactor: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if slices.Contains(a.Replicas, 2) {
			t.Fatalf("fenced broker placed: %+v", as)
		}
	}
	if _, err := Place(s.View(), PlaceRequest{Partitions: 1, ReplicationFactor: 3}); !errors.Is(err, ErrInvalidReplicationFactor) {
		t.Fatalf("rf 3 on 2 live brokers: %v", err)
	}
}

func TestPlaceRackAware(t *testing.T) {
	// Racks a, a, b, b: without racks the lowest ids 1 and 2 (both in a)
	// would pair up.
	s := brokers(t, "a", "a", "b", "b")
	as, err := Place(s.View(), PlaceRequest{Partitions: 8, ReplicationFactor: 2})
	if err != nil {
		t.Fatal(err)
	}
	rack := func(b BrokerID) string { br, _ := s.View().Broker(b); return br.Rack }
	for p, a := range as {
		if rack(a.Replicas[0]) == rack(a.Replicas[1]) {
			t.Fatalf("partition %d: replicas %v share rack %s", p, a.Replicas, rack(a.Replicas[0]))
		}
	}
	// Three replicas over two racks: both racks used, none twice while
	// avoidable.
	as, err = Place(s.View(), PlaceRequest{Partitions: 4, ReplicationFactor: 3})
	if err != nil {
		t.Fatal(err)
	}
	for p, a := range as {
		if rack(a.Replicas[0]) == rack(a.Replicas[1]) {
			t.Fatalf("partition %d: first two replicas %v share a rack", p, a.Replicas)
		}
	}
}

func TestPlaceExplicit(t *testing.T) {
	s := brokers(t, "", "", "")
	mustApply(t, s, &FenceBroker{ID: 3})
	as, err := Place(s.View(), PlaceRequest{Explicit: [][]BrokerID{{3, 1}, {1, 2}}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(as[0].Replicas, []BrokerID{3, 1}) || !slices.Equal(as[1].Replicas, []BrokerID{1, 2}) {
		t.Fatalf("explicit assignment not honoured: %+v", as)
	}
	// Broker 1's two replicas take different cores.
	if as[0].Cores[1] == as[1].Cores[0] {
		t.Fatalf("cores %+v", as)
	}
	bad := map[string]PlaceRequest{
		"unknown broker":    {Explicit: [][]BrokerID{{1, 9}}},
		"duplicate":         {Explicit: [][]BrokerID{{1, 1}}},
		"uneven":            {Explicit: [][]BrokerID{{1, 2}, {1}}},
		"empty":             {Explicit: [][]BrokerID{{}}},
		"count mismatch":    {Partitions: 3, Explicit: [][]BrokerID{{1}}},
		"no partitions":     {Explicit: [][]BrokerID{}},
		"partitions zero":   {Partitions: 0, ReplicationFactor: 1},
		"replication zero":  {Partitions: 1, ReplicationFactor: 0},
		"more than brokers": {Partitions: 1, ReplicationFactor: 4},
	}
	for name, req := range bad {
		if _, err := Place(s.View(), req); err == nil {
			t.Errorf("%s: placed", name)
		}
	}
	// A placement Place accepts, the state machine accepts.
	create(t, s, "x", as)
}

func TestPlaceIsDeterministic(t *testing.T) {
	s := brokers(t, "a", "b", "a", "c", "")
	create(t, s, "seed", []Assignment{{Replicas: []BrokerID{4, 5}, Cores: []CoreID{1, 1}}})
	first, err := Place(s.View(), PlaceRequest{Partitions: 20, ReplicationFactor: 3})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		again, _ := Place(s.View(), PlaceRequest{Partitions: 20, ReplicationFactor: 3})
		if !reflect.DeepEqual(first, again) {
			t.Fatal("placement differs between calls")
		}
	}
}
