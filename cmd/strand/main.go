// Command strand is the Strand broker and its tools.
//
//	strand serve [flags]          run a broker
//	strand perf run|compare ...   the benchmark harness (see perf/)
package main

import (
	"fmt"
	"os"

	"github.com/strand-io/strand/perf"
	"github.com/strand-io/strand/perf/inproc"
)

const usage = `usage:
  strand serve [--data-dir DIR] [--listen HOST:PORT] [--advertise HOST:PORT] [--cores LIST] [--config FILE]
  strand perf run WORKLOAD.yaml [--brokers ADDR] [--out DIR] [--duration D]
  strand perf compare A.json B.json ...
Run 'strand serve -h' for every serve flag.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		os.Exit(serve(os.Args[2:]))
	case "perf":
		perf.StartLocalBroker = inproc.Start
		os.Exit(perf.Main(os.Args[2:], os.Stdout, os.Stderr))
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "strand: unknown command %q\n%s", os.Args[1], usage)
		os.Exit(2)
	}
}
