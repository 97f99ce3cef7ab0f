package shard

import (
	"errors"
	"math/rand"
	"testing"

	"github.com/strand-io/strand/dma"
)

// midSegmentOffset picks an offset strictly inside the third segment, so
// the cut lands where no segment name can record it.
func midSegmentOffset(t *testing.T, l *Log) Offset {
	t.Helper()
	s := l.segs[2]
	if s.last <= Offset(s.base) {
		t.Fatalf("setup: segment %d holds one offset", s.base)
	}
	return Offset(s.base) + (s.last-Offset(s.base))/2 + 1
}

// TestDeleteRecordsBefore: the log start moves to the requested offset, the
// segments wholly below it go, reads below it are out of range, reads from
// it serve the original batches, and the bounds follow Kafka (-1 is the
// high watermark, above it is out of range, below the start is a no-op).
func TestDeleteRecordsBefore(t *testing.T) {
	cfg := Config{SegmentBytes: 32 << 10, IndexIntervalBytes: 2048}
	fs, l, eng, raws := retentionLog(t, cfg)
	defer abandon(l)
	at := midSegmentOffset(t, l)
	keptBase := l.segs[2].base
	gone := []string{l.segs[0].path(logExt), l.segs[1].path(logExt)}

	if _, err := l.DeleteRecordsBefore(l.hw + 1); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("above the high watermark: %v, want ErrOffsetOutOfRange", err)
	}
	if _, err := l.DeleteRecordsBefore(-2); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("offset -2: %v, want ErrOffsetOutOfRange", err)
	}
	if l.LogStartOffset() != 0 || l.LogStartCheckpointed() != -1 {
		t.Fatalf("refused calls moved the log start to %d (checkpoint %d)", l.LogStartOffset(), l.LogStartCheckpointed())
	}
	got, err := l.DeleteRecordsBefore(at)
	if err != nil || got != at || l.LogStartOffset() != at {
		t.Fatalf("delete before %d: start %d err %v (log says %d)", at, got, err, l.LogStartOffset())
	}
	if l.LogStartCheckpointed() != at {
		t.Fatalf("checkpoint %d, want %d", l.LogStartCheckpointed(), at)
	}
	for _, p := range gone {
		if fs.Exists(p) {
			t.Fatalf("%s lies wholly below %d but is still there", p, at)
		}
	}
	if l.segs[0].base != keptBase {
		t.Fatalf("first segment %d, want %d (it holds the new start)", l.segs[0].base, keptBase)
	}
	if _, err := readOnce(t, l, eng, at-1, 1<<20); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below the new start: %v", err)
	}
	bs := readRaw(t, l, eng, at, 1<<20)
	if len(bs) == 0 || bs[0].h.BaseOffset > at || bs[0].h.LastOffset() < at {
		t.Fatalf("read at %d does not start with the batch holding it", at)
	}
	for _, b := range bs {
		equalBatch(t, "after delete", b.data, raws[b.h.BaseOffset], b.h.BaseOffset)
	}
	if got, err := l.DeleteRecordsBefore(at - 5); err != nil || got != at {
		t.Fatalf("delete below the start: %d %v, want a no-op at %d", got, err, at)
	}
	if got, err := l.DeleteRecordsBefore(-1); err != nil || got != l.hw {
		t.Fatalf("delete before -1: %d %v, want the high watermark %d", got, err, l.hw)
	}
	if len(l.segs) != 1 {
		t.Fatalf("%d segments after deleting everything, want the active one", len(l.segs))
	}
	if _, err := readOnce(t, l, eng, l.hw-1, 1<<20); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below the high watermark after deleting all: %v", err)
	}
}

// TestDeleteRecordsSurvivesRestart: a log start inside a segment is
// recovered by Open. Without the checkpoint, Open would go back to the
// first segment's base and serve deleted records again.
func TestDeleteRecordsSurvivesRestart(t *testing.T) {
	cfg := Config{SegmentBytes: 32 << 10, IndexIntervalBytes: 2048}
	fs, l, _, _ := retentionLog(t, cfg)
	at := midSegmentOffset(t, l)
	if _, err := l.DeleteRecordsBefore(at); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, eng := memLog(t, fs, cfg)
	defer abandon(l2)
	if l2.LogStartOffset() != at {
		t.Fatalf("after reopen the log start is %d, want %d", l2.LogStartOffset(), at)
	}
	if _, err := readOnce(t, l2, eng, at-1, 1<<20); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below the start after reopen: %v", err)
	}
}

