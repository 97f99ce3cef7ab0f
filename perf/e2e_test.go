package perf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// End-to-end runs against a real Kafka-protocol server. The broker is
// STRAND_PERF_BROKER (host:port[,host:port]) if set, else the in-process
// broker if this test binary has one (perf.StartLocalBroker), else the
// tests skip. Every assertion is derived from the schedule or from the
// run's own numbers, never from how fast the machine is.

// testBrokers returns the --brokers value for a test: "" means "use the
// in-process broker".
func testBrokers(t *testing.T) string {
	t.Helper()
	if addr := os.Getenv("STRAND_PERF_BROKER"); addr != "" {
		return addr
	}
	if StartLocalBroker != nil {
		return ""
	}
	t.Skip("no Kafka-protocol broker to run against: set STRAND_PERF_BROKER=host:port, or set perf.StartLocalBroker in this test binary")
	return ""
}

// runWorkload writes yaml to a file, runs it through Main (the same path
// as `strand perf run`) and returns the result it wrote.
func runWorkload(t *testing.T, brokers, yaml string, args ...string) *Result {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "w.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	args = append([]string{"run", file, "--out", out}, args...)
	if brokers != "" {
		args = append(args, "--brokers", brokers)
	}
	code, stdout, stderr := runMain(args...)
	if code != exitOK {
		t.Fatalf("perf run: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "## Latency") {
		t.Errorf("no summary on stdout: %q", stdout)
	}
	for _, f := range []string{"summary.md", "chart.svg"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	svg, _ := os.ReadFile(filepath.Join(out, "chart.svg"))
	checkSVG(t, svg)
	r, err := ReadResult(out)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func checkNoErrors(t *testing.T, r *Result) {
	t.Helper()
	if r.Publish.Errors != 0 || r.Publish.MissedSends != 0 {
		t.Fatalf("publish errors %d (first %q), missed sends %d", r.Publish.Errors, r.Publish.FirstError, r.Publish.MissedSends)
	}
	if r.Consume != nil && r.Consume.Errors != 0 {
		t.Fatalf("consume errors %d (first %q)", r.Consume.Errors, r.Consume.FirstError)
	}
}

func TestEndToEndFixedRate(t *testing.T) {
	brokers := testBrokers(t)
	for _, keys := range []KeyDistributor{NoKey, RandomNano, KeyRoundRobin} {
		t.Run(string(keys), func(t *testing.T) {
			y := "name: e2e " + string(keys) + `
topics: 2
partitionsPerTopic: 3
messageSize: 200
keyDistributor: ` + string(keys) + `
subscriptionsPerTopic: 2
consumerPerSubscription: 2
producersPerTopic: 2
producerRate: 2000
testDurationSeconds: 2
warmupDurationSeconds: 1
`
			var extra []string
			if keys == RandomNano {
				extra = append(extra, "--idempotent") // the idempotent producer path too
			}
			r := runWorkload(t, brokers, y, extra...)
			checkNoErrors(t, r)
			// The window holds exactly the messages scheduled in it:
			// 2000/s for 2 s, counted by intended send time.
			if r.Publish.Latency.Count != 4000 {
				t.Errorf("publish latency samples %d, want 4000", r.Publish.Latency.Count)
			}
			// Each of the 2 subscriptions reads every one of them.
			if r.Consume == nil || r.Consume.EndToEnd.Count != 8000 {
				t.Errorf("end-to-end samples %+v, want 8000", r.Consume)
			}
			if r.Publish.Messages <= 0 || r.Publish.Messages > 4000+2000 || r.Consume.Messages <= 0 {
				t.Errorf("window counts: published %d, consumed %d", r.Publish.Messages, r.Consume.Messages)
			}
			if r.Settings.Producers != 4 || r.Settings.Consumers != 8 || r.Settings.TargetRate != 2000 || r.Settings.Idempotent != (keys == RandomNano) {
				t.Errorf("settings %+v", r.Settings)
			}
			p := r.Publish.Latency
			if !(p.P50Us <= p.P99Us && p.P99Us <= p.P9999Us && p.P9999Us <= p.MaxUs) || r.Publish.PacingLag == nil {
				t.Errorf("latency %+v, pacing lag %v", p, r.Publish.PacingLag)
			}
			if r.Series[0].Phase != "warmup" || r.Series[1].Phase != "measure" {
				t.Errorf("series phases %q, %q", r.Series[0].Phase, r.Series[1].Phase)
			}
		})
	}
}

// Consumers pause while producers build a 2 MB backlog at max rate, then
// drain it; the window ends when the drain does.
func TestEndToEndBacklogDrain(t *testing.T) {
	brokers := testBrokers(t)
	r := runWorkload(t, brokers, `name: e2e backlog
topics: 1
partitionsPerTopic: 4
messageSize: 1000
subscriptionsPerTopic: 1
consumerPerSubscription: 2
producersPerTopic: 2
producerRate: 0
consumerBacklogSizeGB: 0.002
testDurationSeconds: 60
warmupDurationSeconds: 1
`)
	checkNoErrors(t, r)
	b := r.Backlog
	if b == nil || !b.Drained {
		t.Fatalf("backlog %+v: not drained", b)
	}
	if b.BuiltBytes < 2_000_000 || b.DrainMessages < b.BuiltBytes/1000 || b.DrainMsgsPerSec <= 0 || b.ProducersDuringDrain {
		t.Errorf("backlog %+v", b)
	}
	// The window is the build plus the drain (producers stopped), plus
	// the moment between the window opening and the pause taking effect.
	if d := r.MeasuredSeconds - b.BuildSeconds - b.DrainSeconds; d < -1e-3 || d > 1 {
		t.Errorf("window %.3fs != build %.3fs + drain %.3fs", r.MeasuredSeconds, b.BuildSeconds, b.DrainSeconds)
	}
}

// "50%" probes the max rate first, then runs at half of it.
func TestEndToEndPercentRate(t *testing.T) {
	brokers := testBrokers(t)
	r := runWorkload(t, brokers, `name: e2e percent
topics: 1
partitionsPerTopic: 2
messageSize: 100
subscriptionsPerTopic: 0
producersPerTopic: 1
producerRate: "50%"
rateProbeSeconds: 1
testDurationSeconds: 1
warmupDurationSeconds: 0
`)
	checkNoErrors(t, r)
	if r.Probe == nil || r.Probe.Percent != 50 || r.Probe.MaxMsgsPerSec <= 0 {
		t.Fatalf("probe %+v", r.Probe)
	}
	if want := max(int64(r.Probe.MaxMsgsPerSec/2), 1); r.Settings.TargetRate != want || r.Probe.RateMsgsPerSec != want {
		t.Fatalf("rate %d, want half of %g", r.Settings.TargetRate, r.Probe.MaxMsgsPerSec)
	}
	// 1 s at the target rate is exactly TargetRate scheduled messages.
	if r.Publish.Latency.Count != r.Settings.TargetRate {
		t.Errorf("publish samples %d, want %d", r.Publish.Latency.Count, r.Settings.TargetRate)
	}
	if r.Consume != nil {
		t.Errorf("consumers in a produce-only workload: %+v", r.Consume)
	}
}

// With an in-process broker hook the harness starts it, hands it a data
// folder, measures this process and stops it at the end. A hook that
// forwards to the external test broker exercises that path here.
func TestEndToEndInProcessHook(t *testing.T) {
	addr := os.Getenv("STRAND_PERF_BROKER")
	if addr == "" {
		t.Skip("set STRAND_PERF_BROKER to test the in-process hook with a forwarding starter")
	}
	saved := StartLocalBroker
	defer func() { StartLocalBroker = saved }()
	var dataDir string
	stopped := false
	StartLocalBroker = func(dir string) (string, func() error, error) {
		dataDir = dir
		return addr, func() error { stopped = true; return nil }, nil
	}
	r := runWorkload(t, "", `name: e2e in-process
topics: 1
partitionsPerTopic: 1
messageSize: 64
subscriptionsPerTopic: 1
consumerPerSubscription: 1
producersPerTopic: 1
producerRate: 500
testDurationSeconds: 1
warmupDurationSeconds: 0
`)
	checkNoErrors(t, r)
	if !r.InProcess || r.Broker == nil || !strings.Contains(r.Broker.Source, "benchmark client") || r.Broker.CPUSeconds <= 0 {
		t.Errorf("in-process %v broker %+v", r.InProcess, r.Broker)
	}
	if !stopped || dataDir == "" {
		t.Errorf("broker stopped %v, data dir %q", stopped, dataDir)
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Errorf("data dir %s left behind: %v", dataDir, err)
	}
	if r.Publish.Latency.Count != 500 {
		t.Errorf("publish samples %d, want 500", r.Publish.Latency.Count)
	}
}
