package wire

import (
	"encoding/binary"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strand-io/strand/cluster/topicconfig"
)

// Attach binds a new connection to the broker. The server calls it once per
// connection, from OnOpen on that connection's event loop, and uses the
// returned Backend for every request the connection sends.
//
// The broker usually returns one shared Backend per core (reactor.CoreOf(c)),
// not one per connection: the value only has to know which thread it runs
// on, so that it can route partitions to their owning core and deliver the
// completions back to this one.
type Attach func(c gnet.Conn) Backend

// Backend is the broker as seen from one event loop (one core).
//
// Threading contract: every method is called on the event loop that Attach
// was called on, and every callback must run on that same loop, never
// concurrently with the server and never on another goroutine. A callback may
// run synchronously, inside the method call (the in-memory test backend does
// that), or later from the loop's task queue. Each callback is called exactly
// once, except where a cancel func returned by the method was called first.
//
// Metadata methods are synchronous because they are served from the
// core-local metadata copy. Everything that touches a partition is
// asynchronous and per partition, so that the implementation can send each
// call to the core that owns the partition.
type Backend interface {
	// Brokers lists the live brokers (node id, advertised host and port).
	Brokers() []BrokerInfo
	// ControllerID is the node id clients should send admin requests to
	// (-1 if unknown).
	ControllerID() int32
	// Topics lists every topic. The wire layer does not modify the slices.
	Topics() []TopicInfo
	// Topic looks one topic up by name.
	Topic(name string) (TopicInfo, bool)
	// PartitionCount is the number of partitions of topic, without building
	// its description: Produce and Fetch call it for every topic of every
	// request, and a description of a 1,000-partition topic costs about
	// 2,000 allocations.
	PartitionCount(topic string) (int32, bool)
	// AutoCreateTopics reports whether Metadata and Produce may create
	// unknown topics (Kafka's auto.create.topics.enable).
	AutoCreateTopics() bool

	// CreateTopic creates a topic. Partitions and ReplicationFactor of -1
	// mean the broker defaults. Configs holds only keys and values that
	// cluster/topicconfig's Validate and ValidateSet accepted. With
	// validateOnly nothing is created; the callback says whether it would
	// have worked. The backend bounds the partition count (the request may
	// ask for 2^31-1). Error codes: TOPIC_ALREADY_EXISTS (36),
	// INVALID_PARTITIONS (37), INVALID_REPLICATION_FACTOR (38), ...
	CreateTopic(t NewTopic, validateOnly bool, cb func(errCode int16, msg string))
	// DeleteTopic deletes a topic (UNKNOWN_TOPIC_OR_PARTITION (3) if absent).
	// The callback runs once the topic's data can no longer be served, with
	// an error code and message if it could not be deleted.
	DeleteTopic(name string, cb func(errCode int16, msg string))
	// CreatePartitions grows a topic to total partitions.
	CreatePartitions(name string, total int32, validateOnly bool, cb func(errCode int16, msg string))
	// DescribeConfigs returns the topic's configs for keys (nil = all known
	// keys), including defaults, and an error code (3 for an unknown topic).
	DescribeConfigs(topic string, keys []string) ([]ConfigEntry, int16)
	// DescribeBrokerConfigs returns the configs of broker name (its node
	// id, as Kafka's BROKER resource names it) for keys (nil = all), or
	// INVALID_REQUEST (42) for another broker.
	DescribeBrokerConfigs(name string, keys []string) ([]ConfigEntry, int16)
	// AlterConfigs REPLACES the topic's overrides with set (AlterConfigs is
	// not incremental: keys not in set return to their defaults). Keys and
	// values are already validated by the wire layer.
	AlterConfigs(topic string, set map[string]*string, validateOnly bool, cb func(errCode int16))
	// AlterConfigOps applies IncrementalAlterConfigs operations to one
	// topic or broker resource, or AlterConfigs' whole set to a broker
	// (Replace). The callback gets nil, a *topicconfig.Error, or a kerr
	// error (UNKNOWN_TOPIC_OR_PARTITION; INVALID_REQUEST for another
	// broker's id); wire maps it with ErrorCode.
	AlterConfigOps(a ConfigAlteration, cb func(error))

	// Append appends one validated record batch (magic 2, CRC checked) to a
	// partition. batch is lent, not given: it aliases the connection's read
	// buffer and is valid only until Append returns. A backend that keeps it
	// past the call (to hand it to another core, say) copies it; one that
	// consumes it at once (a log that copies it into its own buffer) does not,
	// so each produced byte is copied once on its way to the log. acks is
	// the producer's (0, 1 or -1): the callback fires once the leader's
	// copy is durable (fsynced) for 0 and 1, and for -1 once every in-sync
	// replica's is, which is when the high watermark passes the batch
	// (for a partition without followers, the same moment as acks=1).
	Append(p PartitionRef, batch []byte, acks int16, cb func(AppendResult))
	// Fetch reads whole batches starting with the batch that holds offset,
	// up to maxBytes, except that the first batch is returned whole even when
	// it is larger (KIP-74). Records must stay unmodified after the callback
	// (the wire layer may hold them while a long-poll waits).
	Fetch(p PartitionRef, offset int64, maxBytes int32, cb func(FetchResult))
	// WatchAppend calls cb once, when the partition's high watermark moves
	// past offset (immediately, from the task queue, if it already has).
	// cancel stops it; cb never runs after cancel returns. Used by the fetch
	// long-poll.
	WatchAppend(p PartitionRef, offset int64, cb func()) (cancel func())
	// ListOffset resolves timestampMs: -1 latest (high watermark), -2
	// earliest (log start), >= 0 the first offset whose timestamp is >=
	// timestampMs (Offset -1 if none).
	ListOffset(p PartitionRef, timestampMs int64, cb func(ListOffsetResult))
	// After runs fn on this loop after d, unless cancelled first (fn never
	// runs after cancel returns). Used for fetch max-wait and backpressure.
	After(d time.Duration, fn func()) (cancel func())

	// DeleteRecords makes offset p's log start, durably (Kafka's
	// DeleteRecords): -1 means the high watermark; an offset above it is
	// OFFSET_OUT_OF_RANGE; one at or below the log start changes nothing.
	// The callback gets the log start afterwards (the low watermark).
	DeleteRecords(p PartitionRef, offset int64, cb func(lowWatermark int64, errCode int16))
	// MaxTimestamp answers ListOffsets' -3: the offset and timestamp of the
	// readable batch with the largest timestamp (Offset -1 if the log is
	// empty).
	MaxTimestamp(p PartitionRef, cb func(ListOffsetResult))
	// LogDirs describes the broker's log directories and the partitions in
	// each, for DescribeLogDirs. It may block on statfs, never on the log.
	LogDirs(cb func([]LogDirInfo))
	// Producers lists p's active idempotent producers (DescribeProducers).
	Producers(p PartitionRef, cb func([]ProducerInfo, int16))

	// EndOffsetForEpoch looks leaderEpoch up in p's leader-epoch cache
	// (OffsetForLeaderEpoch, Kafka's rules: shard.Log.EndOffsetForEpoch).
	// The wire layer has already fenced the request's current leader epoch.
	EndOffsetForEpoch(p PartitionRef, leaderEpoch int32, cb func(EpochEndOffset))
	// FollowerFetch is Fetch for a follower replica (a Fetch with a replica
	// id): batches up to the log end, durable or not, with the high
	// watermark. The fetch offset is also the follower's report of what it
	// holds durably (Strand's followers fetch past a batch only once it is
	// fsynced), which the leader's high watermark waits for. The wire
	// layer has already checked that the replica is one of p's followers.
	// session names the fetch's connection and its place on it (a
	// restarted follower comes back on another connection).
	FollowerFetch(p PartitionRef, replica int32, session FetchSession, offset int64, maxBytes int32, cb func(FetchResult))
	// LivenessProbed is told the ClientSoftwareVersion of a controller's
	// liveness probe (an ApiVersions from LivenessSoftware): the cluster
	// renews its leadership lease from it.
	LivenessProbed(softwareVersion string)
	// WatchLogEnd is WatchAppend for a follower's long-poll: cb runs once
	// the log end moves past offset (or the partition stops being led
	// here, so that the follower hears of it).
	WatchLogEnd(p PartitionRef, offset int64, cb func()) (cancel func())
}

