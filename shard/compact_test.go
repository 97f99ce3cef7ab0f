package shard

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"log/slog"
	"math/rand"
	"strings"
	"testing"

	"github.com/strand-io/strand/dma"
)

// kv is one record of a keyed test batch; nil value: tombstone.
type kv struct {
	key, value []byte
}

// keyedBatch builds a producer's batch of records with codec, timestamps
// ts, ts+1, ...; pid < 0: not idempotent.
func keyedBatch(t testing.TB, recs []kv, ts int64, codec int16, pid int64, seq int32) []byte {
	t.Helper()
	var raw []byte
	for i, r := range recs {
		raw = appendRecord(raw, i, testRecord{key: r.key, value: r.value})
	}
	body, err := compressRecords(codec, raw)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, BatchHeaderSize+len(body))
	be := binary.BigEndian
	be.PutUint32(b[8:], uint32(len(b)-12))
	be.PutUint32(b[12:], 0)
	b[16] = 2
	be.PutUint16(b[21:], uint16(codec))
	be.PutUint32(b[23:], uint32(len(recs)-1))
	be.PutUint64(b[27:], uint64(ts))
	be.PutUint64(b[35:], uint64(ts+int64(len(recs))-1))
	be.PutUint64(b[43:], uint64(pid))
	be.PutUint16(b[51:], 0)
	if pid < 0 {
		be.PutUint16(b[51:], 0xffff)
		seq = -1
	}
	be.PutUint32(b[53:], uint32(seq))
	be.PutUint32(b[57:], uint32(len(recs)))
	copy(b[61:], body)
	be.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

// gotRecord is one record a read served.
type gotRecord struct {
	off   Offset
	ts    int64
	key   string
	value []byte // nil: tombstone
	codec int16
}

// appendWait appends and drives the engine until the append is durable.
func appendWait(t testing.TB, l *Log, eng dma.Engine, b []byte, nowMs int64) AppendResult {
	t.Helper()
	var res AppendResult
	var aerr error
	done := false
	if err := l.Append(b, nowMs, func(r AppendResult, err error) { res, aerr, done = r, err, true }); err != nil {
		t.Fatalf("append: %v", err)
	}
	for i := 0; !done; i++ {
		if err := dma.Drain(eng); err != nil {
			t.Fatal(err)
		}
		if i > 1000 {
			t.Fatal("append never acknowledged")
		}
	}
	if aerr != nil {
		t.Fatalf("append: %v", aerr)
	}
	return res
}

// readRecords reads every record from the log start, checking that
// batches come in increasing offset order, CRCs hold, and every record
// lies inside its batch's offset range.
func readRecords(t testing.TB, l *Log, eng dma.Engine) []gotRecord {
	t.Helper()
	var out []gotRecord
	for off := l.LogStartOffset(); off < l.HighWatermark(); {
		r, err := readOnce(t, l, eng, off, 64<<10)
		if err != nil {
			t.Fatalf("read at %d (hw %d): %v", off, l.HighWatermark(), err)
		}
		if len(r.Data) == 0 {
			t.Fatalf("empty read at %d below hw %d", off, l.HighWatermark())
		}
		for b := r.Data; len(b) > 0; {
			h, err := ParseBatchHeader(b)
			if err != nil || h.Size() > len(b) {
				t.Fatalf("served a partial batch at %d", off)
			}
			if crc32.Checksum(b[21:h.Size()], castagnoli) != h.CRC {
				t.Fatalf("batch %d: crc mismatch", h.BaseOffset)
			}
			if h.LastOffset() < off {
				t.Fatalf("read at %d served batch %d-%d", off, h.BaseOffset, h.LastOffset())
			}
			recs, _, err := batchRecords(b[:h.Size()], &h)
			if err != nil {
				t.Fatalf("batch %d: %v", h.BaseOffset, err)
			}
			for _, rec := range recs {
				o := h.BaseOffset + Offset(rec.offsetDelta)
				if o > h.LastOffset() || o < h.BaseOffset {
					t.Fatalf("record offset %d outside batch %d-%d", o, h.BaseOffset, h.LastOffset())
				}
				g := gotRecord{off: o, ts: h.BaseTimestamp + rec.tsDelta, key: string(rec.key), codec: h.Attributes & 7}
				if !rec.nullValue {
					vs := recValue(t, rec)
					g.value = vs
				}
				out = append(out, g)
			}
			off = h.LastOffset() + 1
			b = b[h.Size():]
		}
	}
	return out
}

