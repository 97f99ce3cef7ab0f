// Package cluster is the broker node: cluster metadata (topics, partitions,
// their placement on cores, topic configs), the per-core partition managers
// that own the shard.Logs, and the wire.Backend the Kafka protocol layer
// calls into.
//
// Threads and ownership:
//
//   - Metadata is an immutable snapshot behind an atomic pointer. Any core
//     reads it with one atomic load; only the controller core (core 0)
//     writes it. The authority is the metadata Raft group
//     (cluster/metaraft; one voter on a single broker, 1, 3 or 5 voters
//     and non-voting members in a cluster: membership.go): every applied
//     View is handed to the controller core, which opens and drops this
//     broker's partitions to match and then publishes the snapshot built
//     from it, each topic whose partitions are still opening kept in its
//     published form (apply.go, publish in admin.go). Admin requests are
//     proposed from goroutines, never on a core, and answered on the
//     controller core once applied. The Raft leader's broker is the
//     controller: it probes every broker and fences the silent ones
//     (liveness.go). cluster.json (identity.go) ties the data dir to one
//     node of one cluster.
//   - Each partition's shard.Log, and its fetch watchers, belong to the core
//     the placement assigns it to. Requests for it arrive from the
//     connection's core as reactor messages (Core.Send) and the results go
//     back the same way; when the connection is on the owning core the call
//     is direct.
//
// Observability: Node.Snapshot (snapshot.go) asks every core by message
// for a copy of its partitions, groups and counters (probe.go: plain
// fields each core owns); the admin HTTP server in cluster/adminapi reads
// only that.
//
// Dependencies point one way: cluster -> wire (implements its Backend),
// reactor, shard, dma. Nothing below imports cluster itself; wire uses
// leaf subpackages of it (cluster/topicconfig, the config table both use).
package cluster
