package shard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand"
	"strings"
	"sync"
	"testing"

	"github.com/strand-io/strand/dma"
)

// countingHandler counts the log records at or above a level whose message
// contains a word, for checking that a log line is rate-limited.
type countingHandler struct {
	mu    sync.Mutex
	word  string
	count int
	last  string
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *countingHandler) WithGroup(string) slog.Handler            { return h }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.Level >= slog.LevelWarn && strings.Contains(r.Message, h.word) {
		h.count++
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "err" {
				h.last = a.Value.String()
			}
			return true
		})
	}
	return nil
}

func (h *countingHandler) n() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.count
}

// used is the space a MemFS with a capacity has handed out.
func used(t *testing.T, fs *dma.MemFS) int64 {
	t.Helper()
	free, err := fs.FreeBytes("/")
	if err != nil {
		t.Fatal(err)
	}
	return fs.Capacity - free
}

// TestNearEmptyPartitionsUseLittleDisk is the regression test for issue 9's
// "6,000 near-empty partitions take 5.9 GB": each partition's first
// preallocation was 1 MiB. 300 partitions with one small batch each must
// now take a few blocks apiece.
func TestNearEmptyPartitionsUseLittleDisk(t *testing.T) {
	fs := dma.NewMemFS(4096, 1)
	fs.Capacity = 1 << 40
	const parts = 300
	for i := 0; i < parts; i++ {
		l, eng := memLog(t, fs, Config{Dir: fmt.Sprintf("/data/t-%d", i), Preallocate: true})
		ok := false
		if err := l.Append(makeBatch(1, 1, []byte("hello")), 1, func(_ AppendResult, err error) { ok = err == nil }); err != nil {
			t.Fatal(err)
		}
		drainLog(t, l, eng)
		if !ok {
			t.Fatal("append failed")
		}
	}
	perPartition := used(t, fs) / parts
	t.Logf("%d near-empty partitions use %d bytes each", parts, perPartition)
	if perPartition > 2*preallocMinBytes {
		t.Fatalf("a near-empty partition takes %d bytes of disk, want at most %d", perPartition, 2*preallocMinBytes)
	}
}

// TestPreallocationGrowsWithWrites: a busy partition's chunk doubles up to
// PreallocateBytes, so it still reserves ahead in large steps.
func TestPreallocationGrowsWithWrites(t *testing.T) {
	fs := dma.NewMemFS(4096, 1)
	fs.Capacity = 1 << 40
	l, eng := memLog(t, fs, Config{Preallocate: true, PreallocateBytes: 1 << 20, MaxBatchBytes: 64 << 10})
	rng := rand.New(rand.NewSource(1))
	allocs := 0
	last := l.active.allocated
	for l.end < 8<<20 {
		if err := l.Append(makeBatch(1, 1, payload(rng, 60<<10)), 1, nil); err != nil {
			t.Fatal(err)
		}
		drainLog(t, l, eng)
		if l.active.allocated != last {
			allocs++
			last = l.active.allocated
		}
	}
	if l.preallocChunk != 1<<20 {
		t.Fatalf("chunk after 8 MiB of writes: %d, want PreallocateBytes", l.preallocChunk)
	}
	// 16 KiB doubling to 1 MiB is 7 steps, then 1 MiB at a time.
	if allocs > 7+8 {
		t.Fatalf("%d fallocates for 8 MiB: the chunk does not grow", allocs)
	}
	l.Tick(bufferIdleMs + 10)
	if l.preallocChunk != preallocMinBytes {
		t.Fatalf("idle partition's chunk is %d, want %d", l.preallocChunk, preallocMinBytes)
	}
}