// recValue extracts a record's value from its tail.
func recValue(t testing.TB, r cleanRecord) []byte {
	p := r.tail
	_, n := binary.Varint(p) // offset delta
	p = p[n:]
	kl, n := binary.Varint(p)
	p = p[n:]
	if kl > 0 {
		p = p[kl:]
	}
	vl, n := binary.Varint(p)
	if vl < 0 {
		return nil
	}
	return append([]byte{}, p[n:n+int(vl)]...)
}

// tickUntilClean ticks the log at nowMs until a pass has finished after
// the current one, and the cleaner is idle.
func tickUntilClean(t testing.TB, l *Log, eng dma.Engine, nowMs int64) {
	t.Helper()
	before := l.CleanerPasses()
	for i := 0; l.CleanerPasses() == before || l.Cleaning(); i++ {
		l.Tick(nowMs)
		drainLog(t, l, eng)
		if l.Err() != nil {
			t.Fatal(l.Err())
		}
		if i > 100000 {
			t.Fatal("cleaner never finished a pass")
		}
	}
}

func compactConfig(policy CleanupPolicy) Config {
	return Config{Dir: "/data/c-0", SegmentBytes: 2048, Cleanup: policy, MinCleanableDirtyRatio: 0.01,
		DeleteRetentionMs: 10_000, CleanBytesPerTick: 1500, IndexIntervalBytes: 256}
}

// written is the writer's model: every record appended, by offset.
type written struct {
	recs   map[Offset]kv
	latest map[string]Offset
}

func newWritten() *written { return &written{recs: map[Offset]kv{}, latest: map[string]Offset{}} }

func (w *written) add(res AppendResult, recs []kv) {
	for i, r := range recs {
		o := res.Base + Offset(i)
		w.recs[o] = r
		w.latest[string(r.key)] = o
	}
}

// checkCompacted checks what the log serves against the model: every
// record at its original offset with its original key and value; in the
// sealed segments below activeBase no key twice and no superseded record;
// everything from activeBase on untouched; and the latest record of every
// key present unless it is a tombstone that may have gone.
func checkCompacted(t testing.TB, got []gotRecord, w *written, activeBase Offset, tombstonesGone bool) {
	t.Helper()
	seen := map[string]bool{}
	present := map[Offset]bool{}
	for _, g := range got {
		want, ok := w.recs[g.off]
		if !ok || string(want.key) != g.key || string(want.value) != string(g.value) || (want.value == nil) != (g.value == nil) {
			t.Fatalf("offset %d: got key %q value %q, wrote %q=%q", g.off, g.key, g.value, want.key, want.value)
		}
		present[g.off] = true
		if g.off >= activeBase {
			continue
		}
		if seen[g.key] {
			t.Fatalf("key %q appears twice in the cleaned segments (offset %d)", g.key, g.off)
		}
		seen[g.key] = true
		if latest := w.latest[g.key]; latest != g.off && latest < activeBase {
			t.Fatalf("key %q: offset %d kept though %d is newer", g.key, g.off, latest)
		}
		if g.value == nil && tombstonesGone {
			t.Fatalf("tombstone of %q at %d outlived delete.retention.ms", g.key, g.off)
		}
	}
	for off := range w.recs {
		if off >= activeBase && !present[off] {
			t.Fatalf("offset %d in the active segment is gone", off)
		}
	}
	for k, off := range w.latest {
		if w.recs[off].value != nil && !present[off] {
			t.Fatalf("latest value of %q (offset %d) is gone", k, off)
		}
	}
}

func activeBase(l *Log) Offset { return Offset(l.active.base) }

