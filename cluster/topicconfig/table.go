package topicconfig

import (
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/strand-io/strand/shard"
)

// Key is one topic config: Kafka's definition and Strand's treatment.
type Key struct {
	Name    string
	Type    Type
	Default string // Kafka's default, which is Strand's; dynamic broker configs can override it (Inherited)
	Doc     string
	// Applied: the value changes the partition log, through LogConfig.
	// Otherwise the key is accepted and reported, and Strand says why it
	// has no effect here.
	Applied bool
	Strand  string
	check   validator
	apply   func(c *shard.Config, v string)
}

const (
	noTiered     = "Strand has no tiered storage"
	noRecompress = "Strand compresses with each codec's default level (the level keys are not applied)"
)

// keys is the table, sorted by name.
var keys = []Key{
	{Name: "cleanup.policy", Type: TypeList, Default: "delete", check: listOf("compact", "delete"),
		Doc:     "delete removes old segments by retention.ms and retention.bytes; compact keeps the latest record of each key",
		Applied: true,
		Strand: "shard.Config.Cleanup: compact keys are cleaned by each core's cleaner (shard/compact.go); without delete " +
			"(compact alone, or the empty list) retention.ms and retention.bytes delete nothing, as in Kafka",
		apply: func(c *shard.Config, v string) {
			c.Cleanup = shard.ParseCleanupPolicy(v)
			// Kafka applies retention only with the delete policy (shard's
			// retention checks Cleanup too; zeroing here keeps the log's
			// config honest for anything else that reads it).
			if !hasElement(v, "delete") {
				c.RetentionMs, c.RetentionBytes = 0, 0
			}
		}},
	{Name: "compression.gzip.level", Type: TypeInt, Default: "-1", check: levelOr(1, 9, -1),
		Doc: "gzip level when compression.type is gzip", Strand: "accepted and reported; " + noRecompress},
	{Name: "compression.lz4.level", Type: TypeInt, Default: "9", check: levelOr(1, 17, 9),
		Doc: "lz4 level when compression.type is lz4", Strand: "accepted and reported; " + noRecompress},
	{Name: "compression.type", Type: TypeString, Default: "producer", check: oneOf("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
		Doc: "final compression of the topic's batches; producer keeps the producer's codec", Applied: true,
		Strand: "shard.Config.Compression: a produced batch in another codec is recompressed before it is stored (control batches and replicated batches are kept as they are)",
		apply:  func(c *shard.Config, v string) { c.Compression = shard.ParseCompression(v) }},
	{Name: "compression.zstd.level", Type: TypeInt, Default: "3", check: levelOr(-131072, 22, 3),
		Doc: "zstd level when compression.type is zstd", Strand: "accepted and reported; " + noRecompress},
	{Name: "delete.retention.ms", Type: TypeLong, Default: "86400000", check: atLeast(0),
		Doc: "how long tombstones stay in a compacted topic", Applied: true, Strand: "shard.Config.DeleteRetentionMs",
		apply: func(c *shard.Config, v string) { c.DeleteRetentionMs = toInt(v) }},
	{Name: "file.delete.delay.ms", Type: TypeLong, Default: "60000", check: atLeast(0),
		Doc:    "delay before a deleted segment's files are removed",
		Strand: "accepted and reported; Strand removes a segment's files when retention drops it, or when the last read still using it ends"},
	{Name: "flush.messages", Type: TypeLong, Default: maxLong, check: atLeast(1),
		Doc:    "records between forced flushes",
		Strand: "accepted and reported; Strand fdatasyncs before every acknowledgement, and a flush interval never relaxes that"},
	{Name: "flush.ms", Type: TypeLong, Default: maxLong, check: atLeast(0),
		Doc:    "time between forced flushes",
		Strand: "accepted and reported; Strand fdatasyncs before every acknowledgement, and a flush interval never relaxes that"},
	{Name: "follower.replication.throttled.replicas", Type: TypeList, Default: "", check: throttledReplicas,
		Doc: "replicas throttled on the follower side", Strand: "accepted and reported; Strand throttles every follower outside the in-sync set by the broker's --replica-catchup-bytes-per-sec instead"},
	{Name: "index.interval.bytes", Type: TypeInt, Default: "4096", check: atLeast(0),
		Doc: "log bytes between offset index entries", Strand: "accepted and reported; the index interval is the broker's (4096 bytes), not a topic's"},
	{Name: "leader.replication.throttled.replicas", Type: TypeList, Default: "", check: throttledReplicas,
		Doc: "replicas throttled on the leader side", Strand: "accepted and reported; Strand throttles catch-up on the follower side (--replica-catchup-bytes-per-sec)"},
	{Name: "local.retention.bytes", Type: TypeLong, Default: "-2", check: atLeast(-2),
		Doc: "local size cap when tiered storage is on; -2 means retention.bytes", Strand: "accepted and reported; " + noTiered},
	{Name: "local.retention.ms", Type: TypeLong, Default: "-2", check: atLeast(-2),
		Doc: "local age cap when tiered storage is on; -2 means retention.ms", Strand: "accepted and reported; " + noTiered},
	{Name: "max.compaction.lag.ms", Type: TypeLong, Default: maxLong, check: atLeast(1),
		Doc: "longest a record stays uncompacted", Applied: true, Strand: "shard.Config.MaxCompactionLagMs",
		apply: func(c *shard.Config, v string) { c.MaxCompactionLagMs = toInt(v) }},
	{Name: "max.message.bytes", Type: TypeInt, Default: "1048588", check: atLeast(0),
		Doc: "largest record batch the topic accepts", Applied: true, Strand: "shard.Config.MaxBatchBytes: larger batches get MESSAGE_TOO_LARGE; 0 means the default",
		apply: func(c *shard.Config, v string) { c.MaxBatchBytes = int(toInt(v)) }},
	{Name: "message.downconversion.enable", Type: TypeBoolean, Default: "true", check: validator{},
		Doc: "down-convert fetched batches for old consumers (Kafka 3.x; a no-op in 4.x)", Strand: "accepted and reported; Strand serves only v2 batches and never down-converts"},
	{Name: "message.format.version", Type: TypeString, Default: "3.0-IV1", check: messageFormatVersion,
		Doc: "message format (Kafka 3.x; ignored for v2 formats, removed in 4.0)", Strand: "accepted and reported; Strand writes v2 batches only, as Kafka 3.x does"},
	{Name: "message.timestamp.after.max.ms", Type: TypeLong, Default: maxLong, check: atLeast(0),
		Doc:     "how far in the future a CreateTime timestamp may be (Kafka 4.0's default is 3600000)",
		Applied: true, Strand: "shard.Config.TimestampAfterMaxMs: a CreateTime batch with a record further ahead of the broker's clock gets INVALID_TIMESTAMP and nothing of it is stored; the default is Kafka 3.x's, no bound",
		apply: func(c *shard.Config, v string) { c.TimestampAfterMaxMs = toInt(v) }},
	{Name: "message.timestamp.before.max.ms", Type: TypeLong, Default: maxLong, check: atLeast(0),
		Doc:     "how far in the past a CreateTime timestamp may be",
		Applied: true, Strand: "shard.Config.TimestampBeforeMaxMs: a CreateTime batch with a record further behind the broker's clock gets INVALID_TIMESTAMP and nothing of it is stored",
		apply: func(c *shard.Config, v string) { c.TimestampBeforeMaxMs = toInt(v) }},
	{Name: "message.timestamp.difference.max.ms", Type: TypeLong, Default: maxLong, check: atLeast(0),
		Doc:     "largest difference between a CreateTime timestamp and the broker's clock (deprecated; Kafka 3.x)",
		Applied: true, Strand: "as in Kafka 3.6+, the bound before and after the broker's clock wherever message.timestamp.before.max.ms or .after.max.ms is left at its default",
		// Applied after the two above (the table is sorted), so it sees
		// their effective values, as Kafka's LogConfig resolves them.
		apply: func(c *shard.Config, v string) {
			d := toInt(v)
			if c.TimestampBeforeMaxMs == math.MaxInt64 {
				c.TimestampBeforeMaxMs = d
			}
			if c.TimestampAfterMaxMs == math.MaxInt64 {
				c.TimestampAfterMaxMs = d
			}
			c.BoundTimestamps = c.TimestampBeforeMaxMs != math.MaxInt64 || c.TimestampAfterMaxMs != math.MaxInt64
		}},
	{Name: "message.timestamp.type", Type: TypeString, Default: "CreateTime", check: oneOf("CreateTime", "LogAppendTime"),
		Doc: "CreateTime keeps the producer's timestamps; LogAppendTime stamps the broker's clock", Applied: true, Strand: "shard.Config.LogAppendTime",
		apply: func(c *shard.Config, v string) { c.LogAppendTime = strings.TrimSpace(v) == "LogAppendTime" }},
	{Name: "min.cleanable.dirty.ratio", Type: TypeDouble, Default: "0.5", check: between(0, 1),
		Doc: "dirty share of the log that triggers cleaning", Applied: true, Strand: "shard.Config.MinCleanableDirtyRatio (0 becomes the smallest positive ratio: shard reads 0 as its default)",
		apply: func(c *shard.Config, v string) {
			if r, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				c.MinCleanableDirtyRatio = max(r, 1e-9)
			}
		}},
	{Name: "min.compaction.lag.ms", Type: TypeLong, Default: "0", check: atLeast(0),
		Doc: "shortest time a record stays uncompacted", Applied: true, Strand: "shard.Config.MinCompactionLagMs",
		apply: func(c *shard.Config, v string) { c.MinCompactionLagMs = toInt(v) }},
	{Name: "min.insync.replicas", Type: TypeInt, Default: "1", check: atLeast(1),
		Doc:    "replicas that must have a write for acks=all to succeed",
		Strand: "enforced by the partition's leader: an acks=all produce with fewer in-sync replicas is refused (NOT_ENOUGH_REPLICAS); each in-sync replica has an acknowledged write fsynced"},
	{Name: "preallocate", Type: TypeBoolean, Default: "false", check: validator{},
		Doc: "preallocate segment files", Strand: "accepted and reported; preallocation is the broker's setting, not a topic's"},
	{Name: "remote.copy.lag.bytes", Type: TypeLong, Default: "0", check: atLeast(-1),
		Doc: "bytes a segment may wait before its copy to tiered storage (recent Kafka 4.x)", Strand: "accepted and reported; " + noTiered},
	{Name: "remote.copy.lag.ms", Type: TypeLong, Default: "0", check: atLeast(-1),
		Doc: "time a segment may wait before its copy to tiered storage (recent Kafka 4.x)", Strand: "accepted and reported; " + noTiered},
	{Name: "remote.log.copy.disable", Type: TypeBoolean, Default: "false", check: validator{},
		Doc: "stop copying segments to tiered storage (Kafka 3.9+)", Strand: "accepted and reported; " + noTiered},
	{Name: "remote.log.delete.on.disable", Type: TypeBoolean, Default: "false", check: validator{},
		Doc: "delete tiered data when tiering is turned off (Kafka 3.9+)", Strand: "accepted and reported; " + noTiered},
	{Name: "remote.storage.enable", Type: TypeBoolean, Default: "false", check: validator{},
		Doc: "tier the topic's segments to remote storage", Strand: "false is accepted; true is refused: " + noTiered},
	{Name: "retention.bytes", Type: TypeLong, Default: "-1", check: validator{text: "any long; negative is unlimited"},
		Doc: "per-partition size cap", Applied: true, Strand: "shard.Config.RetentionBytes: whole sealed segments are deleted past it; 0 or less is unlimited",
		apply: func(c *shard.Config, v string) { c.RetentionBytes = toInt(v) }},
	{Name: "retention.ms", Type: TypeLong, Default: "604800000", check: atLeast(-1),
		Doc: "age cap; -1 unlimited", Applied: true, Strand: "shard.Config.RetentionMs: whole sealed segments are deleted past it; 0 or less is unlimited",
		apply: func(c *shard.Config, v string) { c.RetentionMs = toInt(v) }},
	{Name: "segment.bytes", Type: TypeInt, Default: "1073741824", check: atLeast(14),
		Doc: "segment file size (Kafka 4.0 raises the minimum to 1048576)", Applied: true, Strand: "shard.Config.SegmentBytes",
		apply: func(c *shard.Config, v string) { c.SegmentBytes = toInt(v) }},
	{Name: "segment.index.bytes", Type: TypeInt, Default: "10485760", check: atLeast(4),
		Doc: "largest offset index file", Strand: "accepted and reported; Strand's sparse index grows with its segment and is not a preallocated file"},
	{Name: "segment.jitter.ms", Type: TypeLong, Default: "0", check: atLeast(0),
		Doc: "random reduction of segment.ms", Strand: "accepted and reported; segments roll at segment.ms exactly"},
	{Name: "segment.ms", Type: TypeLong, Default: "604800000", check: atLeast(1),
		Doc: "time before the active segment rolls", Applied: true, Strand: "shard.Config.SegmentMs",
		apply: func(c *shard.Config, v string) { c.SegmentMs = toInt(v) }},
	{Name: PinnedCoresKey, Type: TypeList, Default: "", check: coreList,
		Doc: "Strand only: the cores the topic's partitions may live on, as core ids (0,2); empty: any core",
		Strand: "accepted and reported; it changes placement, not the log: new partitions go to the least-loaded of these cores, " +
			"and moves and rebalances keep the topic on them; changing it moves no existing partition (strand placement move does)"},
	{Name: "unclean.leader.election.enable", Type: TypeBoolean, Default: "false", check: validator{},
		Doc: "let an out-of-sync replica become leader", Strand: "enforced by the metadata state machine (cluster/metadata/election.go): " +
			"when no in-sync replica is live, the first live replica leads and becomes the whole in-sync set; the topic's value, else the cluster-wide dynamic default (per-broker values are not used)"},
}

