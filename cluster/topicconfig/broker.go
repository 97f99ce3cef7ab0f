package topicconfig

import (
	"sort"
	"strconv"
	"strings"
)

// BrokerSettings is what DescribeConfigs(BROKER) reports from: the node's
// settings as it runs them. Static names the broker configs (Kafka's
// names) that were set explicitly, by flag or config file; the others
// report DEFAULT_CONFIG unless a dynamic config sets them.
type BrokerSettings struct {
	NodeID              int32
	Rack                string // "" = none
	Listeners           string // PLAINTEXT://host:port
	AdvertisedListeners string
	LogDirs             string
	NumPartitions       int32
	ReplicationFactor   int16 // default.replication.factor
	AutoCreateTopics    bool
	SocketRequestBytes  int
	OffsetsPartitions   int32
	IndexIntervalBytes  int
	Preallocate         bool
	Static              map[string]bool
	// Dynamic are this broker's dynamic configs and DynamicDefault the
	// cluster-wide ones (IncrementalAlterConfigs on BROKER "<id>" and "").
	Dynamic, DynamicDefault map[string]string
}

// dynamicKey is a broker config that is the server default of a topic key
// and can be altered at run time, as Kafka's DynamicLogConfig can. Its
// value is the topic key's in unit ms/scale (log.retention.hours is
// retention.ms in hours). Without a dynamic value it reports the topic
// key's default in this table, so the two can never disagree.
type dynamicKey struct {
	broker, topic string
	scale         int64
}

// dynamicKeys is sorted by broker name. Kafka alters log.retention.hours,
// .minutes and log.roll.hours only in server.properties; Strand has no
// static config for them, so it accepts them dynamically too, with
// Kafka's precedence (ms, then minutes, then hours).
var dynamicKeys = []dynamicKey{
	{"compression.type", "compression.type", 1},
	{"log.cleaner.delete.retention.ms", "delete.retention.ms", 1},
	{"log.cleaner.max.compaction.lag.ms", "max.compaction.lag.ms", 1},
	{"log.cleaner.min.cleanable.ratio", "min.cleanable.dirty.ratio", 1},
	{"log.cleaner.min.compaction.lag.ms", "min.compaction.lag.ms", 1},
	{"log.cleanup.policy", "cleanup.policy", 1},
	{"log.index.size.max.bytes", "segment.index.bytes", 1},
	{"log.message.timestamp.after.max.ms", "message.timestamp.after.max.ms", 1},
	{"log.message.timestamp.before.max.ms", "message.timestamp.before.max.ms", 1},
	{"log.message.timestamp.difference.max.ms", "message.timestamp.difference.max.ms", 1},
	{"log.message.timestamp.type", "message.timestamp.type", 1},
	{"log.retention.bytes", "retention.bytes", 1},
	{"log.retention.hours", "retention.ms", 3_600_000},
	{"log.retention.minutes", "retention.ms", 60_000},
	{"log.retention.ms", "retention.ms", 1},
	{"log.roll.hours", "segment.ms", 3_600_000},
	{"log.roll.ms", "segment.ms", 1},
	{"log.segment.bytes", "segment.bytes", 1},
	{"log.segment.delete.delay.ms", "file.delete.delay.ms", 1},
	{"message.max.bytes", "max.message.bytes", 1},
	{"min.insync.replicas", "min.insync.replicas", 1},
	{"unclean.leader.election.enable", "unclean.leader.election.enable", 1},
}

func init() {
	for i := range dynamicKeys {
		if i > 0 && dynamicKeys[i-1].broker >= dynamicKeys[i].broker {
			panic("topicconfig: dynamicKeys not sorted at " + dynamicKeys[i].broker)
		}
		if _, ok := Lookup(dynamicKeys[i].topic); !ok {
			panic("topicconfig: dynamic broker key " + dynamicKeys[i].broker + " names no topic key")
		}
	}
}

func lookupDynamic(name string) (*dynamicKey, bool) {
	i := sort.Search(len(dynamicKeys), func(i int) bool { return dynamicKeys[i].broker >= name })
	if i < len(dynamicKeys) && dynamicKeys[i].broker == name {
		return &dynamicKeys[i], true
	}
	return nil, false
}

