package shard

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/strand-io/strand/dma"
)

// leaderBatch is a batch as a leader stores it: n records at base in
// epoch, idempotent when pid >= 0.
func leaderBatch(rng *rand.Rand, base Offset, epoch Epoch, pid int64, seq int32, n int) []byte {
	var b []byte
	if pid >= 0 {
		b = idemBatch(pid, 0, seq, n)
	} else {
		b = makeBatch(n, 1, payload(rng, 50+rng.Intn(2000)))
	}
	stampBatch(b, base, epoch)
	return b
}

func appendReplicatedSync(t *testing.T, l *Log, eng dma.Engine, b []byte) AppendResult {
	t.Helper()
	var got AppendResult
	called := false
	if err := l.AppendReplicated(b, func(r AppendResult, err error) {
		if err != nil {
			t.Fatalf("replicated append: %v", err)
		}
		got, called = r, true
	}); err != nil {
		t.Fatalf("replicated append: %v", err)
	}
	drainLog(t, l, eng)
	if !called {
		t.Fatal("replicated append not acknowledged")
	}
	return got
}

// readToEndOnce runs one ReadToEnd to completion.
func readToEndOnce(t testing.TB, l *Log, eng dma.Engine, off Offset, maxBytes int) (ReadResult, error) {
	t.Helper()
	var got ReadResult
	var rerr error
	called := 0
	l.ReadToEnd(off, maxBytes, func(r ReadResult, err error) { got, rerr = r, err; called++ })
	if err := dma.Drain(eng); err != nil {
		t.Fatal(err)
	}
	if called != 1 {
		t.Fatalf("ReadToEnd at %d: %d callbacks", off, called)
	}
	return got, rerr
}

// TestEpochEndOffset pins EndOffsetForEpoch to Kafka's
// LeaderEpochFileCache.endOffsetFor, case by case.
func TestEpochEndOffset(t *testing.T) {
	c := epochCache{entries: []epochEntry{{2, 10}, {4, 30}, {7, 55}}}
	const end = 80
	for _, tc := range []struct {
		req       Epoch
		wantEpoch Epoch
		wantEnd   Offset
	}{
		{-1, -1, -1},  // undefined epoch
		{0, 0, 10},    // below the oldest: the oldest's start, epoch echoed
		{1, 1, 10},    // likewise
		{2, 2, 30},    // a known epoch ends where the next starts
		{3, 2, 30},    // an unknown one between: the largest below it
		{4, 4, 55},    //
		{6, 4, 55},    //
		{7, 7, end},   // the newest ends at the log end
		{8, -1, -1},   // above the newest: undefined
		{100, -1, -1}, //
	} {
		e, o := c.endOffset(tc.req, end)
		if e != tc.wantEpoch || o != tc.wantEnd {
			t.Errorf("endOffset(%d) = (%d, %d), want (%d, %d)", tc.req, e, o, tc.wantEpoch, tc.wantEnd)
		}
	}
	var empty epochCache
	if e, o := empty.endOffset(0, 5); e != -1 || o != -1 {
		t.Errorf("empty cache: (%d, %d)", e, o)
	}
}

// TestEpochCheckpointFile: the file is Kafka's text format, read back
// exactly, and a file that is not (a bad version, count, order or line)
// keeps the log from opening rather than answering wrong end offsets.
func TestEpochCheckpointFile(t *testing.T) {
	fs := dma.NewMemFS(4096, 1)
	l, eng := memLog(t, fs, Config{})
	rng := rand.New(rand.NewSource(1))
	for _, e := range []Epoch{0, 0, 3, 3, 4} {
		appendReplicatedSync(t, l, eng, leaderBatch(rng, l.NextOffset(), e, -1, 0, 2))
	}
	got := string(memFileBytes(t, fs, "/data/t-0/"+epochFile))
	if want := "0\n3\n0 0\n3 4\n4 8\n"; got != want {
		t.Fatalf("checkpoint %q, want %q", got, want)
	}
	l.Close()
	for _, bad := range []string{"1\n0\n", "0\n2\n0 0\n", "0\n2\n3 0\n2 5\n", "0\n2\n0 0\n1 0\n", "0\n1\n0 x\n", "", "0\n1\n-1 0\n"} {
		writeMemFile(t, fs, "/data/t-0/"+epochFile, []byte(bad))
		if _, err := Open(Config{Dir: "/data/t-0", Logger: quietLogger()}, fs, fs.NewEngine()); err == nil {
			t.Errorf("opened with checkpoint %q", bad)
		}
	}
}

