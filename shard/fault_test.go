package shard

import (
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"syscall"
	"testing"

	"github.com/strand-io/strand/dma"
)

// Fault injection over dma.MemFS: a failed fdatasync, ENOSPC and a short
// write. A failed fdatasync must fail every append still waiting and stop
// the log; a write refused for want of space stalls the log until a Tick
// finds room (space_test.go). Either way the directory recovers with every
// acknowledged batch intact.

type faultKind int

const (
	faultSync faultKind = iota
	faultNoSpace
	faultShortWrite
)

func (k faultKind) String() string { return [...]string{"fsync-EIO", "ENOSPC", "short-write"}[k] }

func (k faultKind) arm(fs *dma.MemFS, rng *rand.Rand) {
	switch k {
	case faultSync:
		fs.Faults.FailSyncs = 1
	case faultNoSpace:
		fs.Faults.NoSpaceAfter = 1 + rng.Int63n(64<<10)
	case faultShortWrite:
		fs.Faults.ShortWrites = 1
	}
}

// appendTracker records each append's outcome and checks that every
// callback runs once and that no success follows a failure.
type appendTracker struct {
	t       testing.TB
	batches map[int][]byte
	calls   map[int]int
	acked   []AppendResult
	ackedID []int
	failed  int
	lastErr error
	nextID  int
}

func newAppendTracker(t testing.TB) *appendTracker {
	return &appendTracker{t: t, batches: map[int][]byte{}, calls: map[int]int{}}
}

// append submits b and reports the error Append returned.
func (a *appendTracker) append(l *Log, b []byte) error {
	id := a.nextID
	a.nextID++
	err := l.Append(b, 0, func(r AppendResult, err error) {
		a.calls[id]++
		if a.calls[id] > 1 {
			a.t.Fatalf("append %d: callback ran twice", id)
		}
		if err != nil {
			a.failed++
			a.lastErr = err
			return
		}
		if a.failed > 0 {
			a.t.Fatalf("append %d acknowledged after an earlier append failed", id)
		}
		a.acked = append(a.acked, r)
		a.ackedID = append(a.ackedID, id)
	})
	if err == nil {
		a.batches[id] = b
	}
	return err
}

// checkAllCalled fails unless every accepted append got its callback.
func (a *appendTracker) checkAllCalled() {
	a.t.Helper()
	for id := range a.batches {
		if a.calls[id] != 1 {
			a.t.Fatalf("append %d: callback ran %d times, want 1", id, a.calls[id])
		}
	}
}

// checkRecovered verifies that every acknowledged batch is in l.
func (a *appendTracker) checkRecovered(l *Log, eng dma.Engine) []rawBatch {
	a.t.Helper()
	got := readRaw(a.t, l, eng, l.LogStartOffset(), 1<<20)
	byBase := map[Offset][]byte{}
	for _, b := range got {
		byBase[b.h.BaseOffset] = b.data
	}
	for i, r := range a.acked {
		data, ok := byBase[r.Base]
		if !ok {
			a.t.Fatalf("acknowledged batch %d-%d lost (log %d-%d)", r.Base, r.Last, l.LogStartOffset(), l.HighWatermark())
		}
		equalBatch(a.t, "acknowledged", data, a.batches[a.ackedID[i]], r.Base)
	}
	return got
}

// TestFaultFailsWaiters runs the scripted scenario for a failed fdatasync:
// some appends are acknowledged, the fault is armed, more appends are
// waiting (some of them in the backlog behind a full staging buffer) and
// must all fail. (Its ENOSPC and short-write cases became
// TestWriteNoSpaceStallsThenResumes when those stopped failing the log.)
func TestFaultFailsWaiters(t *testing.T) {
	for _, kind := range []faultKind{faultSync} {
		t.Run(kind.String(), func(t *testing.T) {
			fs := dma.NewMemFS(4096, 1)
			cfg := Config{SegmentBytes: 1 << 20, MaxBatchBytes: 16 << 10, BufferBytes: 1} // buffer: the minimum, 40 KiB
			l, eng := memLog(t, fs, cfg)
			rng := rand.New(rand.NewSource(1))
			a := newAppendTracker(t)
			for i := 0; i < 10; i++ {
				if err := a.append(l, makeBatch(2, int64(i), payload(rng, 3000))); err != nil {
					t.Fatal(err)
				}
			}
			dma.Drain(eng)
			if len(a.acked) != 10 {
				t.Fatalf("%d of 10 acknowledged before the fault", len(a.acked))
			}
			hw := l.HighWatermark()
			switch kind {
			case faultSync:
				fs.Faults.FailSyncs = 1
			case faultNoSpace:
				fs.Faults.NoSpaceAfter = 1 // the next write that grows a file
			case faultShortWrite:
				fs.Faults.ShortWrites = 1
			}
			for i := 0; i < 20; i++ { // 20 * 15 KiB: more than the 40 KiB buffer holds
				if err := a.append(l, makeBatch(1, 100, payload(rng, 15<<10))); err != nil {
					t.Fatal(err)
				}
			}
			if len(l.backlog) == 0 {
				t.Fatal("setup: no append waits in the backlog")
			}
			dma.Drain(eng)
			a.checkAllCalled()
			if len(a.acked) != 10 || a.failed != 20 {
				t.Fatalf("after the fault: %d acknowledged, %d failed; want 10 and 20", len(a.acked), a.failed)
			}
			if !errors.Is(a.lastErr, ErrLogFailed) || !errors.Is(l.Err(), ErrLogFailed) {
				t.Fatalf("waiters got %v, log reports %v; want ErrLogFailed", a.lastErr, l.Err())
			}
			// The log error wraps ErrLogFailed (which the protocol edge
			// answers as a storage error) and names the failed operation
			// and cause.
			if want := map[faultKind]string{
				faultSync:       "fdatasync " + l.active.path(logExt) + ": " + syscall.EIO.Error(),
				faultNoSpace:    "write " + l.active.path(logExt) + ": " + syscall.ENOSPC.Error(),
				faultShortWrite: "write " + l.active.path(logExt) + ": " + dma.ErrShortWrite.Error(),
			}[kind]; !strings.Contains(l.Err().Error(), want) {
				t.Fatalf("log error %q does not say %q", l.Err(), want)
			}
			if l.HighWatermark() != hw {
				t.Fatalf("hw moved from %d to %d across the failure", hw, l.HighWatermark())
			}
			// The log refuses appends and never retries the fsync.
			fs.Faults = dma.Faults{}
			if err := l.Append(makeBatch(1, 1, nil), 0, func(AppendResult, error) { t.Fatal("callback for a refused append") }); !errors.Is(err, ErrLogFailed) {
				t.Fatalf("append after the failure returned %v, want ErrLogFailed", err)
			}
			if eng.Inflight() != 0 {
				t.Fatalf("%d operations in flight after the failure", eng.Inflight())
			}
			dma.Drain(eng)
			if l.HighWatermark() != hw {
				t.Fatalf("hw moved to %d after the failure", l.HighWatermark())
			}
			l.Close()
			// Power loss, then recovery: nothing acknowledged is lost and
			// nothing served is damaged.
			for seed := int64(0); seed < 20; seed++ {
				l2, eng2 := memLog(t, fs.Crash(seed), cfg)
				got := a.checkRecovered(l2, eng2)
				if len(got) > 30 {
					t.Fatalf("recovered %d batches, only 30 were appended", len(got))
				}
				l2.Close()
			}
		})
	}
}