// TestDeleteRecordsPowerCut cuts the power right after DeleteRecordsBefore
// returns (once or twice), at many random points of the crash model
// (unsynced sectors lost, unsynced removals undone in part): the last
// returned log start always survives, every record at or above it is still
// readable byte for byte, and segments whose removal the crash undid are
// removed again, so retention cannot move the start back.
func TestDeleteRecordsPowerCut(t *testing.T) {
	cfg := Config{SegmentBytes: 32 << 10, IndexIntervalBytes: 2048}
	base, raws, _ := buildSealed(t, cfg, 120, 11)
	for seed := int64(0); seed < 40; seed++ {
		fs := newCrashFS(base.Crash(seed)) // a copy of the synced state
		eng := fs.NewEngine()
		l := openLog(t, fs, eng, cfg)
		rng := rand.New(rand.NewSource(seed))
		first := Offset(rng.Int63n(int64(l.hw) / 2))
		second := first + Offset(rng.Int63n(int64(l.hw-first)))
		if _, err := l.DeleteRecordsBefore(first); err != nil {
			t.Fatal(err)
		}
		durable := first
		if seed%2 == 0 {
			if _, err := l.DeleteRecordsBefore(second); err != nil {
				t.Fatal(err)
			}
			durable = second
		}
		crashed := fs.crash(seed)
		abandon(l)
		eng = crashed.NewEngine()
		l = openLog(t, crashed, eng, cfg)
		if l.LogStartOffset() != durable {
			t.Fatalf("seed %d: recovered log start %d, want %d", seed, l.LogStartOffset(), durable)
		}
		for _, b := range readRaw(t, l, eng, durable, 1<<30) {
			equalBatch(t, "after power cut", b.data, raws[b.h.BaseOffset], b.h.BaseOffset)
		}
		// A segment whose removal the crash undid must go again: retention
		// dropping it later would move the log start back to the next base.
		if len(l.segs) > 1 && l.segs[0].last < durable {
			t.Fatalf("seed %d: segment %d-%d lies wholly below the log start %d after recovery", seed, l.segs[0].base, l.segs[0].last, durable)
		}
		l.SetRetention(1, 0)
		l.ApplyRetention(0)
		if l.LogStartOffset() < durable {
			t.Fatalf("seed %d: retention moved the log start back to %d from %d", seed, l.LogStartOffset(), durable)
		}
		abandon(l)
	}
}

