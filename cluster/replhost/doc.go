// Package replhost hosts cluster/replication's Replica on a real partition
// log (shard.Log): it carries out a Ready's log operations through the
// log's replication methods (AppendReplicated, TruncateTo,
// SetLeaderEpoch, SetHighWatermark) and turns the log's completions back
// into the replica's inputs (Synced).
//
// The two packages do not map one to one, which is why this adapter
// exists (shard must not import cluster, and replication imports neither):
//
//   - replication.Batch stands for a record batch by its headers and one
//     uint64 per record; EncodeBatch writes it as a Kafka v2 batch (the
//     values as record values) and DecodeBatches reads it back.
//   - replication's producer id 0 means "not idempotent"; Kafka's is -1.
//   - A Ready's SyncTo asks for an fsync; the log fsyncs every append by
//     itself (group commit), so the host reports each batch durable when
//     its append is acknowledged, in order.
//   - A truncation waits in the log for the write pipeline to drain, while
//     the replica has already cut its log: the acknowledgement of a batch
//     appended before a cut is ignored if the cut removed it, and reported
//     if the batch lies below it (ignoring it too would leave the replica's
//     durable offset behind until the next append: acks=all would wait).
//   - A new leader's epoch goes into the log's epoch cache (SetLeaderEpoch,
//     as Kafka's leader assigns it on election) once every batch the
//     replica appended before it has reached the log.
//
// Ownership: a Host belongs to the core that owns its log, like the log.
// The broker does not host whole Replicas: cluster/replicas.go and
// cluster/fetcher.go run replication, sharing Replica's decisions
// (replication.Leading and replication.Divergence). Host's test drives a
// leader and a follower on two logs over MemFS with power cuts
// (host_test.go).
package replhost
