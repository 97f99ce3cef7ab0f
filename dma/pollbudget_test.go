package dma

import (
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPollYieldsUnderAReadChain: completions that keep queueing more I/O
// must not hold the owning core inside one Poll; the engine yields after
// its budget and rings its own eventfd so the core comes back for the rest.
func TestPollYieldsUnderAReadChain(t *testing.T) {
	e, err := newURingEngine(64)
	if err != nil {
		t.Skipf("io_uring unavailable: %v", err)
	}
	defer e.Close()
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := OSFS().OpenFile(path, os.O_RDONLY, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := AllocAligned(4096)
	defer FreeAligned(buf)
	const chain = 2000
	done := 0
	var next func(int, error)
	next = func(_ int, err error) {
		if err != nil {
			t.Fatal(err)
		}
		if done++; done < chain {
			e.Read(f, buf, 0, next)
		}
	}
	for i := 0; i < 8; i++ { // eight chains in parallel keep completions ready
		e.Read(f, buf, 0, next)
	}
	var drained [8]byte
	for done < chain {
		if err := e.Wait(); err != nil {
			t.Fatal(err)
		}
		for { // drain the doorbell, as the reaper does
			if _, err := unix.Read(e.efd, drained[:]); err != nil {
				break
			}
		}
		ran := e.Poll()
		if ran > 512+2*64 {
			t.Fatalf("one Poll ran %d completions, budget %d", ran, pollBudget)
		}
		if done < chain && e.Inflight() > 0 && ran >= pollBudget {
			if _, err := unix.Read(e.efd, drained[:]); err != nil {
				t.Fatalf("Poll yielded with work left but did not ring its eventfd: %v", err)
			}
		}
	}
	if err := Drain(e); err != nil {
		t.Fatal(err)
	}
}

// TestURingSubmitEAGAIN: when the kernel refuses a submission with EAGAIN,
// the engine rings its own eventfd, so a core waiting on it comes back,
// and the next Poll submits what was left queued.
func TestURingSubmitEAGAIN(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	e, err := newURingEngine(8)
	if err != nil {
		t.Skipf("io_uring unavailable: %v", err)
	}
	defer e.Close()
	f, err := OSFS().OpenFile(filepath.Join(t.TempDir(), "f"), os.O_RDWR|os.O_CREATE, 0o644, false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	refused := 0
	e.submitHook = func() (uint, error) {
		refused++
		return 0, syscall.EAGAIN
	}
	done := false
	e.Sync(f, func(err error) {
		if err != nil {
			t.Error(err)
		}
		done = true
	})
	e.Poll()
	if refused == 0 || e.ring.SQReady() == 0 {
		t.Fatalf("submit tried %d times, %d entries queued", refused, e.ring.SQReady())
	}
	var v [8]byte
	if n, err := unix.Read(e.efd, v[:]); n != 8 || err != nil {
		t.Fatalf("eventfd not rung after EAGAIN: %d %v", n, err)
	}
	e.submitHook = nil
	if err := Drain(e); err != nil || !done {
		t.Fatalf("after the retry: done %v, %v", done, err)
	}
}