// TestCompactKeepsLatestPerKey rewrites 10 keys many times and checks
// that cleaning leaves one record per key in the sealed segments, at the
// original offsets, the active segment untouched, and that a reopened log
// serves the same.
func TestCompactKeepsLatestPerKey(t *testing.T) {
	for _, codec := range []int16{codecNone, codecGzip, codecSnappy, codecLZ4, codecZstd} {
		t.Run(fmt.Sprint("codec", codec), func(t *testing.T) {
			fs := dma.NewMemFS(512, 1)
			cfg := compactConfig(PolicyCompact)
			cfg.RetentionMs = 1 // compact alone: retention must not delete
			l, eng := memLog(t, fs, cfg)
			w := newWritten()
			rng := rand.New(rand.NewSource(int64(codec)))
			now := int64(1_000_000)
			for i := 0; i < 400; i++ {
				n := 1 + rng.Intn(3)
				recs := make([]kv, n)
				for j := range recs {
					recs[j] = kv{[]byte(fmt.Sprintf("key%d", rng.Intn(10))), []byte(fmt.Sprintf("v%d-%d", i, j))}
				}
				res := appendWait(t, l, eng, keyedBatch(t, recs, now, codec, -1, 0), now)
				w.add(res, recs)
				now++
			}
			before := l.SizeBytes()
			tickUntilClean(t, l, eng, now)
			if l.LogStartOffset() != 0 {
				t.Fatalf("log start moved to %d", l.LogStartOffset())
			}
			got := readRecords(t, l, eng)
			checkCompacted(t, got, w, activeBase(l), false)
			sealed := 0
			for _, g := range got {
				if g.off < activeBase(l) {
					sealed++
					if g.codec != codec {
						t.Fatalf("offset %d: codec %d after cleaning, batch had %d", g.off, g.codec, codec)
					}
				}
			}
			t.Logf("sealed records %d, bytes %d -> %d, segments %d, passes %d", sealed, before, l.SizeBytes(), len(l.segs), l.CleanerPasses())
			if sealed == 0 || sealed > 10 || l.SizeBytes() >= before {
				t.Fatalf("%d records in sealed segments, %d bytes (was %d)", sealed, l.SizeBytes(), before)
			}
			// Reopen: recovery and the rebuilt indexes serve the same.
			drainLog(t, l, eng)
			abandon(l)
			l2, eng2 := memLog(t, fs, cfg)
			checkCompacted(t, readRecords(t, l2, eng2), w, activeBase(l2), false)
			if l2.NextOffset() != Offset(len(w.recs)) {
				t.Fatalf("next offset %d after reopen, want %d", l2.NextOffset(), len(w.recs))
			}
		})
	}
}

// TestCompactMapFull: a pass maps only as many keys as CleanMapBytes
// holds and cleans up to there; the passes that follow clean the rest,
// and every prefix of them keeps each key's latest value. With 20 keys'
// room and 200 keys written, one pass cannot do it all.
func TestCompactMapFull(t *testing.T) {
	fs := dma.NewMemFS(512, 1)
	cfg := compactConfig(PolicyCompact)
	cfg.RetentionMs = 1
	cfg.CleanMapBytes = 20 * keyEntryBytes
	l, eng := memLog(t, fs, cfg)
	w := newWritten()
	rng := rand.New(rand.NewSource(7))
	now := int64(1_000_000)
	for i := 0; i < 600; i++ {
		recs := []kv{{[]byte(fmt.Sprintf("key%d", rng.Intn(200))), []byte(fmt.Sprintf("v%d", i))}}
		w.add(appendWait(t, l, eng, keyedBatch(t, recs, now, codecNone, -1, 0), now), recs)
		now++
	}
	sizes := []int64{l.SizeBytes()}
	for {
		// Tick until a pass ends, or until none starts: all is clean.
		before := l.CleanerPasses()
		for i := 0; i < 1000 && (l.CleanerPasses() == before || l.Cleaning()); i++ {
			l.Tick(now)
			drainLog(t, l, eng)
			if l.Err() != nil {
				t.Fatal(l.Err())
			}
		}
		if l.CleanerPasses() == before {
			break
		}
		// Every key's latest value is there after every pass.
		present := map[Offset]bool{}
		for _, g := range readRecords(t, l, eng) {
			present[g.off] = true
		}
		for k, off := range w.latest {
			if !present[off] {
				t.Fatalf("after pass %d: latest value of %q (offset %d) is gone", l.CleanerPasses(), k, off)
			}
		}
		sizes = append(sizes, l.SizeBytes())
		if len(sizes) > 500 {
			t.Fatalf("still cleaning after %d passes: sizes %v", len(sizes), sizes)
		}
	}
	t.Logf("%d passes, sizes %v", l.CleanerPasses(), sizes)
	checkCompacted(t, readRecords(t, l, eng), w, activeBase(l), false)
	if l.CleanerPasses() < 3 {
		t.Fatalf("%d passes: the map bound did not split the work", l.CleanerPasses())
	}
}