// TestFaultRandom arms a fault at a random moment of a random workload with
// reordered completions and small segments, so faults also hit rolls,
// seals and index checkpoints.
func TestFaultRandom(t *testing.T) {
	t.Parallel()
	seeds := 100
	if testing.Short() {
		seeds = 30
	}
	for _, kind := range []faultKind{faultSync, faultNoSpace, faultShortWrite} {
		for seed := int64(0); seed < int64(seeds); seed++ {
			t.Run(fmt.Sprintf("%s/seed=%d", kind, seed), func(t *testing.T) {
				faultRandomRun(t, kind, seed)
			})
		}
	}
}

func faultRandomRun(t *testing.T, kind faultKind, seed int64) {
	rng := rand.New(rand.NewSource(seed))
	fs := dma.NewMemFS(4096, seed)
	fs.Reorder = true
	cfg := Config{
		SegmentBytes:         int64(32<<10 + rng.Intn(128<<10)),
		IndexIntervalBytes:   512 + rng.Intn(4096),
		IndexCheckpointBytes: int64(1024 + rng.Intn(16<<10)),
		MaxBatchBytes:        16 << 10,
	}
	l, eng := memLog(t, fs, cfg)
	a := newAppendTracker(t)
	steps := 50 + rng.Intn(300)
	armAt := rng.Intn(steps)
	for i := 0; i < steps; i++ {
		if i == armAt {
			kind.arm(fs, rng)
		}
		err := a.append(l, makeBatch(1+rng.Intn(3), int64(i), payload(rng, rng.Intn(6000))))
		if err != nil {
			if !errors.Is(err, ErrLogFailed) && !errors.Is(err, ErrBacklogFull) && !(kind != faultSync && errors.Is(err, ErrNoSpace)) {
				t.Fatalf("append: %v", err)
			}
			if errors.Is(err, ErrLogFailed) {
				break
			}
		}
		if rng.Intn(3) == 0 {
			eng.Poll()
		}
	}
	if kind != faultSync {
		// A write refused for space waits for it: give it back.
		fs.Faults = dma.Faults{}
		dma.Drain(eng)
		l.Tick(1)
	}
	drainLog(t, l, eng)
	// Power is cut now, with whatever a failed log still has in flight.
	crashed := fs.Crash(seed)
	if err := dma.Drain(eng); err != nil {
		t.Fatal(err)
	}
	a.checkAllCalled()
	if a.failed > 0 && l.Err() == nil {
		t.Fatal("appends failed but the log reports no error")
	}
	if l.Err() != nil {
		if err := l.Append(makeBatch(1, 1, nil), 0, nil); !errors.Is(err, ErrLogFailed) {
			t.Fatalf("append after failure: %v", err)
		}
	}
	l.Close()
	l2, eng2 := memLog(t, crashed, cfg)
	got := a.checkRecovered(l2, eng2)
	// The recovered log takes appends again and survives another crash.
	before := len(got)
	ok := false
	if err := l2.Append(makeBatch(1, 1, []byte("again")), 1, func(_ AppendResult, err error) { ok = err == nil }); err != nil {
		t.Fatal(err)
	}
	drainLog(t, l2, eng2)
	if !ok {
		t.Fatalf("append after recovery failed: %v", l2.Err())
	}
	l3, eng3 := memLog(t, crashed.Crash(seed+1), cfg)
	if n := len(readRaw(t, l3, eng3, l3.LogStartOffset(), 1<<20)); n != before+1 {
		t.Fatalf("second recovery holds %d batches, want %d", n, before+1)
	}
}
