package perf

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBuiltinWorkloadsParse(t *testing.T) {
	names := BuiltinWorkloads()
	want := []string{"backlog-drain-10gb", "fixed-rate-latency", "max-throughput-1kb", "partitions-1000", "small-records-100b"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("built-in workloads %v, want %v", names, want)
	}
	for _, n := range names {
		// The files on disk and the embedded copies are the same files.
		w, err := LoadWorkload(filepath.Join("workloads", n+".yaml"))
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if w.Name != n || w.TestDuration() <= 0 || len(w.warnings) != 0 {
			t.Errorf("%s: name %q, duration %v, warnings %v", n, w.Name, w.TestDuration(), w.warnings)
		}
		if _, err := LoadWorkload(n); err != nil {
			t.Errorf("built-in %s by name: %v", n, err)
		}
	}
	w, _ := LoadWorkload("fixed-rate-latency")
	if w.ProducerRate != (Rate{Percent: 50}) || w.RateProbeSeconds != 30 {
		t.Errorf("fixed-rate-latency rate %+v probe %ds, want 50%% and 30s", w.ProducerRate, w.RateProbeSeconds)
	}
	w, _ = LoadWorkload("backlog-drain-10gb")
	if w.BacklogBytes() != 10e9 {
		t.Errorf("backlog %d bytes, want 10e9", w.BacklogBytes())
	}
	w, _ = LoadWorkload("partitions-1000")
	if w.PartitionsPerTopic != 1000 || w.KeyDistributor != KeyRoundRobin {
		t.Errorf("partitions-1000: %d partitions, keys %s", w.PartitionsPerTopic, w.KeyDistributor)
	}
}

// An OMB workload file, as OMB ships them, loads unchanged; defaults fill
// what it leaves out.
func TestParseOMBWorkload(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "payload"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "payload", "payload-1Kb.data"), make([]byte, 1024), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "omb.yaml")
	omb := `name: 1 topic / 16 partitions / 1Kb
topics: 1
partitionsPerTopic: 16
keyDistributor: "NO_KEY"
messageSize: 1024
payloadFile: "payload/payload-1Kb.data"
subscriptionsPerTopic: 1
consumerPerSubscription: 1
producersPerTopic: 1
producerRate: 50000
consumerBacklogSizeGB: 0
testDurationMinutes: 15
`
	if err := os.WriteFile(file, []byte(omb), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := LoadWorkload(file)
	if err != nil {
		t.Fatal(err)
	}
	if w.ProducerRate.PerSecond != 50000 || w.TestDuration() != 15*time.Minute || w.WarmupDuration() != time.Minute {
		t.Errorf("rate %v duration %v warmup %v", w.ProducerRate, w.TestDuration(), w.WarmupDuration())
	}
	if w.KeyDistributor != NoKey || w.LingerMs != defaultLingerMs || w.Idempotent || w.BacklogDrainRatio != 1 {
		t.Errorf("defaults: %+v", w)
	}
	if w.payloadPath != filepath.Join(dir, "payload", "payload-1Kb.data") {
		t.Errorf("payload path %q is not resolved against the workload's folder", w.payloadPath)
	}
}

