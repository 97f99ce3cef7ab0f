package metadata

import (
	"bytes"
	"fmt"
	"testing"
)

func tid(n byte) TopicID { return TopicID{15: n, 0: 0xAB} }

func snap(t testing.TB, s *State) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := s.Save(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// apply applies c and checks what every apply must keep: the invariants,
// a version bump exactly when accepted, and an untouched state (same
// snapshot bytes) when rejected.
func apply(t testing.TB, s *State, c Command) Result {
	t.Helper()
	before, v0 := snap(t, s), s.Version()
	r := s.Apply(c)
	if err := s.Invariants(); err != nil {
		t.Fatalf("after %T %+v (%v): %v", c, c, r, err)
	}
	if r.Accepted() {
		if s.Version() != v0+1 || r.Version != v0+1 {
			t.Fatalf("accepted %T: version %d -> %d (result %d)", c, v0, s.Version(), r.Version)
		}
		if r.Message != "" {
			t.Fatalf("accepted %T with message %q", c, r.Message)
		}
	} else {
		if s.Version() != v0 || r.Version != v0 {
			t.Fatalf("rejected %T: version %d -> %d", c, v0, s.Version())
		}
		if after := snap(t, s); !bytes.Equal(before, after) {
			t.Fatalf("rejected %T (%v) changed the state", c, r)
		}
		if r.Message == "" {
			t.Fatalf("rejected %T without a message", c)
		}
	}
	return r
}

func mustApply(t testing.TB, s *State, c Command) Result {
	t.Helper()
	r := apply(t, s, c)
	if !r.Accepted() {
		t.Fatalf("%T %+v: %v", c, c, r.Err())
	}
	return r
}

func register(id BrokerID, cores int32, rack string) *RegisterBroker {
	return &RegisterBroker{ID: id, KafkaAddr: fmt.Sprintf("k%d:9092", id), RaftAddr: fmt.Sprintf("r%d:7000", id),
		Rack: rack, Cores: cores, NowMs: 1000}
}

// cluster3 has brokers 1, 2, 3 (2 cores each), unfenced, and topic "t"
// with two partitions: [1 2 3] and [2 3 1].
func cluster3(t testing.TB) *State {
	t.Helper()
	s := New()
	for id := BrokerID(1); id <= 3; id++ {
		mustApply(t, s, register(id, 2, ""))
		mustApply(t, s, &UnfenceBroker{ID: id})
	}
	mustApply(t, s, &CreateTopic{Name: "t", ID: tid(1), Configs: map[string]string{"retention.ms": "1000"},
		Partitions: []Assignment{
			{Replicas: []BrokerID{1, 2, 3}, Cores: []CoreID{0, 1, 0}},
			{Replicas: []BrokerID{2, 3, 1}, Cores: []CoreID{1, 1, 1}},
		}})
	return s
}

func part(t testing.TB, s *State, topic string, p int32) *Partition {
	t.Helper()
	pp, ok := s.View().Partition(topic, p)
	if !ok {
		t.Fatalf("no %s-%d", topic, p)
	}
	return pp
}