// PinnedCoresKey is Strand's own topic config pinning a topic to cores.
const PinnedCoresKey = "strand.cores"

// coreList accepts a comma-separated list of core ids (whether the broker
// has those cores is the broker's check).
var coreList = validator{text: "a list of core ids, e.g. 0,2; empty for any core", check: func(v string, _ float64) string {
	if strings.TrimSpace(v) == "" {
		return ""
	}
	for _, p := range strings.Split(v, ",") {
		if !isDigits(strings.TrimSpace(p)) || len(strings.TrimSpace(p)) > 4 {
			return "each element must be a core id (0, 1, ...)"
		}
	}
	return ""
}}

func init() {
	for i := range keys {
		if i > 0 && keys[i-1].Name >= keys[i].Name {
			panic("topicconfig: keys not sorted at " + keys[i].Name)
		}
	}
}

func hasElement(list, want string) bool {
	for _, e := range strings.Split(list, ",") {
		if strings.TrimSpace(e) == want {
			return true
		}
	}
	return false
}

func toInt(v string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	return n
}

// Keys returns every topic config key, sorted by name. The slice is the
// table itself: callers must not modify it.
func Keys() []Key { return keys }

// Names returns every topic config name, sorted.
func Names() []string {
	out := make([]string, len(keys))
	for i := range keys {
		out[i] = keys[i].Name
	}
	return out
}