// TestAppendReplicatedKeepsLeaderFields: a follower stores the leader's
// batches byte for byte (offsets, epochs, producer fields), learns each
// new epoch, refuses what does not continue its log, and rebuilds the
// same producer state and epoch cache after a restart.
func TestAppendReplicatedKeepsLeaderFields(t *testing.T) {
	fs := dma.NewMemFS(4096, 2)
	cfg := Config{SegmentBytes: 8 << 10, ExternalHW: true}
	l, eng := memLog(t, fs, cfg)
	rng := rand.New(rand.NewSource(2))
	var sent [][]byte
	epoch, seq := Epoch(1), int32(0)
	for i := 0; i < 60; i++ {
		if i%15 == 14 {
			epoch += Epoch(1 + rng.Intn(3))
		}
		n := 1 + rng.Intn(4)
		pid := int64(-1)
		if i%3 == 0 {
			pid = 9
		}
		b := leaderBatch(rng, l.NextOffset(), epoch, pid, seq, n)
		if pid >= 0 {
			seq += int32(n)
		}
		r := appendReplicatedSync(t, l, eng, b)
		h, _ := ParseBatchHeader(b)
		if r.Base != h.BaseOffset || r.Last != h.LastOffset() {
			t.Fatalf("acknowledged %d-%d for a batch at %d-%d", r.Base, r.Last, h.BaseOffset, h.LastOffset())
		}
		sent = append(sent, b)
	}
	if len(l.segs) < 3 {
		t.Fatalf("setup: %d segments", len(l.segs))
	}
	check := func(what string, l *Log, eng dma.Engine) {
		t.Helper()
		var got []byte
		for off := l.LogStartOffset(); off < l.NextOffset(); {
			res, err := readToEndOnce(t, l, eng, off, 1<<20)
			if err != nil || len(res.Data) == 0 {
				t.Fatalf("%s: ReadToEnd at %d: %v", what, off, err)
			}
			bs := splitBatches(t, res.Data)
			got = append(got, res.Data...)
			off = bs[len(bs)-1].h.LastOffset() + 1
		}
		if !bytes.Equal(got, bytes.Join(sent, nil)) {
			t.Fatalf("%s: stored bytes differ from the leader's", what)
		}
		if ps := l.Producers(); l.HighWatermark() == l.NextOffset() && (len(ps) != 1 || ps[0].ProducerID != 9 || ps[0].LastSequence != seq-1) {
			t.Fatalf("%s: producers %+v, want pid 9 at sequence %d", what, ps, seq-1)
		}
		naive := naiveEpochs(t, sent)
		if fmt.Sprint(l.epochs.entries) != fmt.Sprint(naive) {
			t.Fatalf("%s: epoch cache %v, batches say %v", what, l.epochs.entries, naive)
		}
	}
	l.SetHighWatermark(l.NextOffset())
	check("live", l, eng)

	end := l.NextOffset()
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"gap", leaderBatch(rng, end+1, epoch, -1, 0, 1), ErrInvalidOffset},
		{"overlap", leaderBatch(rng, end-1, epoch, -1, 0, 1), ErrInvalidOffset},
		{"older epoch", leaderBatch(rng, end, epoch-1, -1, 0, 1), ErrInvalidBatch},
		{"negative epoch", leaderBatch(rng, end, -1, -1, 0, 1), ErrInvalidBatch},
		{"crc", func() []byte { b := leaderBatch(rng, end, epoch, -1, 0, 1); b[len(b)-1] ^= 1; return b }(), ErrCorruptBatch},
		{"short", leaderBatch(rng, end, epoch, -1, 0, 1)[:40], ErrShortBatch},
	} {
		if err := l.AppendReplicated(tc.b, func(AppendResult, error) { t.Fatalf("%s: acknowledged", tc.name) }); !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
	}
	if l.NextOffset() != end || l.Err() != nil {
		t.Fatalf("refusals changed the log: next %d err %v", l.NextOffset(), l.Err())
	}
	drainLog(t, l, eng)
	l.Close()
	l, eng = memLog(t, fs, cfg)
	check("reopened", l, eng)
	l, eng = memLog(t, fs.Crash(5), cfg)
	check("after a crash", l, eng)
}

// naiveEpochs derives the epoch cache from stored batches.
func naiveEpochs(t testing.TB, batches [][]byte) []epochEntry {
	var out []epochEntry
	for _, b := range batches {
		h, _ := ParseBatchHeader(b)
		if n := len(out); n == 0 || out[n-1].epoch != h.LeaderEpoch {
			out = append(out, epochEntry{h.LeaderEpoch, h.BaseOffset})
		}
	}
	return out
}

