package metadata

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"maps"
	"testing"
)

func TestAlterBrokerConfigs(t *testing.T) {
	s := cluster3(t)
	format0 := snap(t, s)
	if format0[0] != snapshotFormat {
		t.Fatalf("a state without broker configs saved as format %d", format0[0])
	}
	v0 := s.View()
	mustApply(t, s, &AlterBrokerConfigs{Resource: "", Set: map[string]string{"log.retention.ms": "1000", "log.segment.bytes": "2048"}})
	mustApply(t, s, &AlterBrokerConfigs{Resource: "1", Set: map[string]string{"log.retention.ms": "5"}})
	mustApply(t, s, &AlterBrokerConfigs{Resource: "", Set: map[string]string{"log.cleanup.policy": "compact"}, Delete: []string{"log.segment.bytes"}})
	v := s.View()
	if got, want := v.BrokerConfigs(""), map[string]string{"log.retention.ms": "1000", "log.cleanup.policy": "compact"}; !maps.Equal(got, want) {
		t.Fatalf("default resource %v, want %v", got, want)
	}
	if got := v.BrokerConfigs("1"); !maps.Equal(got, map[string]string{"log.retention.ms": "5"}) {
		t.Fatalf("broker 1 %v", got)
	}
	if v0.BrokerConfigs("") != nil || len(v0.BrokerConfigResources()) != 0 {
		t.Fatal("an earlier view sees later broker configs")
	}
	if rs := v.BrokerConfigResources(); len(rs) != 2 || rs[0] != "" || rs[1] != "1" {
		t.Fatalf("resources %q", rs)
	}

	// Format 1 round-trips and recovers to the same state.
	b := snap(t, s)
	if b[0] != snapshotFormatBrokerConfigs {
		t.Fatalf("format %d with broker configs", b[0])
	}
	s2 := New()
	if err := s2.Recover(bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snap(t, s2), b) || !maps.Equal(s2.View().BrokerConfigs("1"), v.BrokerConfigs("1")) {
		t.Fatal("recovered state differs")
	}

	// Replace to nothing removes the resource; with none left the
	// snapshot is format 0 again, byte for byte what it was, but for the
	// version.
	mustApply(t, s, &AlterBrokerConfigs{Resource: "1", Replace: true})
	mustApply(t, s, &AlterBrokerConfigs{Resource: "", Delete: []string{"log.retention.ms", "log.cleanup.policy"}})
	if len(s.View().BrokerConfigResources()) != 0 || snap(t, s)[0] != snapshotFormat {
		t.Fatalf("resources %q left", s.View().BrokerConfigResources())
	}
	if v.BrokerConfigs("1") == nil {
		t.Fatal("a published view lost its broker configs")
	}

	for _, c := range []*AlterBrokerConfigs{
		{Resource: "01", Set: map[string]string{"a": "b"}},
		{Resource: "-1", Set: map[string]string{"a": "b"}},
		{Resource: "x", Set: map[string]string{"a": "b"}},
		{Resource: "", Replace: true, Delete: []string{"a"}},
		{Resource: "", Set: map[string]string{"a": "b"}, Delete: []string{"a"}},
		{Resource: "", Set: map[string]string{"": "b"}},
	} {
		before := snap(t, s)
		if r := s.Apply(c); r.Accepted() || !bytes.Equal(snap(t, s), before) {
			t.Errorf("%+v: accepted or changed the state (%v)", c, r)
		}
	}
}

// A format-1 snapshot must carry at least one resource with at least one
// key, so that one state has one encoding.
func TestBrokerConfigSnapshotIsCanonical(t *testing.T) {
	s := cluster3(t)
	mustApply(t, s, &AlterBrokerConfigs{Resource: "2", Set: map[string]string{"k": "v"}})
	good := snap(t, s)
	for i := range good {
		b := bytes.Clone(good)
		b[i] ^= 0x40
		if err := New().Recover(bytes.NewReader(b)); err == nil {
			t.Fatalf("flipped byte %d accepted", i)
		}
	}
	// An empty section, checksummed properly, is refused.
	v := s.View()
	e := encoder{}
	bare := *v
	bare.brokerConfigs = nil
	e.b = bare.AppendSnapshot(nil)
	e.b = e.b[:len(e.b)-4]
	e.b[0] = snapshotFormatBrokerConfigs
	e.uvarint(0)
	e.b = binary.BigEndian.AppendUint32(e.b, crc32.Checksum(e.b, castagnoli))
	if err := New().Recover(bytes.NewReader(e.b)); err == nil {
		t.Fatal("format 1 with no broker config resources accepted")
	}
}
