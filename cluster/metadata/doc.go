// Package metadata is the cluster metadata state machine: brokers, topics,
// partitions (replica sets, leaders, leader epochs, in-sync sets, the core
// each replica lives on) and producer-id blocks, changed only by commands.
//
// It is a plain value with no goroutines, clock, locks or I/O, so that every
// broker that applies the same commands in the same order holds the same
// state, byte for byte. The Raft wiring (cluster/metaraft) decodes each
// committed log entry with DecodeCommand and applies it with State.Apply on
// Dragonboat's apply goroutine; nothing else writes a State.
//
// A command that would break an invariant is rejected: Apply returns a
// Result with a non-OK Code and leaves the state (and its Version) exactly
// as it was. Accepted commands bump Version by one, so Version only grows.
//
// Readers never touch a State. After applying, the owner publishes
// State.View(), an immutable value that any core may read without locks
// (the broker keeps it behind an atomic pointer). Views share unchanged
// topics with the State copy-on-write, so producing one is cheap.
//
// Main types: State (the machine), Command and its concrete kinds (one
// struct per command, encoded by command.go), Result, View, Broker, Topic,
// Partition, and Place (the controller's placement decision, a pure
// function of a View).
//
// Encoding (command.go, snapshot.go): binary, encoding/binary varints,
// canonical (a decoder accepts exactly the bytes the encoder produces), so
// a command or snapshot has one byte form and equal states save to equal
// bytes.
package metadata
