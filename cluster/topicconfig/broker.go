package topicconfig

import (
	"sort"
	"strconv"
)

// BrokerSettings is what DescribeConfigs(BROKER) reports from: the node's
// settings as it runs them. Static names the broker configs (Kafka's
// names) that were set explicitly, by flag or config file; the others
// report DEFAULT_CONFIG.
type BrokerSettings struct {
	NodeID              int32
	Listeners           string // PLAINTEXT://host:port
	AdvertisedListeners string
	LogDirs             string
	NumPartitions       int32
	AutoCreateTopics    bool
	SocketRequestBytes  int
	OffsetsPartitions   int32
	IndexIntervalBytes  int
	Preallocate         bool
	Static              map[string]bool
}

// brokerTopicDefaults are broker settings that are the server defaults of
// topic keys: their value is the topic key's default in this table, so
// the two can never disagree.
var brokerTopicDefaults = []struct{ broker, topic string }{
	{"compression.type", "compression.type"},
	{"log.cleanup.policy", "cleanup.policy"},
	{"log.index.size.max.bytes", "segment.index.bytes"},
	{"log.message.timestamp.type", "message.timestamp.type"},
	{"log.retention.bytes", "retention.bytes"},
	{"log.retention.ms", "retention.ms"},
	{"log.roll.ms", "segment.ms"},
	{"log.segment.bytes", "segment.bytes"},
	{"message.max.bytes", "max.message.bytes"},
	{"min.insync.replicas", "min.insync.replicas"},
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

// Broker returns the broker's configs named in names (nil: all), sorted
// by name. IsDefault is false for those set explicitly
// (STATIC_BROKER_CONFIG).
func Broker(s BrokerSettings, names []string) []Entry {
	i32 := func(n int32) string { return strconv.FormatInt(int64(n), 10) }
	hours := func(topic string) string { return strconv.FormatInt(toInt(Value(nil, topic))/3_600_000, 10) }
	out := []Entry{
		{Name: "advertised.listeners", Type: TypeString, Value: s.AdvertisedListeners, Doc: "the address clients are told to connect to (-advertise)"},
		{Name: "auto.create.topics.enable", Type: TypeBoolean, Value: strconv.FormatBool(s.AutoCreateTopics), Doc: "create unknown topics on produce or metadata (-auto-create-topics)"},
		{Name: "broker.id", Type: TypeInt, Value: i32(s.NodeID), Doc: "this broker's id (-node-id)"},
		{Name: "default.replication.factor", Type: TypeInt, Value: "1", Doc: "Strand keeps one replica per partition"},
		{Name: "listeners", Type: TypeList, Value: s.Listeners, Doc: "the address Strand accepts clients on (-listen)"},
		{Name: "log.dirs", Type: TypeString, Value: s.LogDirs, Doc: "the data directory (-data-dir)"},
		{Name: "log.index.interval.bytes", Type: TypeInt, Value: strconv.Itoa(s.IndexIntervalBytes), Doc: "log bytes between offset index entries"},
		{Name: "log.preallocate", Type: TypeBoolean, Value: strconv.FormatBool(s.Preallocate), Doc: "preallocate segment space ahead of writes"},
		{Name: "log.retention.hours", Type: TypeInt, Value: hours("retention.ms"), Doc: "retention.ms's default, in hours"},
		{Name: "log.roll.hours", Type: TypeInt, Value: hours("segment.ms"), Doc: "segment.ms's default, in hours"},
		{Name: "node.id", Type: TypeInt, Value: i32(s.NodeID), Doc: "this broker's id (-node-id)"},
		{Name: "num.partitions", Type: TypeInt, Value: i32(s.NumPartitions), Doc: "partitions of auto-created topics and of CreateTopics with -1 (-default-partitions)"},
		{Name: "offsets.topic.num.partitions", Type: TypeInt, Value: i32(s.OffsetsPartitions), Doc: "partitions of __consumer_offsets, fixed when it is created"},
		{Name: "socket.request.max.bytes", Type: TypeInt, Value: strconv.Itoa(s.SocketRequestBytes), Doc: "largest request frame accepted (-max-request-bytes)"},
	}
	for _, d := range brokerTopicDefaults {
		k, _ := Lookup(d.topic)
		out = append(out, Entry{Name: d.broker, Type: k.Type, Value: k.Default, Doc: "server default of topic config " + d.topic})
	}
	for i := range out {
		out[i].IsDefault = !s.Static[out[i].Name]
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return filter(out, names)
}