// type and default of a dynamic key, in its own unit.
func (d *dynamicKey) typeAndDefault() (Type, string) {
	k, _ := Lookup(d.topic)
	if d.scale == 1 {
		return k.Type, k.Default
	}
	return TypeInt, strconv.FormatInt(toInt(k.Default)/d.scale, 10)
}

// topicValue converts v, in d's unit, to the topic key's. A negative
// scaled value is -1: Kafka reads any negative retention as unlimited.
func (d *dynamicKey) topicValue(v string) string {
	if d.scale == 1 {
		return v
	}
	n := toInt(v)
	if n < 0 {
		return "-1"
	}
	return strconv.FormatInt(n*d.scale, 10)
}

// defaultName is the name Kafka gives a topic key's default among its
// synonyms: the broker config it is the server default of (in the topic
// key's unit), or the topic key itself.
func defaultName(topic string) string {
	for i := range dynamicKeys {
		if dynamicKeys[i].topic == topic && dynamicKeys[i].scale == 1 {
			return dynamicKeys[i].broker
		}
	}
	return topic
}

// BrokerNames lists every broker config DescribeConfigs(BROKER) reports.
func BrokerNames() []string {
	entries := Broker(BrokerSettings{}, nil)
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.Name
	}
	return out
}

// DynamicBrokerNames lists the broker configs IncrementalAlterConfigs can
// alter, sorted.
func DynamicBrokerNames() []string {
	out := make([]string, len(dynamicKeys))
	for i := range dynamicKeys {
		out[i] = dynamicKeys[i].broker
	}
	return out
}