// EpochEndOffset completes Backend.EndOffsetForEpoch: the largest epoch at
// or below the one asked about and the offset where it ends, -1 and -1 when
// the log has none.
type EpochEndOffset struct {
	LeaderEpoch int32
	EndOffset   int64
	ErrCode     int16
}

// LogDirInfo is one log directory as DescribeLogDirs reports it.
type LogDirInfo struct {
	Path        string
	ErrCode     int16
	TotalBytes  int64 // -1 if unknown
	UsableBytes int64 // -1 if unknown
	Partitions  []LogDirPartition
}

// LogDirPartition is one partition's footprint in a log directory.
type LogDirPartition struct {
	PartitionRef
	SizeBytes int64 // bytes of log data in its segments (what retention.bytes counts)
}

// ProducerInfo is one idempotent producer's state on a partition.
type ProducerInfo struct {
	ProducerID    int64
	Epoch         int16
	LastSequence  int32
	LastTimestamp int64 // -1: not tracked
}

// PartitionRef names one partition.
type PartitionRef struct {
	Topic     string
	Partition int32
}

// BrokerInfo is one broker as advertised in Metadata.
type BrokerInfo struct {
	NodeID int32
	Host   string
	Port   int32
	Rack   *string
}

// TopicInfo describes one topic from the metadata copy.
type TopicInfo struct {
	Name       string
	ID         [16]byte // topic UUID; zero if the broker has none
	Internal   bool
	Partitions []PartitionInfo // indexed by partition id
}

