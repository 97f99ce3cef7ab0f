package perf

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runMain(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = Main(args, &o, &e)
	return code, o.String(), e.String()
}

func TestMainUsage(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{nil, exitUsage, "usage:"},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"run"}, exitUsage, "want exactly one WORKLOAD, got 0"},
		{[]string{"run", "a.yaml", "b.yaml"}, exitUsage, "want exactly one WORKLOAD, got 2"},
		{[]string{"run", "a.yaml", "--bogus"}, exitUsage, "flag provided but not defined: -bogus"},
		{[]string{"run", "a.yaml", "--duration", "0s"}, exitUsage, "--duration must be positive"},
		{[]string{"run", "max-throughput-1kb", "--rate", "-3"}, exitUsage, "--rate: must not be negative"},
		{[]string{"run", "nope.yaml"}, exitFailed, "no such file"},
		{[]string{"compare"}, exitUsage, "want at least one result file"},
		{[]string{"compare", "missing.json"}, exitFailed, "missing.json"},
	}
	for _, c := range cases {
		code, _, stderr := runMain(c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("Main(%q) = %d, stderr %q; want %d and %q", c.args, code, stderr, c.code, c.want)
		}
	}
	if code, out, _ := runMain("help"); code != exitOK || !strings.Contains(out, "strand perf run WORKLOAD") {
		t.Errorf("help: %d %q", code, out)
	}
	if code, out, _ := runMain("workloads"); code != exitOK || !strings.Contains(out, "fixed-rate-latency\n") {
		t.Errorf("workloads: %d %q", code, out)
	}
}

// Flags may follow the workload, as the documented usage shows them.
func TestParseRunFlagsInterleaved(t *testing.T) {
	f, pos, err := parseRunFlags([]string{"--brokers", "a:1,b:2", "w.yaml", "--pid", "7", "--warmup", "0s", "--idempotent"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pos) != 1 || pos[0] != "w.yaml" || f.pid != 7 || !f.idempotent || !f.set["warmup"] || f.warmup != 0 {
		t.Fatalf("pos %v flags %+v", pos, f)
	}
	if got := splitBrokers(f.brokers); len(got) != 2 || got[1] != "b:2" {
		t.Fatalf("brokers %v", got)
	}
}

func TestRunWithoutAnyBroker(t *testing.T) {
	saved := StartLocalBroker
	StartLocalBroker = nil
	defer func() { StartLocalBroker = saved }()
	code, _, stderr := runMain("run", "max-throughput-1kb", "--out", t.TempDir())
	if code != exitFailed || !strings.Contains(stderr, "no --brokers given and this binary has no in-process broker") {
		t.Fatalf("code %d stderr %q", code, stderr)
	}
}

func TestMainCompareFiles(t *testing.T) {
	dir := t.TempDir()
	a, b := syntheticResult(t, 1), syntheticResult(t, 2)
	pa, pb := filepath.Join(dir, "a"), filepath.Join(dir, "b.json")
	if err := a.WriteOutputs(pa); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteJSON(pb); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runMain("compare", filepath.Join(pa, "result.json"), pb)
	if code != exitOK || !strings.Contains(out, "| metric | a | b.json |") || !strings.Contains(out, "(0.50×)") {
		t.Fatalf("code %d stderr %q out:\n%s", code, stderr, out)
	}
	// A directory works as well as its result.json.
	if code, _, stderr := runMain("compare", pa); code != exitOK {
		t.Fatalf("compare DIR: %d %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(pa, "chart.svg")); err != nil {
		t.Fatal(err)
	}
}
