package metadata

import (
	"slices"
	"testing"
)

func wantReplicas(t *testing.T, s *State, replicas []BrokerID, adding, removing []BrokerID) {
	t.Helper()
	p := part(t, s, "r", 0)
	if !slices.Equal(p.Replicas, replicas) || !slices.Equal(p.Adding, adding) || !slices.Equal(p.Removing, removing) {
		t.Fatalf("replicas %v adding %v removing %v; want %v, %v, %v", p.Replicas, p.Adding, p.Removing, replicas, adding, removing)
	}
	if len(p.Cores) != len(p.Replicas) {
		t.Fatalf("cores %v for replicas %v", p.Cores, p.Replicas)
	}
}

// catchUp is the leader's ChangePartition adding b to the in-sync set.
func catchUp(t *testing.T, s *State, b BrokerID) {
	t.Helper()
	p := part(t, s, "r", 0)
	mustApply(t, s, &ChangePartition{Topic: "r", LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch,
		Leader: p.Leader, ISR: append(slices.Clone(p.ISR), b)})
}

// TestReassignPartition: moving r-0 from [1 2 3] to [4 2 3]: the union is
// held (target first) until broker 4 is in sync, then the ChangePartition
// that puts it there completes the move in the same step; the removed
// leader hands over with a new leader epoch. Cancelling reverts.
func TestReassignPartition(t *testing.T) {
	setup := func(t *testing.T) *State {
		s := rf3(t, nil)
		mustApply(t, s, register(4, 2, ""))
		mustApply(t, s, &UnfenceBroker{ID: 4})
		return s
	}
	t.Run("complete", func(t *testing.T) {
		s := setup(t)
		mustApply(t, s, &ReassignPartition{Topic: "r", Target: []BrokerID{4, 2, 3}, Cores: []CoreID{1, 0, 0}})
		wantReplicas(t, s, []BrokerID{4, 2, 3, 1}, []BrokerID{4}, []BrokerID{1})
		if c, _ := part(t, s, "r", 0).CoreOf(4); c != 1 {
			t.Fatalf("new replica on core %d, want 1", c)
		}
		wantPartition(t, s, "r", 0, 1, 0, 1, 2, 3) // the old leader leads on
		catchUp(t, s, 4)
		wantReplicas(t, s, []BrokerID{4, 2, 3}, nil, nil)
		wantPartition(t, s, "r", 0, 4, 1, 2, 3, 4) // 1 removed: the first in-sync target replica leads
	})
	t.Run("cancel", func(t *testing.T) {
		s := setup(t)
		mustApply(t, s, &ReassignPartition{Topic: "r", Target: []BrokerID{4, 2, 3}, Cores: []CoreID{1, 0, 0}})
		mustApply(t, s, &ReassignPartition{Topic: "r"})
		wantReplicas(t, s, []BrokerID{2, 3, 1}, nil, nil)
		wantPartition(t, s, "r", 0, 1, 0, 1, 2, 3)
		if r := apply(t, s, &ReassignPartition{Topic: "r"}); r.Code != ErrNoReassignment {
			t.Fatalf("cancel without a reassignment: %v", r.Code)
		}
	})
	t.Run("cancel drops an added replica from the in-sync set", func(t *testing.T) {
		s := setup(t)
		mustApply(t, s, &ReassignPartition{Topic: "r", Target: []BrokerID{4, 1}, Cores: []CoreID{1, 0}})
		wantReplicas(t, s, []BrokerID{4, 1, 2, 3}, []BrokerID{4}, []BrokerID{2, 3})
		mustApply(t, s, &ReassignPartition{Topic: "r"})
		wantReplicas(t, s, []BrokerID{1, 2, 3}, nil, nil)
	})
	t.Run("a new target replaces the one in progress", func(t *testing.T) {
		s := setup(t)
		mustApply(t, s, &ReassignPartition{Topic: "r", Target: []BrokerID{4, 2, 3}, Cores: []CoreID{1, 0, 0}})
		mustApply(t, s, &ReassignPartition{Topic: "r", Target: []BrokerID{3, 4}, Cores: []CoreID{0, 0}})
		wantReplicas(t, s, []BrokerID{3, 4, 2, 1}, []BrokerID{4}, []BrokerID{2, 1})
		if c, _ := part(t, s, "r", 0).CoreOf(4); c != 0 {
			t.Fatalf("new replica on core %d, want the new target's 0", c)
		}
	})
	t.Run("a shrink or reorder in sync completes at once", func(t *testing.T) {
		s := setup(t)
		mustApply(t, s, &ReassignPartition{Topic: "r", Target: []BrokerID{3, 2}, Cores: []CoreID{0, 0}})
		wantReplicas(t, s, []BrokerID{3, 2}, nil, nil)
		wantPartition(t, s, "r", 0, 3, 1, 2, 3)
		mustApply(t, s, &ReassignPartition{Topic: "r", Target: []BrokerID{2, 3}, Cores: []CoreID{0, 0}})
		wantReplicas(t, s, []BrokerID{2, 3}, nil, nil)
		wantPartition(t, s, "r", 0, 3, 1, 2, 3) // a reorder moves no leader
	})
	t.Run("refused", func(t *testing.T) {
		s := setup(t)
		for _, c := range []*ReassignPartition{
			{Topic: "r", Target: []BrokerID{9}, Cores: []CoreID{0}},
			{Topic: "r", Target: []BrokerID{4, 4}, Cores: []CoreID{0, 0}},
			{Topic: "r", Target: []BrokerID{4}, Cores: []CoreID{5}},
			{Topic: "r", Target: []BrokerID{4}},
			{Topic: "r", Target: []BrokerID{}, Cores: []CoreID{}},
		} {
			if r := apply(t, s, c); r.Code != ErrInvalidReplicas && r.Code != ErrNoReassignment {
				t.Fatalf("%+v: %v", c, r.Code)
			}
		}
		if r := apply(t, s, &ReassignPartition{Topic: "r", Partition: 3, Target: []BrokerID{4}, Cores: []CoreID{0}}); r.Code != ErrUnknownPartition {
			t.Fatalf("unknown partition: %v", r.Code)
		}
		// Out of sync target only: nothing in sync would be left.
		shrunk(t, s)
		mustApply(t, s, &ReassignPartition{Topic: "r", Target: []BrokerID{4, 2}, Cores: []CoreID{0, 0}})
		wantReplicas(t, s, []BrokerID{4, 2, 1, 3}, []BrokerID{4}, []BrokerID{1, 3})
	})
}
