// Command strand is the Strand broker and its tools.
//
//	strand serve [flags]          run a broker
//	strand perf run|compare ...   the benchmark harness (see perf/)
//	strand topic|produce|consume|group|cluster ...
//	                              operate a broker as a Kafka client
//	                              (see cmd/strand/internal/cli)
package main

import (
	"context"
	"os"
	"os/signal"

	"github.com/strand-io/strand/cmd/strand/internal/cli"
	"github.com/strand-io/strand/perf"
	"github.com/strand-io/strand/perf/inproc"
	"golang.org/x/sys/unix"
)

func main() {
	// serve and perf handle their own signals, so only the CLI's Kafka
	// commands get a context cancelled on an interrupt.
	ctx := context.Background()
	if len(os.Args) > 1 && os.Args[1] != "serve" && os.Args[1] != "perf" {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, unix.SIGTERM)
		defer stop()
	}
	_, ttyErr := unix.IoctlGetTermios(int(os.Stderr.Fd()), unix.TCGETS)
	code := cli.Main(os.Args[1:], cli.Env{
		Context: ctx, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		Getenv: os.Getenv, StderrTerminal: ttyErr == nil,
	},
		cli.Passthrough{Name: "serve", Short: "Run a broker (strand serve -h lists its flags)", Run: serve},
		cli.Passthrough{Name: "perf", Short: "The benchmark harness: perf run|compare (see perf/)", Run: func(args []string) int {
			perf.StartLocalBroker = inproc.Start
			return perf.Main(args, os.Stdout, os.Stderr)
		}},
	)
	os.Exit(code)
}
