package topicconfig

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/strand-io/strand/shard"
)

// Every key with one value Kafka accepts and one it refuses. The test
// fails if a key of the table has no case here, so a new key cannot
// land unvalidated.
var validationCases = map[string]struct{ good, bad []string }{
	"cleanup.policy":                          {[]string{"delete", "compact", "compact,delete", "delete, compact", ""}, []string{"remove", "compact,", "Delete"}},
	"compression.gzip.level":                  {[]string{"-1", "1", "9"}, []string{"0", "10", "x"}},
	"compression.lz4.level":                   {[]string{"1", "9", "17"}, []string{"0", "18", "-1"}},
	"compression.type":                        {[]string{"producer", "uncompressed", "zstd", "lz4", "snappy", "gzip", " zstd "}, []string{"none", "GZIP", ""}},
	"compression.zstd.level":                  {[]string{"-131072", "3", "22"}, []string{"23", "-131073", "1.5"}},
	"delete.retention.ms":                     {[]string{"0", "86400000"}, []string{"-1", "x"}},
	"file.delete.delay.ms":                    {[]string{"0", "60000"}, []string{"-1"}},
	"flush.messages":                          {[]string{"1", maxLong}, []string{"0", "9223372036854775808"}},
	"flush.ms":                                {[]string{"0", maxLong}, []string{"-1"}},
	"follower.replication.throttled.replicas": {[]string{"", "*", "0:1", "0:1,1:2"}, []string{"0", "a:1", "0:1,"}},
	"index.interval.bytes":                    {[]string{"0", "4096"}, []string{"-1", "4294967296"}},
	"leader.replication.throttled.replicas":   {[]string{"*", "3:0"}, []string{"x"}},
	"local.retention.bytes":                   {[]string{"-2", "-1", "0", "100"}, []string{"-3"}},
	"local.retention.ms":                      {[]string{"-2", "1000"}, []string{"-3"}},
	"max.compaction.lag.ms":                   {[]string{"1", maxLong}, []string{"0"}},
	"max.message.bytes":                       {[]string{"0", "1048588", " 2048 "}, []string{"-1", "2147483648", "1MB"}},
	"message.downconversion.enable":           {[]string{"true", "false", "TRUE"}, []string{"yes", "1"}},
	"message.format.version":                  {[]string{"0.8.0", "0.10.2-IV0", "2.8", "3.0-IV1", "3.9"}, []string{"0.7.0", "4.0", "v2", "3.0-IVx", "3"}},
	"message.timestamp.after.max.ms":          {[]string{"0", "3600000"}, []string{"-1"}},
	"message.timestamp.before.max.ms":         {[]string{"0", maxLong}, []string{"-1"}},
	"message.timestamp.difference.max.ms":     {[]string{"0"}, []string{"-5"}},
	"message.timestamp.type":                  {[]string{"CreateTime", "LogAppendTime", " LogAppendTime "}, []string{"createtime", "Now"}},
	"min.cleanable.dirty.ratio":               {[]string{"0", "0.5", "1"}, []string{"-0.1", "1.01", "NaN", "half"}},
	"min.compaction.lag.ms":                   {[]string{"0", "1000"}, []string{"-1"}},
	"min.insync.replicas":                     {[]string{"1", "2"}, []string{"0", "-1"}},
	"preallocate":                             {[]string{"true", "false"}, []string{"on"}},
	"remote.copy.lag.bytes":                   {[]string{"-1", "0", "1048576"}, []string{"-2"}},
	"remote.copy.lag.ms":                      {[]string{"-1", "0", "60000"}, []string{"-2", "soon"}},
	"remote.log.copy.disable":                 {[]string{"true", "false"}, []string{"1"}},
	"remote.log.delete.on.disable":            {[]string{"true", "false"}, []string{"no"}},
	"remote.storage.enable":                   {[]string{"false", "FALSE"}, []string{"maybe"}},
	"retention.bytes":                         {[]string{"-1", "0", "-100", "1073741824"}, []string{"1GB", ""}},
	"retention.ms":                            {[]string{"-1", "0", "604800000"}, []string{"-2", "7d"}},
	"segment.bytes":                           {[]string{"14", "1048576", "1073741824"}, []string{"13", "2147483648"}},
	"segment.index.bytes":                     {[]string{"4", "10485760"}, []string{"3"}},
	"segment.jitter.ms":                       {[]string{"0", "1000"}, []string{"-1"}},
	"segment.ms":                              {[]string{"1", "604800000"}, []string{"0"}},
	PinnedCoresKey:                            {[]string{"", "0", "0,2", " 1 , 3"}, []string{"a", "-1", "0,,1", "99999"}},
	"unclean.leader.election.enable":          {[]string{"true", "false"}, []string{"t"}},
}

