// Package perf is Strand's performance harness, run as `strand perf`.
//
// It drives any Kafka-protocol broker with workloads in the OpenMessaging
// Benchmark (OMB) shape and reports publish and consume rates, publish
// latency (send → ack), end-to-end latency (send → receipt), backlog drain
// rate, error counts and the broker's CPU and RSS. Each run writes
// result.json (all data, per-second series and percentile curves),
// summary.md and chart.svg; `strand perf compare` puts runs side by side.
//
// # Ownership
//
// perf is a client: it runs on ordinary goroutines with franz-go (kgo)
// clients and owns no reactor core. It never imports the broker. When no
// --brokers address is given it calls StartLocalBroker, which cmd/strand
// sets to perf/inproc.Start, so the broker and the client share this
// process (and its CPU).
//
// # Measurement method
//
//   - Timing: every time is an offset on one monotonic clock (wallClock).
//     The first 8 bytes of each payload carry the message's intended send
//     time as Unix nanoseconds, which consumers subtract from their receipt
//     time.
//   - Fixed rate without coordinated omission: message k of the run is due
//     at start + k/rate (interleaved across producers, exact integer
//     arithmetic; see schedule). A producer that falls behind sends at
//     once, but latency counts from the scheduled time, so a broker stall
//     shows in every message it delayed instead of silently lowering the
//     offered load.
//   - Max rate (producerRate 0): latency counts from the moment the loop
//     takes the message, so time blocked on the client's full window
//     counts; it then mostly measures that window (Little's law).
//   - Warm-up is excluded: a sample belongs to the measured window by its
//     intended send time; rates count acks and receipts inside the window.
//   - Latencies go into HdrHistograms (1 µs to 1 h, 3 significant digits)
//     per producer and per consumer, merged for reports; the exact maximum
//     is kept beside them.
//   - Subscriptions read through direct partition assignment, not consumer
//     groups, so results do not depend on a group coordinator.
//
// # Files
//
//	cli.go       Main: argument parsing for run, compare, workloads
//	broker.go    Run, RunOptions, StartLocalBroker, the rate probe
//	workload.go  Workload, its YAML parsing and validation; built-ins
//	rate.go      Rate ("50000" or "50%"), KeyDistributor
//	schedule.go  the fixed-rate schedule and the producer loop
//	run.go       one execution: topics, phases, end of run
//	produce.go   payloads and producers
//	consume.go   consumers and the backlog build/drain state machine
//	kafka.go     topic create/delete/readiness (raw kmsg), kgo client options
//	hist.go      latency recorders, percentiles, percentile curves
//	procstat.go  broker CPU and RSS from /proc or getrusage
//	progress.go  per-second series and the live progress line
//	build.go     assembling a Result
//	result.go    Result (result.json)
//	summary.go   summary.md
//	svg.go       chart.svg
//	compare.go   the comparison table
//	workloads/   the standard workloads, also embedded in the binary
//	inproc/      the in-process broker starter (imports the broker)
//	e2e/         end-to-end tests against a real broker, through inproc
package perf
