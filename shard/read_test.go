package shard

import (
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/strand-io/strand/dma"
)

// segmentBatches scans a segment file and returns each batch's header and
// file position.
func segmentBatches(t testing.TB, data []byte, base SegmentBase) ([]BatchHeader, []int64) {
	t.Helper()
	var hs []BatchHeader
	var pos []int64
	st := &scanState{next: Offset(base), maxBatch: 1 << 30, onBatch: func(h *BatchHeader, p int64) {
		hs = append(hs, *h)
		pos = append(pos, p)
	}}
	st.scan(data, 0, true)
	if st.stop != stopZeros {
		t.Fatalf("segment %d: scan ended with %s (%s)", base, st.stop, st.stopDetail)
	}
	return hs, pos
}

// buildSealed writes a log of several segments through the Log, closes it,
// and returns the file system and the batches appended, by base offset.
func buildSealed(t testing.TB, cfg Config, n int, seed int64) (*dma.MemFS, map[Offset][]byte, []AppendResult) {
	t.Helper()
	fs := dma.NewMemFS(4096, seed)
	l, eng := memLog(t, fs, cfg)
	rng := rand.New(rand.NewSource(seed))
	raws := map[Offset][]byte{}
	var acked []AppendResult
	for i := 0; i < n; i++ {
		raw := makeBatch(1+rng.Intn(4), int64(1000+10*i), payload(rng, 500+rng.Intn(3000)))
		if err := l.Append(raw, 0, func(r AppendResult, err error) {
			if err != nil {
				t.Fatal(err)
			}
			raws[r.Base] = raw
			acked = append(acked, r)
		}); err != nil {
			t.Fatal(err)
		}
		if rng.Intn(4) == 0 {
			dma.Drain(eng)
		}
	}
	drainLog(t, l, eng)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return fs, raws, acked
}

// TestCorruptionDetected flips one byte of a batch in a sealed segment, in
// each header field and in the records, and checks that reads never serve
// it: a read starting at the damaged batch fails with a CorruptionError
// that names the file and the batch's position, and a read starting before
// it returns only the whole batches before it.
func TestCorruptionDetected(t *testing.T) {
	cfg := Config{SegmentBytes: 64 << 10, IndexIntervalBytes: 4096}
	fs, raws, _ := buildSealed(t, cfg, 100, 1)
	dir := "/data/t-0"
	path := filepath.Join(dir, SegmentBase(0).fileName(logExt))
	hs, pos := segmentBatches(t, memFileBytes(t, fs, path), 0)
	if len(hs) < 12 {
		t.Fatalf("setup: first segment has only %d batches", len(hs))
	}
	victim := 9 // past the first index entry, so reads start mid-segment
	h, at := hs[victim], pos[victim]
	fields := []struct {
		name string
		off  int64
	}{
		{"baseOffset", 3}, {"baseOffset-high", 0}, {"batchLength", 10}, {"batchLength-high", 8},
		{"magic", 16}, {"crc", 19}, {"attributes", 22}, {"lastOffsetDelta", 26},
		{"baseTimestamp", 30}, {"maxTimestamp", 40}, {"producerId", 45}, {"producerEpoch", 52},
		{"baseSequence", 55}, {"recordCount", 60}, {"records-first", 61}, {"records-last", int64(h.Size() - 1)},
		// partitionLeaderEpoch (bytes 12-15) is outside the CRC. A flip is
		// caught when the result decreases or exceeds the newest epoch
		// the log knows; every batch here has epoch 0, so every flip is.
		// (Between two known epochs a flip would pass, in Kafka too.)
		{"partitionLeaderEpoch", 15}, {"partitionLeaderEpoch-high", 12},
	}
	for _, f := range fields {
		t.Run(f.name, func(t *testing.T) {
			img := fs.Crash(0) // everything is synced: an exact copy
			img.Corrupt(path, at+f.off)
			l, eng := memLog(t, img, cfg)
			res, err := readOnce(t, l, eng, h.BaseOffset, 1<<20)
			var ce *CorruptionError
			if !errors.As(err, &ce) {
				t.Fatalf("read of the damaged batch: err %v, %d bytes served", err, len(res.Data))
			}
			if ce.File != path || ce.Pos != FilePos(at) || ce.Offset != h.BaseOffset {
				t.Fatalf("CorruptionError names %s at %d (offset %d), want %s at %d (offset %d)", ce.File, ce.Pos, ce.Offset, path, at, h.BaseOffset)
			}
			if len(res.Data) != 0 {
				t.Fatalf("%d bytes served with the error", len(res.Data))
			}
			if ce := (*CorruptionError)(nil); !errors.As(err, &ce) {
				t.Fatalf("read error %v is not a CorruptionError", err)
			}
			// From two batches earlier: those two, and nothing of the damage.
			from := hs[victim-2].BaseOffset
			res, err = readOnce(t, l, eng, from, 1<<20)
			if err != nil {
				t.Fatalf("read before the damage: %v", err)
			}
			bs := splitBatches(t, res.Data)
			if len(bs) != 2 {
				t.Fatalf("read from %d served %d batches, want the 2 before the damage", from, len(bs))
			}
			for i, b := range bs {
				base := hs[victim-2+i].BaseOffset
				equalBatch(t, "before the damage", b.data, raws[base], base)
			}
			// Reads past the damaged batch still work.
			next := hs[victim+1].BaseOffset
			res, err = readOnce(t, l, eng, next, 1)
			if err != nil {
				t.Fatalf("read after the damage: %v", err)
			}
			if bs := splitBatches(t, res.Data); len(bs) != 1 || bs[0].h.BaseOffset != next {
				t.Fatalf("read at %d after the damage served %d batches", next, len(bs))
			}
			if l.Err() != nil {
				t.Fatalf("a corrupt read failed the log: %v", l.Err())
			}
		})
	}
}

