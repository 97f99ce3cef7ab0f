package shard

import (
	"errors"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"testing"

	"github.com/strand-io/strand/dma"
)

// The metamorphic test: seeded random operations (append, partial engine
// polls, read, truncate, retention, time-based roll, OffsetForTime, clean
// reopen, and power loss plus recovery) run against the Log and against
// logModel, a plain slice of batches. Every answer is compared. A failure
// prints the seed; STRAND_MODEL_SEED=<n> reruns just that one.

// logModel is the naive log: batches in offset order.
type logModel struct {
	batches []mBatch // acknowledged or recovered, in offset order
	pending [][]byte // appended and not yet acknowledged, in append order
	start   Offset   // log start offset
	next    Offset   // offset after the last acknowledged batch
}

type mBatch struct {
	base, last Offset
	ts         int64
	data       []byte // as stored: offset and epoch stamped
}

func (m *logModel) find(off Offset) int {
	for i, b := range m.batches {
		if b.base <= off && off <= b.last {
			return i
		}
	}
	return -1
}

// ack checks an acknowledgement against the oldest pending append.
func (m *logModel) ack(t testing.TB, raw []byte, r AppendResult, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("append failed: %v", err)
	}
	if len(m.pending) == 0 || &m.pending[0][0] != &raw[0] {
		t.Fatalf("acknowledgement %d-%d out of append order", r.Base, r.Last)
	}
	m.pending = m.pending[1:]
	h, _ := ParseBatchHeader(raw)
	if r.Base != m.next || r.Last != r.Base+Offset(h.LastOffsetDelta) {
		t.Fatalf("acknowledged %d-%d, model expects base %d and %d records", r.Base, r.Last, m.next, h.LastOffsetDelta+1)
	}
	m.batches = append(m.batches, mBatch{r.Base, r.Last, h.MaxTimestamp, onDisk(raw, r.Base, 0)})
	m.next = r.Last + 1
}

// truncate applies TruncateTo(off) and returns the new end.
func (m *logModel) truncate(off Offset) Offset {
	switch {
	case off >= m.next:
		return m.next
	case off <= m.start:
		m.batches, m.start, m.next = nil, off, off
		return off
	}
	i := m.find(off)
	m.batches = m.batches[:i]
	m.next = off
	if i > 0 {
		m.next = m.batches[i-1].last + 1
	} else {
		m.next = m.start
	}
	return m.next
}

// checkRead compares one read's outcome with the model. end is the log
// end (appends not yet durable included): from hw to there a read is
// empty, past it out of range, as in Kafka.
func (m *logModel) checkRead(t testing.TB, off Offset, maxBytes int, hw, end Offset, r ReadResult, err error) {
	t.Helper()
	if r.HighWatermark != hw || r.LogStartOffset != m.start {
		t.Fatalf("read at %d reports hw %d start %d, model %d %d", off, r.HighWatermark, r.LogStartOffset, hw, m.start)
	}
	switch {
	case off < m.start || off > end:
		if !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("read at %d outside [%d,%d]: %v, want ErrOffsetOutOfRange", off, m.start, end, err)
		}
		return
	case err != nil:
		t.Fatalf("read at %d in [%d,%d]: %v", off, m.start, end, err)
	case off >= hw:
		if len(r.Data) != 0 {
			t.Fatalf("read at %d, at or past hw %d, served %d bytes", off, hw, len(r.Data))
		}
		return
	}
	bs := splitBatches(t, r.Data)
	if len(bs) == 0 {
		t.Fatalf("read at %d below hw %d served nothing", off, hw)
	}
	if len(bs) > 1 && len(r.Data) > maxBytes {
		t.Fatalf("read at %d served %d batches, %d bytes, over maxBytes %d", off, len(bs), len(r.Data), maxBytes)
	}
	i := m.find(off)
	for j, b := range bs {
		if i+j >= len(m.batches) || m.batches[i+j].base >= hw {
			t.Fatalf("read at %d served batch %d-%d beyond hw %d", off, b.h.BaseOffset, b.h.LastOffset(), hw)
		}
		equalStored(t, fmt.Sprintf("read at %d, batch %d", off, j), b.data, m.batches[i+j].data)
	}
}

