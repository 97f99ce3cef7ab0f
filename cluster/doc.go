// Package cluster is the broker node: cluster metadata (topics, partitions,
// their placement on cores, topic configs), the per-core partition managers
// that own the shard.Logs, and the wire.Backend the Kafka protocol layer
// calls into.
//
// Threads and ownership:
//
//   - Metadata is an immutable snapshot behind an atomic pointer. Any core
//     reads it with one atomic load; only the controller core (core 0)
//     writes it, by publishing a new snapshot after persisting it (with each
//     topic whose partitions are still opening kept in its published
//     form: see publish in admin.go). This is
//     the single-node stand-in for the Dragonboat metadata group; the
//     snapshot shape is what the Raft state machine will produce.
//   - Each partition's shard.Log, and its fetch watchers, belong to the core
//     the placement assigns it to. Requests for it arrive from the
//     connection's core as reactor messages (Core.Send) and the results go
//     back the same way; when the connection is on the owning core the call
//     is direct.
//
// Dependencies point one way: cluster -> wire (implements its Backend),
// reactor, shard, dma. Nothing below imports cluster.
package cluster
