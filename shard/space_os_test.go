package shard

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/strand-io/strand/dma"
)

// TestWriteNoSpaceOnRealEngine runs a write stall through the real engine
// (io_uring, linked write and fdatasync, or the syscall engine) on a small
// tmpfs filled from outside: the write fails for want of space, the linked
// fdatasync's cancellation must not fail the log, and once space returns a
// Tick writes the batch and it is acknowledged.
func TestWriteNoSpaceOnRealEngine(t *testing.T) {
	mnt := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size="+strconv.Itoa(4<<20)); err != nil {
		t.Skipf("cannot mount a small tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	eng, err := dma.NewEngine(64)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	l, err := Open(Config{Dir: filepath.Join(mnt, "t-0"), Logger: quietLogger()}, dma.OSFS(), eng)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var done bool
	var aerr error
	appendWait := func(size int) {
		done, aerr = false, nil
		if err := l.Append(makeBatch(1, 1, make([]byte, size)), 1, func(_ AppendResult, err error) { done, aerr = true, err }); err != nil {
			t.Fatal(err)
		}
		if err := dma.Drain(eng); err != nil {
			t.Fatal(err)
		}
	}
	// The first append checks the free space for a whole chunk, so the
	// next one, inside that chunk, goes straight to the write.
	if appendWait(100); !done || aerr != nil {
		t.Fatalf("first append: done %v, %v", done, aerr)
	}
	ballast := filepath.Join(mnt, "ballast")
	f, err := os.Create(ballast)
	if err != nil {
		t.Fatal(err)
	}
	for chunk := make([]byte, 4096); ; {
		if _, err := f.Write(chunk); err != nil {
			if !strings.Contains(err.Error(), "no space") {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()
	hw := l.HighWatermark()
	appendWait(6000) // needs a new page
	if done || l.Err() != nil {
		t.Fatalf("append on a full tmpfs: done %v (%v), log error %v; want it to wait", done, aerr, l.Err())
	}
	if err := l.Append(makeBatch(1, 1, nil), 1, nil); err == nil || !strings.Contains(err.Error(), "disk full on") {
		t.Fatalf("append during the stall: %v", err)
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	l.Tick(2)
	for i := 0; !done && i < 100; i++ {
		if err := dma.Drain(eng); err != nil {
			t.Fatal(err)
		}
	}
	if !done || aerr != nil || l.HighWatermark() != hw+1 {
		t.Fatalf("after space returned: done %v, %v, hw %d (was %d)", done, aerr, l.HighWatermark(), hw)
	}
	got := readRaw(t, l, eng, 0, 1<<20)
	if len(got) != 2 {
		t.Fatalf("read back %d batches, want 2", len(got))
	}
}
