// Package e2e holds Strand's end-to-end tests and the produce benchmark:
// a real broker (in-process through cluster.Start, or the bin/strand binary
// as a child process when the test kills or signals it) driven by real
// clients (franz-go's kgo, kcat, raw TCP).
//
// The package has no non-test code besides this file. Helpers:
//
//   - broker_test.go: in-process nodes, the strand binary (built once per
//     test run) as a child process, free ports, log capture.
//   - client_test.go: kgo clients, admin requests through kmsg, raw TCP
//     Kafka connections, deterministic payloads, a verifying consumer.
//
// Tests never sleep to wait for something: they wait on the condition with
// a deadline, and every broker, process and client they start is stopped by
// t.Cleanup.
package e2e