// TestAppendReplicatedBehindTruncation: a follower's host cuts its log and
// appends the leader's batches at the cut in the same breath, before the
// cut (which waits for the write pipeline) has run. The batch is checked
// against the log end when it is placed, after the cut, and lands there.
func TestAppendReplicatedBehindTruncation(t *testing.T) {
	fs := dma.NewMemFS(4096, 3)
	l, eng := memLog(t, fs, Config{ExternalHW: true})
	rng := rand.New(rand.NewSource(3))
	for i := 0; i < 10; i++ {
		appendReplicatedSync(t, l, eng, leaderBatch(rng, l.NextOffset(), 2, -1, 0, 3))
	}
	// Leave one append in flight so the truncation has to wait.
	if err := l.AppendReplicated(leaderBatch(rng, 30, 2, -1, 0, 3), func(AppendResult, error) {}); err != nil {
		t.Fatal(err)
	}
	cut := Offset(12)
	l.TruncateTo(cut, func(end Offset, err error) {
		if err != nil || end != cut {
			t.Fatalf("truncate: end %d err %v", end, err)
		}
	})
	var got AppendResult
	var gotErr error
	b := leaderBatch(rng, cut, 5, -1, 0, 2)
	if err := l.AppendReplicated(b, func(r AppendResult, err error) { got, gotErr = r, err }); err != nil {
		t.Fatalf("append behind the truncation refused at once: %v", err)
	}
	// And one that will not continue the log once cut is refused through done.
	var lateErr error
	if err := l.AppendReplicated(leaderBatch(rng, 40, 5, -1, 0, 1), func(_ AppendResult, err error) { lateErr = err }); err != nil {
		t.Fatal(err)
	}
	drainLog(t, l, eng)
	if gotErr != nil || got.Base != cut || got.Last != cut+1 {
		t.Fatalf("append behind the truncation: %+v %v", got, gotErr)
	}
	if !errors.Is(lateErr, ErrInvalidOffset) {
		t.Fatalf("batch at 40 after a cut to 12: %v", lateErr)
	}
	if e, o := l.EndOffsetForEpoch(2); e != 2 || o != cut {
		t.Fatalf("epoch 2 ends at (%d, %d), want (2, %d)", e, o, cut)
	}
	if e, o := l.EndOffsetForEpoch(5); e != 5 || o != cut+2 {
		t.Fatalf("epoch 5: (%d, %d)", e, o)
	}
}

// TestExternalHighWatermark: with ExternalHW the log's own fdatasyncs do
// not expose records; SetHighWatermark does, never past what is durable
// here (the rest follows as fdatasyncs land) and never backwards; a
// reopened log hides everything again until told; ReadToEnd serves
// records that are not yet durable, from the staging buffer and from
// disk.
func TestExternalHighWatermark(t *testing.T) {
	fs := dma.NewMemFS(4096, 4)
	cfg := Config{SegmentBytes: 16 << 10, ExternalHW: true}
	l, eng := memLog(t, fs, cfg)
	commits := 0
	l.OnCommit = func(Offset) { commits++ }
	rng := rand.New(rand.NewSource(4))
	for i := 0; i < 40; i++ {
		appendReplicatedSync(t, l, eng, leaderBatch(rng, l.NextOffset(), 1, -1, 0, 2))
	}
	if l.HighWatermark() != 0 || l.DurableOffset() != 80 || commits != 0 {
		t.Fatalf("own fdatasyncs moved the high watermark: hw %d durable %d commits %d", l.HighWatermark(), l.DurableOffset(), commits)
	}
	if res, err := readOnce(t, l, eng, 0, 1<<20); err != nil || len(res.Data) != 0 {
		t.Fatalf("consumer read above the high watermark: %v, %d bytes", err, len(res.Data))
	}
	if hw := l.SetHighWatermark(50); hw != 50 || commits != 1 {
		t.Fatalf("hw %d commits %d", hw, commits)
	}
	if hw := l.SetHighWatermark(20); hw != 50 {
		t.Fatalf("hw went back to %d", hw)
	}
	// Between the high watermark and the log end a consumer reads nothing
	// (as Kafka answers), past the log end it is out of range.
	if res, err := readOnce(t, l, eng, 60, 1<<20); err != nil || len(res.Data) != 0 || res.HighWatermark != 50 {
		t.Fatalf("consumer read between hw and end: %v, %d bytes, hw %d", err, len(res.Data), res.HighWatermark)
	}
	if _, err := readOnce(t, l, eng, 81, 1<<20); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("consumer read past the end: %v", err)
	}
	// Staged, not yet written: ReadToEnd serves it, Read does not.
	b := leaderBatch(rng, 80, 1, -1, 0, 4)
	if err := l.AppendReplicated(b, func(AppendResult, error) {}); err != nil {
		t.Fatal(err)
	}
	var staged ReadResult
	l.ReadToEnd(80, 1<<20, func(r ReadResult, err error) {
		if err != nil {
			t.Fatal(err)
		}
		staged = r
	})
	if !bytes.Equal(staged.Data, b) || staged.HighWatermark != 50 {
		t.Fatalf("ReadToEnd of a staged batch: %d bytes, hw %d", len(staged.Data), staged.HighWatermark)
	}
	if hw := l.SetHighWatermark(84); hw != 80 {
		t.Fatalf("hw %d past the durable end 80", hw)
	}
	// A lower target (an in-sync set that grew) holds the high watermark
	// where it is against later fdatasyncs, without moving it back.
	if hw := l.SetHighWatermark(70); hw != 80 {
		t.Fatalf("hw %d after a lower target, want 80 kept", hw)
	}
	drainLog(t, l, eng)
	if l.HighWatermark() != 80 {
		t.Fatalf("hw %d after the fdatasync, want 80: the lowered target let it pass", l.HighWatermark())
	}
	l.SetHighWatermark(84)
	if l.HighWatermark() != 84 {
		t.Fatalf("hw %d after the fdatasync, want the leader's 84", l.HighWatermark())
	}
	// A consumer sees below the high watermark only, whole batches.
	l.SetHighWatermark(84)
	l2 := l
	var all []rawBatch
	for off := Offset(0); off < 84; {
		res, err := readOnce(t, l2, eng, off, 3000)
		if err != nil {
			t.Fatal(err)
		}
		bs := splitBatches(t, res.Data)
		all = append(all, bs...)
		off = bs[len(bs)-1].h.LastOffset() + 1
	}
	if all[len(all)-1].h.LastOffset() != 83 {
		t.Fatalf("consumer reads end at %d", all[len(all)-1].h.LastOffset())
	}
	l.Close()
	l, eng = memLog(t, fs, cfg)
	if l.HighWatermark() != 0 || l.NextOffset() != 84 || l.DurableOffset() != 84 {
		t.Fatalf("reopened: hw %d next %d durable %d", l.HighWatermark(), l.NextOffset(), l.DurableOffset())
	}
	if res, err := readToEndOnce(t, l, eng, 0, 1<<20); err != nil || len(res.Data) == 0 {
		t.Fatalf("ReadToEnd from disk after reopen: %v", err)
	}
	if _, err := readToEndOnce(t, l, eng, 85, 100); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("ReadToEnd past the end: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("SetHighWatermark on a log that owns its high watermark did not panic")
		}
	}()
	plain, _ := memLog(t, dma.NewMemFS(4096, 5), Config{})
	plain.SetHighWatermark(1)
}

