// Package cli is the operator's command line of the strand binary: the
// topic, produce, consume, group and cluster commands, and the cobra root
// that also dispatches `strand serve` and `strand perf` to their own code.
//
// It is a Kafka client only (franz-go's kgo and kadm): it never links the
// broker, so every command works against any Kafka-protocol broker and its
// behaviour is what a remote operator would see. Commands that need
// Strand's admin HTTP API (placement, broker decommission) are added when
// that API exists; --admin is registered now so scripts can pass it.
//
// Files: root.go (the command tree, global flags, exit codes), client.go
// (connecting, fail-fast reachability, error classification), output.go
// (tables and JSON), topic.go, config.go (alter-config and its AlterConfigs
// fallback), produce.go and progress.go, consume.go,
// group.go, cluster.go.
//
// Exit codes are part of the interface scripts rely on: 0 success, 1 the
// operation failed (an unknown topic, a broker error, a partial failure),
// 2 a usage error (bad flags or arguments), 3 no broker was reachable.
package cli
