package perf

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// Exit codes of Main.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitInterrupted = 130 // results were still written
)

const usageText = `usage:
  strand perf run WORKLOAD [flags]      run a workload, write result.json, summary.md, chart.svg
  strand perf compare A.json B.json...  markdown table of results, with ratios to the first
  strand perf workloads                 list the built-in workloads

WORKLOAD is an OpenMessaging-Benchmark-style YAML file, or the name of a
built-in workload (see "strand perf workloads").

run flags:
  --brokers ADDR[,ADDR]  Kafka-protocol broker(s) to test; default: start a Strand broker in-process
  --out DIR              output folder (default perf-results/NAME-TIMESTAMP)
  --duration D           measured duration, e.g. 30s, 5m (overrides the workload)
  --warmup D             warm-up before measuring (overrides the workload)
  --rate R               producerRate override: msgs/s, 0 for max, or N% of a probed max
  --pid PID              broker process whose CPU and RSS to report (/proc/PID)
  --idempotent           use the idempotent producer (default off)
  --linger D             producer linger (overrides lingerMs)
  --keep-topics          do not delete the run's topics afterwards
`

// Main runs `strand perf ...`; args are the arguments after "perf". It
// returns the process exit code: 0 ok, 1 failure, 2 usage error, 130 when
// interrupted (partial results are still written).
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return exitUsage
	}
	switch args[0] {
	case "run":
		return mainRun(args[1:], stdout, stderr)
	case "compare":
		return mainCompare(args[1:], stdout, stderr)
	case "workloads":
		for _, n := range BuiltinWorkloads() {
			fmt.Fprintln(stdout, n)
		}
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usageText)
		return exitOK
	}
	fmt.Fprintf(stderr, "perf: unknown command %q\n\n%s", args[0], usageText)
	return exitUsage
}

// runFlags are the parsed flags of `perf run`.
type runFlags struct {
	brokers, out, rate string
	duration, warmup   time.Duration
	linger             time.Duration
	pid                int
	idempotent, keep   bool
	set                map[string]bool
}

func parseRunFlags(args []string) (*runFlags, []string, error) {
	f := &runFlags{set: map[string]bool{}}
	fs := flag.NewFlagSet("perf run", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported with the usage text below
	fs.StringVar(&f.brokers, "brokers", "", "")
	fs.StringVar(&f.out, "out", "", "")
	fs.StringVar(&f.rate, "rate", "", "")
	fs.DurationVar(&f.duration, "duration", 0, "")
	fs.DurationVar(&f.warmup, "warmup", 0, "")
	fs.DurationVar(&f.linger, "linger", 0, "")
	fs.IntVar(&f.pid, "pid", 0, "")
	fs.BoolVar(&f.idempotent, "idempotent", false, "")
	fs.BoolVar(&f.keep, "keep-topics", false, "")
	// Go's flag package stops at the first positional argument; parse in
	// rounds so flags may come before or after WORKLOAD.
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	switch {
	case f.duration < 0 || (f.set["duration"] && f.duration == 0):
		return nil, nil, errors.New("--duration must be positive")
	case f.warmup < 0:
		return nil, nil, errors.New("--warmup must not be negative")
	case f.linger < 0:
		return nil, nil, errors.New("--linger must not be negative")
	case f.pid < 0:
		return nil, nil, errors.New("--pid must be a process id")
	}
	return f, pos, nil
}

func mainRun(args []string, stdout, stderr io.Writer) int {
	f, pos, err := parseRunFlags(args)
	if err == nil && len(pos) != 1 {
		err = fmt.Errorf("want exactly one WORKLOAD, got %d", len(pos))
	}
	if err != nil {
		fmt.Fprintf(stderr, "perf run: %v\n\n%s", err, usageText)
		return exitUsage
	}
	w, err := LoadWorkload(pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "perf: %v\n", err)
		return exitFailed
	}
	for _, warn := range w.warnings {
		fmt.Fprintf(stderr, "perf: warning: %s\n", warn)
	}
	o := RunOptions{WorkloadFile: pos[0], Workload: w, Brokers: splitBrokers(f.brokers), Duration: f.duration,
		Warmup: f.warmup, WarmupSet: f.set["warmup"], PID: f.pid, KeepTopics: f.keep, Progress: stderr}
	if f.set["rate"] {
		r, err := ParseRate(f.rate)
		if err != nil {
			fmt.Fprintf(stderr, "perf run: --rate: %v\n", err)
			return exitUsage
		}
		o.Rate = &r
	}
	if f.set["idempotent"] {
		w.Idempotent = f.idempotent
	}
	if f.set["linger"] {
		w.LingerMs = float64(f.linger) / float64(time.Millisecond)
	}
	out := f.out
	if out == "" {
		out = filepath.Join("perf-results", slug(w.Name)+"-"+time.Now().Format("20060102-150405"))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := Run(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "perf: %v\n", err)
		return exitFailed
	}
	if err := res.WriteOutputs(out); err != nil {
		fmt.Fprintf(stderr, "perf: writing results: %v\n", err)
		return exitFailed
	}
	fmt.Fprint(stdout, res.Summary())
	fmt.Fprintf(stderr, "perf: wrote %s, %s and %s\n", filepath.Join(out, "result.json"), filepath.Join(out, "summary.md"), filepath.Join(out, "chart.svg"))
	if res.Interrupted {
		return exitInterrupted
	}
	return exitOK
}

func mainCompare(args []string, stdout, stderr io.Writer) int {
	if len(args) < 1 {
		fmt.Fprintf(stderr, "perf compare: want at least one result file\n\n%s", usageText)
		return exitUsage
	}
	var rs []*Result
	for _, a := range args {
		r, err := ReadResult(a)
		if err != nil {
			fmt.Fprintf(stderr, "perf compare: %v\n", err)
			return exitFailed
		}
		rs = append(rs, r)
	}
	fmt.Fprint(stdout, Compare(args, rs))
	return exitOK
}

var slugRE = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// slug turns a workload name into a file- and topic-name-safe string.
func slug(name string) string {
	s := strings.Trim(slugRE.ReplaceAllString(name, "-"), "-")
	if len(s) > 40 {
		s = s[:40]
	}
	if s == "" {
		s = "workload"
	}
	return s
}
