package perf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// BrokerStarter starts a broker inside this process with its data in
// dataDir and returns its Kafka listener address and a function that stops
// it. perf/inproc.Start is the one cmd/strand installs.
type BrokerStarter func(dataDir string) (addr string, stop func() error, err error)

// StartLocalBroker starts the in-process broker used when no --brokers
// address is given. It is nil in binaries (and tests) that have no broker;
// cmd/strand and perf/e2e set it. perf does not import the broker itself,
// so it stays a client that builds and tests without one.
var StartLocalBroker BrokerStarter

// ErrNoBroker is returned when there is neither a broker address nor an
// in-process broker to start.
var ErrNoBroker = errors.New("no --brokers given and this binary has no in-process broker")

// RunOptions configure Run. Zero values mean "as the workload says".
type RunOptions struct {
	WorkloadFile string // shown in reports
	Workload     *Workload
	Brokers      []string      // empty: start StartLocalBroker
	Duration     time.Duration // overrides the workload's test duration
	Warmup       time.Duration // overrides the warm-up; use WarmupSet for zero
	WarmupSet    bool
	Rate         *Rate // overrides producerRate
	PID          int   // broker process to measure; 0: none (or this process when in-process)
	KeepTopics   bool
	Progress     io.Writer // progress lines and warnings; nil: quiet
}

// Run performs a benchmark run: starts the in-process broker if no
// address is given, resolves a percentage rate with a probe, measures, and
// returns the result (it writes no files). When ctx ends mid-run the window
// closes early and the partial result is returned, marked Interrupted.
func Run(ctx context.Context, o RunOptions) (*Result, error) {
	w := o.Workload
	p := runParams{w: w, brokers: o.Brokers, warmup: w.WarmupDuration(), duration: w.TestDuration(),
		progress: o.Progress, keepTopics: o.KeepTopics}
	if o.Duration > 0 {
		p.duration = o.Duration
	}
	if o.WarmupSet || o.Warmup > 0 {
		p.warmup = o.Warmup
	}
	rate := w.ProducerRate
	if o.Rate != nil {
		rate = *o.Rate
	}
	inProcess := len(o.Brokers) == 0
	if inProcess {
		addr, stop, err := startLocal(o.Progress)
		if err != nil {
			return nil, err
		}
		defer stop()
		p.brokers = []string{addr}
		p.proc = newProcProbe(0)
	}
	if o.PID > 0 {
		p.proc = newProcProbe(o.PID)
		if _, err := p.proc.read(); err != nil {
			return nil, fmt.Errorf("--pid %d: %w", o.PID, err)
		}
	}

	var probe *Probe
	p.rate = rate.PerSecond
	if rate.Percent > 0 {
		var err error
		if probe, err = runProbe(ctx, p, rate.Percent); err != nil {
			return nil, err
		}
		p.rate = probe.RateMsgsPerSec
	}
	res, err := execute(ctx, p)
	if err != nil {
		return nil, err
	}
	res.WorkloadFile, res.InProcess, res.Probe = o.WorkloadFile, inProcess, probe
	return res, nil
}

// runProbe measures the maximum publish rate with the same workload for
// rateProbeSeconds (after a warm-up a fifth as long, at least a second)
// on its own topics, and returns percent of it as the rate to use.
func runProbe(ctx context.Context, p runParams, percent float64) (*Probe, error) {
	secs := p.w.RateProbeSeconds
	p.rate, p.label, p.noBacklog, p.proc = 0, "probe", true, nil
	p.duration = time.Duration(secs) * time.Second
	p.warmup = max(p.duration/5, time.Second)
	if p.progress != nil {
		fmt.Fprintf(p.progress, "perf: producerRate is %g%% of max: probing max rate for %v\n", percent, p.duration)
	}
	res, err := execute(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("rate probe: %w", err)
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("rate probe: %w", ctx.Err())
	}
	if res.Publish.MsgsPerSec <= 0 {
		return nil, fmt.Errorf("rate probe: no message was acked in %v (errors: %d, first: %s)", p.duration, res.Publish.Errors, res.Publish.FirstError)
	}
	rate := max(int64(res.Publish.MsgsPerSec*percent/100), 1)
	if p.progress != nil {
		fmt.Fprintf(p.progress, "perf: probe reached %s msg/s; running at %s msg/s\n", thousands(res.Publish.MsgsPerSec), thousands(float64(rate)))
	}
	return &Probe{Seconds: float64(secs), MaxMsgsPerSec: res.Publish.MsgsPerSec, Percent: percent, RateMsgsPerSec: rate}, nil
}

// startLocal starts the in-process broker in a fresh temporary directory,
// and returns a stop function that also removes the directory.
func startLocal(progress io.Writer) (string, func(), error) {
	if StartLocalBroker == nil {
		return "", nil, ErrNoBroker
	}
	dir, err := os.MkdirTemp("", "strand-perf-broker-")
	if err != nil {
		return "", nil, err
	}
	addr, stop, err := StartLocalBroker(dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("start in-process broker: %w", err)
	}
	if progress != nil {
		fmt.Fprintf(progress, "perf: started in-process broker at %s (data in %s)\n", addr, dir)
	}
	return addr, func() {
		if err := stop(); err != nil && progress != nil {
			fmt.Fprintf(progress, "perf: stopping in-process broker: %v\n", err)
		}
		os.RemoveAll(dir)
	}, nil
}

// splitBrokers parses a comma-separated --brokers value.
func splitBrokers(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}