// TestTruncateBelowLogStartForgetsCheckpoint: DeleteRecords left a log
// start checkpoint inside a segment; a follower truncation that keeps
// nothing starts a segment at that segment's base again, and appends run
// past the old checkpoint. After a restart every record must be there:
// the stale checkpoint used to make Open hide the first ones.
func TestTruncateBelowLogStartForgetsCheckpoint(t *testing.T) {
	fs := dma.NewMemFS(4096, 6)
	cfg := Config{SegmentBytes: 8 << 10}
	l, eng := memLog(t, fs, cfg)
	rng := rand.New(rand.NewSource(6))
	for i := 0; i < 40; i++ {
		if o := appendSync(t, l, eng, makeBatch(2, 1, payload(rng, 600))); o.err != nil {
			t.Fatal(o.err)
		}
	}
	seg := l.segs[1]
	mid := Offset(seg.base) + 3
	if _, err := l.DeleteRecordsBefore(mid); err != nil {
		t.Fatal(err)
	}
	base := Offset(seg.base)
	if end := truncateAndWait(t, l, eng, base); end != base || l.LogStartOffset() != base {
		t.Fatalf("truncate to %d: end %d, log start %d", base, end, l.LogStartOffset())
	}
	for i := 0; i < 5; i++ {
		if o := appendSync(t, l, eng, makeBatch(2, 1, payload(rng, 100))); o.err != nil {
			t.Fatal(o.err)
		}
	}
	drainLog(t, l, eng)
	l.Close()
	l, eng = memLog(t, fs, cfg)
	if l.LogStartOffset() != base || l.NextOffset() != base+10 {
		t.Fatalf("reopened: log start %d next %d, want %d and %d", l.LogStartOffset(), l.NextOffset(), base, base+10)
	}
	if got := readAllFrom(t, l, eng, base); len(got) != 5 {
		t.Fatalf("%d batches after reopen, want 5", len(got))
	}
}

// TestOpenTrimsEpochCache: a crash can leave the epoch cache naming an
// epoch whose batches did not survive (the entry is written first), or
// stop a truncation between the log cut and the cache update. Open must
// drop those entries: otherwise this log claims an epoch it does not hold,
// and as a new leader would answer OffsetForLeaderEpoch with it.
func TestOpenTrimsEpochCache(t *testing.T) {
	fs := dma.NewMemFS(4096, 7)
	l, eng := memLog(t, fs, Config{})
	for i := 0; i < 5; i++ {
		if o := appendSync(t, l, eng, makeBatch(2, 1, []byte("x"))); o.err != nil {
			t.Fatal(o.err)
		}
	}
	// As a crash after the cache write and before the batch's fdatasync
	// leaves it: epoch 3 from offset 10, and no batch at 10.
	if err := l.SetLeaderEpoch(3); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(makeBatch(2, 1, []byte("lost")), 0, func(AppendResult, error) {}); err != nil {
		t.Fatal(err)
	}
	crashed := fs.Crash(1)
	l2, _ := memLog(t, crashed, Config{})
	if l2.NextOffset() != 10 {
		t.Fatalf("setup: the unsynced batch survived (next %d)", l2.NextOffset())
	}
	if e := l2.LeaderEpoch(); e != 0 {
		t.Fatalf("leader epoch %d after the crash; no batch of it survived", e)
	}
	if e, o := l2.EndOffsetForEpoch(3); e != -1 || o != -1 {
		t.Fatalf("EndOffsetForEpoch(3) = (%d, %d) for an epoch with no batch", e, o)
	}
	if got := string(memFileBytes(t, crashed, "/data/t-0/"+epochFile)); got != "0\n0\n" {
		t.Fatalf("checkpoint after Open: %q", got)
	}
}