// recovered checks a log reopened after a crash: every acknowledged batch
// is there, anything after them is a prefix of the pending appends, in
// order, and nothing else. The model then adopts what survived.
func (m *logModel) recovered(t testing.TB, l *Log, eng dma.Engine) {
	t.Helper()
	start := l.LogStartOffset()
	if start > m.start {
		t.Fatalf("log start %d after recovery, model %d", start, m.start)
	}
	if l.HighWatermark() < m.next {
		t.Fatalf("recovered end %d, but %d was acknowledged", l.HighWatermark(), m.next)
	}
	got := readRaw(t, l, eng, start, 1<<20)
	i := 0 // the model's first batch at or after the recovered start
	for i < len(m.batches) && m.batches[i].base < start {
		i++
	}
	if start < m.start && (i == len(m.batches) || m.batches[i].base != start) {
		t.Fatalf("log start %d after recovery is not a batch the model holds", start)
	}
	if len(got) < len(m.batches)-i {
		b := m.batches[i+len(got)]
		t.Fatalf("acknowledged batch %d-%d lost (recovered end %d)", b.base, b.last, l.HighWatermark())
	}
	var extra []mBatch
	for k, b := range got {
		if i+k < len(m.batches) {
			equalStored(t, "recovered acknowledged batch", b.data, m.batches[i+k].data)
			continue
		}
		if len(m.pending) == 0 {
			t.Fatalf("recovered batch %d-%d that was never appended", b.h.BaseOffset, b.h.LastOffset())
		}
		raw := m.pending[0]
		m.pending = m.pending[1:]
		equalBatch(t, "recovered unacknowledged batch", b.data, raw, b.h.BaseOffset)
		extra = append(extra, mBatch{b.h.BaseOffset, b.h.LastOffset(), b.h.MaxTimestamp, b.data})
	}
	m.batches = append(m.batches, extra...)
	m.pending, m.start, m.next = nil, start, l.HighWatermark()
	if len(m.batches) > 0 && m.batches[len(m.batches)-1].last+1 != m.next {
		t.Fatalf("model end %d, log end %d", m.batches[len(m.batches)-1].last+1, m.next)
	}
}

func equalStored(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if string(got) != string(want) {
		t.Fatalf("%s: %d bytes served differ from the %d stored", what, len(got), len(want))
	}
}

func TestModel(t *testing.T) {
	t.Parallel()
	seeds, ops := 150, 250
	if testing.Short() {
		seeds = 50
	}
	if s := os.Getenv("STRAND_MODEL_SEED"); s != "" {
		seed, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		runModel(t, seed, ops, true)
		return
	}
	for seed := int64(0); seed < int64(seeds); seed++ {
		if !runModel(t, seed, ops, false) {
			t.Fatalf("seed %d failed; rerun it alone with STRAND_MODEL_SEED=%d go test -ldflags=-checklinkname=0 -run '^TestModel$' -v ./shard/", seed, seed)
		}
	}
}

