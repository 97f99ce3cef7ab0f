// Package adminapi is the broker's admin HTTP server (`strand serve
// --admin-listen`, default 127.0.0.1:9644): JSON under /v1/ (health,
// readiness, the broker and its cores, topics with their partitions'
// cores and offsets, consumer groups with their lag, placement and its
// changes), the live placement page at /, Prometheus metrics at /metrics,
// and Go's profiler at /debug/pprof/.
//
// Threads: the server runs on ordinary goroutines (net/http), never on a
// reactor core. It reads per-core state only through cluster.Node.Snapshot,
// which asks every core by a reactor message to copy its partitions,
// groups and counters and waits with a timeout (Config.SnapshotTimeout); the
// cores' data stays owned by them, so serving or scraping adds no lock or
// atomic to the data path. A core that does not answer in time makes the
// request fail with 503 (or the scrape with an error), which is itself the
// signal that the core is stalled.
//
// It sits under cluster/ because it is the node's operator surface and
// imports cluster; nothing in cluster imports it.
//
// Files: server.go (lifecycle, routing, JSON errors), v1.go (the /v1/
// handlers and their JSON shapes), placement.go (/v1/placement, move and
// rebalance, which call the node's live-placement methods), ui.go and
// ui/index.html (the live page at /, embedded), metrics.go (the Prometheus
// collector and the metric names; label cardinality is described there).
package adminapi