// TestCorruptionDetectedOnDisk is the same check on the real file system,
// with a byte flipped in place by another writer.
func TestCorruptionDetectedOnDisk(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	dir := t.TempDir()
	cfg := Config{Dir: dir, SegmentBytes: 64 << 10, Logger: quietLogger()}
	eng, err := dma.NewEngine(32)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	l := openLog(t, dma.OSFS(), eng, cfg)
	rng := rand.New(rand.NewSource(2))
	for i := 0; i < 60; i++ {
		if err := l.Append(makeBatch(2, int64(i), payload(rng, 2000)), 0, nil); err != nil {
			t.Fatal(err)
		}
	}
	drainLog(t, l, eng)
	l.Close()
	path := filepath.Join(dir, SegmentBase(0).fileName(logExt))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	hs, pos := segmentBatches(t, data, 0)
	victim := len(hs) / 2
	flip := pos[victim] + 200
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := []byte{data[flip] ^ 0x01}
	if _, err := f.WriteAt(b, flip); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var logged *[]string
	cfg.Logger, _, logged = newWarnLogger()
	l = openLog(t, dma.OSFS(), eng, cfg)
	defer l.Close()
	res, err := readOnce(t, l, eng, hs[victim].BaseOffset+1, 1<<20)
	var ce *CorruptionError
	if !errors.As(err, &ce) || ce.File != path || ce.Pos != FilePos(pos[victim]) || len(res.Data) != 0 {
		t.Fatalf("read of a flipped byte at %s:%d: err %v, %d bytes; want a CorruptionError at %d", path, flip, err, len(res.Data), pos[victim])
	}
	want := fmt.Sprintf("shard: corrupt data in %s at byte %d (reading offset %d)", path, pos[victim], hs[victim].BaseOffset+1)
	if got := err.Error(); len(got) < len(want) || got[:len(want)] != want {
		t.Fatalf("error %q, want it to start %q", got, want)
	}
	if len(*logged) == 0 {
		t.Fatal("corruption was not logged")
	}
}