// Broker returns the broker's configs named in names (nil: all), sorted
// by name, each with its source: this broker's dynamic config, the
// cluster-wide dynamic default, STATIC_BROKER_CONFIG for those set by flag
// or file, or the default. Only the dynamic keys are not ReadOnly.
func Broker(s BrokerSettings, names []string) []Entry {
	i32 := func(n int32) string { return strconv.FormatInt(int64(n), 10) }
	out := []Entry{
		{Name: "advertised.listeners", Type: TypeString, Value: s.AdvertisedListeners, Doc: "the address clients are told to connect to (-advertise)"},
		{Name: "auto.create.topics.enable", Type: TypeBoolean, Value: strconv.FormatBool(s.AutoCreateTopics), Doc: "create unknown topics on produce or metadata (-auto-create-topics)"},
		{Name: "broker.id", Type: TypeInt, Value: i32(s.NodeID), Doc: "this broker's id (-node-id)"},
		{Name: "broker.rack", Type: TypeString, Value: s.Rack, Doc: "this broker's rack (-rack)"},
		{Name: "default.replication.factor", Type: TypeInt, Value: strconv.Itoa(int(max(s.ReplicationFactor, 1))), Doc: "replicas of each partition of auto-created topics and of CreateTopics asking for -1 (-default-replication-factor)"},
		{Name: "listeners", Type: TypeList, Value: s.Listeners, Doc: "the address Strand accepts clients on (-listen)"},
		{Name: "log.dirs", Type: TypeString, Value: s.LogDirs, Doc: "the data directory (-data-dir)"},
		{Name: "log.index.interval.bytes", Type: TypeInt, Value: strconv.Itoa(s.IndexIntervalBytes), Doc: "log bytes between offset index entries"},
		{Name: "log.preallocate", Type: TypeBoolean, Value: strconv.FormatBool(s.Preallocate), Doc: "preallocate segment space ahead of writes"},
		{Name: "node.id", Type: TypeInt, Value: i32(s.NodeID), Doc: "this broker's id (-node-id)"},
		{Name: "num.partitions", Type: TypeInt, Value: i32(s.NumPartitions), Doc: "partitions of auto-created topics and of CreateTopics with -1 (-default-partitions)"},
		{Name: "offsets.topic.num.partitions", Type: TypeInt, Value: i32(s.OffsetsPartitions), Doc: "partitions of __consumer_offsets, fixed when it is created"},
		{Name: "socket.request.max.bytes", Type: TypeInt, Value: strconv.Itoa(s.SocketRequestBytes), Doc: "largest request frame accepted (-max-request-bytes)"},
	}
	for i := range out {
		out[i].ReadOnly = true
		if s.Static[out[i].Name] {
			out[i].Source = SourceStatic
		}
		out[i].Synonyms = []Synonym{{out[i].Name, out[i].Value, out[i].Source}}
	}
	for i := range dynamicKeys {
		d := &dynamicKeys[i]
		typ, def := d.typeAndDefault()
		doc := "server default of topic config " + d.topic
		if d.scale != 1 {
			doc += ", in " + map[int64]string{60_000: "minutes", 3_600_000: "hours"}[d.scale]
		}
		e := Entry{Name: d.broker, Type: typ, Value: def, Doc: doc + "; dynamic"}
		if v, ok := s.DynamicDefault[d.broker]; ok {
			e.Value, e.Source = v, SourceDynamicDefault
			e.Synonyms = append(e.Synonyms, Synonym{d.broker, v, SourceDynamicDefault})
		}
		if v, ok := s.Dynamic[d.broker]; ok {
			e.Value, e.Source = v, SourceDynamicBroker
			e.Synonyms = append([]Synonym{{d.broker, v, SourceDynamicBroker}}, e.Synonyms...)
		}
		e.Synonyms = append(e.Synonyms, Synonym{d.broker, def, SourceDefault})
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return filter(out, names)
}

// BrokerDefaults returns the cluster-wide dynamic defaults named in names
// (nil: all), as DescribeConfigs reports broker resource "": only the keys
// that are set.
func BrokerDefaults(dynamicDefault map[string]string, names []string) []Entry {
	var out []Entry
	for i := range dynamicKeys {
		d := &dynamicKeys[i]
		if v, ok := dynamicDefault[d.broker]; ok {
			typ, _ := d.typeAndDefault()
			out = append(out, Entry{Name: d.broker, Value: v, Source: SourceDynamicDefault, Type: typ, Doc: "server default of topic config " + d.topic + "; dynamic",
				Synonyms: []Synonym{{d.broker, v, SourceDynamicDefault}}})
		}
	}
	return filter(out, names)
}

// TopicDefaults returns what topics inherit from the dynamic broker
// configs, keyed by topic key: for each key, the first synonym set in
// this broker's configs (perBroker), else in the cluster default, with
// ms before minutes before hours at each level, as Kafka resolves them.
func TopicDefaults(perBroker, clusterDefault map[string]string) map[string]Inherited {
	if len(perBroker) == 0 && len(clusterDefault) == 0 {
		return nil
	}
	out := map[string]Inherited{}
	for _, level := range []struct {
		m   map[string]string
		src Source
	}{{perBroker, SourceDynamicBroker}, {clusterDefault, SourceDynamicDefault}} {
		// Finest unit first: ms (scale 1), minutes, hours.
		for _, scale := range []int64{1, 60_000, 3_600_000} {
			for i := range dynamicKeys {
				d := &dynamicKeys[i]
				if d.scale != scale {
					continue
				}
				v, ok := level.m[d.broker]
				if !ok {
					continue
				}
				in, done := out[d.topic]
				if !done {
					in = Inherited{Value: d.topicValue(v), Source: level.src}
				}
				in.Synonyms = append(in.Synonyms, Synonym{Name: d.broker, Value: v, Source: level.src})
				out[d.topic] = in
			}
		}
	}
	return out
}

// ValidateBroker checks one dynamic broker config and value, with the
// topic key's validation in the broker key's unit. A nil value means
// "back to the default" and is valid for every dynamic key.
func ValidateBroker(name string, value *string) error {
	d, ok := lookupDynamic(name)
	if !ok {
		for _, n := range BrokerNames() {
			if n == name {
				return &Error{Key: name, Broker: true, kind: ErrReadOnly,
					Reason: "cannot be updated dynamically; Strand sets it at start (see strand serve -help)"}
			}
		}
		return &Error{Key: name, Broker: true, kind: ErrUnknownKey}
	}
	if value == nil {
		return nil
	}
	v := *value
	if d.scale != 1 {
		if _, reason := parse(TypeInt, v); reason != "" {
			return &Error{Key: name, Value: v, Reason: reason, Broker: true, kind: ErrInvalidValue}
		}
		v = d.topicValue(strings.TrimSpace(v))
	}
	if err := Validate(d.topic, &v); err != nil {
		e := *err.(*Error)
		e.Key, e.Value, e.Broker = name, *value, true
		return &e
	}
	return nil
}