// TestReplicatedCrash drives a follower's log through the leader's
// batches (epochs growing, idempotent producers among them), KIP-101
// truncations at random batch boundaries with appends right behind them,
// and power cuts (unsynced data lost, kept or torn; unsynced removals
// undone) at random points. After every recovery: every acknowledged batch
// below the last cut is there byte for byte, whatever else is there is a
// prefix of what was appended after it, and the epoch cache and producer
// state are exactly what the surviving batches say.
func TestReplicatedCrash(t *testing.T) {
	t.Parallel()
	seeds := 120
	if testing.Short() {
		seeds = 40
	}
	for seed := int64(0); seed < int64(seeds); seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { replicatedCrashRun(t, seed) })
	}
}

func replicatedCrashRun(t *testing.T, seed int64) {
	rng := rand.New(rand.NewSource(seed))
	mem := dma.NewMemFS([]int{512, 4096}[rng.Intn(2)], seed)
	mem.Reorder = rng.Intn(2) == 0
	fs := newCrashFS(mem)
	cfg := Config{
		SegmentBytes:          int64(8<<10 + rng.Intn(32<<10)),
		IndexIntervalBytes:    512 + rng.Intn(4096),
		IndexCheckpointBytes:  int64(1024 + rng.Intn(8192)),
		MaxBatchBytes:         16 << 10,
		ExternalHW:            true,
		ProducerSnapshotBytes: int64(4<<10 + rng.Intn(16<<10)),
	}
	eng := mem.NewEngine()
	l := openLog(t, fs, eng, cfg)
	var acked [][]byte   // durable: acknowledged, in offset order
	var pending [][]byte // appended after them, not yet acknowledged
	epoch := Epoch(rng.Intn(3))
	seqs := map[int64]int32{}
	appendN := func(n int) {
		next := l.NextOffset()
		if len(pending) > 0 {
			h, _ := ParseBatchHeader(pending[len(pending)-1])
			next = h.LastOffset() + 1
		}
		for i := 0; i < n; i++ {
			if rng.Intn(8) == 0 {
				epoch += Epoch(1 + rng.Intn(2))
			}
			pid := int64(-1)
			if rng.Intn(2) == 0 {
				pid = int64(rng.Intn(3))
			}
			k := 1 + rng.Intn(4)
			b := leaderBatch(rng, next, epoch, pid, seqs[pid], k)
			if pid >= 0 {
				seqs[pid] += int32(k)
			}
			next += Offset(k)
			pending = append(pending, b)
			if err := l.AppendReplicated(b, func(r AppendResult, err error) {
				if err != nil {
					t.Fatalf("seed %d: append: %v", seed, err)
				}
				if len(pending) == 0 || !bytes.Equal(pending[0], b) {
					t.Fatalf("seed %d: acknowledgement out of order", seed)
				}
				acked, pending = append(acked, b), pending[1:]
			}); err != nil {
				t.Fatalf("seed %d: append: %v", seed, err)
			}
			if rng.Intn(3) == 0 {
				eng.Poll()
			}
		}
	}
	appendN(10 + rng.Intn(40))
	for round := 0; round < 5; round++ {
		drainLog(t, l, eng)
		if len(acked) > 0 && rng.Intn(3) > 0 {
			// Cut at a batch boundary, then append right behind the cut.
			i := rng.Intn(len(acked) + 1)
			at := l.NextOffset()
			if i < len(acked) {
				h, _ := ParseBatchHeader(acked[i])
				at = h.BaseOffset
			}
			l.TruncateTo(at, func(end Offset, err error) {
				if err != nil || end != at {
					t.Fatalf("seed %d: truncate to %d: end %d err %v", seed, at, end, err)
				}
			})
			acked = acked[:i]
			seqs = map[int64]int32{} // producers restart with new ids below
			for pid := range 3 {
				seqs[int64(pid)] = 0
			}
			// New producer ids so sequences after the cut start at 0.
			epoch += 1
			appendN(rng.Intn(8))
			if rng.Intn(2) == 0 {
				eng.Poll()
			}
		} else {
			appendN(rng.Intn(10))
		}
		crashed := fs.crash(seed*100 + int64(round))
		abandon(l)
		fs, mem = crashed, crashed.MemFS
		eng = mem.NewEngine()
		l = openLog(t, fs, eng, cfg)
		got := readAllRaw(t, l, eng)
		if len(got) < len(acked) {
			t.Fatalf("seed %d round %d: %d batches recovered, %d acknowledged", seed, round, len(got), len(acked))
		}
		for k, b := range got {
			want := []byte(nil)
			switch {
			case k < len(acked):
				want = acked[k]
			case k-len(acked) < len(pending):
				want = pending[k-len(acked)]
			}
			if !bytes.Equal(b, want) {
				t.Fatalf("seed %d round %d: recovered batch %d is not the one appended there", seed, round, k)
			}
		}
		acked, pending = got, nil
		if n := naiveEpochs(t, got); fmt.Sprint(l.epochs.entries) != fmt.Sprint(n) && !(len(got) == 0 && len(l.epochs.entries) == 0) {
			t.Fatalf("seed %d round %d: epoch cache %v, batches say %v", seed, round, l.epochs.entries, n)
		}
		checkProducers(t, l, got)
		// The sequences go on from what survived.
		seqs = map[int64]int32{}
		for _, b := range got {
			h, _ := ParseBatchHeader(b)
			if h.ProducerID >= 0 {
				seqs[h.ProducerID] = h.BaseSequence + h.LastOffsetDelta + 1
			}
		}
		appendN(rng.Intn(20))
	}
}