// runModel runs one seed in a subtest and reports whether it passed.
func runModel(t *testing.T, seed int64, ops int, verbose bool) bool {
	return t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
		rng := rand.New(rand.NewSource(seed))
		align := []int{512, 4096}[rng.Intn(2)]
		mem := dma.NewMemFS(align, seed)
		mem.Reorder = rng.Intn(2) == 0
		fs := newCrashFS(mem)
		cfg := Config{
			SegmentBytes:         int64(8<<10 + rng.Intn(128<<10)),
			IndexIntervalBytes:   256 + rng.Intn(8192),
			IndexCheckpointBytes: int64(512 + rng.Intn(32<<10)),
			MaxBatchBytes:        32 << 10,
			BufferBytes:          []int{1, 256 << 10}[rng.Intn(2)],
			// A core's cache of sealed segments' files, tiny so that reads
			// wait for it and evictions happen all the time.
			FileCache: NewFileCache(1 + rng.Intn(3)),
		}
		if rng.Intn(3) == 0 {
			cfg.SegmentMs = int64(200 + rng.Intn(2000))
		}
		if verbose {
			t.Logf("align %d reorder %v config %+v", align, mem.Reorder, cfg)
		}
		eng := mem.NewEngine()
		l := openLog(t, fs, eng, cfg)
		m := &logModel{}
		now := int64(1_000_000)
		step := func(format string, a ...any) {
			if verbose {
				t.Logf("op: "+format+" (start %d hw %d next %d segs %d)", append(a, l.LogStartOffset(), l.HighWatermark(), l.NextOffset(), len(l.segs))...)
			}
		}
		for op := 0; op < ops; op++ {
			now += int64(rng.Intn(50))
			switch r := rng.Intn(100); {
			case r < 40:
				for k := 1 + rng.Intn(4); k > 0; k-- {
					ts := now
					if rng.Intn(5) == 0 {
						ts -= int64(rng.Intn(500)) // CreateTime need not grow
					}
					size := rng.Intn(3000)
					if rng.Intn(10) == 0 {
						size = rng.Intn(30 << 10)
					}
					raw := makeBatch(1+rng.Intn(5), ts, payload(rng, size))
					m.pending = append(m.pending, raw)
					if err := l.Append(raw, now, func(r AppendResult, err error) { m.ack(t, raw, r, err) }); err != nil {
						t.Fatalf("append: %v", err)
					}
				}
				step("append")
			case r < 55:
				eng.Poll()
			case r < 60:
				dma.Drain(eng)
			case r < 72:
				// Several reads at once, so that they compete for the
				// file cache's slots.
				type pending struct {
					off      Offset
					maxBytes int
					res      ReadResult
					err      error
					done     bool
				}
				hw, end := l.HighWatermark(), l.NextOffset()
				var reads []*pending
				for k := 1 + rng.Intn(3); k > 0; k-- {
					p := &pending{off: m.start - 2 + Offset(rng.Int63n(int64(end-m.start)+5)), maxBytes: 1 + rng.Intn(40<<10)}
					reads = append(reads, p)
					step("read %d max %d", p.off, p.maxBytes)
					l.Read(p.off, p.maxBytes, func(r ReadResult, err error) { p.res, p.err, p.done = r, err, true })
				}
				if err := dma.Drain(eng); err != nil {
					t.Fatal(err)
				}
				for _, p := range reads {
					if !p.done {
						t.Fatalf("read at %d did not complete", p.off)
					}
					m.checkRead(t, p.off, p.maxBytes, hw, end, p.res, p.err)
				}
			case r < 76:
				drainLog(t, l, eng)
				// Offsets below 0 are not valid input (a segment named by a
				// negative base would not be found again at Open).
				off := max(0, m.start-2+Offset(rng.Int63n(int64(m.next-m.start)+5)))
				want := m.truncate(off)
				step("truncate %d, want end %d", off, want)
				var got Offset = -1
				l.TruncateTo(off, func(end Offset, err error) {
					if err != nil {
						t.Fatalf("truncate to %d: %v", off, err)
					}
					got = end
				})
				dma.Drain(eng)
				if got != want {
					t.Fatalf("truncate to %d ended the log at %d, model %d", off, got, want)
				}
			case r < 80:
				l.SetRetention(int64(rng.Intn(256<<10)), int64(rng.Intn(5000)))
				step("retention")
				l.ApplyRetention(now)
				m.checkRetention(t, l, now)
			case r < 83:
				step("tick")
				l.Tick(now)
				m.checkRetention(t, l, now)
			case r < 88:
				ts := now - int64(rng.Intn(3000))
				want, wantTs := m.offsetForTime(ts, l.HighWatermark())
				var got Offset = -2
				var gotTs int64
				l.OffsetForTime(ts, func(off Offset, t2 int64, err error) {
					if err != nil {
						t.Fatalf("OffsetForTime(%d): %v", ts, err)
					}
					got, gotTs = off, t2
				})
				dma.Drain(eng)
				if got != want || gotTs != wantTs {
					for _, sg := range l.segs {
						t.Logf("log segment %d size %d maxTs %d times %v index %v", sg.base, sg.size, sg.maxTimestamp, sg.times.entries, sg.index.entries)
					}
					for _, b := range m.batches {
						t.Logf("model batch %d-%d ts %d", b.base, b.last, b.ts)
					}
					t.Fatalf("OffsetForTime(%d) = %d (ts %d), model %d (ts %d)", ts, got, gotTs, want, wantTs)
				}
			case r < 95:
				step("crash")
				crashed := fs.crash(seed*1_000_003 + int64(op))
				abandon(l)
				mem = crashed.MemFS
				fs = crashed
				eng = mem.NewEngine()
				l = openLog(t, fs, eng, cfg)
				m.recovered(t, l, eng)
			default:
				step("reopen")
				drainLog(t, l, eng)
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				eng = mem.NewEngine()
				l = openLog(t, fs, eng, cfg)
				if l.LogStartOffset() != m.start || l.HighWatermark() != m.next {
					t.Fatalf("clean reopen: log %d-%d, model %d-%d", l.LogStartOffset(), l.HighWatermark(), m.start, m.next)
				}
			}
			if l.Err() != nil {
				t.Fatalf("log failed: %v", l.Err())
			}
			if c := cfg.FileCache; c.Len() > c.Max() || mem.OpenFiles() > DescriptorsPerLogPeak+c.Max() {
				t.Fatalf("after op %d: %d files cached (bound %d), %d open (bound %d)", op, c.Len(), c.Max(), mem.OpenFiles(), DescriptorsPerLogPeak+c.Max())
			}
			if l.HighWatermark() != m.next || l.LogStartOffset() != m.start {
				t.Fatalf("after op %d: log %d-%d, model %d-%d", op, l.LogStartOffset(), l.HighWatermark(), m.start, m.next)
			}
		}
		drainLog(t, l, eng)
		m.recovered(t, l, eng) // a final full read against the model
		l.Close()
	})
}