// TestReadKIP74: a read whose maxBytes is smaller than the first batch
// still returns that whole batch, from the staging buffer and from disk,
// including batches far larger than one disk read.
func TestReadKIP74(t *testing.T) {
	fs := dma.NewMemFS(4096, 1)
	cfg := Config{SegmentBytes: 8 << 20}
	l, eng := memLog(t, fs, cfg)
	rng := rand.New(rand.NewSource(1))
	sizes := []int{100, 5000, 70 << 10, 300 << 10, 1<<20 + 12, BatchHeaderSize} // whole batch sizes; 1 MiB+12 is the limit
	var raws [][]byte
	var bases []Offset
	for _, n := range sizes {
		raw := makeBatch(3, 1, payload(rng, n-BatchHeaderSize))
		raws = append(raws, raw)
		if err := l.Append(raw, 0, func(r AppendResult, err error) { bases = append(bases, r.Base) }); err != nil {
			t.Fatal(err)
		}
		drainLog(t, l, eng)
	}
	check := func(where string, l *Log, eng dma.Engine) {
		for i, raw := range raws {
			for _, maxBytes := range []int{1, len(raw) - 1, len(raw), len(raw) + 1} {
				for _, off := range []Offset{bases[i], bases[i] + 2} {
					res, err := readOnce(t, l, eng, off, maxBytes)
					if err != nil {
						t.Fatalf("%s: read %d max %d: %v", where, off, maxBytes, err)
					}
					bs := splitBatches(t, res.Data)
					if len(bs) == 0 {
						t.Fatalf("%s: read %d max %d served nothing", where, off, maxBytes)
					}
					equalBatch(t, where, bs[0].data, raw, bases[i])
					if len(bs) > 1 && len(res.Data) > maxBytes {
						t.Fatalf("%s: read %d max %d served %d bytes in %d batches", where, off, maxBytes, len(res.Data), len(bs))
					}
				}
			}
		}
	}
	check("staged", l, eng)
	l.Close()
	l, eng = memLog(t, fs, cfg)
	if len(l.recent) != 0 {
		t.Fatal("setup: reopened log serves from its staging buffer")
	}
	check("disk", l, eng)
}

// TestReadStagedMatchesDisk: every read answered from the staging buffer
// returns exactly the bytes the same read returns from disk later.
func TestReadStagedMatchesDisk(t *testing.T) {
	fs := dma.NewMemFS(512, 3)
	fs.Reorder = true
	cfg := Config{SegmentBytes: 256 << 10, BufferBytes: 1, MaxBatchBytes: 32 << 10, IndexIntervalBytes: 1024}
	l, eng := memLog(t, fs, cfg)
	rng := rand.New(rand.NewSource(3))
	type sample struct {
		off      Offset
		maxBytes int
		data     []byte
	}
	var samples []sample
	staged := 0
	for i := 0; i < 600; i++ {
		if err := l.Append(makeBatch(1+rng.Intn(4), int64(i), payload(rng, rng.Intn(8000))), int64(i), nil); err != nil {
			t.Fatal(err)
		}
		if rng.Intn(3) == 0 {
			eng.Poll()
		}
		if hw := l.HighWatermark(); hw > 0 && rng.Intn(2) == 0 {
			off := max(0, hw-1-Offset(rng.Intn(30))) // a consumer near the tail
			maxBytes := 1 + rng.Intn(20000)
			if data, ok := l.readStaged(off, maxBytes, l.HighWatermark()); ok {
				staged++
				res, err := readOnce(t, l, eng, off, maxBytes) // the public path agrees
				if err != nil || string(res.Data) != string(data) {
					t.Fatalf("Read and readStaged differ at %d: %v", off, err)
				}
				samples = append(samples, sample{off, maxBytes, data})
			}
		}
	}
	drainLog(t, l, eng)
	l.Close()
	if staged < 50 {
		t.Fatalf("only %d reads came from the staging buffer", staged)
	}
	l, eng = memLog(t, fs, cfg)
	for _, s := range samples {
		res, err := readOnce(t, l, eng, s.off, s.maxBytes)
		if err != nil {
			t.Fatal(err)
		}
		// The disk read may go further (the high watermark has moved on
		// since); the staged answer must be a prefix of it.
		if len(res.Data) < len(s.data) || string(res.Data[:len(s.data)]) != string(s.data) {
			t.Fatalf("read %d max %d: staging buffer and disk bytes differ", s.off, s.maxBytes)
		}
	}
}

