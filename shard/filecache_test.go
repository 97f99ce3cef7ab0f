package shard

import (
	"errors"
	"math/rand"
	"os"
	"testing"

	"github.com/strand-io/strand/dma"
)

// manySegments appends until l has at least n segments, draining as it
// goes, and returns the batches appended (client bytes, by base offset).
func manySegments(t *testing.T, l *Log, eng dma.Engine, n int, check func()) map[Offset][]byte {
	t.Helper()
	rng := rand.New(rand.NewSource(int64(n)))
	sent := map[Offset][]byte{}
	for i := 0; len(l.segs) < n; i++ {
		b := makeBatch(1+rng.Intn(3), int64(i), payload(rng, 2000+rng.Intn(2000)))
		base := l.NextOffset()
		var aerr error
		if err := l.Append(b, int64(i), func(_ AppendResult, err error) { aerr = err }); err != nil {
			t.Fatal(err)
		}
		sent[base] = b
		drainLog(t, l, eng)
		if aerr != nil {
			t.Fatal(aerr)
		}
		if check != nil {
			check()
		}
		if i > 100000 {
			t.Fatal("log does not roll")
		}
	}
	return sent
}

// checkAll reads the whole log and compares every batch with what was sent.
func checkAll(t *testing.T, l *Log, eng dma.Engine, sent map[Offset][]byte) {
	t.Helper()
	got := readRaw(t, l, eng, l.LogStartOffset(), 64<<10)
	if len(got) != len(sent) {
		t.Fatalf("read %d batches, appended %d", len(got), len(sent))
	}
	for _, b := range got {
		equalBatch(t, "read back", b.data, sent[b.h.BaseOffset], b.h.BaseOffset)
	}
}

// TestIdleLogHoldsOneDescriptor is the regression test for issue 9's
// "each partition holds about 3 file descriptors" per segment: a log with
// 20 segments held 22 descriptors once reopened and 60 after a read of
// everything. Now it holds its active segment's file, plus at most its
// cache's bound (a private cache here) after reading old segments.
func TestIdleLogHoldsOneDescriptor(t *testing.T) {
	fs := dma.NewMemFS(4096, 1)
	cfg := Config{SegmentBytes: 16 << 10, IndexIntervalBytes: 1024, IndexCheckpointBytes: 4096, MaxBatchBytes: 8 << 10}
	l, eng := memLog(t, fs, cfg)
	sent := manySegments(t, l, eng, 20, nil)
	const privateBound = 4 // privateFileCacheFiles
	if n := fs.OpenFiles(); n > 1+privateBound {
		t.Fatalf("a log with %d segments holds %d files after appending, want at most %d", len(l.segs), n, 1+privateBound)
	}
	l.Close()
	if n := fs.OpenFiles(); n != 0 {
		t.Fatalf("%d files still open after Close", n)
	}
	l, eng = memLog(t, fs, cfg)
	if n := fs.OpenFiles(); n != 1 {
		t.Fatalf("a reopened log with %d segments holds %d files, want 1", len(l.segs), n)
	}
	checkAll(t, l, eng, sent)
	if n := fs.OpenFiles(); n > 1+privateBound {
		t.Fatalf("after reading %d segments the log holds %d files, want at most %d", len(l.segs), n, 1+privateBound)
	}
}

// TestFileCacheOfOneServesEverySegment reads every old segment of two logs
// that share a cache of one file, many reads at once, and checks after
// every callback that the cache never holds more than one file. MemFS
// fails a read on a closed file (EBADF), so closing a file under a read in
// flight would show as a read error.
func TestFileCacheOfOneServesEverySegment(t *testing.T) {
	fs := dma.NewMemFS(4096, 2)
	fs.Reorder = true
	cache := NewFileCache(1)
	eng := fs.NewEngine()
	var logs []*Log
	var sent []map[Offset][]byte
	check := func() {
		if cache.Len() > cache.Max() {
			t.Fatalf("cache holds %d files, bound %d", cache.Len(), cache.Max())
		}
		if held := fs.OpenFiles(); held > len(logs)*DescriptorsPerLog+cache.Max() {
			t.Fatalf("%d files open for %d logs and a cache of %d", held, len(logs), cache.Max())
		}
	}
	for i, dir := range []string{"/data/a-0", "/data/b-0"} {
		l := openLog(t, fs, eng, Config{Dir: dir, SegmentBytes: 16 << 10, IndexIntervalBytes: 1024, MaxBatchBytes: 8 << 10, FileCache: cache})
		logs = append(logs, l)
		sent = append(sent, manySegments(t, l, eng, 8+i, check))
	}
	// One read per sealed segment of both logs, all issued before any
	// completes: all but one wait for the cache's only slot.
	type result struct {
		data []byte
		err  error
	}
	results := map[*Log]map[Offset]*result{}
	issued := 0
	for _, l := range logs {
		results[l] = map[Offset]*result{}
		for _, seg := range l.segs[:len(l.segs)-1] {
			r := &result{}
			results[l][Offset(seg.base)] = r
			issued++
			l.Read(Offset(seg.base), 1<<20, func(rr ReadResult, err error) {
				check()
				r.data, r.err = rr.Data, err
			})
		}
	}
	if cache.Waiting() < issued-cache.Max() {
		t.Fatalf("%d reads wait for a file, want %d: the cache did not bound them", cache.Waiting(), issued-cache.Max())
	}
	if err := dma.Drain(eng); err != nil {
		t.Fatal(err)
	}
	for i, l := range logs {
		for base, r := range results[l] {
			if r.err != nil {
				t.Fatalf("read of segment %d: %v", base, r.err)
			}
			batches := splitBatches(t, r.data)
			if len(batches) == 0 || batches[0].h.BaseOffset != base {
				t.Fatalf("read of segment %d returned %d batches", base, len(batches))
			}
			for _, b := range batches {
				equalBatch(t, "read back", b.data, sent[i][b.h.BaseOffset], b.h.BaseOffset)
			}
		}
		checkAll(t, l, eng, sent[i])
	}
	check()
	for _, l := range logs {
		l.Close()
	}
	if n := fs.OpenFiles(); n != 0 || cache.Len() != 0 {
		t.Fatalf("after closing every log: %d files open, %d cached", n, cache.Len())
	}
}

