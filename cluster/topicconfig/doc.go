// Package topicconfig is Strand's one table of Kafka topic configs and the
// broker settings DescribeConfigs reports: every key's name, type, Kafka's
// default and validation, and what Strand does with it.
//
// Why here, under cluster/: a topic config is broker policy (which keys
// exist, which values are legal, what the default is) plus a storage
// mapping (how a topic's effective configs become a shard.Config). Both are
// the broker's knowledge, not the protocol's, so the table imports shard
// and knows nothing of kmsg or Kafka error codes. The protocol edge (wire)
// maps Type onto kmsg.ConfigType and every *Error onto INVALID_CONFIG,
// and cluster uses LogConfig to open and reconfigure partition logs. The
// broker settings live beside the topic table because Kafka pairs them:
// most broker log.* settings are the server defaults of topic keys, and
// Strand takes those defaults from this one table.
//
// Every key Kafka 3.x and 4.x define for topics is accepted with Kafka's
// validation. A key either changes the partition log (Applied) or is
// accepted and reported without effect, with the reason in Strand; none
// of the latter ever weakens durability (Strand acknowledges only after
// fdatasync, whatever flush.messages or flush.ms say). remote.storage.enable
// =true is refused: Strand has no tiered storage.
//
// Values are plain data; any goroutine may use the package.
package topicconfig