// Lookup returns the key named name.
func Lookup(name string) (*Key, bool) {
	i := sort.Search(len(keys), func(i int) bool { return keys[i].Name >= name })
	if i < len(keys) && keys[i].Name == name {
		return &keys[i], true
	}
	return nil, false
}

// ValidValues is Kafka's "Valid Values" text for the key.
func (k *Key) ValidValues() string { return k.check.text }

// Validate checks one key and value. A nil value means "back to the
// default" and is valid for every known key.
func Validate(name string, value *string) error {
	k, ok := Lookup(name)
	if !ok {
		return &Error{Key: name, kind: ErrUnknownKey}
	}
	if value == nil {
		return nil
	}
	v := *value
	num, reason := parse(k.Type, v)
	if reason == "" && k.check.check != nil {
		reason = k.check.check(v, num)
	}
	if reason != "" {
		return &Error{Key: name, Value: v, Reason: reason, kind: ErrInvalidValue}
	}
	if name == "remote.storage.enable" && strings.EqualFold(strings.TrimSpace(v), "true") {
		return &Error{Key: name, Value: v, Reason: "tiered storage is not supported by Strand", kind: ErrUnsupported}
	}
	return nil
}

// ValidateSet checks the rules that span keys, on a topic's whole set of
// effective overrides (after Validate accepted each one): Kafka refuses
// min.compaction.lag.ms greater than max.compaction.lag.ms.
func ValidateSet(overrides map[string]string) error {
	lo, hi := Value(overrides, "min.compaction.lag.ms"), Value(overrides, "max.compaction.lag.ms")
	if toInt(lo) > toInt(hi) {
		return &Error{Key: "min.compaction.lag.ms", Value: lo, kind: ErrInvalidValue,
			Reason: "greater than max.compaction.lag.ms (" + hi + ")"}
	}
	return nil
}

