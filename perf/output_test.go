package perf

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strand-io/strand/perf/internal/perftest"
)

// syntheticResult builds a plausible result without a broker: a fixed-rate
// run with a backlog and broker stats, so every section is exercised.
func syntheticResult(t *testing.T, rateScale float64) *Result {
	t.Helper()
	w, err := LoadWorkload("fixed-rate-latency")
	if err != nil {
		t.Fatal(err)
	}
	pub, e2e := newLatencyRecorder(), newLatencyRecorder()
	for us := int64(1); us <= 20_000; us++ {
		pub.record(time.Duration(float64(us)*rateScale)*time.Microsecond, true)
		e2e.record(time.Duration(float64(us+500)*rateScale)*time.Microsecond, true)
	}
	ph, pmax := mergeLatency([]*latencyRecorder{pub}, true)
	eh, emax := mergeLatency([]*latencyRecorder{e2e}, true)
	r := &Result{
		Schema: resultSchema, Tool: "strand perf", WorkloadFile: "builtin:fixed-rate-latency.yaml", Workload: *w,
		StartedAt: time.Date(2026, 11, 22, 1, 2, 3, 0, time.UTC), Brokers: "127.0.0.1:9092",
		Host:            HostInfo{Hostname: "test", GoVersion: "go1.26", OS: "linux", Arch: "amd64", CPUs: 2},
		Settings:        Settings{TargetRate: 50_000, WarmupSeconds: 5, DurationSeconds: 20, Acks: "all", LingerMs: 1, Producers: 4, Consumers: 4, MessageBytes: 1024, Topics: []string{"t-0"}},
		Probe:           &Probe{Seconds: 30, MaxMsgsPerSec: 100_000 * rateScale, Percent: 50, RateMsgsPerSec: 50_000},
		MeasuredSeconds: 20,
		Publish: PublishStats{Messages: 1_000_000, Bytes: 1_024_000_000, MsgsPerSec: 50_000 / rateScale, MBPerSec: 51.2 / rateScale,
			Latency: percentilesOf(ph, pmax), LatencyCurve: curveOf(ph, pmax), PacingLag: &Percentiles{Count: 1, P50Us: 80}},
		Consume: &ConsumeStats{Messages: 1_000_000, Bytes: 1_024_000_000, MsgsPerSec: 50_000, MBPerSec: 51.2, Errors: 2, FirstError: "boom <&>",
			EndToEnd: percentilesOf(eh, emax), EndToEndCurve: curveOf(eh, emax)},
		Backlog: &BacklogStats{TargetBytes: 1e9, BuiltBytes: 1e9, BuildSeconds: 10, Drained: true, DrainSeconds: 4, DrainMessages: 976_563, DrainMsgsPerSec: 244_140, DrainMBPerSec: 250},
		Broker:  &BrokerStats{Source: "pid 42", CPUSeconds: 12.5, CPUCores: 0.62, RSSMaxBytes: 300e6, RSSEndBytes: 280e6},
	}
	phases := []string{"warmup", "warmup", "warmup", "warmup", "warmup", "measure", "backlog-build", "backlog-drain", "measure", "tail"}
	for i := range 26 {
		ph := phases[min(i/3, len(phases)-1)]
		r.Series = append(r.Series, SecondStats{Second: i, Phase: ph, PublishMsgs: 50_000 + int64(i*100), ConsumeMsgs: 49_000 + int64(i*50), BrokerCPUCores: 0.6})
	}
	return r
}

