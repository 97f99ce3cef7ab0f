package shard

import (
	"errors"
	"fmt"
	"math/rand"
	"testing"

	"github.com/strand-io/strand/dma"
)

// truncateAndWait runs TruncateTo to completion.
func truncateAndWait(t testing.TB, l *Log, eng dma.Engine, off Offset) Offset {
	t.Helper()
	end := Offset(-1)
	l.TruncateTo(off, func(e Offset, err error) {
		if err != nil {
			t.Fatalf("truncate to %d: %v", off, err)
		}
		end = e
	})
	if err := dma.Drain(eng); err != nil {
		t.Fatal(err)
	}
	if end < 0 {
		t.Fatalf("truncate to %d did not complete", off)
	}
	return end
}

// TestTruncateToNegative: a negative offset is refused and nothing is lost.
func TestTruncateToNegative(t *testing.T) {
	fs := dma.NewMemFS(4096, 1)
	l, eng := memLog(t, fs, Config{})
	for i := 0; i < 3; i++ {
		if o := appendSync(t, l, eng, makeBatch(2, 1, []byte("kept"))); o.err != nil {
			t.Fatal(o.err)
		}
	}
	var gotErr error
	called := false
	l.TruncateTo(-5, func(end Offset, err error) { called, gotErr = true, err })
	dma.Drain(eng)
	if !called || !errors.Is(gotErr, ErrInvalidOffset) || l.Err() != nil || l.NextOffset() != 6 || l.HighWatermark() != 6 {
		t.Fatalf("called %v, err %v, log err %v, next %d, hw %d", called, gotErr, l.Err(), l.NextOffset(), l.HighWatermark())
	}
	if o := appendSync(t, l, eng, makeBatch(1, 1, []byte("after"))); o.err != nil || o.res.Base != 6 {
		t.Fatalf("append after the refused truncate: %+v", o)
	}
}

// TestTruncateTo cuts the log at each kind of point and checks what is
// left, that appends continue at the new end, and that both a clean
// restart and a crash bring back exactly that.
func TestTruncateTo(t *testing.T) {
	cfg := Config{SegmentBytes: 32 << 10, IndexIntervalBytes: 2048}
	_, _, acked := buildSealed(t, cfg, 80, 11)
	mid := func(i int) Offset { return acked[i].Base + (acked[i].Last-acked[i].Base+1)/2 }
	type tcase struct {
		name      string
		retention bool                // delete the first segments first
		at        func(l *Log) Offset // where to cut
		wantEnd   func(l *Log, at Offset) Offset
	}
	batchStart := func(l *Log, at Offset) Offset {
		for _, a := range acked {
			if a.Base <= at && at <= a.Last {
				return a.Base
			}
		}
		return l.NextOffset()
	}
	cases := []tcase{
		{"active-mid-batch", false, func(l *Log) Offset { return mid(len(acked) - 3) }, batchStart},
		{"active-at-batch", false, func(l *Log) Offset { return acked[len(acked)-3].Base }, batchStart},
		{"active-base", false, func(l *Log) Offset { return Offset(l.active.base) }, batchStart},
		{"older-segment-mid-batch", false, func(l *Log) Offset { return mid(len(acked) / 3) }, batchStart},
		{"older-segment-base", false, func(l *Log) Offset { return Offset(l.segs[2].base) }, batchStart},
		{"second-offset", false, func(l *Log) Offset { return 1 }, batchStart},
		{"log-start", false, func(l *Log) Offset { return 0 }, func(*Log, Offset) Offset { return 0 }},
		{"at-end", false, func(l *Log) Offset { return l.NextOffset() }, func(l *Log, _ Offset) Offset { return l.NextOffset() }},
		{"past-end", false, func(l *Log) Offset { return l.NextOffset() + 10 }, func(l *Log, _ Offset) Offset { return l.NextOffset() }},
		{"below-log-start", true, func(l *Log) Offset { return l.LogStartOffset() - 3 }, func(_ *Log, at Offset) Offset { return at }},
		{"at-log-start", true, func(l *Log) Offset { return l.LogStartOffset() }, func(_ *Log, at Offset) Offset { return at }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs, raws, _ := buildSealed(t, cfg, 80, 11)
			l, eng := memLog(t, fs, cfg)
			if len(l.segs) < 4 {
				t.Fatalf("setup: %d segments", len(l.segs))
			}
			if c.retention {
				l.SetRetention(l.SizeBytes()/2, 0)
				l.ApplyRetention(0)
			}
			at := c.at(l)
			want := c.wantEnd(l, at)
			start := l.LogStartOffset()
			if want < start {
				start = want
			}
			end := truncateAndWait(t, l, eng, at)
			if end != want || l.NextOffset() != want || l.HighWatermark() != want {
				t.Fatalf("truncate to %d: end %d next %d hw %d, want %d", at, end, l.NextOffset(), l.HighWatermark(), want)
			}
			if l.LogStartOffset() != start {
				t.Fatalf("log start %d, want %d", l.LogStartOffset(), start)
			}
			// No segment may start at or past the new end except an empty active one.
			for _, s := range l.segs[:len(l.segs)-1] {
				if Offset(s.base) >= want {
					t.Fatalf("segment %d survived a truncation to %d", s.base, want)
				}
			}
			names, _ := fs.ReadDir("/data/t-0")
			for _, n := range names {
				if b, ok := parseSegmentName(n); ok && Offset(b) > want {
					t.Fatalf("file %s survived a truncation to %d", n, want)
				}
			}
			verify := func(what string, l *Log, eng dma.Engine, extra map[Offset][]byte) {
				t.Helper()
				got := readRaw(t, l, eng, l.LogStartOffset(), 1<<20)
				for _, b := range got {
					raw, ok := extra[b.h.BaseOffset]
					if !ok && b.h.BaseOffset < want {
						raw = raws[b.h.BaseOffset]
					}
					if raw == nil {
						t.Fatalf("%s: batch %d-%d should not exist", what, b.h.BaseOffset, b.h.LastOffset())
					}
					equalBatch(t, what, b.data, raw, b.h.BaseOffset)
				}
				if res, err := readOnce(t, l, eng, l.HighWatermark()+1, 100); !errors.Is(err, ErrOffsetOutOfRange) {
					t.Fatalf("%s: read past the end: %v %d bytes", what, err, len(res.Data))
				}
			}
			verify("after truncation", l, eng, nil)
			// Append more: offsets continue at the new end.
			extra := map[Offset][]byte{}
			rng := rand.New(rand.NewSource(5))
			next := want
			for i := 0; i < 12; i++ {
				raw := makeBatch(2, 5000, payload(rng, 1500+rng.Intn(3000)))
				if err := l.Append(raw, 0, func(r AppendResult, err error) {
					if err != nil || r.Base != next {
						t.Fatalf("append after truncation: base %d err %v, want %d", r.Base, err, next)
					}
					extra[r.Base] = raw
					next = r.Last + 1
				}); err != nil {
					t.Fatal(err)
				}
			}
			drainLog(t, l, eng)
			verify("appended after truncation", l, eng, extra)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l, eng = memLog(t, fs, cfg)
			verify("reopened", l, eng, extra)
			l, eng = memLog(t, fs.Crash(3), cfg)
			verify("after a crash", l, eng, extra)
		})
	}
}