// Value returns a topic's effective value for name: its override, or
// the default.
func Value(overrides map[string]string, name string) string {
	if v, ok := overrides[name]; ok {
		return v
	}
	if k, ok := Lookup(name); ok {
		return k.Default
	}
	return ""
}

// Entry is one config as DescribeConfigs reports it: its effective value
// and where that comes from.
type Entry struct {
	Name     string
	Value    string
	Source   Source
	ReadOnly bool // a broker config that cannot be altered at run time
	Type     Type
	Doc      string
	// Synonyms are the configs that set it, in precedence order: the
	// first is where Value comes from, the last the default.
	Synonyms []Synonym
}

// IsDefault reports whether the value is the default (DescribeConfigs
// v0's is_default).
func (e Entry) IsDefault() bool { return e.Source == SourceDefault }

// Describe returns a topic's effective configs for names (nil: every key),
// sorted by name: its override, else what it inherits from the dynamic
// broker configs, else the default. Names the table lacks are left out,
// as Kafka does.
func Describe(overrides map[string]string, inherited map[string]Inherited, names []string) []Entry {
	out := make([]Entry, len(keys))
	for i := range keys {
		k := &keys[i]
		e := Entry{Name: k.Name, Value: k.Default, Source: SourceDefault, Type: k.Type, Doc: k.Doc}
		in, inherits := inherited[k.Name]
		if inherits {
			e.Value, e.Source = in.Value, in.Source
		}
		if v, ok := overrides[k.Name]; ok {
			e.Value, e.Source = v, SourceTopic
			e.Synonyms = append(e.Synonyms, Synonym{k.Name, v, SourceTopic})
		}
		e.Synonyms = append(e.Synonyms, in.Synonyms...)
		e.Synonyms = append(e.Synonyms, Synonym{defaultName(k.Name), k.Default, SourceDefault})
		out[i] = e
	}
	return filter(out, names)
}

func filter(es []Entry, names []string) []Entry {
	if names == nil {
		return es
	}
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	out := es[:0]
	for _, e := range es {
		if want[e.Name] {
			out = append(out, e)
		}
	}
	return out
}

// LogConfig derives a partition log's settings from the broker's base
// settings (buffers, preallocation, index interval) and the topic's
// overrides, applying every Applied key's effective value.
// cleanup.policy goes last: it can turn off what retention.* set.
func LogConfig(base shard.Config, dir string, overrides map[string]string) shard.Config {
	c := base
	c.Dir = dir
	var policy *Key
	for i := range keys {
		switch {
		case keys[i].Name == "cleanup.policy":
			policy = &keys[i]
		case keys[i].apply != nil:
			keys[i].apply(&c, Value(overrides, keys[i].Name))
		}
	}
	policy.apply(&c, Value(overrides, policy.Name))
	return c
}
