// Package cli is the operator's command line of the strand binary: the
// topic, produce, consume, group, cluster and broker commands, and the cobra root
// that also dispatches `strand serve` and `strand perf` to their own code.
//
// It is a Kafka client (franz-go's kgo and kadm) and, for what the Kafka
// protocol cannot say (which core owns a partition), a client of Strand's
// admin HTTP API (--admin): it never links the broker, so its behaviour is
// what a remote operator would see.
//
// Files: root.go (the command tree, global flags, exit codes), client.go
// (connecting, fail-fast reachability, error classification), output.go
// (tables and JSON), topic.go, config.go (alter-config and its AlterConfigs
// fallback), produce.go and progress.go, consume.go,
// group.go, cluster.go, broker.go (decommission: the broker's replicas
// moved away by AlterPartitionReassignments, refused while one cannot move
// or has not moved in --move-timeout, then UnregisterBroker sent to
// another broker), partition.go (elect, reassign and reassignments:
// ElectLeaders, AlterPartitionReassignments, ListPartitionReassignments),
// placement.go (show, move, rebalance over the admin API).
//
// Exit codes are part of the interface scripts rely on: 0 success, 1 the
// operation failed (an unknown topic, a broker error, a partial failure),
// 2 a usage error (bad flags or arguments), 3 no broker was reachable.
package cli
