// Package wire is the server side of the Kafka binary protocol for Strand.
//
// It turns bytes from a gnet connection into Kafka requests, calls the
// broker through the Backend interface, and writes the responses back in
// request order. It never keeps decoded records: produced batches are
// checked (framing, magic 2, CRC-32C, and each record's framing through
// shard.ValidateRecords, which walks them without copying) and handed over
// as opaque bytes, fetched batches are passed through.
//
// # Threads
//
// Server is a gnet.EventHandler. Every connection belongs to one event loop
// (one core); its state machine (conn), its Backend (from Attach) and every
// callback the Backend makes run on that loop only, so nothing in this
// package takes a lock except the Server's boot bookkeeping and counters.
//
// # Main types
//
//   - Server: the gnet handler; Config sets limits and the advertised address.
//   - Limits: connection, timeout and fetch memory limits (limits.go).
//   - Backend / Attach: what the broker implements (backend.go); a Backend
//     that also implements GroupBackend (group_backend.go) gets the group
//     APIs advertised and routed to it. Both take typed values: every kmsg
//     request is translated here, at the protocol edge.
//   - conn: per-connection state machine: framing, dispatch, ordering,
//     in-flight bound, backpressure (conn.go).
//   - slot: one request awaiting its response; slots leave in request order.
//   - fetchWait: one fetch long-poll (01_fetch.go).
//
// # Files
//
//	backend.go      Backend interface and its value types
//	server.go       gnet handler, Config, counters
//	limits.go       Limits: connection admission, the fetch memory budget,
//	                rate-limited log lines (docs/RELIABILITY.md)
//	conn.go         connection state machine and response ordering,
//	                backpressure, idle and request-read timeouts
//	drain.go        shutdown draining: long-polls answered, retriable refusals
//	frame.go        request header parsing, response framing (wire diagrams)
//	shape.go        allocation-free pre-check of request bodies (why: see file)
//	shape_apis.go   request layouts for that pre-check
//	batch.go        record batch v2 header, validation, KIP-74 trimming
//	versions.go     advertised API versions and why
//	errors.go       Kafka error codes, UNSUPPORTED_VERSION responses
//	configs.go      cluster/topicconfig's table onto the protocol (types, INVALID_CONFIG)
//	autocreate.go   the per-request bound on topics Metadata creates, and
//	                the rate-limited log lines of auto-creation
//	NN_name.go      one handler per API key, numbered like kfake
//	group_backend.go GroupBackend: the consumer-group APIs and InitProducerID
//	                as typed requests and results, for a Backend that has them
//	groups.go       dispatch of those keys (NN_name.go files: 08-16, 22, 42,
//	                47), the client info the coordinator records
//	shape_groups.go request layouts of those keys for the pre-check
//	probe.go        RequestProbe: per-request counting by a Backend that
//	                implements it, on the connection's core
//
// # Non-obvious
//
//   - Requests alias gnet's input buffer, which is reused after OnTraffic
//     returns. Produce copies each batch exactly once; nothing else from a
//     request outlives the frame.
//   - OnTraffic fires only when new bytes arrive. A connection paused on its
//     in-flight bound resumes through Conn.Wake once responses drain.
//   - Completions arriving outside OnTraffic schedule a Wake instead of
//     writing at once, so every completion of one loop iteration shares one
//     writev.
//   - kmsg's decoders spin on huge tagged-field counts; shape.go bounds every
//     count before kmsg sees the body.
//   - gnet stops its engine for good when accept(2) fails with anything but
//     EAGAIN/EINTR/ECONNRESET/ECONNABORTED (acceptor_unix.go), and it
//     accepts before any handler runs. So connections are refused in
//     OnOpen, below a cap that leaves descriptors free, and also whenever
//     the accepted descriptor's number is near the limit (Linux gives the
//     lowest free one, so a high number means a nearly full table).
//   - A fetch reserves its memory for all its partitions at once, then
//     shares it out in partition order: reads holding part of a fetch
//     while waiting for the rest could deadlock the budget.
//   - Fetched bytes stay counted after Writev until gnet's outbound buffer
//     has drained past them (conn.trimOut), so a client that never reads
//     spends the budget it holds, not more.
//   - A key Strand does not serve is answered UNSUPPORTED_VERSION from its
//     header alone (shape.go has no layout for it, so kmsg never reads the
//     body), where the response encodes an error code at that version;
//     otherwise the connection closes (unservedResponse in errors.go).
package wire