func TestWriteOutputs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	r := syntheticResult(t, 1)
	if err := r.WriteOutputs(dir); err != nil {
		t.Fatal(err)
	}
	// result.json is valid JSON and reads back to the same result.
	raw, err := os.ReadFile(filepath.Join(dir, "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(raw) {
		t.Fatal("result.json is not valid JSON")
	}
	back, err := ReadResult(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(r)
	b, _ := json.Marshal(back)
	if !bytes.Equal(a, b) {
		t.Fatalf("result.json does not round-trip:\n%s\n%s", a, b)
	}
	if back.Workload.ProducerRate != (Rate{Percent: 50}) {
		t.Errorf("producerRate read back as %+v", back.Workload.ProducerRate)
	}

	md, _ := os.ReadFile(filepath.Join(dir, "summary.md"))
	for _, want := range []string{"# fixed-rate-latency", "| publish | 50,000 | 51.20 | 1,000,000 | 0 |",
		"| publish (send → ack) | 10.0 | 15.0 | 19.0 | 19.8 |", "## Backlog", "pid 42", "no coordinated omission", "rate 50% of a 30s max-rate probe"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("summary.md lacks %q:\n%s", want, md)
		}
	}

	svg, _ := os.ReadFile(filepath.Join(dir, "chart.svg"))
	perftest.CheckSVG(t, svg, 3)
	for _, want := range []string{"strand perf: fixed-rate-latency", "99.9%", "backlog-drain"} {
		if !strings.Contains(string(svg), want) {
			t.Errorf("chart.svg lacks %q", want)
		}
	}
}

// An empty run (nothing acked, no consumers) still renders.
func TestOutputsOfEmptyResult(t *testing.T) {
	r := &Result{Schema: resultSchema, Workload: Workload{Name: "empty & <odd>"}}
	perftest.CheckSVG(t, []byte(r.Chart()), 2)
	if s := r.Summary(); !strings.Contains(s, "# empty & <odd>") {
		t.Errorf("summary: %s", s)
	}
}

func TestCompare(t *testing.T) {
	a, b := syntheticResult(t, 1), syntheticResult(t, 2)
	b.Consume, b.Brokers = nil, "other:9092"
	out := Compare([]string{"base/result.json", "b.json"}, []*Result{a, b})
	for _, want := range []string{
		"| metric | base | b.json |",
		"| brokers | 127.0.0.1:9092 | other:9092 |",
		"| publish msg/s | 50,000 | 25,000 (0.50×) |",
		"| consume msg/s | 50,000 | – |",
		"| backlog drain msg/s | 244,140 | 244,140 (1.00×) |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("compare output lacks %q:\n%s", want, out)
		}
	}
	// p99 doubles with rateScale 2.
	if !strings.Contains(out, "(2.00×)") {
		t.Errorf("no 2.00× latency ratio:\n%s", out)
	}
}

func TestCompareLeavesOutEmptyEndToEnd(t *testing.T) {
	a, b := syntheticResult(t, 1), syntheticResult(t, 1)
	b.Consume.EndToEnd, b.Consume.EndToEndCurve = Percentiles{}, nil // a drain: no sample in the window
	out := Compare([]string{"a.json", "b.json"}, []*Result{a, b})
	if !strings.Contains(out, "| end-to-end p99 ms | ") || !strings.Contains(out, " | – |\n") {
		t.Fatalf("want end-to-end rows with – for b:\n%s", out)
	}
	for line := range strings.SplitSeq(out, "\n") {
		if strings.HasPrefix(line, "| end-to-end") && !strings.HasSuffix(line, " | – |") {
			t.Errorf("end-to-end row shows a value for a run without samples: %s", line)
		}
	}
}

func TestReadResultRejectsOtherSchemas(t *testing.T) {
	f := filepath.Join(t.TempDir(), "r.json")
	if err := os.WriteFile(f, []byte(`{"schema": 99}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadResult(f); err == nil || !strings.Contains(err.Error(), "schema 99") {
		t.Fatalf("err = %v", err)
	}
}

func TestNiceTicks(t *testing.T) {
	for _, c := range []struct{ max, step, top float64 }{{4994, 1000, 5000}, {5001, 2000, 6000}, {0.7, 0.2, 0.8}, {0, 1, 5}, {100, 20, 100}} {
		step, top := niceTicks(c.max, 5)
		if step != c.step || top != c.top {
			t.Errorf("niceTicks(%g) = %g, %g; want %g, %g", c.max, step, top, c.step, c.top)
		}
	}
	for i, want := range []string{"0%", "90%", "99%", "99.9%", "99.99%"} {
		if got := percentLabel(float64(i)); got != want {
			t.Errorf("percentLabel(%d) = %q, want %q", i, got, want)
		}
	}
}