// TestCompactTombstonesExpire: a tombstone survives the first pass, which
// stamps its delete horizon, and goes at the first pass after
// delete.retention.ms; the deleted key never comes back.
func TestCompactTombstonesExpire(t *testing.T) {
	fs := dma.NewMemFS(512, 2)
	cfg := compactConfig(PolicyCompact)
	l, eng := memLog(t, fs, cfg)
	w := newWritten()
	now := int64(5_000_000)
	put := func(recs ...kv) {
		res := appendWait(t, l, eng, keyedBatch(t, recs, now, codecNone, -1, 0), now)
		w.add(res, recs)
		now++
	}
	for i := 0; i < 100; i++ {
		put(kv{[]byte(fmt.Sprint("k", i%10)), []byte(fmt.Sprint("v", i))})
	}
	put(kv{[]byte("k3"), nil}, kv{[]byte("k7"), nil})
	for i := 0; i < 60; i++ { // push the tombstones into a sealed segment
		put(kv{[]byte(fmt.Sprint("x", i%5)), []byte(fmt.Sprint("v", i))})
	}
	tickUntilClean(t, l, eng, now)
	got := readRecords(t, l, eng)
	checkCompacted(t, got, w, activeBase(l), false)
	tombs := 0
	for _, g := range got {
		if g.value == nil {
			tombs++
		}
		if (g.key == "k3" || g.key == "k7") && g.value != nil {
			t.Fatalf("deleted key %s back at %d", g.key, g.off)
		}
	}
	if tombs != 2 {
		t.Fatalf("%d tombstones after the first pass, want 2", tombs)
	}
	// Before the horizon another pass keeps them; past it they go.
	put(kv{[]byte("x1"), []byte("again")})
	now += cfg.DeleteRetentionMs + 1
	for i := 0; i < 30; i++ {
		put(kv{[]byte(fmt.Sprint("x", i%5)), []byte(fmt.Sprint("w", i))})
	}
	tickUntilClean(t, l, eng, now)
	got = readRecords(t, l, eng)
	checkCompacted(t, got, w, activeBase(l), true)
	for _, g := range got {
		if g.key == "k3" || g.key == "k7" {
			t.Fatalf("key %s at %d still there after delete.retention.ms", g.key, g.off)
		}
	}
}

// TestCompactDeletePolicy: compact,delete also drops old segments by time,
// while compact alone keeps them.
func TestCompactDeletePolicy(t *testing.T) {
	for _, policy := range []CleanupPolicy{PolicyCompact, PolicyCompactDelete} {
		fs := dma.NewMemFS(512, 3)
		cfg := compactConfig(policy)
		cfg.RetentionMs = 60_000
		l, eng := memLog(t, fs, cfg)
		now := int64(1_000_000)
		for i := 0; i < 100; i++ {
			appendWait(t, l, eng, keyedBatch(t, []kv{{[]byte(fmt.Sprint("old", i)), []byte("v")}}, now, codecNone, -1, 0), now)
		}
		now += 120_000
		for i := 0; i < 100; i++ {
			appendWait(t, l, eng, keyedBatch(t, []kv{{[]byte(fmt.Sprint("new", i%10)), []byte("v")}}, now, codecNone, -1, 0), now)
		}
		tickUntilClean(t, l, eng, now)
		olds := 0
		for _, g := range readRecords(t, l, eng) {
			if g.key[:3] == "old" {
				olds++
			}
		}
		if policy == PolicyCompact && olds != 100 {
			t.Fatalf("compact: %d of 100 old keys left, retention must not delete", olds)
		}
		if policy == PolicyCompactDelete && olds != 0 {
			t.Fatalf("compact,delete: %d old keys left past retention.ms", olds)
		}
	}
}

