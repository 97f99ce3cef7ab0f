package shard

import (
	"errors"
	"math/rand"
	"testing"

	"github.com/strand-io/strand/dma"
)

// retentionLog builds a log of several small sealed segments whose batch
// timestamps grow by 10 ms per batch from 1000.
func retentionLog(t *testing.T, cfg Config) (*dma.MemFS, *Log, dma.Engine, map[Offset][]byte) {
	t.Helper()
	fs, raws, _ := buildSealed(t, cfg, 120, 7)
	l, eng := memLog(t, fs, cfg)
	if len(l.segs) < 6 {
		t.Fatalf("setup: %d segments", len(l.segs))
	}
	return fs, l, eng, raws
}

// segmentFiles snapshots every segment's files.
func segmentFiles(t *testing.T, fs *dma.MemFS, l *Log) map[string][]byte {
	out := map[string][]byte{}
	for _, s := range l.segs {
		for _, ext := range []string{logExt, indexExt, timeIndexExt} {
			if fs.Exists(s.path(ext)) {
				out[s.path(ext)] = memFileBytes(t, fs, s.path(ext))
			}
		}
	}
	return out
}

// checkRetained verifies that retention removed whole segments only: the
// files of deleted segments are gone, the others are byte for byte as
// before, the log start is the first remaining segment's base, reads
// below it are out of range and reads from it serve the original bytes.
func checkRetained(t *testing.T, fs *dma.MemFS, l *Log, eng dma.Engine, before map[string][]byte, baseBefore []SegmentBase, raws map[Offset][]byte) {
	t.Helper()
	kept := map[string]bool{}
	for _, s := range l.segs {
		for _, ext := range []string{logExt, indexExt, timeIndexExt} {
			kept[s.path(ext)] = true
		}
	}
	for path, b := range before {
		switch {
		case kept[path] && !fs.Exists(path):
			t.Fatalf("%s of a kept segment is gone", path)
		case kept[path] && path != l.active.path(logExt) && string(memFileBytes(t, fs, path)) != string(b):
			t.Fatalf("%s of a kept segment changed", path)
		case !kept[path] && fs.Exists(path):
			t.Fatalf("%s of a deleted segment is still there", path)
		}
	}
	start := l.LogStartOffset()
	if start != Offset(l.segs[0].base) {
		t.Fatalf("log start %d, first segment %d", start, l.segs[0].base)
	}
	found := false
	for _, b := range baseBefore {
		found = found || Offset(b) == start
	}
	if !found {
		t.Fatalf("log start %d is not a former segment base %v", start, baseBefore)
	}
	if start > 0 {
		if _, err := readOnce(t, l, eng, start-1, 1<<20); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("read below the log start: %v, want ErrOffsetOutOfRange", err)
		}
		if _, err := readOnce(t, l, eng, 0, 1<<20); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("read at 0: %v, want ErrOffsetOutOfRange", err)
		}
	}
	for _, b := range readRaw(t, l, eng, start, 1<<20) {
		equalBatch(t, "after retention", b.data, raws[b.h.BaseOffset], b.h.BaseOffset)
	}
}

func baseList(l *Log) []SegmentBase {
	var out []SegmentBase
	for _, s := range l.segs {
		out = append(out, s.base)
	}
	return out
}

func TestRetentionBySize(t *testing.T) {
	cfg := Config{SegmentBytes: 32 << 10, IndexIntervalBytes: 2048}
	fs, l, eng, raws := retentionLog(t, cfg)
	total := l.SizeBytes()
	limit := total / 2
	before, bases := segmentFiles(t, fs, l), baseList(l)
	l.SetRetention(limit, 0)
	n := l.ApplyRetention(0)
	if n == 0 || len(l.segs) != len(bases)-n {
		t.Fatalf("retention deleted %d segments of %d (%d left)", n, len(bases), len(l.segs))
	}
	// Kafka's rule: delete the oldest while what remains without it is
	// still >= retention.bytes.
	if l.SizeBytes()-l.segs[0].size >= limit {
		t.Fatalf("kept segment %d though the rest (%d bytes) meets the limit %d", l.segs[0].base, l.SizeBytes()-l.segs[0].size, limit)
	}
	if l.SizeBytes() < limit {
		t.Fatalf("retention left %d bytes, under the %d limit", l.SizeBytes(), limit)
	}
	checkRetained(t, fs, l, eng, before, bases, raws)
	// A limit of one byte deletes everything but the active segment.
	l.SetRetention(1, 0)
	l.ApplyRetention(0)
	if len(l.segs) != 1 || l.LogStartOffset() != Offset(l.active.base) {
		t.Fatalf("retention 1 byte: %d segments, start %d, active %d", len(l.segs), l.LogStartOffset(), l.active.base)
	}
	checkRetained(t, fs, l, eng, before, bases, raws)
	// It survives a restart.
	start := l.LogStartOffset()
	l.Close()
	l, eng = memLog(t, fs, cfg)
	if l.LogStartOffset() != start {
		t.Fatalf("log start %d after reopen, want %d", l.LogStartOffset(), start)
	}
}

