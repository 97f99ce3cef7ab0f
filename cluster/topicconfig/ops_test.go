package topicconfig

import (
	"errors"
	"maps"
	"reflect"
	"strings"
	"testing"

	"github.com/strand-io/strand/shard"
)

func sp(s string) *string { return &s }

func TestApplyTopicOps(t *testing.T) {
	cur := map[string]string{"retention.ms": "1000", "segment.ms": "500"}
	for _, tc := range []struct {
		name string
		ops  []Op
		want map[string]string
		kind error
		msg  string
	}{
		{"set and delete", []Op{{Name: "retention.ms", Value: sp("2000")}, {Name: "segment.ms", Kind: OpDelete}},
			map[string]string{"retention.ms": "2000"}, nil, ""},
		{"delete an unset key", []Op{{Name: "flush.ms", Kind: OpDelete}}, cur, nil, ""},
		{"append to the default", []Op{{Name: "cleanup.policy", Kind: OpAppend, Value: sp("compact")}},
			map[string]string{"retention.ms": "1000", "segment.ms": "500", "cleanup.policy": "delete,compact"}, nil, ""},
		{"append what is there", []Op{{Name: "cleanup.policy", Kind: OpAppend, Value: sp("delete")}},
			map[string]string{"retention.ms": "1000", "segment.ms": "500", "cleanup.policy": "delete"}, nil, ""},
		{"subtract to empty", []Op{{Name: "cleanup.policy", Kind: OpSubtract, Value: sp("delete")}},
			map[string]string{"retention.ms": "1000", "segment.ms": "500", "cleanup.policy": ""}, nil, ""},
		{"unknown key", []Op{{Name: "retention.mss", Value: sp("1")}}, nil, ErrUnknownKey, `unknown topic config "retention.mss"`},
		{"unknown key deleted", []Op{{Name: "nope", Kind: OpDelete}}, nil, ErrUnknownKey, `"nope"`},
		{"bad value", []Op{{Name: "retention.ms", Value: sp("soon")}}, nil, ErrInvalidValue, "retention.ms"},
		{"append a bad element", []Op{{Name: "cleanup.policy", Kind: OpAppend, Value: sp("shred")}}, nil, ErrInvalidValue, "cleanup.policy"},
		{"append to a long", []Op{{Name: "retention.ms", Kind: OpAppend, Value: sp("1")}}, nil, ErrInvalidValue, "append is not allowed"},
		{"subtract from a string", []Op{{Name: "compression.type", Kind: OpSubtract, Value: sp("zstd")}}, nil, ErrInvalidValue, "subtract is not allowed"},
		{"twice", []Op{{Name: "retention.ms", Value: sp("1")}, {Name: "retention.ms", Kind: OpDelete}}, nil, ErrInvalidRequest, "twice"},
		{"null set", []Op{{Name: "retention.ms"}}, nil, ErrInvalidRequest, "null"},
		{"unknown op", []Op{{Name: "retention.ms", Kind: 7, Value: sp("1")}}, nil, ErrInvalidRequest, "operation 7"},
		{"min lag above max", []Op{{Name: "min.compaction.lag.ms", Value: sp("10")}, {Name: "max.compaction.lag.ms", Value: sp("5")}}, nil, ErrInvalidValue, "greater than max.compaction.lag.ms"},
	} {
		before := maps.Clone(cur)
		got, err := ApplyTopicOps(cur, nil, tc.ops)
		if !maps.Equal(cur, before) {
			t.Fatalf("%s: cur modified", tc.name)
		}
		if tc.kind == nil {
			if err != nil || !maps.Equal(got, tc.want) {
				t.Errorf("%s: got %v, %v; want %v", tc.name, got, err, tc.want)
			}
			continue
		}
		if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: err %v, want %v containing %q", tc.name, err, tc.kind, tc.msg)
		}
	}
	// The cross-key rule sees what the topic inherits from the broker.
	inh := map[string]Inherited{"max.compaction.lag.ms": {Value: "5", Source: SourceDynamicDefault}}
	if _, err := ApplyTopicOps(nil, inh, []Op{{Name: "min.compaction.lag.ms", Value: sp("10")}}); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("min lag above the inherited max: %v", err)
	}
}

func TestApplyBrokerOps(t *testing.T) {
	cur := map[string]string{"log.retention.ms": "1000"}
	got, err := ApplyBrokerOps(cur, []Op{{Name: "log.segment.bytes", Value: sp("1048576")}, {Name: "log.cleanup.policy", Kind: OpAppend, Value: sp("compact")}}, false)
	if want := map[string]string{"log.retention.ms": "1000", "log.segment.bytes": "1048576", "log.cleanup.policy": "delete,compact"}; err != nil || !maps.Equal(got, want) {
		t.Fatalf("got %v %v, want %v", got, err, want)
	}
	got, err = ApplyBrokerOps(cur, []Op{{Name: "log.roll.ms", Value: sp("60000")}}, true)
	if want := map[string]string{"log.roll.ms": "60000"}; err != nil || !maps.Equal(got, want) {
		t.Fatalf("replace: got %v %v, want %v", got, err, want)
	}
	for _, tc := range []struct {
		op   Op
		kind error
		msg  string
	}{
		{Op{Name: "broker.id", Value: sp("7")}, ErrReadOnly, "broker config broker.id: cannot be updated dynamically"},
		{Op{Name: "log.dirs", Kind: OpDelete}, ErrReadOnly, "log.dirs"},
		{Op{Name: "num.io.threads", Value: sp("8")}, ErrUnknownKey, `unknown broker config "num.io.threads"`},
		{Op{Name: "retention.ms", Value: sp("8")}, ErrUnknownKey, `"retention.ms"`},
		{Op{Name: "log.retention.ms", Value: sp("-5")}, ErrInvalidValue, "for broker config log.retention.ms"},
		{Op{Name: "log.retention.hours", Value: sp("1.5")}, ErrInvalidValue, "log.retention.hours"},
		{Op{Name: "log.segment.bytes", Value: sp("3")}, ErrInvalidValue, "log.segment.bytes"},
		{Op{Name: "log.cleanup.policy", Value: sp("shred")}, ErrInvalidValue, "log.cleanup.policy"},
		{Op{Name: "log.retention.ms", Kind: OpAppend, Value: sp("1")}, ErrInvalidValue, "append is not allowed"},
	} {
		if _, err := ApplyBrokerOps(cur, []Op{tc.op}, false); !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%+v: err %v, want %v containing %q", tc.op, err, tc.kind, tc.msg)
		}
	}
}