// TestTruncateCrashNoStaleRecords is the stale-data hazard made hard:
// truncate (in the active segment or an older one), append a little so new
// batches overwrite the blocks that held truncated ones, crash with those
// writes unsynced (lost, kept or torn, and unsynced segment removals maybe
// undone), recover, and check that no truncated record ever comes back.
// Rounds repeat on the recovered log.
func TestTruncateCrashNoStaleRecords(t *testing.T) {
	t.Parallel()
	seeds := 200
	if testing.Short() {
		seeds = 60
	}
	for seed := int64(0); seed < int64(seeds); seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed))
			mem := dma.NewMemFS([]int{512, 4096}[rng.Intn(2)], seed)
			mem.Reorder = rng.Intn(2) == 0
			fs := newCrashFS(mem)
			cfg := Config{
				SegmentBytes:         int64(16<<10 + rng.Intn(64<<10)),
				IndexIntervalBytes:   512 + rng.Intn(4096),
				IndexCheckpointBytes: int64(1024 + rng.Intn(8192)),
				MaxBatchBytes:        16 << 10,
			}
			eng := mem.NewEngine()
			l := openLog(t, fs, eng, cfg)
			m := &logModel{}
			appendN := func(n int) {
				for i := 0; i < n; i++ {
					raw := makeBatch(1+rng.Intn(4), int64(i), payload(rng, rng.Intn(5000)))
					m.pending = append(m.pending, raw)
					if err := l.Append(raw, 0, func(r AppendResult, err error) { m.ack(t, raw, r, err) }); err != nil {
						t.Fatal(err)
					}
					if rng.Intn(3) == 0 {
						eng.Poll()
					}
				}
			}
			appendN(20 + rng.Intn(60))
			for round := 0; round < 4; round++ {
				drainLog(t, l, eng)
				// Cut at a random batch; half the time in an older segment.
				var at Offset
				if len(l.segs) > 1 && rng.Intn(2) == 0 {
					s := l.segs[rng.Intn(len(l.segs)-1)]
					at = Offset(s.base) + Offset(rng.Int63n(int64(s.last-Offset(s.base))+1))
				} else {
					at = m.start + Offset(rng.Int63n(int64(m.next-m.start)+1))
				}
				want := m.truncate(at)
				if end := truncateAndWait(t, l, eng, at); end != want {
					t.Fatalf("round %d: truncate to %d ended at %d, model %d", round, at, end, want)
				}
				appendN(rng.Intn(6))
				if rng.Intn(2) == 0 {
					eng.Poll()
				}
				crashed := fs.crash(seed*100 + int64(round))
				abandon(l)
				fs, mem = crashed, crashed.MemFS
				eng = mem.NewEngine()
				l = openLog(t, fs, eng, cfg)
				m.recovered(t, l, eng)
				appendN(rng.Intn(30))
			}
		})
	}
}

