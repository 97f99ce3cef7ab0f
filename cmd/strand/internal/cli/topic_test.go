package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestTopicLifecycle(t *testing.T) {
	topic := uniq("cli-topics")
	out := ok(t, "", "topic", "create", topic, "-p", "3", "--config", "retention.ms=3600000", "-c", "segment.bytes=1048576")
	if !strings.Contains(out, "TOPIC") || !strings.Contains(out, topic) || !strings.Contains(out, "created") {
		t.Fatalf("create table:\n%s", out)
	}
	fails(t, ExitFailed, "already exists", "", "topic", "create", topic)

	var listed []struct {
		Topic      string `json:"topic"`
		Partitions int    `json:"partitions"`
		Replicas   int    `json:"replication_factor"`
	}
	decode(t, ok(t, "", "topic", "list", "--json"), &listed)
	found := false
	for _, l := range listed {
		if l.Topic == topic {
			found = l.Partitions == 3 && l.Replicas == 1
		}
	}
	if !found {
		t.Fatalf("topic list --json: %+v, want %s with 3 partitions and 1 replica", listed, topic)
	}
	if out := ok(t, "", "topic", "list"); !strings.Contains(out, "PARTITIONS") || !strings.Contains(out, topic) {
		t.Fatalf("topic list table:\n%s", out)
	}

	ok(t, "a\nb\nc\n", "produce", topic, "--partition", "1")
	var desc []describedTopic
	decode(t, ok(t, "", "topic", "describe", topic, "--json"), &desc)
	if len(desc) != 1 || len(desc[0].Partitions) != 3 {
		t.Fatalf("describe --json: %+v", desc)
	}
	for _, p := range desc[0].Partitions {
		wantEnd := int64(0)
		if p.Partition == 1 {
			wantEnd = 3
		}
		if p.StartOffset != 0 || p.EndOffset != wantEnd || p.Leader < 0 || len(p.Replicas) != 1 || p.Error != "" {
			t.Fatalf("describe partition %+v: want start 0, end %d, a leader, one replica", p, wantEnd)
		}
	}
	if v, src := configOf(desc[0], "retention.ms"); v != "3600000" || src != "topic" {
		t.Fatalf("retention.ms = %q from %q, want 3600000 from topic", v, src)
	}
	out = ok(t, "", "topic", "describe", topic)
	for _, want := range []string{"TOPIC " + topic, "PARTITION", "LEADER", "START", "END", "CONFIG", "retention.ms", "3600000"} {
		if !strings.Contains(out, want) {
			t.Fatalf("describe table lacks %q:\n%s", want, out)
		}
	}

	// Strand serves IncrementalAlterConfigs, so the CLI uses it and the
	// overrides it was not asked to change stay (the AlterConfigs
	// fallback is config_test.go's, against a broker without it).
	var alt struct {
		API string `json:"api"`
	}
	decode(t, ok(t, "", "topic", "alter-config", topic, "--set", "retention.bytes=1000000", "--delete", "retention.ms", "--json"), &alt)
	if alt.API != "IncrementalAlterConfigs" {
		t.Fatalf("alter-config used %q, want IncrementalAlterConfigs", alt.API)
	}
	desc = nil
	decode(t, ok(t, "", "topic", "describe", topic, "--json"), &desc)
	for key, want := range map[string][2]string{
		"retention.bytes": {"1000000", "topic"},
		"retention.ms":    {"604800000", "default"},
		"segment.bytes":   {"1048576", "topic"},
	} {
		if v, src := configOf(desc[0], key); v != want[0] || src != want[1] {
			t.Fatalf("after alter-config %s = %q from %q, want %q from %q", key, v, src, want[0], want[1])
		}
	}
	if out := ok(t, "", "topic", "alter-config", topic, "--set", "retention.ms=1000"); !strings.Contains(out, "altered "+topic) {
		t.Fatalf("alter-config table:\n%s", out)
	}
	fails(t, ExitFailed, "retention.ms", "", "topic", "alter-config", topic, "--set", "retention.ms=soon")
	fails(t, ExitUsage, "nothing to change", "", "topic", "alter-config", topic)
	fails(t, ExitUsage, "KEY=VALUE", "", "topic", "alter-config", topic, "--set", "retention.ms")

	if out := ok(t, "", "topic", "delete", topic); !strings.Contains(out, "deleted") {
		t.Fatalf("delete table:\n%s", out)
	}
	r := fails(t, ExitFailed, "does not exist", "", "topic", "delete", topic, "--json")
	var del []struct {
		Topic string `json:"topic"`
		Error string `json:"error"`
	}
	decode(t, r.stdout, &del)
	if len(del) != 1 || del[0].Topic != topic || del[0].Error == "" {
		t.Fatalf("delete --json of a deleted topic: %+v", del)
	}
}

func TestTopicUnknown(t *testing.T) {
	for _, args := range [][]string{
		{"topic", "describe", "no-such-topic"},
		{"topic", "describe", "no-such-topic", "--json"},
		{"topic", "delete", "no-such-topic"},
		{"topic", "alter-config", "no-such-topic", "--set", "retention.ms=1"},
		{"produce", "no-such-topic"},
		{"consume", "no-such-topic"},
	} {
		r := fails(t, ExitFailed, `topic "no-such-topic" does not exist`, "x\n", args...)
		if !strings.Contains(r.stderr, "strand topic create") && !strings.Contains(r.stderr, "strand topic list") {
			t.Fatalf("strand %v: error does not say what to do: %s", args, r.stderr)
		}
	}
}

func configOf(d describedTopic, key string) (value, source string) {
	for _, c := range d.Configs {
		if c.Name == key {
			if c.Value != nil {
				value = *c.Value
			}
			return value, c.Source
		}
	}
	return "", ""
}

func decode(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("not JSON (%v):\n%s", err, s)
	}
}