// TestFullDiskRefusesWithMessageAndResumes is the regression test for
// issue 9's full-disk defect at the log: appends on a full disk must be
// refused with a message naming the cause, logged once a minute, leave the
// reserve untouched, and succeed again as soon as space returns, however
// it was freed.
func TestFullDiskRefusesWithMessageAndResumes(t *testing.T) {
	fs := dma.NewMemFS(4096, 1)
	fs.Capacity = 4 << 20
	const reserve = 1 << 20
	if err := fs.MkdirAll("/data"); err != nil {
		t.Fatal(err)
	}
	writeMemFile(t, fs, "/data/ballast", make([]byte, 1<<20))
	h := &countingHandler{word: "storage error"}
	l, eng := memLog(t, fs, Config{Preallocate: true, DiskReserveBytes: reserve, Logger: slog.New(h)})
	rng := rand.New(rand.NewSource(1))
	var refused error
	now := int64(1000)
	for i := 0; i < 1000 && refused == nil; i++ {
		var aerr error
		refused = l.Append(makeBatch(1, now, payload(rng, 8000)), now, func(_ AppendResult, err error) { aerr = err })
		drainLog(t, l, eng)
		if aerr != nil {
			t.Fatalf("an accepted append failed: %v", aerr)
		}
	}
	if refused == nil {
		t.Fatal("a 4 MiB disk took 8 MB of appends")
	}
	if !errors.Is(refused, ErrNoSpace) {
		t.Fatalf("refused with %v, want ErrNoSpace", refused)
	}
	if msg := refused.Error(); !strings.Contains(msg, "disk full on "+l.Dir()) || !strings.Contains(msg, "bytes free") {
		t.Fatalf("error %q does not name the directory and the free space", msg)
	}
	if l.Err() != nil {
		t.Fatalf("a full disk failed the log: %v", l.Err())
	}
	if free, _ := fs.FreeBytes("/"); free < reserve {
		t.Fatalf("appends left %d bytes free, below the %d reserve", free, reserve)
	}
	if h.n() != 1 {
		t.Fatalf("%d log lines for the first refusal, want 1", h.n())
	}
	for i := 0; i < 10; i++ {
		if err := l.Append(makeBatch(1, now, payload(rng, 8000)), now+int64(i)*1000, nil); !errors.Is(err, ErrNoSpace) {
			t.Fatalf("append on a full disk: %v", err)
		}
	}
	if h.n() != 1 {
		t.Fatalf("%d log lines for refusals within a minute, want 1", h.n())
	}
	if err := l.Append(makeBatch(1, now, payload(rng, 8000)), now+storageLogEveryMs, nil); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("append on a full disk: %v", err)
	}
	if h.n() != 2 || !strings.Contains(h.last, "disk full") {
		t.Fatalf("%d log lines after a minute (last %q), want 2 naming the cause", h.n(), h.last)
	}
	// Space comes back from outside the log: the next append goes through.
	if err := fs.Remove("/data/ballast"); err != nil {
		t.Fatal(err)
	}
	ok := false
	if err := l.Append(makeBatch(1, now, payload(rng, 8000)), now, func(_ AppendResult, err error) { ok = err == nil }); err != nil {
		t.Fatalf("append after space returned: %v", err)
	}
	drainLog(t, l, eng)
	if !ok {
		t.Fatal("append after space returned was not acknowledged")
	}
}

// TestWriteNoSpaceStallsThenResumes: when a write itself runs out of space
// (a disk filled from outside, a file system without fallocate), the log
// used to fail for good, like after a failed fdatasync. Now the appends
// wait, new ones are refused with a message, and once space returns a
// Tick writes the same bytes again and everything is acknowledged and
// survives a crash.
func TestWriteNoSpaceStallsThenResumes(t *testing.T) {
	for _, kind := range []faultKind{faultNoSpace, faultShortWrite} {
		t.Run(kind.String(), func(t *testing.T) {
			fs := dma.NewMemFS(4096, 1)
			h := &countingHandler{word: "storage error"}
			cfg := Config{SegmentBytes: 1 << 20, MaxBatchBytes: 16 << 10, BufferBytes: 1, Logger: slog.New(h)}
			l, eng := memLog(t, fs, cfg)
			rng := rand.New(rand.NewSource(1))
			a := newAppendTracker(t)
			for i := 0; i < 10; i++ {
				if err := a.append(l, makeBatch(2, int64(i), payload(rng, 3000))); err != nil {
					t.Fatal(err)
				}
			}
			dma.Drain(eng)
			hw := l.HighWatermark()
			switch kind {
			case faultNoSpace:
				fs.Faults.NoSpaceAfter = 1
			case faultShortWrite:
				fs.Faults.ShortWrites = 1
			}
			accepted := 0
			for i := 0; i < 20; i++ {
				err := a.append(l, makeBatch(1, 100, payload(rng, 15<<10)))
				if err == nil {
					accepted++
				} else if !errors.Is(err, ErrNoSpace) {
					t.Fatal(err)
				}
			}
			dma.Drain(eng)
			if l.Err() != nil {
				t.Fatalf("running out of space failed the log: %v", l.Err())
			}
			if a.failed != 0 || l.HighWatermark() != hw {
				t.Fatalf("during the stall: %d failed, hw %d -> %d", a.failed, hw, l.HighWatermark())
			}
			err := l.Append(makeBatch(1, 1, nil), 1, nil)
			if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "disk full on") {
				t.Fatalf("append during the stall: %v, want a disk-full error", err)
			}
			if h.n() != 1 {
				t.Fatalf("%d log lines for the stall, want 1", h.n())
			}
			if kind == faultNoSpace {
				for _, now := range []int64{2, 3, storageLogEveryMs + 10} {
					l.Tick(now) // still no space: the retry stalls again
					dma.Drain(eng)
				}
				if l.Err() != nil || a.failed != 0 || l.HighWatermark() != hw {
					t.Fatalf("after retries without space: err %v, %d failed, hw %d", l.Err(), a.failed, l.HighWatermark())
				}
				if h.n() != 2 {
					t.Fatalf("%d log lines after three failed retries over a minute, want 2", h.n())
				}
			}
			fs.Faults = dma.Faults{}
			l.Tick(3)
			drainLog(t, l, eng)
			a.checkAllCalled()
			if a.failed != 0 || len(a.acked) != 10+accepted {
				t.Fatalf("after space returned: %d acknowledged, %d failed; want %d and 0", len(a.acked), a.failed, 10+accepted)
			}
			l.Close()
			for seed := int64(0); seed < 10; seed++ {
				l2, eng2 := memLog(t, fs.Crash(seed), cfg)
				a.checkRecovered(l2, eng2)
				l2.Close()
			}
		})
	}
}

