package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestProduceConsume(t *testing.T) {
	topic := uniq("cli-records")
	ok(t, "", "topic", "create", topic, "-p", "2")

	r := cli(t, "k1:v1\nk2:v2\nnokey\n", "produce", topic, "--key-separator", ":", "-H", "h=1", "--header", "src=test", "--partition", "0")
	if r.code != 0 || !strings.Contains(r.stderr, "produced 3 records") || !strings.Contains(r.stderr, "to "+topic) {
		t.Fatalf("produce: exit %d, stderr %q", r.code, r.stderr)
	}
	var sum produceSummary
	decode(t, ok(t, "v4\nv5", "produce", topic, "--key", "k", "--partition", "1", "--acks", "1", "--json"), &sum)
	if sum.Records != 2 || sum.Failed != 0 || sum.Topic != topic || sum.Bytes != 6 {
		t.Fatalf("produce --json summary %+v, want 2 records of 6 bytes", sum)
	}
	file := filepath.Join(t.TempDir(), "in.txt")
	if err := os.WriteFile(file, []byte("f1\nf2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	decode(t, ok(t, "", "produce", topic, "--file", file, "--partition", "1", "--acks", "0", "--json"), &sum)
	if sum.Records != 2 {
		t.Fatalf("produce --file: %+v", sum)
	}

	// Without --follow, consume stops at the end offsets it saw at start.
	// The --acks 0 produce returned before the broker had the records, so
	// wait (with a deadline) for them to become visible.
	recs := consumeJSON(t, topic)
	for deadline := time.Now().Add(10 * time.Second); len(recs) < 7 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		recs = consumeJSON(t, topic)
	}
	if len(recs) != 7 {
		t.Fatalf("consume --format json: %d records, want 7: %+v", len(recs), recs)
	}
	byValue := map[string]consumedRecord{}
	for _, c := range recs {
		byValue[c.Value] = c
	}
	if c := byValue["v1"]; c.Key == nil || *c.Key != "k1" || c.Partition != 0 || c.Offset != 0 ||
		len(c.Headers) != 2 || c.Headers[0] != (consumedHeader{"h", "1"}) || c.Headers[1] != (consumedHeader{"src", "test"}) {
		t.Fatalf("record v1: %+v", c)
	}
	if c := byValue["nokey"]; c.Key != nil {
		t.Fatalf("a line without the separator got key %q", *c.Key)
	}
	if c := byValue["v5"]; c.Key == nil || *c.Key != "k" || c.Partition != 1 || c.Offset != 1 {
		t.Fatalf("record v5: %+v", c)
	}
	// The --acks 0 records are not acknowledged, but they land all the same.
	if _, ok := byValue["f2"]; !ok {
		t.Fatalf("the --file records are missing: %+v", recs)
	}

	out := ok(t, "", "consume", topic, "--format", "template", "--template", "{{.Partition}}/{{.Offset}} {{.Key}}={{.Value}} {{range .Headers}}{{.Key}}:{{.Value}};{{end}}")
	if !strings.Contains(out, "0/0 k1=v1 h:1;src:test;\n") || !strings.Contains(out, "1/1 k=v5 \n") {
		t.Fatalf("template output:\n%s", out)
	}
	if out := ok(t, "", "consume", topic, "-n", "2", "--offset", "1"); strings.Count(out, "\n") != 2 {
		t.Fatalf("consume -n 2 --offset 1 (raw):\n%s", out)
	}
	if out := ok(t, "", "consume", topic, "--offset", "100", "--follow", "--timeout", "300ms"); out != "" {
		t.Fatalf("consume --offset past the end printed %q", out)
	}
	if out := ok(t, "", "consume", topic, "--offset", "newest", "--timeout", "300ms"); out != "" {
		t.Fatalf("consume --offset newest printed %q", out)
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if out := ok(t, "", "consume", topic, "--timestamp", future); out != "" {
		t.Fatalf("consume --timestamp in the future printed %q", out)
	}
	if recs := consumeJSON(t, topic, "--timestamp", "0"); len(recs) != 7 {
		t.Fatalf("consume --timestamp 0: %d records, want 7", len(recs))
	}
	fails(t, ExitFailed, "read 7 of 8 records", "", "consume", topic, "-n", "8", "--follow", "--timeout", "300ms")
	if out := ok(t, "", "consume", topic, "-n", "8"); strings.Count(out, "\n") != 7 {
		t.Fatalf("consume -n 8 without --follow should stop at the end, after 7 records:\n%s", out)
	}

	// --follow waits for records produced after it started.
	done := make(chan result, 1)
	go func() { done <- cli(t, "", "consume", topic, "--offset", "newest", "--follow", "-n", "1") }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case r := <-done:
			if r.code != 0 || r.stdout != "late\n" {
				t.Fatalf("consume --follow: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("consume --follow did not see a record produced after it started")
		}
		// Produce until the follower, which starts at the end offsets it
		// saw, reads one (it may start after the first of these).
		ok(t, "late\n", "produce", topic, "--partition", "0")
	}
}

func consumeJSON(t *testing.T, topic string, args ...string) []consumedRecord {
	t.Helper()
	out := ok(t, "", append([]string{"consume", topic, "--format", "json"}, args...)...)
	var recs []consumedRecord
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var c consumedRecord
		decode(t, line, &c)
		recs = append(recs, c)
	}
	// --json is the same output.
	// (Partitions interleave in either order.)
	if out2 := ok(t, "", append([]string{"consume", topic, "--json"}, args...)...); sortedLines(out2) != sortedLines(out) {
		t.Fatalf("consume --json differs from --format json:\n%s\n%s", out2, out)
	}
	return recs
}

func TestProduceProgress(t *testing.T) {
	var acked atomic.Int64
	acked.Store(1500)
	p := &progress{size: 4 << 20, acked: &acked}
	p.read.Store(1 << 20)
	line := p.line(2 * time.Second)
	for _, want := range []string{"[======", "25%", "1.0 MiB/4.0 MiB", "1500 acked", "750 records/s", "512.0 KiB/s"} {
		if !strings.Contains(line, want) {
			t.Fatalf("progress line %q lacks %q", line, want)
		}
	}
	p = &progress{size: -1, acked: &acked}
	p.read.Store(2048)
	if line := p.line(time.Second); !strings.Contains(line, "2.0 KiB read") || strings.Contains(line, "[") {
		t.Fatalf("progress line for stdin: %q", line)
	}

	// On a terminal a produce that outlasts progressDelay draws the line
	// and erases it before the summary.
	topic := uniq("cli-progress")
	ok(t, "", "topic", "create", topic)
	var in strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&in, "record-%d\n", i)
	}
	var stderr lockedBuffer
	gate := &gatedReader{r: strings.NewReader(in.String()), drawn: func() bool { return strings.Contains(stderr.String(), "acked") }}
	r := cliEnv(t, Env{Stdin: gate, StderrTerminal: true}, &stderr, "produce", topic, "--brokers", testBroker)
	if r.code != 0 || !gate.opened || !strings.Contains(r.stderr, "\r\033[K") || !strings.Contains(r.stderr, "produced 20000 records") {
		t.Fatalf("produce on a terminal: exit %d, gate opened %v, stderr %q", r.code, gate.opened, r.stderr)
	}
	// Not a terminal: only the summary.
	r = cli(t, in.String(), "produce", topic)
	if r.code != 0 || strings.Contains(r.stderr, "acked") {
		t.Fatalf("produce off a terminal: exit %d, stderr %q", r.code, r.stderr)
	}
}

// gatedReader stops half way until the progress line is drawn, so the
// produce outlasts the progress delay however fast the broker is.
type gatedReader struct {
	r      *strings.Reader
	drawn  func() bool
	opened bool
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if !g.opened && g.r.Len() < int(g.r.Size())/2 {
		deadline := time.Now().Add(10 * time.Second)
		for !g.drawn() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		g.opened = g.drawn()
	}
	if len(p) > 4096 {
		p = p[:4096]
	}
	return g.r.Read(p)
}

func sortedLines(s string) string {
	lines := strings.Split(s, "\n")
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