// checkRetention adopts the log start that retention chose and checks it:
// it only moves forward, lands on a segment base, and leaves a first
// segment that retention would keep.
func (m *logModel) checkRetention(t testing.TB, l *Log, nowMs int64) {
	t.Helper()
	start := l.LogStartOffset()
	if start < m.start {
		t.Fatalf("retention moved log start back from %d to %d", m.start, start)
	}
	if start != m.start && Offset(l.segs[0].base) != start {
		t.Fatalf("log start %d is not the first segment's base %d", start, l.segs[0].base)
	}
	m.start = start
	if len(l.segs) < 2 {
		return
	}
	first := l.segs[0]
	var total, firstBytes, firstMaxTs int64 = 0, 0, -1
	for _, b := range m.batches {
		if b.base < start {
			continue
		}
		total += int64(len(b.data))
		if b.base < Offset(l.segs[1].base) {
			firstBytes += int64(len(b.data))
			firstMaxTs = max(firstMaxTs, b.ts)
		}
	}
	if pendingBytes := l.sizeBytes() - total; pendingBytes < 0 {
		t.Fatalf("log holds %d bytes, model %d", l.sizeBytes(), total)
	} else if firstBytes != first.size {
		t.Fatalf("first segment holds %d bytes, model %d", first.size, firstBytes)
	}
	if rb := l.cfg.RetentionBytes; rb > 0 && l.sizeBytes()-first.size >= rb {
		t.Fatalf("retention kept segment %d though the rest holds %d >= %d bytes", first.base, l.sizeBytes()-first.size, rb)
	}
	if rm := l.cfg.RetentionMs; rm > 0 && firstMaxTs >= 0 && nowMs-firstMaxTs > rm {
		t.Fatalf("retention kept segment %d whose newest record is %d ms old (limit %d)", first.base, nowMs-firstMaxTs, rm)
	}
}

// offsetForTime is the first batch at or after the log start, below hw,
// whose max timestamp is >= ts.
func (m *logModel) offsetForTime(ts int64, hw Offset) (Offset, int64) {
	for _, b := range m.batches {
		if b.base >= m.start && b.base < hw && b.ts >= ts {
			return b.base, b.ts
		}
	}
	return -1, -1
}
