// Package metaraft replicates the cluster metadata (cluster/metadata) with
// a Dragonboat Raft group, one replica per broker.
//
// A Host owns one Dragonboat NodeHost: its Raft log and snapshots live under
// the Host's directory and its work runs on Dragonboat's own goroutines,
// never on a reactor core. The group has 1, 3 or 5 voters (Bootstrap);
// further brokers Join as non-voting members that receive the whole log
// and may later be promoted.
//
// Writes go through Propose from any member (a follower forwards to the
// leader) and return the state machine's Result: accepted, or rejected
// with a code and a message. Reads never touch Raft: after every applied
// batch the Host publishes the new metadata.View behind an atomic pointer
// (View) and to Config.OnApply, so a broker serves Metadata from its local
// applied copy. Leadership changes reach Config.OnLeaderChange, so the
// controller role can follow the Raft leader.
//
// Threads: the state machine's Update, snapshot and recovery calls run on
// Dragonboat's apply and snapshot goroutines, one at a time for Update;
// OnApply and OnLeaderChange run on Dragonboat goroutines and must not
// block. Everything else on Host is safe for concurrent use.
//
// Main types: Host, Config, LeaderInfo; stateMachine (unexported, the
// sm.IConcurrentStateMachine around metadata.State).
package metaraft