func TestTopicDefaults(t *testing.T) {
	per := map[string]string{"log.retention.hours": "2", "log.cleanup.policy": "compact"}
	def := map[string]string{"log.retention.ms": "1000", "log.segment.bytes": "4096", "log.cleanup.policy": "delete", "log.roll.hours": "-3"}
	got := TopicDefaults(per, def)
	want := map[string]Inherited{
		// per-broker hours beat the default's ms; the synonyms list both
		"retention.ms":   {"7200000", SourceDynamicBroker, []Synonym{{"log.retention.hours", "2", SourceDynamicBroker}, {"log.retention.ms", "1000", SourceDynamicDefault}}},
		"cleanup.policy": {"compact", SourceDynamicBroker, []Synonym{{"log.cleanup.policy", "compact", SourceDynamicBroker}, {"log.cleanup.policy", "delete", SourceDynamicDefault}}},
		"segment.bytes":  {"4096", SourceDynamicDefault, []Synonym{{"log.segment.bytes", "4096", SourceDynamicDefault}}},
		"segment.ms":     {"-1", SourceDynamicDefault, []Synonym{{"log.roll.hours", "-3", SourceDynamicDefault}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	got = TopicDefaults(map[string]string{"log.retention.hours": "2", "log.retention.minutes": "3", "log.retention.ms": "4"}, nil)
	if got["retention.ms"].Value != "4" {
		t.Fatalf("ms must beat minutes and hours: %v", got)
	}
	if TopicDefaults(nil, nil) != nil {
		t.Fatal("no dynamic configs, yet something inherited")
	}
	// A topic override beats what it inherits; Describe says where each
	// value comes from.
	es := Describe(map[string]string{"cleanup.policy": "delete"}, TopicDefaults(per, def), []string{"cleanup.policy", "retention.ms", "segment.bytes", "flush.ms"})
	srcs := map[string]Source{}
	for _, e := range es {
		srcs[e.Name] = e.Source
	}
	if w := map[string]Source{"cleanup.policy": SourceTopic, "retention.ms": SourceDynamicBroker, "segment.bytes": SourceDynamicDefault, "flush.ms": SourceDefault}; !maps.Equal(srcs, w) {
		t.Fatalf("sources %v, want %v", srcs, w)
	}
	for _, e := range es {
		if e.Name != "cleanup.policy" {
			continue
		}
		// Kafka's order: the override, the dynamic broker configs, the
		// default under the broker config's name.
		want := []Synonym{{"cleanup.policy", "delete", SourceTopic}, {"log.cleanup.policy", "compact", SourceDynamicBroker},
			{"log.cleanup.policy", "delete", SourceDynamicDefault}, {"log.cleanup.policy", "delete", SourceDefault}}
		if !reflect.DeepEqual(e.Synonyms, want) {
			t.Fatalf("cleanup.policy synonyms %v, want %v", e.Synonyms, want)
		}
	}
	c := LogConfig(shard.Config{}, "/d", Merge(TopicDefaults(per, def), map[string]string{"segment.bytes": "8192"}))
	if c.RetentionMs != 0 || c.SegmentBytes != 8192 {
		t.Fatalf("compact-only inherited policy must switch retention off, override must win: %+v", c)
	}
}

func TestBrokerDynamicSources(t *testing.T) {
	s := BrokerSettings{Dynamic: map[string]string{"log.retention.ms": "5"}, DynamicDefault: map[string]string{"log.retention.ms": "6", "log.segment.bytes": "4096"}}
	got := map[string]Entry{}
	for _, e := range Broker(s, nil) {
		got[e.Name] = e
	}
	if e := got["log.retention.ms"]; e.Value != "5" || e.Source != SourceDynamicBroker || e.ReadOnly {
		t.Errorf("per-broker: %+v", e)
	}
	if e, want := got["log.retention.ms"], []Synonym{{"log.retention.ms", "5", SourceDynamicBroker}, {"log.retention.ms", "6", SourceDynamicDefault},
		{"log.retention.ms", "604800000", SourceDefault}}; !reflect.DeepEqual(e.Synonyms, want) {
		t.Errorf("synonyms %v, want %v", e.Synonyms, want)
	}
	if e := got["log.segment.bytes"]; e.Value != "4096" || e.Source != SourceDynamicDefault {
		t.Errorf("cluster default: %+v", e)
	}
	if e := got["log.roll.ms"]; e.Value != "604800000" || e.Source != SourceDefault {
		t.Errorf("unset: %+v", e)
	}
	if e := got["broker.id"]; !e.ReadOnly {
		t.Errorf("broker.id: %+v", e)
	}
	d := BrokerDefaults(s.DynamicDefault, nil)
	if len(d) != 2 || d[0].Name != "log.retention.ms" || d[0].Source != SourceDynamicDefault || d[1].Name != "log.segment.bytes" {
		t.Errorf("defaults resource: %+v", d)
	}
}
