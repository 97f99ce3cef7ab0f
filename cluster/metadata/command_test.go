package metadata

import (
	"bytes"
	"reflect"
	"testing"
)

// sampleCommands has one command of every kind, with every field set.
func sampleCommands() []Command {
	return []Command{
		&RegisterBroker{ID: 3, KafkaAddr: "10.0.0.3:9092", RaftAddr: "10.0.0.3:7000", Rack: "eu-1a", Cores: 16, NowMs: 1733472000000},
		&RegisterBroker{ID: 4, KafkaAddr: "k", RaftAddr: "r", Cores: 1, NowMs: 1, LogDirID: 1 << 63},
		&BrokerHeartbeat{ID: 3, NowMs: -5},
		&FenceBroker{ID: 300},
		&UnfenceBroker{ID: 0},
		&RemoveBroker{ID: 2147483647},
		&CreateTopic{Name: "orders", ID: tid(7), Internal: true, Configs: map[string]string{"b": "2", "a": "1"},
			Partitions: []Assignment{{Replicas: []BrokerID{1, 2}, Cores: []CoreID{0, 3}}, {Replicas: []BrokerID{2}, Cores: []CoreID{1}}}},
		&DeleteTopic{Name: "orders", ID: tid(7)},
		&CreatePartitions{Name: "orders", Partitions: []Assignment{{Replicas: []BrokerID{1}, Cores: []CoreID{0}}}},
		&AlterTopicConfigs{Name: "orders", Replace: false, Set: map[string]string{"retention.ms": "-1"}, Delete: []string{"x", "y"}},
		&ChangePartition{Topic: "orders", Partition: 1, LeaderEpoch: 9, PartitionEpoch: 12, Leader: NoLeader, ISR: []BrokerID{2, 1}},
		&ChangePartition{Topic: "orders", Partition: 1, LeaderEpoch: 9, PartitionEpoch: 12, Leader: 2, ISR: []BrokerID{2, 1},
			ISRDirs: []uint64{0, 1 << 60}},
		&MoveReplicaCore{Topic: "orders", Partition: 0, Broker: 2, Core: 5},
		&AllocateProducerIDs{Broker: 1, Count: 1000},
		&ShrinkPartitions{Topic: "orders", ID: tid(7), Count: 3},
		&AlterBrokerConfigs{Resource: "3", Set: map[string]string{"log.retention.ms": "1000"}, Delete: []string{"log.segment.bytes"}},
		&ElectLeader{Topic: "orders", Partition: 7, Unclean: true},
		&ReassignPartition{Topic: "orders", Partition: 2, Target: []BrokerID{4, 1, 2}, Cores: []CoreID{3, 0, 1}},
	}
}

func TestCommandRoundTrip(t *testing.T) {
	kinds := map[Kind]bool{}
	for _, c := range sampleCommands() {
		b := Encode(c)
		d, err := DecodeCommand(b)
		if err != nil {
			t.Fatalf("%T: %v", c, err)
		}
		if !reflect.DeepEqual(c, d) {
			t.Fatalf("%T: decoded %+v, want %+v", c, d, c)
		}
		if !bytes.Equal(Encode(d), b) {
			t.Fatalf("%T: re-encoding differs", c)
		}
		// Every proper prefix is an error, never a panic.
		for i := 0; i < len(b); i++ {
			if _, err := DecodeCommand(b[:i]); err == nil {
				t.Fatalf("%T: prefix of %d bytes decoded", c, i)
			}
		}
		if _, err := DecodeCommand(append(b[:len(b):len(b)], 0)); err == nil {
			t.Fatalf("%T: trailing byte accepted", c)
		}
		kinds[c.Kind()] = true
	}
	for k := range kindNames {
		if !kinds[k] {
			t.Errorf("kind %v has no sample", k)
		}
		if newCommand(k) == nil || newCommand(k).Kind() != k {
			t.Errorf("kind %v: newCommand disagrees", k)
		}
	}
}

// The decoder accepts only the canonical form, so that every command has
// exactly one encoding.
func TestDecodeRejectsNonCanonical(t *testing.T) {
	cases := map[string][]byte{
		"long varint":    {byte(KindFenceBroker), 0, 0x82, 0x00}, // 1 as two bytes
		"bool 2":         append(append([]byte{byte(KindCreateTopic), 0, 1, 'a'}, make([]byte, 16)...), 2, 0, 0),
		"unsorted map":   {byte(KindAlterTopicConfigs), 0, 1, 't', 0, 2, 1, 'b', 0, 1, 'a', 0, 0},
		"duplicate key":  {byte(KindAlterTopicConfigs), 0, 1, 't', 0, 2, 1, 'a', 0, 1, 'a', 0, 0},
		"int32 overflow": {byte(KindFenceBroker), 0, 0x80, 0x80, 0x80, 0x80, 0x10},
		"huge count":     {byte(KindChangePartition), 0, 1, 't', 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"huge string":    {byte(KindDeleteTopic), 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"too short":      {byte(KindFenceBroker)},
		// RegisterBroker version 1 exists only for a non-zero dir id.
		"version 1, dir id 0": append(Encode(&RegisterBroker{ID: 1, KafkaAddr: "k", RaftAddr: "r", Cores: 1})[:1:1],
			append(append([]byte{1}, Encode(&RegisterBroker{ID: 1, KafkaAddr: "k", RaftAddr: "r", Cores: 1})[2:]...), 0)...),
		"version 2": append([]byte{byte(KindRegisterBroker), 2}, Encode(&RegisterBroker{ID: 1, KafkaAddr: "k", RaftAddr: "r", Cores: 1})[2:]...),
	}
	for name, b := range cases {
		if c, err := DecodeCommand(b); err == nil {
			t.Errorf("%s: decoded %+v", name, c)
		}
	}
	// The good twin of "unsorted map" decodes, so the cases above fail for
	// the reason their names give.
	if _, err := DecodeCommand([]byte{byte(KindAlterTopicConfigs), 0, 1, 't', 0, 2, 1, 'a', 0, 1, 'b', 0, 0}); err != nil {
		t.Fatal(err)
	}
}

func TestResultRoundTrip(t *testing.T) {
	for _, r := range []Result{{}, {Code: ErrStaleEpoch, Message: "t-0: epochs", Version: 77}, {Value: 1 << 40, Version: 1}} {
		got, err := DecodeResult(EncodeResult(r))
		if err != nil || got != r {
			t.Fatalf("%+v -> %+v, %v", r, got, err)
		}
	}
}

// FuzzDecodeCommand feeds arbitrary bytes to the decoder: it must never
// panic, allocate far beyond the input, or accept two encodings of one
// command.
func FuzzDecodeCommand(f *testing.F) {
	for _, c := range sampleCommands() {
		f.Add(Encode(c))
	}
	populated := snap(f, cluster3(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			return
		}
		if again := Encode(c); !bytes.Equal(again, b) {
			t.Fatalf("%x decoded to %+v, which encodes to %x", b, c, again)
		}
		// Applying any decodable command keeps the invariants, on an
		// empty state and on a populated one.
		full := New()
		if err := full.Recover(bytes.NewReader(populated)); err != nil {
			t.Fatal(err)
		}
		for _, s := range []*State{New(), full} {
			s.Apply(c)
			if err := s.Invariants(); err != nil {
				t.Fatalf("%+v broke an invariant: %v", c, err)
			}
		}
	})
}