// TestCompactBudgetShared: two logs of one core share its cleaning budget;
// no round reads more than the budget plus one batch, a pass spans many
// rounds, and the log says so once per pass.
func TestCompactBudgetShared(t *testing.T) {
	fs := dma.NewMemFS(512, 4)
	budget := NewCleanBudget(3000)
	var logBuf bytes.Buffer
	var logs []*Log
	var engs []dma.Engine
	for i := 0; i < 2; i++ {
		cfg := compactConfig(PolicyCompact)
		cfg.Dir = fmt.Sprint("/data/b-", i)
		cfg.CleanBudget = budget
		cfg.CleanBytesPerTick = 3000
		cfg.Logger = slog.New(slog.NewTextHandler(&logBuf, nil))
		l, eng := memLog(t, fs, cfg)
		now := int64(1000)
		for j := 0; j < 300; j++ {
			appendWait(t, l, eng, keyedBatch(t, []kv{{[]byte(fmt.Sprint("k", j%7)), bytes.Repeat([]byte("v"), 40)}}, now, codecNone, -1, 0), now)
		}
		logs, engs = append(logs, l), append(engs, eng)
	}
	read := func() int64 { return logs[0].clean.bytesIn + logs[1].clean.bytesIn }
	rounds := 0
	for now := int64(2000); logs[0].CleanerPasses() == 0 || logs[1].CleanerPasses() == 0; now++ {
		before := read()
		p0, p1 := logs[0].CleanerPasses(), logs[1].CleanerPasses()
		for i, l := range logs {
			l.Clean(now)
			drainLog(t, l, engs[i])
		}
		if logs[0].CleanerPasses() == p0 && logs[1].CleanerPasses() == p1 {
			if got := read() - before; got > 3000+200 {
				t.Fatalf("round at %d read %d bytes, budget 3000", now, got)
			}
		}
		if rounds++; rounds > 10000 {
			t.Fatal("passes never finished")
		}
	}
	if rounds < 10 {
		t.Fatalf("cleaning %d bytes took %d rounds at 3000 bytes each", logs[0].SizeBytes(), rounds)
	}
	if n := strings.Count(logBuf.String(), "continues over several rounds"); n != 2 {
		t.Fatalf("budget log line written %d times for 2 passes", n)
	}
}

// TestCompactKeepsProducerState: an idempotent producer's batches whose
// records are all superseded go, except its last, kept empty (Kafka's
// RETAIN_EMPTY) with its offsets, so after a restart a retry of that batch
// is still answered as a duplicate.
func TestCompactKeepsProducerState(t *testing.T) {
	fs := dma.NewMemFS(512, 5)
	cfg := compactConfig(PolicyCompact)
	l, eng := memLog(t, fs, cfg)
	now := int64(1_000_000)
	var last []byte
	var lastRes AppendResult
	for i := 0; i < 20; i++ {
		b := keyedBatch(t, []kv{{[]byte(fmt.Sprint("k", i%3)), []byte("idem")}}, now, codecNone, 7, int32(i))
		lastRes, last = appendWait(t, l, eng, b, now), b
	}
	for i := 0; i < 100; i++ { // supersede every key, and seal it all
		appendWait(t, l, eng, keyedBatch(t, []kv{{[]byte(fmt.Sprint("k", i%3)), []byte("plain")}}, now, codecNone, -1, 0), now)
	}
	tickUntilClean(t, l, eng, now)
	var empties, pidBatches int
	for off := Offset(0); off < l.HighWatermark(); {
		r, err := readOnce(t, l, eng, off, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for b := r.Data; len(b) > 0; {
			h, _ := ParseBatchHeader(b)
			if h.ProducerID == 7 {
				pidBatches++
				if h.RecordCount == 0 && h.BaseOffset == lastRes.Base && h.LastOffset() == lastRes.Last {
					empties++
				}
			}
			off = h.LastOffset() + 1
			b = b[h.Size():]
		}
	}
	if pidBatches != 1 || empties != 1 {
		t.Fatalf("producer 7 has %d batches left (%d the empty last one), want only its last batch, empty", pidBatches, empties)
	}
	drainLog(t, l, eng)
	abandon(l)
	l2, eng2 := memLog(t, fs, cfg)
	next := l2.NextOffset()
	res := appendWait(t, l2, eng2, last, now)
	if res.Base != lastRes.Base || l2.NextOffset() != next {
		t.Fatalf("retry of the last batch after cleaning and restart: got offset %d (next %d -> %d), want the duplicate answer %d",
			res.Base, next, l2.NextOffset(), lastRes.Base)
	}
}
