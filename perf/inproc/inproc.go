// Package inproc starts a Strand broker inside the calling process: the
// broker behind `strand perf run` when no --brokers address is given, and
// the one the perf end-to-end tests (perf/e2e) run against.
//
// It is a package of its own because perf is a client that never links
// the broker: it can be pointed at any Kafka-protocol broker, and its unit
// tests build without one. A binary that wants the in-process broker
// imports this package and sets perf.StartLocalBroker = inproc.Start, so
// the command and the tests run the same starter.
package inproc

import (
	"context"
	"log/slog"
	"os"

	"github.com/strand-io/strand/cluster"
	"github.com/strand-io/strand/shard"
)

// Start runs a broker with its data in dataDir, listening on a free
// loopback port, and returns its address and a function that stops it. It
// has the shape of perf.BrokerStarter. The broker logs warnings and errors
// to stderr, staying out of the harness's progress output otherwise.
func Start(dataDir string) (addr string, stop func() error, err error) {
	return Starter(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))(dataDir)
}

// Starter returns a starter like Start whose brokers log to logger; tests
// use it to keep a broker's log beside the run it belongs to.
func Starter(logger *slog.Logger) func(dataDir string) (addr string, stop func() error, err error) {
	return func(dataDir string) (string, func() error, error) {
		// Topics are auto-created so a workload needs no setup.
		node, err := cluster.Start(cluster.Config{
			DataDir: dataDir, Listen: "127.0.0.1:0", AutoCreateTopics: true, DefaultPartitions: 1,
			Log: shard.Config{Preallocate: true}, Logger: logger,
		})
		if err != nil {
			return "", nil, err
		}
		return node.Addr(), func() error { return node.Close(context.Background()) }, nil
	}
}