func TestValidateEveryKey(t *testing.T) {
	for _, k := range Keys() {
		c, ok := validationCases[k.Name]
		if !ok {
			t.Errorf("%s: no validation case", k.Name)
			continue
		}
		if err := Validate(k.Name, &k.Default); err != nil {
			t.Errorf("%s: default %q refused: %v", k.Name, k.Default, err)
		}
		if err := Validate(k.Name, nil); err != nil {
			t.Errorf("%s: nil (back to default) refused: %v", k.Name, err)
		}
		for _, v := range c.good {
			if err := Validate(k.Name, &v); err != nil {
				t.Errorf("%s=%q refused: %v", k.Name, v, err)
			}
		}
		for _, v := range c.bad {
			err := Validate(k.Name, &v)
			if !errors.Is(err, ErrInvalidValue) {
				t.Errorf("%s=%q: got %v, want ErrInvalidValue", k.Name, v, err)
				continue
			}
			if !strings.Contains(err.Error(), k.Name) {
				t.Errorf("%s=%q: message %q does not name the key", k.Name, v, err)
			}
		}
	}
	for name := range validationCases {
		if _, ok := Lookup(name); !ok {
			t.Errorf("case for %s, which the table lacks", name)
		}
	}
}

func TestValidateUnknownKey(t *testing.T) {
	v := "1"
	for _, name := range []string{"min.insync.replica", "log.retention.ms", "", "Retention.ms"} {
		err := Validate(name, &v)
		if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), `"`+name+`"`) {
			t.Errorf("%q: got %v, want ErrUnknownKey naming the key", name, err)
		}
	}
}

func TestRemoteStorageRefused(t *testing.T) {
	for _, v := range []string{"true", "True", " true"} {
		err := Validate("remote.storage.enable", &v)
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "tiered storage is not supported") ||
			!strings.Contains(err.Error(), "remote.storage.enable") {
			t.Errorf("%q: got %v", v, err)
		}
	}
}

