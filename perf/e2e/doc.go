// Package e2e holds the perf harness's end-to-end tests: workloads run
// through perf.Main, exactly as `strand perf run` runs them, against a
// real Strand broker started in this process through perf/inproc, the
// same starter cmd/strand installs. They live outside package perf
// because perf never links the broker.
//
// The package has no code besides this file; the tests are in
// e2e_test.go. STRAND_PERF_BROKER=host:port[,host:port] points every test
// but TestEndToEndInProcessHook at another Kafka-protocol broker instead.
//
// Every assertion is derived from the workload's schedule or from the
// run's own numbers, never from how fast the machine is; windows are a
// second or two so the suite stays short.
package e2e
