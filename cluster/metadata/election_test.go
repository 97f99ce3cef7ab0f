package metadata

import (
	"bytes"
	"slices"
	"testing"
)

// rf3 is cluster3 plus topic "r" of one partition on [1 2 3], all in sync
// and led by 1, with the given config overrides.
func rf3(t testing.TB, configs map[string]string) *State {
	t.Helper()
	s := cluster3(t)
	mustApply(t, s, &CreateTopic{Name: "r", ID: tid(5), Configs: configs,
		Partitions: []Assignment{{Replicas: []BrokerID{1, 2, 3}, Cores: []CoreID{0, 0, 0}}}})
	return s
}

func wantPartition(t *testing.T, s *State, topic string, p int32, leader BrokerID, epoch Epoch, isr ...BrokerID) {
	t.Helper()
	pp := part(t, s, topic, p)
	if pp.Leader != leader || pp.LeaderEpoch != epoch || !slices.Equal(pp.ISR, isr) {
		t.Fatalf("%s-%d: leader %d epoch %d isr %v; want leader %d epoch %d isr %v", topic, p,
			pp.Leader, pp.LeaderEpoch, pp.ISR, leader, epoch, isr)
	}
}

// shrunk leaves "r"'s in-sync set to broker 1 alone, as a leader whose
// followers fell behind would have it.
func shrunk(t testing.TB, s *State) {
	t.Helper()
	p, _ := s.View().Partition("r", 0)
	mustApply(t, s, &ChangePartition{Topic: "r", LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, Leader: 1, ISR: []BrokerID{1}})
}

// Without unclean election, a partition whose in-sync set holds only a
// fenced broker stays leaderless; with it, the first live replica leads
// and becomes the whole in-sync set.
func TestFenceUncleanElection(t *testing.T) {
	t.Run("off by default", func(t *testing.T) {
		s := rf3(t, nil)
		shrunk(t, s)
		mustApply(t, s, &FenceBroker{ID: 1})
		wantPartition(t, s, "r", 0, NoLeader, 1, 1)
		// A returning out-of-sync replica does not lead either.
		mustApply(t, s, &FenceBroker{ID: 2})
		mustApply(t, s, &UnfenceBroker{ID: 2})
		wantPartition(t, s, "r", 0, NoLeader, 1, 1)
		mustApply(t, s, &UnfenceBroker{ID: 1})
		wantPartition(t, s, "r", 0, 1, 2, 1)
	})
	t.Run("topic enables it", func(t *testing.T) {
		s := rf3(t, map[string]string{UncleanKey: "true"})
		shrunk(t, s)
		before := s.View()
		mustApply(t, s, &FenceBroker{ID: 1})
		wantPartition(t, s, "r", 0, 2, 1, 2)
		got := UncleanElections(before, s.View())
		if len(got) != 1 || got[0] != (UncleanElection{Topic: "r", Partition: 0, Leader: 2, Epoch: 1}) {
			t.Fatalf("unclean elections %+v", got)
		}
	})
	t.Run("clean candidate preferred", func(t *testing.T) {
		s := rf3(t, map[string]string{UncleanKey: "true"})
		before := s.View()
		mustApply(t, s, &FenceBroker{ID: 1})
		wantPartition(t, s, "r", 0, 2, 1, 2, 3)
		if got := UncleanElections(before, s.View()); len(got) != 0 {
			t.Fatalf("clean election reported unclean: %+v", got)
		}
	})
	t.Run("cluster default enables it", func(t *testing.T) {
		s := rf3(t, nil)
		mustApply(t, s, &AlterBrokerConfigs{Resource: "", Set: map[string]string{UncleanKey: "true"}})
		shrunk(t, s)
		mustApply(t, s, &FenceBroker{ID: 1})
		wantPartition(t, s, "r", 0, 2, 1, 2)
	})
	t.Run("topic override beats the default", func(t *testing.T) {
		s := rf3(t, map[string]string{UncleanKey: "false"})
		mustApply(t, s, &AlterBrokerConfigs{Resource: "", Set: map[string]string{UncleanKey: "true"}})
		shrunk(t, s)
		mustApply(t, s, &FenceBroker{ID: 1})
		wantPartition(t, s, "r", 0, NoLeader, 1, 1)
	})
	t.Run("per-broker config does not count", func(t *testing.T) {
		s := rf3(t, nil)
		mustApply(t, s, &AlterBrokerConfigs{Resource: "2", Set: map[string]string{UncleanKey: "true"}})
		shrunk(t, s)
		mustApply(t, s, &FenceBroker{ID: 1})
		wantPartition(t, s, "r", 0, NoLeader, 1, 1)
	})
	t.Run("enabling it later elects", func(t *testing.T) {
		s := rf3(t, nil)
		shrunk(t, s)
		mustApply(t, s, &FenceBroker{ID: 1})
		mustApply(t, s, &AlterTopicConfigs{Name: "r", Set: map[string]string{UncleanKey: "true"}})
		wantPartition(t, s, "r", 0, 2, 2, 2)
	})
	t.Run("a returning replica is elected when enabled", func(t *testing.T) {
		s := rf3(t, map[string]string{UncleanKey: "true"})
		shrunk(t, s)
		mustApply(t, s, &FenceBroker{ID: 2})
		mustApply(t, s, &FenceBroker{ID: 3})
		mustApply(t, s, &FenceBroker{ID: 1})
		wantPartition(t, s, "r", 0, NoLeader, 1, 1)
		mustApply(t, s, &UnfenceBroker{ID: 3})
		wantPartition(t, s, "r", 0, 3, 2, 3)
	})
}