// PartitionInfo describes one partition. Leader -1 means no leader.
type PartitionInfo struct {
	ID          int32
	Leader      int32
	LeaderEpoch int32
	Replicas    []int32
	ISR         []int32
}

// NewTopic is a topic to create.
type NewTopic struct {
	Name              string
	Partitions        int32 // -1: broker default
	ReplicationFactor int16 // -1: broker default
	Configs           map[string]*string
	// Assignments, when not nil, are CreateTopics' explicit replica lists
	// by partition (Partitions and ReplicationFactor are then -1).
	Assignments [][]int32
	// Implicit marks a topic created because Metadata or Produce named it
	// (auto-creation), which the broker may refuse under its rate limit
	// with THROTTLING_QUOTA_EXCEEDED.
	Implicit bool
}

// ConfigEntry is one topic or broker config as DescribeConfigs reports it.
type ConfigEntry struct {
	Name      string
	Value     *string
	Source    topicconfig.Source
	ReadOnly  bool
	Sensitive bool
	Type      topicconfig.Type
	Doc       string
	// Synonyms, in precedence order, for DescribeConfigs v1+'s synonyms;
	// empty: the entry is its own only synonym.
	Synonyms []topicconfig.Synonym
}

// ConfigAlteration is one resource of an IncrementalAlterConfigs (or a
// broker's AlterConfigs) request.
type ConfigAlteration struct {
	Broker       bool   // a BROKER resource; otherwise a TOPIC
	Name         string // the topic, or the broker id ("" = cluster default)
	Ops          []topicconfig.Op
	Replace      bool // AlterConfigs: keys Ops does not set return to their defaults
	ValidateOnly bool
}

// AppendResult completes Backend.Append.
type AppendResult struct {
	BaseOffset      int64 // offset given to the first record of the batch
	LogAppendTimeMs int64 // -1 unless the topic uses LogAppendTime
	LogStartOffset  int64
	ErrCode         int16
	// ErrMsg says why, for the response's error message (v8+): a full
	// disk names the directory and the space left.
	ErrMsg string
}

// FetchResult completes Backend.Fetch.
type FetchResult struct {
	Records        []byte // whole v2 batches, back to back; may be empty
	HighWatermark  int64
	LastStable     int64 // equals HighWatermark until transactions exist
	LogStartOffset int64
	ErrCode        int16 // e.g. OFFSET_OUT_OF_RANGE (1), NOT_LEADER (6)
}

// ListOffsetResult completes Backend.ListOffset and Backend.MaxTimestamp.
type ListOffsetResult struct {
	Offset      int64
	TimestampMs int64 // -1 for latest/earliest
	// LeaderEpoch is the partition's leader epoch, as Metadata reports
	// it (ListOffsets v4+ returns it with the offset).
	LeaderEpoch int32
	ErrCode     int16
}

// FetchSession places a follower's fetch: Conn is the server's serial
// number for the connection it came on, Request the number of the request
// on that connection. Both grow, so they order one follower's fetches: a
// later fetch describes the follower's log as it is now. LogDirID is the
// follower's data dir id as its fetch names it (TagFollowerLogDir; 0 when
// absent), so that a leader proposing it into the in-sync set can name
// the copy it counted.
type FetchSession struct {
	Conn, Request uint64
	LogDirID      uint64
}

// TagFollowerLogDir is Strand's tagged field of a follower's Fetch
// request (top level, flexible versions): its data dir id, 8 bytes big
// endian. Kafka's own tags there are 0 and 1; Kafka brokers skip unknown
// tags, so a Strand follower's fetch stays a Kafka fetch.
const TagFollowerLogDir uint32 = 0x5354

// FollowerLogDir reads TagFollowerLogDir from a Fetch request's tags (0 if
// absent or malformed).
func FollowerLogDir(req *kmsg.FetchRequest) uint64 {
	var id uint64
	req.UnknownTags.Each(func(tag uint32, v []byte) {
		if tag == TagFollowerLogDir && len(v) == 8 {
			id = binary.BigEndian.Uint64(v)
		}
	})
	return id
}
