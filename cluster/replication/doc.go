// Package replication is Kafka's partition replication protocol (in-sync
// replicas, high watermark, leader epochs, KIP-101/279 truncation,
// AlterPartition) as pure state machines, with Strand's stronger promise:
// an acks=all append is acknowledged only once every in-sync replica, the
// leader included, has it fsynced.
//
// Nothing here runs a goroutine, reads a clock, or does I/O. Inputs are
// method calls that carry the time; outputs are intents collected in a
// Ready (log writes, the offset to fsync to, messages for other brokers,
// AlterPartition requests for the controller, produce answers), and the
// completion of an fsync comes back as an input (Synced). A host applies
// a Ready's log writes before it feeds the next input, as etcd-raft's
// hosts persist before they send.
//
// Main types:
//
//   - Leading: the leader's rules for one partition in one epoch, shared
//     with the brokers.
//   - Divergence: one round of a follower's truncation (KIP-279), shared
//     with the brokers.
//   - Replica: one broker's copy of one partition, leader or follower as
//     the controller's PartitionState says. As leader it appends, serves
//     follower fetches, tracks each follower's durable offset, moves the
//     high watermark, proposes ISR changes and answers producers. As
//     follower it truncates with OffsetForLeaderEpoch, then fetches and
//     reports its durable offset on each fetch.
//   - Controller: broker registration (incarnations, broker epochs),
//     liveness and fencing, leader election from the ISR (unclean only if
//     configured), AlterPartition with epoch checks, preferred election.
//     A model: brokers decide these in cluster/metadata, which the
//     simulator runs by default.
//
// The brokers run this package's decisions: Leading (leading.go: the rules
// for follower progress, the high watermark, acks and in-sync proposals)
// is what cluster/replicas.go runs for every partition it leads, and
// Divergence is how cluster/fetcher.go truncates. The rest of Replica
// (roles, the follower's fetch loop, a log of abstract batches) is a
// model of the brokers' wiring. The simulator's controller decides
// through cluster/metadata's state machine, the brokers' metadata group
// (metactl_test.go); Controller is a model (-controller=model). Not
// checked against the brokers: what metactl_test.go lists as the
// adapter's own (incarnations and broker epochs, the proposal sequence
// number, liveness timing). Followers report their data dir id in
// fetches here, and a leader's proposal names it, so metadata can refuse
// a wiped follower; brokers' fetches do not carry it yet
// (TestSimulationFindsLossWithoutDirIDs shows the loss).
//
// The simulator (sim_test.go, check_test.go) runs brokers, the controller,
// producers and consumers over a seeded faulty network, checking the
// invariants after every step. Replay a seed:
//
//	GOWORK=off go test -ldflags=-checklinkname=0 -run 'TestSimulation$' ./cluster/replication/ -seed=N -v
//
// Long run: -seeds=N (with -first-seed=S) or -duration=10m.
package replication