// TestQuiesceDoesNotWaitForSpace: closing or deleting a partition whose
// write is stalled on a full disk must not hang the broker's shutdown.
func TestQuiesceDoesNotWaitForSpace(t *testing.T) {
	fs := dma.NewMemFS(4096, 1)
	l, eng := memLog(t, fs, Config{})
	fs.Faults.NoSpaceAfter = 1
	var aerr error
	if err := l.Append(makeBatch(1, 1, make([]byte, 5000)), 1, func(_ AppendResult, err error) { aerr = err }); err != nil {
		t.Fatal(err)
	}
	dma.Drain(eng)
	quiesced := false
	l.Quiesce(func() { quiesced = true })
	dma.Drain(eng)
	if !quiesced {
		t.Fatal("Quiesce waits for space that may never come")
	}
	if aerr == nil || !strings.Contains(aerr.Error(), "disk full on") || !errors.Is(aerr, ErrLogFailed) {
		t.Fatalf("the stalled append got %v, want the disk-full error", aerr)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRollNoSpaceStallsThenResumes: a roll that cannot write the sealed
// segment's indexes (a disk filled from outside) used to fail the log for
// good. Now the append waiting for the roll gets the disk-full error, the
// log stays up, and the roll succeeds once space returns.
func TestRollNoSpaceStallsThenResumes(t *testing.T) {
	fs := dma.NewMemFS(4096, 1)
	cfg := Config{SegmentBytes: 32 << 10, MaxBatchBytes: 8 << 10, IndexIntervalBytes: 1024}
	l, eng := memLog(t, fs, cfg)
	rng := rand.New(rand.NewSource(1))
	a := newAppendTracker(t)
	for l.end+5000 <= cfg.SegmentBytes {
		if err := a.append(l, makeBatch(1, 1, payload(rng, 4000))); err != nil {
			t.Fatal(err)
		}
		drainLog(t, l, eng)
	}
	fs.Faults.NoSpaceAfter = 1 // the roll's first growing write fails
	var rollErr error
	// Larger than what is left in the segment: it needs the roll.
	if err := l.Append(makeBatch(1, 1, payload(rng, 7000)), 1, func(_ AppendResult, err error) { rollErr = err }); err != nil {
		t.Fatal(err)
	}
	dma.Drain(eng)
	if l.Err() != nil {
		t.Fatalf("a roll out of space failed the log: %v", l.Err())
	}
	if rollErr == nil || !errors.Is(rollErr, ErrNoSpace) || !strings.Contains(rollErr.Error(), "disk full on") {
		t.Fatalf("the append behind the roll got %v, want the disk-full error", rollErr)
	}
	if len(l.segs) != 1 {
		t.Fatalf("%d segments after a failed roll, want 1", len(l.segs))
	}
	fs.Faults = dma.Faults{}
	l.Tick(2)
	for i := 0; i < 3; i++ {
		if err := a.append(l, makeBatch(1, 1, payload(rng, 4000))); err != nil {
			t.Fatal(err)
		}
		drainLog(t, l, eng)
	}
	a.checkAllCalled()
	if len(l.segs) != 2 || a.failed != 0 {
		t.Fatalf("after space returned: %d segments, %d failed", len(l.segs), a.failed)
	}
	l.Close()
	for seed := int64(0); seed < 5; seed++ {
		l2, eng2 := memLog(t, fs.Crash(seed), cfg)
		a.checkRecovered(l2, eng2)
		l2.Close()
	}
}
