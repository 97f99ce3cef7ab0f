package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strand-io/strand/cluster"
)

// kcatRecord is one line of kcat -C -f '%o|%k|%S|%s\n'.
type kcatRecord struct {
	off   int64
	key   string
	null  bool
	value string
}

func kcatReadAll(t testing.TB, kcat, addr, topic string) []kcatRecord {
	t.Helper()
	out := runKcat(t, kcat, time.Minute, "-b", addr, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%o|%k|%S|%s\n")
	var recs []kcatRecord
	for _, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.SplitN(line, "|", 4)
		if len(f) != 4 {
			t.Fatalf("kcat line %q", line)
		}
		var r kcatRecord
		fmt.Sscan(f[0], &r.off)
		r.key, r.null, r.value = f[1], f[2] == "-1", f[3]
		recs = append(recs, r)
	}
	return recs
}

// TestCompactionKcat: compaction as a librdkafka client sees it. kcat
// writes 10 keys 300 times each, then a tombstone for one of them; once
// the cleaner has run, kcat reads from the start one record per key with
// its latest value, at the offset it was written at, and the tombstone;
// after delete.retention.ms the tombstone is gone too and its key never
// comes back. A second topic with compact,delete loses keys written only
// before retention.ms to time, and keeps the latest value of the others.
func TestCompactionKcat(t *testing.T) {
	kcat := kcatPath(t)
	n := startNode(t, testDataDir(t), func(c *cluster.Config) {
		c.TickInterval, c.CleanerInterval, c.CleanerBytesPerRound = 20*time.Millisecond, 5*time.Millisecond, 4<<20
	})
	addr := n.Addr()
	admin := newClient(t, addr)
	create := func(topic string, cfg map[string]string) {
		if code, err := createTopicReq(ctxFor(t, 20*time.Second), admin, topic, 1, cfg); err != nil || code != 0 {
			t.Fatalf("create %s: %v, %s", topic, err, codeName(code))
		}
	}
	produce := func(topic string, lines []string, extra ...string) {
		file := filepath.Join(t.TempDir(), "in.txt")
		if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		args := append([]string{"-b", addr, "-P", "-t", topic, "-p", "0", "-K", ":", "-X", "acks=all", "-X", "enable.idempotence=true", "-l"}, extra...)
		runKcat(t, kcat, time.Minute, append(args, file)...)
	}
	// Wait until read says done, rolling the active segment with a
	// record to a throwaway key so the records under test get sealed
	// and cleaned (segment.ms rolls only on an append).
	await := func(topic, what string, done func([]kcatRecord) bool) []kcatRecord {
		deadline := time.Now().Add(60 * time.Second)
		for {
			recs := kcatReadAll(t, kcat, addr, topic)
			if done(recs) {
				return recs
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s never happened; kcat reads %d records: %v", topic, what, len(recs), recs[max(0, len(recs)-12):])
			}
			produce(topic, []string{"roll:x"})
			time.Sleep(100 * time.Millisecond) // the next roll needs segment.ms to pass
		}
	}

	const topic = "kcat-compacted"
	create(topic, map[string]string{"cleanup.policy": "compact", "segment.ms": "100", "delete.retention.ms": "2000",
		"min.cleanable.dirty.ratio": "0.01"})
	var lines []string
	latest := map[string]int64{}
	values := map[string]string{}
	for i := range 3000 {
		k := fmt.Sprint("key", i%10)
		v := fmt.Sprint("value-", i)
		lines = append(lines, k+":"+v)
		latest[k], values[k] = int64(i), v
	}
	produce(topic, lines)
	produce(topic, []string{"key0:"}, "-Z") // an empty value sent as NULL: a tombstone
	tomb := int64(3000)

	// The test's keys alone, below the throwaway key's records.
	mine := func(recs []kcatRecord) (out []kcatRecord) {
		for _, r := range recs {
			if r.key != "roll" {
				out = append(out, r)
			}
		}
		return out
	}
	recs := await(topic, "cleaning to one record per key", func(recs []kcatRecord) bool { return len(mine(recs)) == 10 })
	for _, r := range mine(recs) {
		switch {
		case r.key == "key0":
			if !r.null || r.off != tomb {
				t.Errorf("key0: %+v, want its tombstone at %d", r, tomb)
			}
		case r.null || r.value != values[r.key] || r.off != latest[r.key]:
			t.Errorf("%s: %+v, want %q at offset %d", r.key, r, values[r.key], latest[r.key])
		}
	}
	recs = await(topic, "the tombstone's removal after delete.retention.ms", func(recs []kcatRecord) bool { return len(mine(recs)) == 9 })
	for _, r := range mine(recs) {
		if r.key == "key0" {
			t.Fatalf("key0 is back after its tombstone went: %+v", r)
		}
		if r.value != values[r.key] || r.off != latest[r.key] {
			t.Errorf("%s: %+v, want %q at offset %d", r.key, r, values[r.key], latest[r.key])
		}
	}

	// compact,delete: old-* keys are written once, then only new-* keys
	// are; past retention.ms the old ones go with their segments.
	const both = "kcat-compact-delete"
	create(both, map[string]string{"cleanup.policy": "compact,delete", "segment.ms": "100", "retention.ms": "1500",
		"min.cleanable.dirty.ratio": "0.01"})
	produce(both, []string{"old-a:1", "old-b:1", "new-a:1", "new-b:1"})
	start := time.Now()
	recs = await(both, "time retention of the old keys", func(recs []kcatRecord) bool {
		// Keep rewriting the new keys, so they stay within retention.
		produce(both, []string{"new-a:" + fmt.Sprint(time.Since(start).Milliseconds()), "new-b:x"})
		for _, r := range recs {
			if strings.HasPrefix(r.key, "old-") {
				return false
			}
		}
		return true
	})
	seen := map[string]bool{}
	for _, r := range recs {
		seen[r.key] = true
	}
	if !seen["new-a"] || !seen["new-b"] {
		t.Fatalf("compact,delete lost keys rewritten within retention.ms: %v", recs)
	}
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Fatalf("old keys gone after %v, before retention.ms", d)
	}
}
