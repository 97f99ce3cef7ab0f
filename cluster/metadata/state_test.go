package metadata

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestCommands(t *testing.T) {
	type check func(t *testing.T, s *State, r Result)
	leaderIs := func(topic string, p int32, leader BrokerID, epoch Epoch) check {
		return func(t *testing.T, s *State, r Result) {
			pp := part(t, s, topic, p)
			if pp.Leader != leader || pp.LeaderEpoch != epoch {
				t.Fatalf("%s-%d: leader %d epoch %d, want %d epoch %d", topic, p, pp.Leader, pp.LeaderEpoch, leader, epoch)
			}
		}
	}
	isrIs := func(topic string, p int32, isr ...BrokerID) check {
		return func(t *testing.T, s *State, r Result) {
			if got := part(t, s, topic, p).ISR; !slices.Equal(got, isr) {
				t.Fatalf("%s-%d: isr %v, want %v", topic, p, got, isr)
			}
		}
	}
	all := func(cs ...check) check {
		return func(t *testing.T, s *State, r Result) {
			for _, c := range cs {
				c(t, s, r)
			}
		}
	}
	fresh := func(t testing.TB) *State { return New() }
	rf1 := func(t testing.TB) *State {
		s := cluster3(t)
		mustApply(t, s, &CreateTopic{Name: "one", ID: tid(2), Partitions: []Assignment{{Replicas: []BrokerID{3}, Cores: []CoreID{1}}}})
		return s
	}
	noReplicas4 := func(t testing.TB) *State {
		s := cluster3(t)
		mustApply(t, s, register(4, 1, ""))
		return s
	}
	grown4 := func(t testing.TB) *State {
		s := cluster3(t)
		mustApply(t, s, &CreatePartitions{Name: "t", ID: tid(1), Partitions: []Assignment{
			{Replicas: []BrokerID{3}, Cores: []CoreID{1}}, {Replicas: []BrokerID{2}, Cores: []CoreID{0}}}})
		return s
	}
	p0 := []Assignment{{Replicas: []BrokerID{1}, Cores: []CoreID{0}}}

	cases := []struct {
		name  string
		setup func(t testing.TB) *State // nil: cluster3
		cmd   Command
		want  Code
		check check
	}{
		// brokers
		{"register new broker is fenced", fresh, register(7, 4, "a"), OK, func(t *testing.T, s *State, r Result) {
			b, ok := s.View().Broker(7)
			if !ok || !b.Fenced || b.Cores != 4 || b.Rack != "a" || b.LastHeartbeatMs != 1000 {
				t.Fatalf("broker %+v", b)
			}
		}},
		{"register negative id", fresh, register(-2, 1, ""), ErrInvalidArgument, nil},
		{"register empty address", fresh, &RegisterBroker{ID: 1, RaftAddr: "r", Cores: 1}, ErrInvalidArgument, nil},
		{"register zero cores", fresh, register(1, 0, ""), ErrInvalidArgument, nil},
		{"register long rack", fresh, register(1, 1, strings.Repeat("r", 256)), ErrInvalidArgument, nil},
		{"register address taken", nil, &RegisterBroker{ID: 9, KafkaAddr: "k1:9092", RaftAddr: "x", Cores: 1}, ErrBrokerConflict, nil},
		{"re-register fences and moves leadership", nil, register(1, 2, "b"), OK,
			all(leaderIs("t", 0, 2, 1), isrIs("t", 0, 2, 3), func(t *testing.T, s *State, r Result) {
				if b, _ := s.View().Broker(1); !b.Fenced || b.Rack != "b" {
					t.Fatalf("broker %+v", b)
				}
			})},
		{"re-register shrinking cores under replicas", nil, register(2, 1, ""), ErrBrokerConflict, nil},
		{"heartbeat", nil, &BrokerHeartbeat{ID: 2, NowMs: 5000}, OK, func(t *testing.T, s *State, r Result) {
			if b, _ := s.View().Broker(2); b.LastHeartbeatMs != 5000 {
				t.Fatalf("heartbeat %d", b.LastHeartbeatMs)
			}
		}},
		{"heartbeat unknown broker", nil, &BrokerHeartbeat{ID: 9}, ErrUnknownBroker, nil},
		{"fence moves leader to next in-sync replica", nil, &FenceBroker{ID: 2}, OK,
			all(leaderIs("t", 1, 3, 1), isrIs("t", 1, 3, 1), leaderIs("t", 0, 1, 0), isrIs("t", 0, 1, 3))},
		{"fence last replica leaves partition leaderless", rf1, &FenceBroker{ID: 3}, OK,
			all(leaderIs("one", 0, NoLeader, 1), isrIs("one", 0, 3))},
		{"fence unknown broker", nil, &FenceBroker{ID: 9}, ErrUnknownBroker, nil},
		{"unfence retakes leaderless partitions", func(t testing.TB) *State {
			s := rf1(t)
			mustApply(t, s, &FenceBroker{ID: 3})
			return s
		}, &UnfenceBroker{ID: 3}, OK, leaderIs("one", 0, 3, 2)},
		{"unfence unknown broker", nil, &UnfenceBroker{ID: 9}, ErrUnknownBroker, nil},
		{"remove broker that leads", nil, &RemoveBroker{ID: 1}, ErrBrokerInUse, nil},
		{"remove broker that holds a replica", func(t testing.TB) *State {
			s := cluster3(t)
			mustApply(t, s, &FenceBroker{ID: 3})
			return s
		}, &RemoveBroker{ID: 3}, ErrBrokerInUse, nil},
		{"remove idle broker", noReplicas4, &RemoveBroker{ID: 4}, OK, func(t *testing.T, s *State, r Result) {
			if _, ok := s.View().Broker(4); ok || s.View().NumBrokers() != 3 {
				t.Fatal("broker 4 still there")
			}
		}},
		{"remove unknown broker", nil, &RemoveBroker{ID: 9}, ErrUnknownBroker, nil},

		// topics
		{"create topic", nil, &CreateTopic{Name: "u", ID: tid(2), Internal: true, Partitions: []Assignment{
			{Replicas: []BrokerID{3, 1}, Cores: []CoreID{1, 0}}}}, OK,
			all(leaderIs("u", 0, 3, 0), isrIs("u", 0, 3, 1), func(t *testing.T, s *State, r Result) {
				if tp, ok := s.View().TopicByID(tid(2)); !ok || tp.Name != "u" || !tp.Internal {
					t.Fatalf("topic by id: %+v", tp)
				}
				if got := s.View().TopicNames(); !slices.Equal(got, []string{"t", "u"}) {
					t.Fatalf("names %v", got)
				}
			})},
		{"create topic led by first unfenced replica", noReplicas4, &CreateTopic{Name: "u", ID: tid(2),
			Partitions: []Assignment{{Replicas: []BrokerID{4, 2}, Cores: []CoreID{0, 0}}}}, OK, leaderIs("u", 0, 2, 0)},
		{"create topic on fenced brokers only", noReplicas4, &CreateTopic{Name: "u", ID: tid(2),
			Partitions: []Assignment{{Replicas: []BrokerID{4}, Cores: []CoreID{0}}}}, OK, leaderIs("u", 0, NoLeader, 0)},
		{"create duplicate topic", nil, &CreateTopic{Name: "t", ID: tid(2), Partitions: p0}, ErrTopicExists, nil},
		{"create duplicate topic id", nil, &CreateTopic{Name: "u", ID: tid(1), Partitions: p0}, ErrTopicExists, nil},
		{"create null topic id", nil, &CreateTopic{Name: "u", Partitions: p0}, ErrInvalidArgument, nil},
		{"create illegal name", nil, &CreateTopic{Name: "a/b", ID: tid(2), Partitions: p0}, ErrInvalidArgument, nil},
		{"create name too long", nil, &CreateTopic{Name: strings.Repeat("a", 250), ID: tid(2), Partitions: p0}, ErrInvalidArgument, nil},
		{"create no partitions", nil, &CreateTopic{Name: "u", ID: tid(2)}, ErrInvalidArgument, nil},
		{"create unknown broker in replicas", nil, &CreateTopic{Name: "u", ID: tid(2), Partitions: []Assignment{
			{Replicas: []BrokerID{1, 8}, Cores: []CoreID{0, 0}}}}, ErrInvalidReplicas, nil},
		{"create duplicate replicas", nil, &CreateTopic{Name: "u", ID: tid(2), Partitions: []Assignment{
			{Replicas: []BrokerID{1, 1}, Cores: []CoreID{0, 1}}}}, ErrInvalidReplicas, nil},
		{"create empty replicas", nil, &CreateTopic{Name: "u", ID: tid(2), Partitions: []Assignment{{}}}, ErrInvalidReplicas, nil},
		{"create core out of range", nil, &CreateTopic{Name: "u", ID: tid(2), Partitions: []Assignment{
			{Replicas: []BrokerID{1}, Cores: []CoreID{2}}}}, ErrInvalidReplicas, nil},
		{"create cores length mismatch", nil, &CreateTopic{Name: "u", ID: tid(2), Partitions: []Assignment{
			{Replicas: []BrokerID{1, 2}, Cores: []CoreID{0}}}}, ErrInvalidReplicas, nil},
		{"create empty config key", nil, &CreateTopic{Name: "u", ID: tid(2), Configs: map[string]string{"": "x"}, Partitions: p0}, ErrInvalidArgument, nil},
		{"delete topic", nil, &DeleteTopic{Name: "t", ID: tid(1)}, OK, func(t *testing.T, s *State, r Result) {
			if s.View().NumTopics() != 0 {
				t.Fatal("topic still there")
			}
			if _, ok := s.View().TopicByID(tid(1)); ok {
				t.Fatal("id still there")
			}
		}},
		{"delete topic any id", nil, &DeleteTopic{Name: "t"}, OK, nil},
		{"delete unknown topic", nil, &DeleteTopic{Name: "x"}, ErrUnknownTopic, nil},
		{"delete topic with another id", nil, &DeleteTopic{Name: "t", ID: tid(9)}, ErrUnknownTopic, nil},
		{"create partitions", nil, &CreatePartitions{Name: "t", ID: tid(1), Partitions: []Assignment{
			{Replicas: []BrokerID{3}, Cores: []CoreID{1}}}}, OK, all(leaderIs("t", 2, 3, 0), isrIs("t", 2, 3))},
		{"create partitions unknown topic", nil, &CreatePartitions{Name: "x", Partitions: p0}, ErrUnknownTopic, nil},
		{"create partitions other id", nil, &CreatePartitions{Name: "t", ID: tid(3), Partitions: p0}, ErrUnknownTopic, nil},
		{"create partitions none", nil, &CreatePartitions{Name: "t"}, ErrInvalidArgument, nil},
		{"create partitions bad replicas", nil, &CreatePartitions{Name: "t", Partitions: []Assignment{
			{Replicas: []BrokerID{5}, Cores: []CoreID{0}}}}, ErrInvalidReplicas, nil},
		{"shrink partitions", grown4, &ShrinkPartitions{Topic: "t", ID: tid(1), Count: 2}, OK, func(t *testing.T, s *State, r Result) {
			if tp, _ := s.View().Topic("t"); len(tp.Partitions) != 2 {
				t.Fatalf("%d partitions, want 2", len(tp.Partitions))
			}
			if _, ok := s.View().TopicByID(tid(1)); !ok {
				t.Fatal("the id is gone")
			}
		}},
		{"shrink partitions keeps the first ones untouched", grown4, &ShrinkPartitions{Topic: "t", ID: tid(1), Count: 3}, OK,
			all(leaderIs("t", 2, 3, 0), isrIs("t", 2, 3), func(t *testing.T, s *State, r Result) {
				if _, ok := s.View().Partition("t", 3); ok {
					t.Fatal("t-3 still there")
				}
			})},
		{"shrink partitions without id", grown4, &ShrinkPartitions{Topic: "t", Count: 2}, ErrInvalidArgument, nil},
		{"shrink partitions other id", grown4, &ShrinkPartitions{Topic: "t", ID: tid(3), Count: 2}, ErrUnknownTopic, nil},
		{"shrink partitions unknown topic", grown4, &ShrinkPartitions{Topic: "x", ID: tid(1), Count: 1}, ErrUnknownTopic, nil},
		{"shrink partitions to the same count", grown4, &ShrinkPartitions{Topic: "t", ID: tid(1), Count: 4}, ErrInvalidArgument, nil},
		{"shrink partitions grows", grown4, &ShrinkPartitions{Topic: "t", ID: tid(1), Count: 5}, ErrInvalidArgument, nil},
		{"shrink partitions to none", grown4, &ShrinkPartitions{Topic: "t", ID: tid(1), Count: 0}, ErrInvalidArgument, nil},
		{"shrink partitions negative", grown4, &ShrinkPartitions{Topic: "t", ID: tid(1), Count: -1}, ErrInvalidArgument, nil},
		{"alter configs merge and delete", nil, &AlterTopicConfigs{Name: "t", Set: map[string]string{"cleanup.policy": "compact"},
			Delete: []string{"retention.ms"}}, OK, func(t *testing.T, s *State, r Result) {
			tp, _ := s.View().Topic("t")
			if len(tp.Configs) != 1 || tp.Configs["cleanup.policy"] != "compact" {
				t.Fatalf("configs %v", tp.Configs)
			}
		}},
		{"alter configs replace", nil, &AlterTopicConfigs{Name: "t", Replace: true, Set: map[string]string{"a": "1"}}, OK,
			func(t *testing.T, s *State, r Result) {
				tp, _ := s.View().Topic("t")
				if len(tp.Configs) != 1 || tp.Configs["a"] != "1" {
					t.Fatalf("configs %v", tp.Configs)
				}
			}},
		{"alter configs set and delete one key", nil, &AlterTopicConfigs{Name: "t", Set: map[string]string{"a": "1"}, Delete: []string{"a"}}, ErrInvalidArgument, nil},
		{"alter configs replace with deletes", nil, &AlterTopicConfigs{Name: "t", Replace: true, Delete: []string{"a"}}, ErrInvalidArgument, nil},
		{"alter configs unknown topic", nil, &AlterTopicConfigs{Name: "x"}, ErrUnknownTopic, nil},

		// partitions
		{"shrink isr keeps leader epoch", nil, &ChangePartition{Topic: "t", Partition: 0, Leader: 1, ISR: []BrokerID{1, 2}}, OK,
			all(leaderIs("t", 0, 1, 0), isrIs("t", 0, 1, 2), func(t *testing.T, s *State, r Result) {
				if pe := part(t, s, "t", 0).PartitionEpoch; pe != 1 {
					t.Fatalf("partition epoch %d", pe)
				}
			})},
		{"change leader bumps epoch", nil, &ChangePartition{Topic: "t", Partition: 0, Leader: 3, ISR: []BrokerID{1, 3}}, OK,
			all(leaderIs("t", 0, 3, 1), isrIs("t", 0, 1, 3))},
		{"no leader", nil, &ChangePartition{Topic: "t", Partition: 0, Leader: NoLeader, ISR: []BrokerID{1}}, OK, leaderIs("t", 0, NoLeader, 1)},
		{"stale leader epoch", func(t testing.TB) *State {
			s := cluster3(t)
			mustApply(t, s, &ChangePartition{Topic: "t", Partition: 0, Leader: 2, ISR: []BrokerID{1, 2, 3}})
			return s
		}, &ChangePartition{Topic: "t", Partition: 0, LeaderEpoch: 0, PartitionEpoch: 1, Leader: 3, ISR: []BrokerID{3}}, ErrStaleEpoch, nil},
		{"leader epoch from the future", nil, &ChangePartition{Topic: "t", Partition: 0, LeaderEpoch: 1, Leader: 1, ISR: []BrokerID{1}}, ErrStaleEpoch, nil},
		{"stale partition epoch", func(t testing.TB) *State {
			s := cluster3(t)
			mustApply(t, s, &ChangePartition{Topic: "t", Partition: 0, Leader: 1, ISR: []BrokerID{1, 2}})
			return s
		}, &ChangePartition{Topic: "t", Partition: 0, Leader: 1, ISR: []BrokerID{1}}, ErrStaleEpoch, nil},
		{"leader not in isr", nil, &ChangePartition{Topic: "t", Partition: 0, Leader: 3, ISR: []BrokerID{1, 2}}, ErrInvalidISR, nil},
		{"isr not within replicas", func(t testing.TB) *State {
			s := cluster3(t)
			mustApply(t, s, register(4, 1, ""))
			return s
		}, &ChangePartition{Topic: "t", Partition: 0, Leader: 1, ISR: []BrokerID{1, 4}}, ErrInvalidISR, nil},
		{"empty isr", nil, &ChangePartition{Topic: "t", Partition: 0, Leader: NoLeader}, ErrInvalidISR, nil},
		{"duplicate isr", nil, &ChangePartition{Topic: "t", Partition: 0, Leader: 1, ISR: []BrokerID{1, 1}}, ErrInvalidISR, nil},
		{"fenced leader", func(t testing.TB) *State {
			s := cluster3(t)
			mustApply(t, s, &FenceBroker{ID: 3})
			return s
		}, &ChangePartition{Topic: "t", Partition: 0, LeaderEpoch: 0, PartitionEpoch: 1, Leader: 3, ISR: []BrokerID{1, 3}}, ErrInvalidISR, nil},
		{"unknown partition", nil, &ChangePartition{Topic: "t", Partition: 2, Leader: 1, ISR: []BrokerID{1}}, ErrUnknownPartition, nil},
		{"negative partition", nil, &ChangePartition{Topic: "t", Partition: -1, Leader: 1, ISR: []BrokerID{1}}, ErrUnknownPartition, nil},
		{"change partition unknown topic", nil, &ChangePartition{Topic: "x", Leader: 1, ISR: []BrokerID{1}}, ErrUnknownTopic, nil},
		{"move replica core", nil, &MoveReplicaCore{Topic: "t", Partition: 1, Broker: 3, Core: 0}, OK, func(t *testing.T, s *State, r Result) {
			p := part(t, s, "t", 1)
			if c, _ := p.CoreOf(3); c != 0 || p.PartitionEpoch != 1 {
				t.Fatalf("core %d epoch %d", c, p.PartitionEpoch)
			}
		}},
		{"move core of a broker without the replica", noReplicas4, &MoveReplicaCore{Topic: "t", Partition: 0, Broker: 4, Core: 0}, ErrInvalidReplicas, nil},
		{"move to core out of range", nil, &MoveReplicaCore{Topic: "t", Partition: 0, Broker: 1, Core: 2}, ErrInvalidReplicas, nil},
		{"move core unknown partition", nil, &MoveReplicaCore{Topic: "t", Partition: 5, Broker: 1}, ErrUnknownPartition, nil},

		// producer ids
		{"allocate producer ids", func(t testing.TB) *State {
			s := cluster3(t)
			mustApply(t, s, &AllocateProducerIDs{Broker: 1, Count: 1000})
			return s
		}, &AllocateProducerIDs{Broker: 2, Count: 10}, OK, func(t *testing.T, s *State, r Result) {
			if r.Value != 1000 || s.View().NextProducerID() != 1010 {
				t.Fatalf("block at %d, next %d", r.Value, s.View().NextProducerID())
			}
		}},
		{"allocate zero producer ids", nil, &AllocateProducerIDs{Broker: 1}, ErrInvalidArgument, nil},
		{"allocate producer ids unknown broker", nil, &AllocateProducerIDs{Broker: 9, Count: 1}, ErrUnknownBroker, nil},
		// every size limit, driven one past
		{"limit: cores", fresh, register(1, coresMax+1, ""), ErrInvalidArgument, nil},
		{"limit: address length", fresh, &RegisterBroker{ID: 1, KafkaAddr: strings.Repeat("a", addrLenMax+1), RaftAddr: "r", Cores: 1}, ErrInvalidArgument, nil},
		{"limit: replicas", nil, &CreateTopic{Name: "u", ID: tid(2), Partitions: []Assignment{
			{Replicas: make([]BrokerID, replicasMax+1), Cores: make([]CoreID, replicasMax+1)}}}, ErrInvalidReplicas, nil},
		{"limit: partitions", nil, &CreatePartitions{Name: "t", Partitions: make([]Assignment, partitionsMax-1)}, ErrInvalidArgument, nil},
		{"limit: config key", nil, &AlterTopicConfigs{Name: "t", Set: map[string]string{strings.Repeat("k", configKeyLenMax+1): "v"}}, ErrInvalidArgument, nil},
		{"limit: config value", nil, &AlterTopicConfigs{Name: "t", Set: map[string]string{"k": strings.Repeat("v", configValueLenMax+1)}}, ErrInvalidArgument, nil},
		{"limit: config value at the limit", nil, &AlterTopicConfigs{Name: "t", Set: map[string]string{"k": strings.Repeat("v", configValueLenMax)}}, OK, nil},
		{"limit: producer id block", nil, &AllocateProducerIDs{Broker: 1, Count: producerIDBlockMax + 1}, ErrInvalidArgument, nil},
		{"limit: producer id block at the limit", nil, &AllocateProducerIDs{Broker: 1, Count: producerIDBlockMax}, OK, nil},
		{"producer ids exhausted", func(t testing.TB) *State {
			s := cluster3(t)
			s.nextProducerID = math.MaxInt64 - 5
			return s
		}, &AllocateProducerIDs{Broker: 1, Count: 6}, ErrExhausted, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			setup := tc.setup
			if setup == nil {
				setup = cluster3
			}
			s := setup(t)
			r := apply(t, s, tc.cmd)
			if r.Code != tc.want {
				t.Fatalf("code %v (%s), want %v", r.Code, r.Message, tc.want)
			}
			if tc.check != nil {
				tc.check(t, s, r)
			}
			// Whatever the outcome, the state survives a snapshot.
			s2 := New()
			if err := s2.Recover(strings.NewReader(string(snap(t, s)))); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestApplyBytes(t *testing.T) {
	s := cluster3(t)
	v := s.Version()
	r, err := s.ApplyBytes([]byte{byte(KindFenceBroker), 0})
	if err != nil || r.Code != ErrMalformed || s.Version() != v {
		t.Fatalf("truncated command: %v %v", r, err)
	}
	if _, err := s.ApplyBytes([]byte{99, 0}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("unknown kind: %v", err)
	}
	if _, err := s.ApplyBytes([]byte{byte(KindFenceBroker), 1, 2}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("newer version: %v", err)
	}
	r, err = s.ApplyBytes(Encode(&FenceBroker{ID: 1}))
	if err != nil || !r.Accepted() || s.Version() != v+1 {
		t.Fatalf("fence: %v %v", r, err)
	}
}

// TestViewIsImmutable holds views across later commands: each must keep
// describing its own version, byte for byte.
func TestViewIsImmutable(t *testing.T) {
	s := cluster3(t)
	v1 := s.View()
	b1 := v1.AppendSnapshot(nil)
	mustApply(t, s, &MoveReplicaCore{Topic: "t", Partition: 1, Broker: 3, Core: 0})
	mustApply(t, s, &ChangePartition{Topic: "t", Partition: 1, PartitionEpoch: 1, Leader: 2, ISR: []BrokerID{2, 1}})
	mustApply(t, s, &FenceBroker{ID: 1})
	mustApply(t, s, &AlterTopicConfigs{Name: "t", Set: map[string]string{"x": "y"}})
	mustApply(t, s, &CreateTopic{Name: "a", ID: tid(5), Partitions: []Assignment{{Replicas: []BrokerID{2}, Cores: []CoreID{0}}}})
	mustApply(t, s, register(5, 1, ""))
	mustApply(t, s, &RemoveBroker{ID: 5})
	mustApply(t, s, &ChangePartition{Topic: "a", Leader: NoLeader, ISR: []BrokerID{2}})
	if got := v1.AppendSnapshot(nil); string(got) != string(b1) {
		t.Fatal("an old view changed")
	}
	if v1.Version() == s.View().Version() || s.View() != s.View() {
		t.Fatal("view not refreshed or not cached")
	}
	if s.View().NumTopics() != 2 || v1.NumTopics() != 1 {
		t.Fatalf("topics %d and %d", s.View().NumTopics(), v1.NumTopics())
	}
}

func TestRecoverRejectsBadSnapshots(t *testing.T) {
	s := cluster3(t)
	good := snap(t, s)
	want := string(good)
	for i := range good {
		b := []byte(want)
		b[i] ^= 0x40
		s2 := cluster3(t)
		before := snap(t, s2)
		if err := s2.Recover(strings.NewReader(string(b))); err == nil {
			t.Fatalf("flipped byte %d accepted", i)
		}
		if string(snap(t, s2)) != string(before) {
			t.Fatal("failed recover changed the state")
		}
	}
	if err := New().Recover(strings.NewReader(want[:len(want)-1])); err == nil {
		t.Fatal("truncated snapshot accepted")
	}
}