// readAllRaw reads a replicated log end to end (ReadToEnd).
func readAllRaw(t testing.TB, l *Log, eng dma.Engine) [][]byte {
	t.Helper()
	var out [][]byte
	for off := l.LogStartOffset(); off < l.NextOffset(); {
		res, err := readToEndOnce(t, l, eng, off, 1<<20)
		if err != nil || len(res.Data) == 0 {
			var segs []string
			for _, s := range l.segs {
				segs = append(segs, fmt.Sprintf("%d..%d (%d bytes)", s.base, s.last, s.size))
			}
			t.Fatalf("ReadToEnd at %d (start %d, end %d): %v; segments %v", off, l.LogStartOffset(), l.NextOffset(), err, segs)
		}
		for _, b := range splitBatches(t, res.Data) {
			out = append(out, b.data)
			off = b.h.LastOffset() + 1
		}
	}
	return out
}

// checkProducers compares the live producer table with the batches.
func checkProducers(t testing.TB, l *Log, batches [][]byte) {
	t.Helper()
	want := producerTable{}
	for _, b := range batches {
		h, _ := ParseBatchHeader(b)
		if isIdempotent(&h) {
			want.record(h.ProducerID, h.ProducerEpoch, seqBatch{h.BaseSequence, lastSeqOf(&h), h.BaseOffset, h.LastOffset()})
		}
	}
	if fmt.Sprint(flatten(l.live)) != fmt.Sprint(flatten(want)) {
		t.Fatalf("producer state %v, batches say %v", flatten(l.live), flatten(want))
	}
}

func flatten(t producerTable) map[int64]producerEntry {
	out := map[int64]producerEntry{}
	for pid, e := range t {
		out[pid] = *e
	}
	return out
}

// FuzzEpochCheckpoint: whatever bytes sit in leader-epoch-checkpoint,
// loading either refuses them or yields a cache whose epochs and starts
// strictly ascend and that encodes back to the same bytes, and whose
// answers agree with a naive reading of Kafka's rules.
func FuzzEpochCheckpoint(f *testing.F) {
	f.Add([]byte("0\n0\n"))
	f.Add([]byte("0\n3\n0 0\n3 4\n4 8\n"))
	f.Add([]byte("0\n2\n1 5\n1 6\n"))
	f.Add([]byte("0\n1\n2147483647 9223372036854775807\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := decodeEpochs(b)
		if err != nil {
			return
		}
		for i := 1; i < len(entries); i++ {
			if entries[i].epoch <= entries[i-1].epoch || entries[i].start <= entries[i-1].start {
				t.Fatalf("accepted entries out of order: %v", entries)
			}
		}
		again, err := decodeEpochs(encodeEpochs(entries))
		if err != nil || fmt.Sprint(again) != fmt.Sprint(entries) {
			t.Fatalf("round trip: %v -> %v (%v)", entries, again, err)
		}
		c := epochCache{entries: entries}
		logEnd := Offset(1 << 62)
		for _, req := range []Epoch{-1, 0, 1, 2, 5, 1 << 30} {
			e, o := c.endOffset(req, logEnd)
			we, wo := naiveEndOffset(entries, req, logEnd)
			if e != we || o != wo {
				t.Fatalf("endOffset(%d) over %v = (%d, %d), naive (%d, %d)", req, entries, e, o, we, wo)
			}
		}
	})
}

// naiveEndOffset is Kafka's endOffsetFor written as its comments read.
func naiveEndOffset(entries []epochEntry, req Epoch, logEnd Offset) (Epoch, Offset) {
	if req < 0 || len(entries) == 0 {
		return -1, -1
	}
	if entries[len(entries)-1].epoch == req {
		return req, logEnd
	}
	var floor, higher *epochEntry
	for i := range entries {
		if entries[i].epoch <= req {
			floor = &entries[i]
		}
		if entries[i].epoch > req && higher == nil {
			higher = &entries[i]
		}
	}
	switch {
	case higher == nil:
		return -1, -1
	case floor == nil:
		return req, higher.start
	}
	return floor.epoch, higher.start
}