func TestValidateSetCompactionLags(t *testing.T) {
	if err := ValidateSet(map[string]string{"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "5"}); !errors.Is(err, ErrInvalidValue) ||
		!strings.Contains(err.Error(), "max.compaction.lag.ms") {
		t.Fatalf("min > max: got %v", err)
	}
	if err := ValidateSet(map[string]string{"min.compaction.lag.ms": "5", "max.compaction.lag.ms": "5"}); err != nil {
		t.Fatalf("min == max: %v", err)
	}
	if err := ValidateSet(map[string]string{"max.compaction.lag.ms": "1"}); err != nil {
		t.Fatalf("default min (0) with max 1: %v", err)
	}
}

func TestTableShape(t *testing.T) {
	for _, k := range Keys() {
		if k.Type == 0 || k.Doc == "" || k.Strand == "" {
			t.Errorf("%s: type, doc and Strand's treatment are required", k.Name)
		}
		if k.Applied != (k.apply != nil) {
			t.Errorf("%s: Applied=%v but apply set=%v", k.Name, k.Applied, k.apply != nil)
		}
		// A key the log does not apply is either only reported, saying
		// why, or enforced elsewhere (replication), saying by whom.
		if !k.Applied && !strings.HasPrefix(k.Strand, "accepted and reported; ") && !strings.HasPrefix(k.Strand, "enforced by ") && k.Name != "remote.storage.enable" {
			t.Errorf("%s: not applied, so Strand must say it is accepted and reported and why, or what enforces it", k.Name)
		}
	}
}

// The keys that changed the log before this table keep doing so, with
// Kafka's defaults when not overridden.
func TestLogConfig(t *testing.T) {
	base := shard.Config{BufferBytes: 1 << 20, Preallocate: true, IndexIntervalBytes: 512}
	def := LogConfig(base, "/d", nil)
	want := base
	want.Dir, want.SegmentBytes, want.SegmentMs = "/d", 1<<30, 604800000
	want.RetentionBytes, want.RetentionMs, want.MaxBatchBytes = -1, 604800000, 1048588
	want.Cleanup, want.DeleteRetentionMs, want.MinCleanableDirtyRatio = shard.PolicyDelete, 86400000, 0.5
	want.MinCompactionLagMs, want.MaxCompactionLagMs = 0, math.MaxInt64
	want.TimestampBeforeMaxMs, want.TimestampAfterMaxMs = math.MaxInt64, math.MaxInt64
	if !reflect.DeepEqual(def, want) { // func fields are nil in both
		t.Fatalf("defaults:\n got %+v\nwant %+v", def, want)
	}
	got := LogConfig(base, "/d", map[string]string{
		"segment.bytes": "1048576", "segment.ms": "500", "retention.bytes": "4096", "retention.ms": "2000",
		"max.message.bytes": "2048", "message.timestamp.type": " LogAppendTime",
		"flush.messages": "1", "min.insync.replicas": "2", "compression.type": "zstd", "preallocate": "false",
		"index.interval.bytes": "100",
	})
	want.SegmentBytes, want.SegmentMs, want.RetentionBytes, want.RetentionMs = 1048576, 500, 4096, 2000
	want.MaxBatchBytes, want.LogAppendTime, want.Compression = 2048, true, shard.CompressionZstd
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("overrides:\n got %+v\nwant %+v", got, want)
	}
}

// A compact-only topic is never cleaned by retention, as in Kafka: with no
// cleaner yet, deleting its old segments by age would lose the latest value
// of every key not rewritten within retention.ms (issue 11's reproduction:
// cleanup.policy=compact, retention.ms=2000).
func TestLogConfigCompactKeepsEverything(t *testing.T) {
	for _, tc := range []struct {
		policy          string
		retMs, retBytes int64
		cleanup         shard.CleanupPolicy
	}{
		{"compact", 0, 0, shard.PolicyCompact},
		{"", 0, 0, shard.PolicyDelete},
		{"compact,delete", 2000, 4096, shard.PolicyCompactDelete},
		{"delete, compact", 2000, 4096, shard.PolicyCompactDelete},
		{"delete", 2000, 4096, shard.PolicyDelete},
	} {
		c := LogConfig(shard.Config{}, "/d", map[string]string{"cleanup.policy": tc.policy, "retention.ms": "2000", "retention.bytes": "4096", "segment.ms": "500"})
		if c.RetentionMs != tc.retMs || c.RetentionBytes != tc.retBytes || c.SegmentMs != 500 || c.Cleanup != tc.cleanup {
			t.Errorf("%s: retention %d ms %d bytes (segment.ms %d), want %d ms %d bytes", tc.policy, c.RetentionMs, c.RetentionBytes, c.SegmentMs, tc.retMs, tc.retBytes)
		}
	}
}

// The timestamp bounds resolve as Kafka 3.6+'s LogConfig does: before and
// after, unless left at their default, where the legacy difference
// applies; a bound exists once either is finite.
func TestLogConfigTimestampBounds(t *testing.T) {
	for _, tc := range []struct {
		set           map[string]string
		bound         bool
		before, after int64
	}{
		{nil, false, math.MaxInt64, math.MaxInt64},
		{map[string]string{"message.timestamp.before.max.ms": "1000"}, true, 1000, math.MaxInt64},
		{map[string]string{"message.timestamp.after.max.ms": "0"}, true, math.MaxInt64, 0},
		{map[string]string{"message.timestamp.difference.max.ms": "500"}, true, 500, 500},
		{map[string]string{"message.timestamp.difference.max.ms": "500", "message.timestamp.after.max.ms": "60000"}, true, 500, 60000},
	} {
		c := LogConfig(shard.Config{}, "/d", tc.set)
		if c.BoundTimestamps != tc.bound || c.TimestampBeforeMaxMs != tc.before || c.TimestampAfterMaxMs != tc.after {
			t.Errorf("%v: bound %v before %d after %d, want %v %d %d", tc.set, c.BoundTimestamps, c.TimestampBeforeMaxMs, c.TimestampAfterMaxMs, tc.bound, tc.before, tc.after)
		}
	}
}

func TestBrokerEntries(t *testing.T) {
	s := BrokerSettings{NodeID: 3, Listeners: "PLAINTEXT://127.0.0.1:9092", AdvertisedListeners: "PLAINTEXT://h:9092",
		LogDirs: "/data", NumPartitions: 4, AutoCreateTopics: true, SocketRequestBytes: 100 << 20, OffsetsPartitions: 8,
		IndexIntervalBytes: 4096, Static: map[string]bool{"broker.id": true, "node.id": true, "log.dirs": true}}
	got := map[string]Entry{}
	for _, e := range Broker(s, nil) {
		got[e.Name] = e
	}
	want := map[string]string{
		"log.retention.ms": "604800000", "log.retention.hours": "168", "log.retention.bytes": "-1",
		"log.segment.bytes": "1073741824", "log.roll.ms": "604800000", "log.roll.hours": "168",
		"num.partitions": "4", "auto.create.topics.enable": "true", "message.max.bytes": "1048588",
		"min.insync.replicas": "1", "default.replication.factor": "1", "compression.type": "producer",
		"log.cleanup.policy": "delete", "broker.id": "3", "node.id": "3", "listeners": "PLAINTEXT://127.0.0.1:9092",
		"advertised.listeners": "PLAINTEXT://h:9092", "log.dirs": "/data", "socket.request.max.bytes": "104857600",
	}
	for name, v := range want {
		e, ok := got[name]
		if !ok || e.Value != v {
			t.Errorf("%s: got %+v, want value %q", name, e, v)
		}
	}
	for name, e := range got {
		if wantStatic := s.Static[name]; e.IsDefault() == wantStatic || (e.Source == SourceStatic) != wantStatic {
			t.Errorf("%s: source %v, want static %v", name, e.Source, wantStatic)
		}
		if _, dyn := lookupDynamic(name); e.ReadOnly == dyn {
			t.Errorf("%s: read-only %v, dynamic %v", name, e.ReadOnly, dyn)
		}
		if e.Type == 0 || e.Doc == "" {
			t.Errorf("%s: type and doc are required", name)
		}
	}
}

func TestDescribe(t *testing.T) {
	all := Describe(map[string]string{"compression.type": "zstd"}, nil, nil)
	if len(all) != len(Keys()) {
		t.Fatalf("%d entries for %d keys", len(all), len(Keys()))
	}
	for _, e := range all {
		k, _ := Lookup(e.Name)
		if e.Name == "compression.type" {
			if e.Value != "zstd" || e.Source != SourceTopic {
				t.Errorf("override: %+v", e)
			}
		} else if e.Value != k.Default || !e.IsDefault() || e.Type != k.Type || e.Doc != k.Doc {
			t.Errorf("default: %+v", e)
		}
	}
	some := Describe(nil, nil, []string{"segment.ms", "no.such.key", "cleanup.policy"})
	if len(some) != 2 || some[0].Name != "cleanup.policy" || some[1].Name != "segment.ms" {
		t.Fatalf("named: %+v", some)
	}
	if b := Broker(BrokerSettings{}, []string{"log.dirs", "nope"}); len(b) != 1 || b[0].Name != "log.dirs" {
		t.Fatalf("broker named: %+v", b)
	}
}