func TestRetentionByTime(t *testing.T) {
	cfg := Config{SegmentBytes: 32 << 10, IndexIntervalBytes: 2048}
	fs, l, eng, raws := retentionLog(t, cfg)
	// Reopened: sealed segments' newest timestamps come from their time
	// indexes, loaded on demand.
	maxTs := map[SegmentBase]int64{}
	for _, b := range readRaw(t, l, eng, 0, 1<<20) {
		s := l.segmentFor(b.h.BaseOffset)
		maxTs[s.base] = max(maxTs[s.base], b.h.MaxTimestamp)
	}
	before, bases := segmentFiles(t, fs, l), baseList(l)
	const retentionMs = 300
	now := maxTs[bases[3]] + retentionMs + 1 // segments 0-3 are expired, 4 is not
	l.SetRetention(0, retentionMs)
	if n := l.ApplyRetention(now); n != 4 {
		t.Fatalf("time retention deleted %d segments, want 4 (newest timestamps %v, now %d)", n, maxTs, now)
	}
	if l.LogStartOffset() != Offset(bases[4]) {
		t.Fatalf("log start %d, want %d", l.LogStartOffset(), bases[4])
	}
	checkRetained(t, fs, l, eng, before, bases, raws)
	// Far in the future everything but the active segment goes.
	l.ApplyRetention(now + 1<<40)
	if len(l.segs) != 1 {
		t.Fatalf("%d segments left; the active one must stay and only it", len(l.segs))
	}
	checkRetained(t, fs, l, eng, before, bases, raws)
	// Tick applies retention too.
	l.Close()
	fs2, l2, eng2, raws2 := retentionLog(t, cfg)
	l2.SetRetention(0, retentionMs)
	before2, bases2 := segmentFiles(t, fs2, l2), baseList(l2)
	l2.Tick(now)
	if l2.LogStartOffset() != Offset(bases2[4]) {
		t.Fatalf("Tick: log start %d, want %d", l2.LogStartOffset(), bases2[4])
	}
	checkRetained(t, fs2, l2, eng2, before2, bases2, raws2)
}

// TestRetentionReadInFlight: a read already in flight on a segment that
// retention deletes completes with the right bytes; the files are gone once
// it has.
func TestRetentionReadInFlight(t *testing.T) {
	cfg := Config{SegmentBytes: 32 << 10, IndexIntervalBytes: 2048}
	fs, l, eng, raws := retentionLog(t, cfg)
	seg0 := l.segs[0]
	path := seg0.path(logExt)
	var got ReadResult
	var rerr error
	called := false
	l.Read(0, 1<<20, func(r ReadResult, err error) { got, rerr, called = r, err, true })
	if called || eng.Inflight() == 0 {
		t.Fatal("setup: the read is not in flight")
	}
	l.SetRetention(1, 0)
	if n := l.ApplyRetention(0); n == 0 || len(l.segs) != 1 || l.LogStartOffset() == 0 {
		t.Fatalf("retention deleted %d segments, %d left, start %d", n, len(l.segs), l.LogStartOffset())
	}
	// The segment is gone from the log: new reads are out of range.
	if _, err := readOnce(t, l, eng, 0, 100); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("new read of a deleted segment: %v", err)
	}
	if !called {
		if err := dma.Drain(eng); err != nil {
			t.Fatal(err)
		}
	}
	if !called || rerr != nil {
		t.Fatalf("in-flight read: called %v err %v", called, rerr)
	}
	bs := splitBatches(t, got.Data)
	if len(bs) == 0 || bs[0].h.BaseOffset != 0 {
		t.Fatalf("in-flight read served %d batches", len(bs))
	}
	for _, b := range bs {
		equalBatch(t, "read across deletion", b.data, raws[b.h.BaseOffset], b.h.BaseOffset)
	}
	if fs.Exists(path) {
		t.Fatalf("%s still exists after its last read finished", path)
	}
}

// TestRetentionNeverDeletesActive: retention with a tiny limit on a
// single-segment log, and on a log whose tail is still being written.
func TestRetentionNeverDeletesActive(t *testing.T) {
	fs := dma.NewMemFS(4096, 1)
	l, eng := memLog(t, fs, Config{SegmentBytes: 16 << 10, RetentionBytes: 1})
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 50; i++ {
		if err := l.Append(makeBatch(1, 1, payload(rng, 2000)), 0, nil); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			eng.Poll()
		}
		l.Tick(0)
		if len(l.segs) == 0 || l.segs[len(l.segs)-1] != l.active {
			t.Fatal("the active segment was deleted")
		}
	}
	drainLog(t, l, eng)
	l.Tick(0)
	if len(l.segs) != 1 {
		t.Fatalf("%d segments", len(l.segs))
	}
	if got := readRaw(t, l, eng, l.LogStartOffset(), 1<<20); len(got) == 0 || got[len(got)-1].h.LastOffset()+1 != l.HighWatermark() {
		t.Fatal("active segment not readable after retention")
	}
}