// TestMaxTimestamp: ListOffsets -3 finds the batch with the largest
// timestamp across segments, not the last one; an empty log has none; and
// after DeleteRecords removes that batch (from inside a segment, where the
// time index still names it) the next largest readable one answers.
// OffsetForTime, checked alongside, never answers below the log start: a
// match only in deleted batches of the cut segment goes on to later ones.
func TestMaxTimestamp(t *testing.T) {
	fs := dma.NewMemFS(4096, 1)
	l, eng := memLog(t, fs, Config{SegmentBytes: 16 << 10})
	defer abandon(l)
	if off, ts, err := l.MaxTimestamp(); err != nil || off != -1 || ts != -1 {
		t.Fatalf("empty log: %d %d %v, want -1 -1", off, ts, err)
	}
	rng := rand.New(rand.NewSource(3))
	type stamped struct {
		base Offset
		ts   int64
	}
	var all []stamped
	for i := 0; i < 60; i++ {
		ts := int64(1000 + rng.Intn(5000))
		switch i {
		case 17:
			ts = 99_999 // the maximum sits in an early, sealed segment
		case 18:
			ts = 99_998 // and the runner-up right after it, in the same one
		case 50:
			ts = 99_997 // a later segment's best
		}
		if err := l.Append(makeBatch(3, ts, payload(rng, 900)), 0, func(r AppendResult, err error) {
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, stamped{r.Base, ts})
		}); err != nil {
			t.Fatal(err)
		}
		drainLog(t, l, eng)
	}
	if len(l.segs) < 3 {
		t.Fatalf("setup: %d segments", len(l.segs))
	}
	want := func(from Offset) (Offset, int64) {
		var off Offset = -1
		var ts int64 = -1
		for _, b := range all {
			if b.base+2 >= from && b.ts > ts {
				off, ts = max(b.base, from), b.ts
			}
		}
		return off, ts
	}
	forTime := func(q int64) (Offset, int64) {
		from := l.LogStartOffset()
		for _, b := range all {
			if b.base+2 >= from && b.ts >= q {
				return max(b.base, from), b.ts
			}
		}
		return -1, -1
	}
	check := func(what string) {
		t.Helper()
		wantOff, wantTs := want(l.LogStartOffset())
		off, ts, err := l.MaxTimestamp()
		if err != nil || off != wantOff || ts != wantTs {
			t.Fatalf("%s: max timestamp %d at %d (%v), want %d at %d", what, ts, off, err, wantTs, wantOff)
		}
		for _, q := range []int64{0, 3000, 5999, 99_997, 99_998, 99_999, 100_000} {
			wantOff, wantTs := forTime(q)
			var got Offset = -2
			var gotTs int64
			l.OffsetForTime(q, func(off Offset, at int64, err error) {
				if err != nil {
					t.Fatalf("OffsetForTime(%d): %v", q, err)
				}
				got, gotTs = off, at
			})
			dma.Drain(eng)
			if got != wantOff || gotTs != wantTs {
				t.Fatalf("%s: OffsetForTime(%d) = %d at %d, want %d at %d", what, q, got, gotTs, wantOff, wantTs)
			}
		}
	}
	check("whole log")
	if all[18].base == Offset(segFor(l, all[18].base).base) {
		t.Fatalf("setup: batch 18 starts its segment; the cut must land inside one")
	}
	if _, err := l.DeleteRecordsBefore(all[18].base); err != nil {
		t.Fatal(err)
	}
	check("after deleting the maximum's batch")
	if _, err := l.DeleteRecordsBefore(all[18].base + 1); err != nil {
		t.Fatal(err)
	}
	check("cut inside the runner-up's batch")
}

func segFor(l *Log, off Offset) *segment {
	for i := len(l.segs) - 1; i >= 0; i-- {
		if Offset(l.segs[i].base) <= off {
			return l.segs[i]
		}
	}
	return nil
}

// TestDeleteRecordsThenTruncateBelow: a log truncated below its
// checkpointed start (a follower's TruncateTo) and grown back past it does
// not take the stale checkpoint at the next Open.
func TestDeleteRecordsThenTruncateBelow(t *testing.T) {
	cfg := Config{SegmentBytes: 32 << 10, IndexIntervalBytes: 2048}
	fs, l, eng, _ := retentionLog(t, cfg)
	at := midSegmentOffset(t, l)
	if _, err := l.DeleteRecordsBefore(at); err != nil {
		t.Fatal(err)
	}
	low := Offset(l.segs[0].base) - 3
	if end := truncateAndWait(t, l, eng, low); end != low || l.LogStartOffset() != low {
		t.Fatalf("truncate to %d: end %d start %d", low, end, l.LogStartOffset())
	}
	rng := rand.New(rand.NewSource(5))
	for l.HighWatermark() <= at+10 {
		if err := l.Append(makeBatch(3, 1000, payload(rng, 700)), 0, func(_ AppendResult, err error) {
			if err != nil {
				t.Fatal(err)
			}
		}); err != nil {
			t.Fatal(err)
		}
		drainLog(t, l, eng)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, _ := memLog(t, fs, cfg)
	defer abandon(l2)
	if l2.LogStartOffset() != low {
		t.Fatalf("log start %d after reopen, want %d (the checkpoint %d is stale)", l2.LogStartOffset(), low, at)
	}
}