// TestOffsetForTime looks timestamps up across sealed segments, the
// active one, and after a restart, against a linear search.
func TestOffsetForTime(t *testing.T) {
	cfg := Config{SegmentBytes: 32 << 10, IndexIntervalBytes: 2048}
	fs := dma.NewMemFS(4096, 4)
	l, eng := memLog(t, fs, cfg)
	rng := rand.New(rand.NewSource(4))
	type tb struct {
		base Offset
		ts   int64
	}
	var all []tb
	ts := int64(1_000)
	for i := 0; i < 300; i++ {
		ts += int64(rng.Intn(20))
		bts := ts
		if rng.Intn(6) == 0 {
			bts = ts - int64(rng.Intn(200)) // out of order timestamps
		}
		if err := l.Append(makeBatch(1+rng.Intn(3), bts, payload(rng, rng.Intn(3000))), 0, func(r AppendResult, err error) {
			all = append(all, tb{r.Base, bts})
		}); err != nil {
			t.Fatal(err)
		}
		if rng.Intn(5) == 0 {
			drainLog(t, l, eng)
		}
	}
	drainLog(t, l, eng)
	if len(l.segs) < 5 {
		t.Fatalf("setup: %d segments", len(l.segs))
	}
	check := func(where string, l *Log, eng dma.Engine) {
		for q := int64(900); q <= ts+10; q += 7 {
			want, wantTs := Offset(-1), int64(-1)
			for _, b := range all {
				if b.ts >= q {
					want, wantTs = b.base, b.ts
					break
				}
			}
			got, gotTs := Offset(-2), int64(-2)
			l.OffsetForTime(q, func(off Offset, t2 int64, err error) {
				if err != nil {
					t.Fatal(err)
				}
				got, gotTs = off, t2
			})
			dma.Drain(eng)
			if got != want || gotTs != wantTs {
				t.Fatalf("%s: OffsetForTime(%d) = %d (ts %d), want %d (ts %d)", where, q, got, gotTs, want, wantTs)
			}
		}
	}
	check("open", l, eng)
	l.Close()
	l, eng = memLog(t, fs, cfg)
	check("reopened", l, eng)
}

// TestSharedReadPool: logs given one ReadPool read through it, Open's own
// scans stay out of it (Open may run on another goroutine), and closing one
// log leaves the pool to the others.
func TestSharedReadPool(t *testing.T) {
	cfg := Config{SegmentBytes: 64 << 10, IndexIntervalBytes: 4096}
	fs, _, acked := buildSealed(t, cfg, 100, 1)
	pool := dma.NewPool(4)
	shared := cfg
	shared.ReadPool = pool
	a, engA := memLog(t, fs, shared)
	if pool.Cached() != 0 {
		t.Fatalf("Open left %d buffers in the shared pool", pool.Cached())
	}
	if _, err := readOnce(t, a, engA, acked[3].Base, 1<<20); err != nil {
		t.Fatal(err)
	}
	if pool.Cached() == 0 {
		t.Fatal("a disk read did not return its buffer to the shared pool")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	cached := pool.Cached()
	if cached == 0 {
		t.Fatal("closing one log emptied the shared pool")
	}
	b, engB := memLog(t, fs, shared)
	if _, err := readOnce(t, b, engB, acked[3].Base, 1<<20); err != nil {
		t.Fatal(err)
	}
	if pool.Cached() != cached {
		t.Fatalf("after another log's Close the pool holds %d buffers, then %d: closed with the log, or not reused", cached, pool.Cached())
	}
}