// TestTruncateDropsQueuedReplicated: a replicated batch still waiting in
// the backlog when a truncation is asked for belongs to the log before the
// cut. Placed after the cut it could land exactly at the new end (when
// the cut removes it and nothing else), and the leader's batch appended
// at the cut would be refused: the follower would hold a record the
// leader never had there. It is refused with ErrTruncated instead.
func TestTruncateDropsQueuedReplicated(t *testing.T) {
	fs := dma.NewMemFS(4096, 8)
	l, eng := memLog(t, fs, Config{ExternalHW: true})
	rng := rand.New(rand.NewSource(8))
	for i := 0; i < 3; i++ {
		appendReplicatedSync(t, l, eng, leaderBatch(rng, l.NextOffset(), 1, -1, 0, 5))
	}
	// Something waits for the pipeline to drain (a roll, a close), so the
	// next append queues.
	if err := l.AppendReplicated(leaderBatch(rng, 15, 1, -1, 0, 5), func(AppendResult, error) {}); err != nil {
		t.Fatal(err)
	}
	l.Quiesce(func() {})
	var queuedErr error
	queued := leaderBatch(rng, 20, 1, -1, 0, 5)
	if err := l.AppendReplicated(queued, func(_ AppendResult, err error) { queuedErr = err }); err != nil {
		t.Fatal(err)
	}
	if len(l.backlog) != 1 {
		t.Fatalf("setup: %d appends queued", len(l.backlog))
	}
	// The replica cut its log at 20, dropping the queued batch, and took
	// the new leader's batch there.
	l.TruncateTo(20, func(end Offset, err error) {
		if err != nil || end != 20 {
			t.Fatalf("truncate: %d %v", end, err)
		}
	})
	leaders := leaderBatch(rng, 20, 2, -1, 0, 3)
	var got AppendResult
	var gotErr error
	if err := l.AppendReplicated(leaders, func(r AppendResult, err error) { got, gotErr = r, err }); err != nil {
		t.Fatal(err)
	}
	drainLog(t, l, eng)
	if !errors.Is(queuedErr, ErrTruncated) {
		t.Fatalf("queued batch: %v, want ErrTruncated", queuedErr)
	}
	if gotErr != nil || got.Base != 20 || l.NextOffset() != 23 {
		t.Fatalf("the leader's batch at the cut: %+v %v, next %d", got, gotErr, l.NextOffset())
	}
	res, err := readToEndOnce(t, l, eng, 20, 1<<20)
	if err != nil || !bytes.Equal(res.Data, leaders) {
		t.Fatalf("offset 20 holds %d bytes (%v), not the leader's batch", len(res.Data), err)
	}
}

// TestEpochCacheFollowsLogStart: records below the log start are gone, so
// their epochs are too (Kafka's truncateFromStart): the newest epoch
// below the log start now starts there, and an older epoch is answered
// with it. A truncation that keeps no record keeps no epoch.
func TestEpochCacheFollowsLogStart(t *testing.T) {
	fs := dma.NewMemFS(4096, 9)
	cfg := Config{ExternalHW: true, SegmentBytes: 4 << 10}
	l, eng := memLog(t, fs, cfg)
	rng := rand.New(rand.NewSource(9))
	for _, e := range []Epoch{1, 1, 1, 1, 3, 3, 3, 3, 5, 5} {
		appendReplicatedSync(t, l, eng, leaderBatch(rng, l.NextOffset(), e, -1, 0, 5))
	}
	l.SetHighWatermark(l.NextOffset())
	if start, err := l.DeleteRecordsBefore(25); err != nil || start != 25 {
		t.Fatalf("delete records: %d %v", start, err)
	}
	check := func(what string, l *Log) {
		t.Helper()
		for _, tc := range []struct {
			req, e Epoch
			off    Offset
		}{{0, 0, 25}, {1, 1, 25}, {2, 2, 25}, {3, 3, 40}, {4, 3, 40}, {5, 5, 50}, {6, -1, -1}} {
			if e, off := l.EndOffsetForEpoch(tc.req); e != tc.e || off != tc.off {
				t.Errorf("%s: EndOffsetForEpoch(%d) = (%d, %d), want (%d, %d)", what, tc.req, e, off, tc.e, tc.off)
			}
		}
	}
	check("after DeleteRecords", l)
	l.Close()
	l, eng = memLog(t, fs, cfg)
	check("reopened", l)
	if end := truncateAndWait(t, l, eng, 20); end != 20 {
		t.Fatalf("truncate below the log start ended at %d", end)
	}
	if len(l.epochs.entries) != 0 || string(memFileBytes(t, fs, "/data/t-0/"+epochFile)) != "0\n0\n" {
		t.Fatalf("a truncation that keeps nothing kept epochs %v", l.epochs.entries)
	}
	// The next leader's batch starts the cache again.
	appendReplicatedSync(t, l, eng, leaderBatch(rng, 20, 7, -1, 0, 1))
	if e, off := l.EndOffsetForEpoch(7); e != 7 || off != 21 {
		t.Fatalf("after the cut: epoch 7 ends at (%d, %d)", e, off)
	}
}

// syncDirFailFS fails SyncDir once armed, so a test can stop a truncation
// after its removals and before they are made durable (a kill or power cut
// there keeps a prefix of them, as crashFS.crash models).
type syncDirFailFS struct {
	*crashFS
	fail bool
}

func (f *syncDirFailFS) SyncDir(dir string) error {
	if f.fail {
		return errors.New("injected: directory fsync failed")
	}
	return f.crashFS.SyncDir(dir)
}

