package shard

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/strand-io/strand/dma"
)

// idemBatch is makeBatch with producer id, epoch and base sequence set.
func idemBatch(pid int64, epoch int16, seq int32, n int) []byte {
	b := makeBatch(n, 1, []byte("idempotent"))
	be := binary.BigEndian
	be.PutUint64(b[43:], uint64(pid))
	be.PutUint16(b[51:], uint16(epoch))
	be.PutUint32(b[53:], uint32(seq))
	be.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

type appendOutcome struct {
	res    AppendResult
	err    error
	called bool
}

func appendSync(t *testing.T, l *Log, eng dma.Engine, b []byte) appendOutcome {
	t.Helper()
	var o appendOutcome
	if err := l.Append(b, 1, func(r AppendResult, err error) { o = appendOutcome{r, err, true} }); err != nil {
		return appendOutcome{err: err, called: true}
	}
	dma.Drain(eng)
	if !o.called {
		t.Fatal("append never completed")
	}
	return o
}

func TestIdempotentProducer(t *testing.T) {
	fs := dma.NewMemFS(4096, 7)
	l, eng := memLog(t, fs, Config{})
	first := appendSync(t, l, eng, idemBatch(42, 0, 0, 3))
	if first.err != nil || first.res.Base != 0 || first.res.Last != 2 {
		t.Fatalf("first batch: %+v", first)
	}
	appendSync(t, l, eng, idemBatch(42, 0, 3, 2)) // offsets 3-4
	// A retry of the first batch gets its original offsets and is not stored again.
	dup := appendSync(t, l, eng, idemBatch(42, 0, 0, 3))
	if dup.err != nil || dup.res.Base != 0 || dup.res.Last != 2 {
		t.Fatalf("duplicate answered %+v, want offsets 0-2", dup)
	}
	if l.NextOffset() != 5 {
		t.Fatalf("duplicate was appended: next offset %d", l.NextOffset())
	}
	// A gap is refused.
	if o := appendSync(t, l, eng, idemBatch(42, 0, 9, 1)); !errors.Is(o.err, ErrOutOfOrderSequence) {
		t.Fatalf("gap: %+v", o)
	}
	// A new epoch must start at 0, and fences the old one.
	if o := appendSync(t, l, eng, idemBatch(42, 1, 5, 1)); !errors.Is(o.err, ErrOutOfOrderSequence) {
		t.Fatalf("new epoch at seq 5: %+v", o)
	}
	if o := appendSync(t, l, eng, idemBatch(42, 1, 0, 1)); o.err != nil {
		t.Fatalf("new epoch at 0: %+v", o)
	}
	if o := appendSync(t, l, eng, idemBatch(42, 0, 5, 1)); !errors.Is(o.err, ErrProducerFenced) {
		t.Fatalf("old epoch: %+v", o)
	}
	// Unknown producers must start at sequence 0.
	if o := appendSync(t, l, eng, idemBatch(7, 0, 4, 1)); !errors.Is(o.err, ErrOutOfOrderSequence) {
		t.Fatalf("unknown producer at seq 4: %+v", o)
	}
}

// TestDuplicateOfInFlightBatch: a retry that arrives while the original is
// still being written is answered only once the original is durable.
func TestDuplicateOfInFlightBatch(t *testing.T) {
	fs := dma.NewMemFS(4096, 8)
	l, eng := memLog(t, fs, Config{})
	var orig, retry appendOutcome
	l.Append(idemBatch(5, 0, 0, 2), 1, func(r AppendResult, err error) { orig = appendOutcome{r, err, true} })
	l.Append(idemBatch(5, 0, 0, 2), 1, func(r AppendResult, err error) { retry = appendOutcome{r, err, true} })
	if retry.called {
		t.Fatal("duplicate acknowledged before the original was durable")
	}
	dma.Drain(eng)
	if !orig.called || !retry.called || retry.res != orig.res || l.NextOffset() != 2 || l.HighWatermark() != 2 {
		t.Fatalf("orig %+v retry %+v next %d hw %d", orig, retry, l.NextOffset(), l.HighWatermark())
	}
}

// TestProducerStateSurvivesCrash: after a crash (no snapshot at all, and
// again with snapshots on roll and close) duplicates are still recognised.
func TestProducerStateSurvivesCrash(t *testing.T) {
	for _, snapBytes := range []int64{1 << 30, 1} {
		fs := dma.NewMemFS(4096, 9)
		cfg := Config{SegmentBytes: 8 << 10, ProducerSnapshotBytes: snapBytes}
		l, eng := memLog(t, fs, cfg)
		var seq int32
		for i := 0; i < 40; i++ {
			if o := appendSync(t, l, eng, idemBatch(3, 2, seq, 4)); o.err != nil {
				t.Fatal(o.err)
			}
			seq += 4
		}
		snapshots := len(l.snapshotOffsets())
		crashed := fs.Crash(1)
		l2, eng2 := memLog(t, crashed, cfg)
		// With a snapshot per acknowledgement the rebuild must start from one,
		// not from the log start: otherwise this case proves nothing about
		// snapshots.
		if snapBytes == 1 && (snapshots == 0 || l2.producerReplayFrom == 0) {
			t.Fatalf("snapshots written: %d; rebuild replayed from offset %d", snapshots, l2.producerReplayFrom)
		}
		dup := appendSync(t, l2, eng2, idemBatch(3, 2, seq-4, 4))
		if dup.err != nil || dup.res.Base != 156 || l2.NextOffset() != 160 {
			t.Fatalf("snapshot every %d bytes: retry after crash got %+v next %d", snapBytes, dup, l2.NextOffset())
		}
		if o := appendSync(t, l2, eng2, idemBatch(3, 2, seq, 1)); o.err != nil || o.res.Base != 160 {
			t.Fatalf("next in sequence after crash: %+v", o)
		}
		if o := appendSync(t, l2, eng2, idemBatch(3, 1, 0, 1)); !errors.Is(o.err, ErrProducerFenced) {
			t.Fatalf("old epoch after crash: %+v", o)
		}
		if err := l2.Close(); err != nil {
			t.Fatal(err)
		}
		l3, eng3 := memLog(t, crashed, cfg)
		if o := appendSync(t, l3, eng3, idemBatch(3, 2, seq, 1)); o.err != nil || o.res.Base != 160 {
			t.Fatalf("retry after clean restart: %+v", o)
		}
	}
}

func TestProducerSnapshotCodec(t *testing.T) {
	meta := producerTable{
		7: {epoch: 3, batches: []seqBatch{{0, 4, 10, 14}, {5, 5, 20, 20}}},
		9: {epoch: 0},
	}
	b := encodeSnapshot(42, meta)
	off, got, err := decodeSnapshot(b)
	if err != nil || off != 42 || len(got) != 2 || got[7].epoch != 3 || len(got[7].batches) != 2 || got[7].batches[1] != (seqBatch{5, 5, 20, 20}) {
		t.Fatalf("round trip: off %d err %v table %+v", off, err, got)
	}
	for i := range b {
		bad := append([]byte(nil), b...)
		bad[i] ^= 0x01
		if _, _, err := decodeSnapshot(bad); err == nil {
			t.Fatalf("flipped bit in byte %d not detected", i)
		}
	}
	if _, _, err := decodeSnapshot(b[:len(b)-1]); err == nil {
		t.Fatal("truncated snapshot accepted")
	}
}

// TestPeriodicSnapshots: the snapshots taken every ProducerSnapshotBytes go
// through the engine without holding up acknowledgements, keep the log from
// being idle while in flight, are pruned to two, and a crash at any point
// (a rename not yet made durable by the directory sync included) still
// rebuilds the producer state, usually from one of them.
func TestPeriodicSnapshots(t *testing.T) {
	fs := dma.NewMemFS(4096, 3)
	fs.Reorder = true
	cfg := Config{SegmentBytes: 1 << 30, ProducerSnapshotBytes: 2048}
	l, eng := memLog(t, fs, cfg)
	var seq int32
	most := 0
	fromSnapshot := 0
	for i := 0; i < 120; i++ {
		if o := appendSync(t, l, eng, idemBatch(5, 1, seq, 3)); o.err != nil {
			t.Fatal(o.err)
		}
		seq += 3
		if l.sideIO < 0 || l.snapshotting && l.sideIO == 0 {
			t.Fatalf("append %d: sideIO %d with a snapshot in flight %v", i, l.sideIO, l.snapshotting)
		}
		most = max(most, len(l.snapshotOffsets()))
		if i%10 == 9 {
			crashed := fs.Crash(int64(i))
			l2, eng2 := memLog(t, crashed, cfg)
			if l2.producerReplayFrom > 0 {
				fromSnapshot++
			}
			if dup := appendSync(t, l2, eng2, idemBatch(5, 1, seq-3, 3)); dup.err != nil || dup.res.Last != l.NextOffset()-1 {
				t.Fatalf("after crash %d: retry of the last batch got %+v, want a duplicate ending at %d", i, dup, l.NextOffset()-1)
			}
			names, _ := crashed.ReadDir(cfg.Dir)
			for _, n := range names {
				if strings.HasSuffix(n, ".tmp") {
					t.Fatalf("after crash %d and recovery: leftover %s", i, n)
				}
			}
		}
	}
	if most > 3 {
		t.Fatalf("%d snapshot files at once, want at most 3 (two and one being written)", most)
	}
	if fromSnapshot == 0 {
		t.Fatal("no recovery started from a periodic snapshot")
	}
	// Quiesce waits for a snapshot in flight.
	for i := 0; !l.snapshotting; i++ {
		if i == 1000 {
			t.Fatal("no snapshot in flight after 1000 appends")
		}
		acked := false
		if err := l.Append(idemBatch(5, 1, seq, 3), 1, func(_ AppendResult, err error) {
			if err != nil {
				t.Error(err)
			}
			acked = true
		}); err != nil {
			t.Fatal(err)
		}
		seq += 3
		for !acked {
			eng.Poll()
		}
	}
	quiet := false
	l.Quiesce(func() {
		if l.sideIO != 0 || l.snapshotting {
			t.Errorf("Quiesce ran with %d bookkeeping writes in flight", l.sideIO)
		}
		quiet = true
	})
	drainLog(t, l, eng)
	if !quiet {
		t.Fatal("Quiesce never ran")
	}
}

// TestPeriodicSnapshotFailure: a snapshot whose fdatasync fails is dropped
// with a warning; the log goes on and leaves no temporary file.
func TestPeriodicSnapshotFailure(t *testing.T) {
	fs := dma.NewMemFS(4096, 4)
	logger, warns, msgs := newWarnLogger()
	cfg := Config{SegmentBytes: 1 << 30, ProducerSnapshotBytes: 1, Logger: logger}
	l, eng := memLog(t, fs, cfg)
	if o := appendSync(t, l, eng, idemBatch(5, 1, 0, 1)); o.err != nil {
		t.Fatal(o.err)
	}
	before := len(l.snapshotOffsets())
	// The next append's fdatasync succeeds; the snapshot it triggers fails.
	var o appendOutcome
	if err := l.Append(idemBatch(5, 1, 1, 1), 1, func(r AppendResult, err error) {
		o = appendOutcome{r, err, true}
		fs.Faults.FailSyncs = 1
	}); err != nil {
		t.Fatal(err)
	}
	drainLog(t, l, eng)
	if o.err != nil || l.Err() != nil || *warns == 0 {
		t.Fatalf("append %+v, log error %v, warnings %v", o, l.Err(), *msgs)
	}
	if got := len(l.snapshotOffsets()); got != before {
		t.Fatalf("%d snapshots after a failed one, want %d", got, before)
	}
	names, _ := fs.ReadDir(cfg.Dir)
	for _, n := range names {
		if strings.HasSuffix(n, ".tmp") {
			t.Fatalf("failed snapshot left %s", n)
		}
	}
	if o := appendSync(t, l, eng, idemBatch(5, 1, 2, 1)); o.err != nil || o.res.Base != 2 {
		t.Fatalf("append after the failed snapshot: %+v", o)
	}
}