// A broker that registers with a new data dir id leaves every in-sync set
// before it could lead: leadership moves to another in-sync replica, a
// partition it was the last in-sync replica of stays leaderless with an
// empty in-sync set, and unfencing it gives it nothing to lead.
func TestRegisterWithNewLogDir(t *testing.T) {
	reg := func(id BrokerID, dir uint64) *RegisterBroker {
		r := register(id, 2, "")
		r.LogDirID = dir
		return r
	}
	setup := func(t *testing.T, configs map[string]string) *State {
		s := New()
		for id := BrokerID(1); id <= 3; id++ {
			mustApply(t, s, reg(id, uint64(id)*100))
			mustApply(t, s, &UnfenceBroker{ID: id})
		}
		mustApply(t, s, &CreateTopic{Name: "r", ID: tid(5), Configs: configs, Partitions: []Assignment{
			{Replicas: []BrokerID{1, 2, 3}, Cores: []CoreID{0, 0, 0}},
			{Replicas: []BrokerID{1}, Cores: []CoreID{1}},
		}})
		return s
	}
	t.Run("same dir keeps its place", func(t *testing.T) {
		s := setup(t, nil)
		mustApply(t, s, reg(1, 100))
		wantPartition(t, s, "r", 0, 2, 1, 2, 3) // fenced, as any restart: leads nothing
		wantPartition(t, s, "r", 1, NoLeader, 1, 1)
		mustApply(t, s, &UnfenceBroker{ID: 1})
		wantPartition(t, s, "r", 1, 1, 2, 1)
	})
	t.Run("new dir leaves every in-sync set", func(t *testing.T) {
		s := setup(t, nil)
		mustApply(t, s, reg(1, 101))
		if b, _ := s.View().Broker(1); b.LogDirID != 101 || !b.Fenced {
			t.Fatalf("broker %+v", b)
		}
		wantPartition(t, s, "r", 0, 2, 1, 2, 3)
		wantPartition(t, s, "r", 1, NoLeader, 1)
		mustApply(t, s, &UnfenceBroker{ID: 1})
		wantPartition(t, s, "r", 1, NoLeader, 1)
		if p := part(t, s, "r", 0); !slices.Equal(p.Replicas, []BrokerID{1, 2, 3}) {
			t.Fatalf("replicas %v: the broker must stay a replica", p.Replicas)
		}
		// A fenced broker with a new dir: same outcome.
		mustApply(t, s, &FenceBroker{ID: 2})
		mustApply(t, s, reg(2, 201))
		wantPartition(t, s, "r", 0, 3, 2, 3)
	})
	t.Run("new dir with unclean election", func(t *testing.T) {
		s := setup(t, map[string]string{UncleanKey: "true"})
		mustApply(t, s, reg(1, 101))
		wantPartition(t, s, "r", 1, NoLeader, 1) // no other replica to elect
		mustApply(t, s, &UnfenceBroker{ID: 1})
		wantPartition(t, s, "r", 1, 1, 2, 1)
	})
	t.Run("a registration without a dir id is no new dir", func(t *testing.T) {
		s := setup(t, nil)
		mustApply(t, s, reg(1, 0))
		if b, _ := s.View().Broker(1); b.LogDirID != 100 {
			t.Fatalf("dir id %d, want the recorded 100", b.LogDirID)
		}
		wantPartition(t, s, "r", 1, NoLeader, 1, 1)
	})
	t.Run("a broker from before dir ids adopts its first", func(t *testing.T) {
		s := cluster3(t) // registered without dir ids
		mustApply(t, s, &CreateTopic{Name: "one", ID: tid(6), Partitions: []Assignment{{Replicas: []BrokerID{1}, Cores: []CoreID{0}}}})
		mustApply(t, s, reg(1, 7))
		wantPartition(t, s, "one", 0, NoLeader, 1, 1) // fenced as any restart, still in sync
		mustApply(t, s, &UnfenceBroker{ID: 1})
		mustApply(t, s, reg(1, 7))
		mustApply(t, s, &UnfenceBroker{ID: 1})
		wantPartition(t, s, "one", 0, 1, 4, 1)
	})
	t.Run("snapshot keeps dir ids and empty in-sync sets", func(t *testing.T) {
		s := setup(t, nil)
		mustApply(t, s, reg(1, 101))
		b := snap(t, s)
		s2 := New()
		if err := s2.Recover(bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(snap(t, s2), b) {
			t.Fatal("snapshot does not round-trip")
		}
		if br, _ := s2.View().Broker(1); br.LogDirID != 101 {
			t.Fatalf("dir id %d after recover", br.LogDirID)
		}
		// The same registration again is no new dir.
		mustApply(t, s2, reg(1, 101))
	})
}

func TestSnapshotFormats(t *testing.T) {
	// A state without dir ids or broker configs writes format 0, as
	// brokers before them did; an unknown section bit is refused.
	b := snap(t, cluster3(t))
	if b[0] != 0 {
		t.Fatalf("format %d", b[0])
	}
	s := cluster3(t)
	r := register(1, 2, "")
	r.LogDirID = 9
	mustApply(t, s, r)
	if b := snap(t, s); b[0] != snapshotFormatLogDirs {
		t.Fatalf("format %d with a dir id", b[0])
	}
	bad := append([]byte(nil), b...)
	bad[0] = 0x80
	if err := New().Recover(bytes.NewReader(bad)); err == nil {
		t.Fatal("unknown format accepted")
	}
}

// TestElectLeader: preferred election moves leadership back to the first
// replica once it is live and in sync, and says why it would not; unclean
// election brings back a partition whose in-sync replicas are gone.
func TestElectLeader(t *testing.T) {
	s := rf3(t, nil)
	r := apply(t, s, &ElectLeader{Topic: "r"})
	if r.Code != ErrElectionNotNeeded {
		t.Fatalf("preferred leader already leads: %v", r.Code)
	}
	mustApply(t, s, &FenceBroker{ID: 1})
	wantPartition(t, s, "r", 0, 2, 1, 2, 3)
	if r := apply(t, s, &ElectLeader{Topic: "r"}); r.Code != ErrPreferredNotAvailable {
		t.Fatalf("fenced preferred replica: %v", r.Code)
	}
	mustApply(t, s, &UnfenceBroker{ID: 1})
	if r := apply(t, s, &ElectLeader{Topic: "r"}); r.Code != ErrPreferredNotAvailable {
		t.Fatalf("preferred replica out of sync: %v", r.Code)
	}
	if s.View().PreferredElectable(part(t, s, "r", 0)) {
		t.Fatal("PreferredElectable disagrees with the command")
	}
	p := part(t, s, "r", 0)
	mustApply(t, s, &ChangePartition{Topic: "r", LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, Leader: 2, ISR: []BrokerID{2, 3, 1}})
	if !s.View().PreferredElectable(part(t, s, "r", 0)) {
		t.Fatal("PreferredElectable disagrees with the command")
	}
	mustApply(t, s, &ElectLeader{Topic: "r"})
	wantPartition(t, s, "r", 0, 1, 2, 2, 3, 1)
	if r := apply(t, s, &ElectLeader{Topic: "r", Partition: 1}); r.Code != ErrUnknownPartition {
		t.Fatalf("unknown partition: %v", r.Code)
	}
	if r := apply(t, s, &ElectLeader{Topic: "x"}); r.Code != ErrUnknownTopic {
		t.Fatalf("unknown topic: %v", r.Code)
	}

	// Unclean: not needed while a leader lives; brings back a partition
	// whose only in-sync replica is fenced, even with the config off.
	if r := apply(t, s, &ElectLeader{Topic: "r", Unclean: true}); r.Code != ErrElectionNotNeeded {
		t.Fatalf("unclean with a leader: %v", r.Code)
	}
	shrunk(t, s)
	mustApply(t, s, &FenceBroker{ID: 1})
	wantPartition(t, s, "r", 0, NoLeader, 3, 1)
	mustApply(t, s, &ElectLeader{Topic: "r", Unclean: true})
	wantPartition(t, s, "r", 0, 2, 4, 2)
	mustApply(t, s, &FenceBroker{ID: 2})
	mustApply(t, s, &FenceBroker{ID: 3})
	if r := apply(t, s, &ElectLeader{Topic: "r", Unclean: true}); r.Code != ErrEligibleNotAvailable {
		t.Fatalf("unclean with every replica fenced: %v", r.Code)
	}
}

// A leader's proposal to add a follower names the data dir its fetches
// came from. The follower's broker came back with a replaced data dir
// in between (it was not in the in-sync set, so the registration changed
// no partition and the compare-and-set on the epochs passes): its
// replica is empty, and letting it in puts a copy without the
// acknowledged records in the in-sync set. The replication simulator,
// on this state machine, lost acknowledged records that way (seed 231).
func TestChangePartitionRefusesMemberWithReplacedDataDir(t *testing.T) {
	s := New()
	for id := BrokerID(1); id <= 3; id++ {
		r := register(id, 2, "")
		r.LogDirID = 100 + uint64(id)
		mustApply(t, s, r)
		mustApply(t, s, &UnfenceBroker{ID: id})
	}
	mustApply(t, s, &CreateTopic{Name: "r", ID: tid(5),
		Partitions: []Assignment{{Replicas: []BrokerID{1, 2, 3}, Cores: []CoreID{0, 0, 0}}}})
	p := part(t, s, "r", 0)
	mustApply(t, s, &ChangePartition{Topic: "r", LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch,
		Leader: p.Leader, ISR: []BrokerID{p.Leader}})
	// Broker 3 restarts with a new data dir.
	r := register(3, 2, "")
	r.LogDirID = 203
	mustApply(t, s, r)
	mustApply(t, s, &UnfenceBroker{ID: 3})
	p = part(t, s, "r", 0)
	stale := &ChangePartition{Topic: "r", LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch,
		Leader: p.Leader, ISR: []BrokerID{p.Leader, 3}, ISRDirs: []uint64{100 + uint64(p.Leader), 103}}
	if res := apply(t, s, stale); res.Code != ErrInvalidISR {
		t.Fatalf("broker 3 joined on its replaced data dir's fetches: %v", res)
	}
	// Fetches from the new dir, or a proposal that does not know (0), do.
	fresh := *stale
	fresh.ISRDirs = []uint64{100 + uint64(p.Leader), 203}
	mustApply(t, s, &fresh)
	if p := part(t, s, "r", 0); !slices.Contains(p.ISR, 3) {
		t.Fatalf("broker 3 not in sync: %v", p.ISR)
	}
}