// TestReadWaitingForDeletedSegment: retention deletes a segment while a
// read waits for its file; the read must neither open a file by the old
// name nor hang, but answer as a read of a deleted offset does.
func TestReadWaitingForDeletedSegment(t *testing.T) {
	fs := dma.NewMemFS(4096, 3)
	cache := NewFileCache(1)
	l, eng := memLog(t, fs, Config{SegmentBytes: 16 << 10, MaxBatchBytes: 8 << 10, FileCache: cache})
	manySegments(t, l, eng, 4, nil)
	var first, second error
	firstDone, secondDone := false, false
	l.Read(Offset(l.segs[1].base), 1<<20, func(_ ReadResult, err error) { first, firstDone = err, true })
	l.Read(Offset(l.segs[0].base), 1<<20, func(_ ReadResult, err error) { second, secondDone = err, true })
	if cache.Waiting() != 1 {
		t.Fatalf("%d reads waiting, want 1", cache.Waiting())
	}
	if n := l.DeleteBefore(Offset(l.segs[1].base)); n != 1 {
		t.Fatalf("deleted %d segments, want 1", n)
	}
	if err := dma.Drain(eng); err != nil {
		t.Fatal(err)
	}
	if !firstDone || !secondDone {
		t.Fatalf("reads done: %v %v", firstDone, secondDone)
	}
	if first != nil {
		t.Fatalf("read of a live segment: %v", first)
	}
	if !errors.Is(second, ErrOffsetOutOfRange) {
		t.Fatalf("read of the deleted segment: %v, want ErrOffsetOutOfRange", second)
	}
	if fs.Exists(l.cfg.Dir + "/00000000000000000000.log") {
		t.Fatal("the deleted segment's file exists again")
	}
}

// TestDescriptorsOnRealFS counts the process's descriptors (/proc/self/fd)
// around a log with 20 segments on the real file system and engine.
func TestDescriptorsOnRealFS(t *testing.T) {
	eng, err := dma.NewEngine(64)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	cache := NewFileCache(2)
	cfg := Config{Dir: t.TempDir(), SegmentBytes: 64 << 10, Preallocate: true, Logger: quietLogger(), FileCache: cache}
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc/self/fd:", err)
		}
		return len(ents)
	}
	before := fds()
	l, err := Open(cfg, dma.OSFS(), eng)
	if err != nil {
		t.Fatal(err)
	}
	sent := manySegments(t, l, eng, 20, nil)
	l.Close()
	l, err = Open(cfg, dma.OSFS(), eng)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if n := fds() - before; n != DescriptorsPerLog {
		t.Fatalf("a reopened log with %d segments holds %d descriptors, want %d", len(l.segs), n, DescriptorsPerLog)
	}
	checkAll(t, l, eng, sent)
	if n := fds() - before; n > DescriptorsPerLog+cache.Max() {
		t.Fatalf("after reading %d segments: %d descriptors, want at most %d", len(l.segs), n, DescriptorsPerLog+cache.Max())
	}
	t.Logf("%d segments: %d descriptors after reading all (cache bound %d)", len(l.segs), fds()-before, cache.Max())
}

// TestCloseKeepsFilesUnderReads: closing a log (after Quiesce, which waits
// for writes, not reads) must not close a segment file a read is still
// using; the file closes when the read ends.
func TestCloseKeepsFilesUnderReads(t *testing.T) {
	fs := dma.NewMemFS(4096, 4)
	cache := NewFileCache(2)
	l, eng := memLog(t, fs, Config{SegmentBytes: 16 << 10, MaxBatchBytes: 8 << 10, FileCache: cache})
	manySegments(t, l, eng, 3, nil)
	var rerr error
	done := false
	l.Read(Offset(l.segs[0].base), 1<<20, func(_ ReadResult, err error) { rerr, done = err, true })
	l.Read(l.HighWatermark()-1, 1<<20, func(ReadResult, error) {}) // the active segment, from the staging buffer
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := dma.Drain(eng); err != nil {
		t.Fatal(err)
	}
	if !done || rerr != nil {
		t.Fatalf("read in flight across Close: done %v, err %v", done, rerr)
	}
	if n := fs.OpenFiles(); n != 0 || cache.Len() != 0 {
		t.Fatalf("after the read ended: %d files open, %d cached", n, cache.Len())
	}
}