func TestParseSecondsAndRates(t *testing.T) {
	base := "name: x\ntopics: 1\npartitionsPerTopic: 1\nmessageSize: 64\nsubscriptionsPerTopic: 0\nproducersPerTopic: 1\n"
	w, err := ParseWorkload([]byte(base+"producerRate: \"25%\"\ntestDurationSeconds: 3\nwarmupDurationSeconds: 0\n"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if w.ProducerRate.Percent != 25 || w.TestDuration() != 3*time.Second || w.WarmupDuration() != 0 {
		t.Errorf("rate %v duration %v warmup %v", w.ProducerRate, w.TestDuration(), w.WarmupDuration())
	}
	w, err = ParseWorkload([]byte(base+"producerRate: 0\ntestDurationMinutes: 1\nwarmupDurationMinutes: 0\n"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if w.WarmupDuration() != 0 {
		t.Errorf("warmupDurationMinutes: 0 gave a %v warm-up", w.WarmupDuration())
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]Rate{"0": {}, "50000": {PerSecond: 50000}, "50%": {Percent: 50}, " 12.5 % ": {Percent: 12.5}, "1e5": {PerSecond: 100000}} {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"-1", "fast", "0%", "-5%", "2000%", "1.5", "NaN", "x%"} {
		if _, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) accepted", in)
		}
	}
}

func TestParseBadWorkloads(t *testing.T) {
	const ok = "name: x\ntopics: 1\npartitionsPerTopic: 4\nmessageSize: 1024\nsubscriptionsPerTopic: 1\nconsumerPerSubscription: 1\nproducersPerTopic: 1\nproducerRate: 0\ntestDurationMinutes: 1\n"
	if _, err := ParseWorkload([]byte(ok), "ok.yaml"); err != nil {
		t.Fatalf("the base workload is bad: %v", err)
	}
	// set replaces (or adds) one line of the base workload.
	set := func(field, line string) string {
		var out []string
		for _, l := range strings.Split(strings.TrimSpace(ok), "\n") {
			if !strings.HasPrefix(l, field+":") {
				out = append(out, l)
			}
		}
		return strings.Join(append(out, line), "\n") + "\n"
	}
	cases := []struct {
		name, yaml, field, problem string
		line                       int
	}{
		{"unknown field", set("partitionsPerTopic", "partitionPerTopic: 4"), "partitionPerTopic", `unknown field (did you mean "partitionsPerTopic"?)`, 9},
		{"wrong type int", set("topics", "topics: many"), "topics", `want a whole number, got "many"`, 9},
		{"float for int", set("messageSize", "messageSize: 1.5"), "messageSize", `want a whole number, got "1.5"`, 9},
		{"negative rate", set("producerRate", "producerRate: -5"), "producerRate", "must not be negative", 9},
		{"bad percent", set("producerRate", `producerRate: "150x%"`), "producerRate", "want messages per second or a percentage", 9},
		{"zero partitions", set("partitionsPerTopic", "partitionsPerTopic: 0"), "partitionsPerTopic", "must be at least 1, got 0", 9},
		{"zero topics", set("topics", "topics: 0"), "topics", "must be at least 1, got 0", 9},
		{"tiny messages", set("messageSize", "messageSize: 4"), "messageSize", "must be at least 8", 9},
		{"bad key distributor", set("keyDistributor", "keyDistributor: HASH"), "keyDistributor", "want one of KEY_ROUND_ROBIN, NO_KEY, RANDOM_NANO", 10},
		{"bool", set("idempotent", "idempotent: maybe"), "idempotent", "want true or false", 10},
		{"list value", set("topics", "topics: [1, 2]"), "topics", "want a single value, got a list", 9},
		{"empty value", set("name", "name:"), "name", "has no value", 9},
		{"missing field", set("producersPerTopic", ""), "producersPerTopic", "is required", 0},
		{"missing duration", set("testDurationMinutes", ""), "testDurationMinutes", "is required (or testDurationSeconds)", 0},
		{"both durations", ok + "testDurationSeconds: 5\n", "testDurationSeconds", "not both", 10},
		{"zero duration", set("testDurationMinutes", "testDurationMinutes: 0"), "testDurationMinutes", "must be positive", 9},
		{"negative warmup", ok + "warmupDurationSeconds: -1\n", "warmupDurationSeconds", "must not be negative", 10},
		{"duplicate", ok + "topics: 2\n", "topics", "given twice (first on line 2)", 10},
		{"backlog without consumers", set("subscriptionsPerTopic", "subscriptionsPerTopic: 0") + "consumerBacklogSizeGB: 1\n", "consumerBacklogSizeGB", "needs subscriptionsPerTopic > 0", 10},
		{"negative backlog", ok + "consumerBacklogSizeGB: -1\n", "consumerBacklogSizeGB", "must not be negative", 10},
		{"drain ratio", ok + "backlogDrainRatio: 1.5\n", "backlogDrainRatio", "must be in (0, 1]", 10},
		{"no consumers per subscription", set("consumerPerSubscription", "consumerPerSubscription: 0"), "consumerPerSubscription", "must be at least 1", 9},
		{"replication factor", ok + "replicationFactor: 0\n", "replicationFactor", "must be at least 1, or -1", 10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseWorkload([]byte(c.yaml), "bad.yaml")
			var we *WorkloadError
			if !errors.As(err, &we) {
				t.Fatalf("err = %v, want a *WorkloadError", err)
			}
			if we.Field != c.field || !strings.Contains(we.Problem, c.problem) || we.Line != c.line || we.File != "bad.yaml" {
				t.Fatalf("got field %q line %d problem %q; want field %q line %d problem containing %q", we.Field, we.Line, we.Problem, c.field, c.line, c.problem)
			}
			if !strings.Contains(err.Error(), c.field) {
				t.Fatalf("message %q does not name the field", err)
			}
		})
	}
}

func TestParseNotAMapping(t *testing.T) {
	for _, in := range []string{"- a\n- b\n", "just text\n", "a: [\n"} {
		if _, err := ParseWorkload([]byte(in), "x.yaml"); err == nil || !strings.HasPrefix(err.Error(), "workload x.yaml") {
			t.Errorf("%q: err = %v", in, err)
		}
	}
}

func TestLoadWorkloadErrors(t *testing.T) {
	if _, err := LoadWorkload("no-such-workload"); err == nil || !strings.Contains(err.Error(), "built-in workloads: backlog-drain-10gb") {
		t.Errorf("missing file: %v", err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "w.yaml")
	y := "name: x\ntopics: 1\npartitionsPerTopic: 1\npayloadFile: missing.data\nsubscriptionsPerTopic: 0\nproducersPerTopic: 1\nproducerRate: 0\ntestDurationSeconds: 1\n"
	if err := os.WriteFile(file, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	var we *WorkloadError
	if _, err := LoadWorkload(file); !errors.As(err, &we) || we.Field != "payloadFile" {
		t.Errorf("missing payload file: %v", err)
	}
}

func TestIgnoredOMBFieldsWarn(t *testing.T) {
	const y = "name: x\ntopics: 1\npartitionsPerTopic: 1\nmessageSize: 64\nsubscriptionsPerTopic: 0\nproducersPerTopic: 1\nproducerRate: 0\ntestDurationSeconds: 1\nuseRandomizedPayloads: true\nrandomBytesRatio: 0.5\n"
	w, err := ParseWorkload([]byte(y), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(w.warnings) != 2 {
		t.Fatalf("warnings %v, want 2", w.warnings)
	}
}