// TestTruncateInterruptedLeavesNoHole: a truncation removes the segments
// past the cut, then syncs the directory. Stopped in between (SIGKILL, or
// a power cut keeping only some of the removals), the removals that took
// effect must leave the log contiguous: removed in ascending order, a
// crash could keep a later segment whose predecessor was gone, and Open,
// trusting every segment but the last, would serve a log with a hole in
// it (found by TestReplicatedCrashSIGKILL). Every prefix of the removals
// is tried.
func TestTruncateInterruptedLeavesNoHole(t *testing.T) {
	for keep := 0; keep <= 4; keep++ {
		t.Run(fmt.Sprint(keep), func(t *testing.T) {
			mem := dma.NewMemFS(4096, 10)
			fs := &syncDirFailFS{crashFS: newCrashFS(mem)}
			cfg := Config{Dir: "/data/t-0", SegmentBytes: 4 << 10, ExternalHW: true}
			eng := mem.NewEngine()
			l := openLog(t, fs, eng, cfg)
			rng := rand.New(rand.NewSource(10))
			for l.NextOffset() < 60 || len(l.segs) < 6 {
				appendReplicatedSync(t, l, eng, leaderBatch(rng, l.NextOffset(), 1, -1, 0, 2))
			}
			at := Offset(l.segs[1].base) + 1 // removes segments 2.. and cuts segment 1
			fs.fail = true
			l.TruncateTo(at, func(Offset, error) {})
			drainLog(t, l, eng)
			if l.Err() == nil {
				t.Fatal("setup: the truncation did not stop at the directory fsync")
			}
			// A crash that kept the first keep removals (crashFS keeps a
			// prefix; this picks which).
			removed := fs.removed
			var segRemovals []removal
			for _, r := range removed {
				if strings.HasSuffix(r.path, logExt) {
					segRemovals = append(segRemovals, r)
				}
			}
			if keep > len(segRemovals) {
				t.Skip("fewer segment removals than this case keeps")
			}
			crashed := newCrashFS(mem.Crash(int64(keep)))
			for _, r := range segRemovals {
				writeMemFile(t, crashed, r.path, r.data) // whatever the crash brought back
			}
			for _, r := range segRemovals[:keep] {
				if err := crashed.MemFS.Remove(r.path); err != nil {
					t.Fatal(err)
				}
			}
			if err := crashed.MemFS.SyncDir(cfg.Dir); err != nil {
				t.Fatal(err)
			}
			abandon(l)
			eng2 := crashed.MemFS.NewEngine()
			l2 := openLog(t, crashed, eng2, cfg)
			got := readAllRaw(t, l2, eng2)
			if n := len(got); n == 0 || logEndOfRaw(got) != l2.NextOffset() {
				t.Fatalf("recovered %d batches ending at %d, log end %d", n, logEndOfRaw(got), l2.NextOffset())
			}
			next := l2.LogStartOffset()
			for _, b := range got {
				h, _ := ParseBatchHeader(b)
				if h.BaseOffset != next {
					t.Fatalf("recovered log jumps from %d to %d: a hole", next, h.BaseOffset)
				}
				next = h.LastOffset() + 1
			}
		})
	}
}

func logEndOfRaw(bs [][]byte) Offset {
	if len(bs) == 0 {
		return 0
	}
	h, _ := ParseBatchHeader(bs[len(bs)-1])
	return h.LastOffset() + 1
}

// TestResetToPastEnd: a follower whose whole log lies below the leader's
// log start starts over there (ResetTo past its end): empty, its log start
// and end at the new offset, its epochs and producers forgotten, replicated
// batches appended from there, and the same after a reopen.
func TestResetToPastEnd(t *testing.T) {
	fs := dma.NewMemFS(4096, 9)
	cfg := Config{ExternalHW: true, SegmentBytes: 8 << 10}
	l, eng := memLog(t, fs, cfg)
	rng := rand.New(rand.NewSource(9))
	for i := 0; i < 20; i++ {
		appendReplicatedSync(t, l, eng, leaderBatch(rng, l.NextOffset(), 2, 7, int32(i*5), 5))
	}
	const start = Offset(1000)
	end := Offset(-1)
	l.ResetTo(start, func(e Offset, err error) {
		if err != nil {
			t.Fatalf("reset: %v", err)
		}
		end = e
	})
	if err := dma.Drain(eng); err != nil {
		t.Fatal(err)
	}
	if end != start || l.NextOffset() != start || l.LogStartOffset() != start || l.HighWatermark() != start {
		t.Fatalf("after ResetTo(%d): end %d, next %d, log start %d, hw %d", start, end, l.NextOffset(), l.LogStartOffset(), l.HighWatermark())
	}
	if e, off := l.EndOffsetForEpoch(2); e != -1 && off != start {
		t.Fatalf("epoch 2 still known after the reset: (%d, %d)", e, off)
	}
	for i := 0; i < 3; i++ {
		appendReplicatedSync(t, l, eng, leaderBatch(rng, l.NextOffset(), 4, -1, 0, 5))
	}
	drainLog(t, l, eng)
	l.Close()
	l, eng = memLog(t, fs, cfg)
	if l.LogStartOffset() != start || l.NextOffset() != start+15 {
		t.Fatalf("reopened: log start %d next %d, want %d and %d", l.LogStartOffset(), l.NextOffset(), start, start+15)
	}
	l.SetHighWatermark(l.NextOffset()) // replication's word, after a reopen
	if got := readAllFrom(t, l, eng, start); len(got) != 3 || got[0].BaseOffset != start || got[0].LeaderEpoch != 4 {
		t.Fatalf("reopened: batches %+v", got)
	}
}
