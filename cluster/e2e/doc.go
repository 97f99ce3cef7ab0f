// Package e2e holds Strand's end-to-end tests and the produce benchmark:
// a real broker (in-process through cluster.Start, or the strand binary as a
// child process when a test kills, signals or restarts it) driven by real
// clients (franz-go's kgo, sarama, kafka-go, kcat, raw TCP).
//
// The package has no code besides this file; everything is in _test.go
// files. Helpers:
//
//   - broker_test.go: in-process nodes; the strand binary (built once per
//     test run, with -race when the tests have it) as a child process with
//     kill/term/quit and restart on the same data dir and port; broker log
//     capture, shown only when a test fails (STRAND_E2E_LOG=1 echoes it).
//   - client_test.go: kgo clients, admin requests through kmsg, raw TCP
//     Kafka connections, deterministic payloads (recKey/recValue of
//     partition and offset), a verifying consumer, kcat lookup.
//   - rawfetch_test.go: a kcat-like raw Fetch v11 reader that checks every
//     record and times every response.
//
// Tests: produce_test.go (1,000,000 records, long-poll wake-up),
// placement_test.go (two busy partitions on one core rebalanced by `strand
// placement rebalance` and by `strand serve --auto-rebalance` under an
// idempotent producer and a group consumer: exactly once, cores within 20%),
// kcat_test.go, replicated_clients_test.go (replication factor 3 through
// sarama, kafka-go and kcat: acks=all producers through a leader's SIGKILL
// and restart, each library's own metadata and reader checking what was
// acknowledged), crash_test.go (SIGKILL and SIGTERM while producing),
// garbage_test.go (bad frames next to a producer), hostile_test.go (a table
// of hostile-client phases against one broker process under a descriptor
// limit, with the producer's rate and the broker's RSS checked after each;
// the listener surviving more connections than descriptors), admin_test.go
// (topic admin, auto-creation, placement across restarts),
// admin_limits_test.go (many topics created at once all visible, deleted
// data never served again after a 249-byte name or a SIGKILL mid-delete,
// auto-create and partition/descriptor budgets), restart_fetch_test.go
// (disk fetches from many connections after restarts), groups_test.go
// (members sharing, leaving, SIGKILLed; resuming from commits, also after a
// broker SIGKILL; kcat -G; group admin), idempotence_test.go (exactly once
// per partition across broker kills; producer state and commits surviving
// kills), compression_test.go (gzip, snappy, lz4, zstd stored as sent,
// timestamps and ListOffsets by time), restart_group_test.go (a SIGTERM
// and restart under a live group and producer: no member stops, nothing
// is lost, the generation is kept; a waiting long-poll answered normally
// on SIGTERM), topic_offsets_test.go (a deleted topic's committed offsets
// go with it, also across a SIGKILL), stall_test.go (no stall warning
// from routine start and stop), disk_test.go (a full disk on a small
// tmpfs: messages, log lines, admin through the reserve, produce
// resuming), partitions_cost_test.go (descriptors and disk of near-empty
// partitions), replication_test.go (issue 13: three brokers, a topic of
// 12 partitions with replication factor 3 under idempotent acks=all
// producers and a tail consumer while leaders are SIGKILLed, SIGSTOPped
// or wiped; every acknowledged record exactly once, in order, nothing a
// consumer read taken back, the in-sync replicas' segment files equal
// below the high watermark); bench_test.go has BenchmarkProduce
// (docs/PERFORMANCE.md, "Broker produce").
//
// Tests never sleep to wait for something: they wait on the condition with
// a deadline, and every broker, process and client they start is stopped by
// t.Cleanup.
package e2e