// TestTruncateWithReadsInFlight: a truncation that removes (or cuts) a
// segment a disk read is still using neither fails that read nor lets it
// serve a removed record; the removed files' names go at once, their
// descriptors only when the read ends; and a new segment that reuses a
// removed one's name is not deleted when that read finishes.
func TestTruncateWithReadsInFlight(t *testing.T) {
	for _, tc := range []struct {
		name  string
		at    func(l *Log) Offset
		reads func(l *Log) []Offset
	}{
		{"nothing-survives", func(l *Log) Offset { return l.LogStartOffset() }, func(l *Log) []Offset { return []Offset{0, 40} }},
		{"cut-mid-log", func(l *Log) Offset { return 50 }, func(l *Log) []Offset { return []Offset{10, 45, 60, 90} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := dma.NewMemFS(4096, 7)
			cfg := Config{SegmentBytes: 8 << 10, IndexIntervalBytes: 1024}
			l, eng := memLog(t, fs, cfg)
			for i := 0; i < 100; i++ {
				if o := appendSync(t, l, eng, makeBatch(1, int64(i), payload(rand.New(rand.NewSource(int64(i))), 700))); o.err != nil {
					t.Fatal(o.err)
				}
			}
			if len(l.segs) < 5 {
				t.Fatalf("setup: %d segments", len(l.segs))
			}
			type outcome struct {
				res    ReadResult
				err    error
				called int
				early  bool // answered before the cut (from the staging buffer)
			}
			offs := tc.reads(l)
			got := make([]outcome, len(offs))
			for i, off := range offs {
				l.Read(off, 1<<20, func(r ReadResult, err error) { got[i].res, got[i].err = r, err; got[i].called++ })
			}
			disk := 0
			for i := range got {
				got[i].early = got[i].called > 0
				if !got[i].early {
					disk++
				}
			}
			if disk == 0 {
				t.Fatal("setup: no read went to disk")
			}
			at := tc.at(l)
			var end Offset
			l.TruncateTo(at, func(e Offset, err error) {
				if err != nil {
					t.Fatal(err)
				}
				end = e
			})
			// The reads are still queued in the engine: append on top so a
			// new segment may take a removed one's name.
			if o := appendSync(t, l, eng, makeBatch(1, 1000, []byte("after the cut"))); o.err != nil || o.res.Base != end {
				t.Fatalf("append after truncate: %+v (end %d)", o, end)
			}
			for i, o := range got {
				if o.called != 1 || o.err != nil {
					t.Fatalf("read at %d: %d callbacks, err %v", offs[i], o.called, o.err)
				}
				for _, b := range splitBatches(t, o.res.Data) {
					if !o.early && b.h.LastOffset() >= end {
						t.Fatalf("read at %d served batch %d-%d, removed by the cut at %d", offs[i], b.h.BaseOffset, b.h.LastOffset(), end)
					}
				}
			}
			for _, s := range l.segs {
				if !fs.Exists(s.path(logExt)) {
					t.Fatalf("live segment %s was deleted", s.path(logExt))
				}
			}
			// A clean reopen finds exactly the cut log plus the new batch.
			drainLog(t, l, eng)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l2, eng2 := memLog(t, fs, cfg)
			if l2.NextOffset() != end+1 {
				t.Fatalf("after reopen: next %d, want %d", l2.NextOffset(), end+1)
			}
			res, err := readOnce(t, l2, eng2, end, 1<<20)
			if err != nil || len(splitBatches(t, res.Data)) != 1 {
				t.Fatalf("the batch appended after the cut: %v, %d batches", err, len(splitBatches(t, res.Data)))
			}
		})
	}
}
