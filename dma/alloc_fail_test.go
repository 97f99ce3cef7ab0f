package dma

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// TestTryAllocFails: a mapping the kernel refuses is an error for the
// caller, not a panic that stops the broker (issue 9: "panic: dma: mmap
// ... cannot allocate memory" under a fetch flood).
func TestTryAllocFails(t *testing.T) {
	const huge = 1 << 46 // 64 TiB: more than any address space limit here
	if _, err := TryAllocAligned(huge); !errors.Is(err, unix.ENOMEM) {
		t.Fatalf("TryAllocAligned(64 TiB): %v, want ENOMEM", err)
	}
	p := NewPool(2)
	defer p.Close()
	if _, err := p.TryGet(huge); !errors.Is(err, unix.ENOMEM) {
		t.Fatalf("Pool.TryGet(64 TiB): %v, want ENOMEM", err)
	}
	b, err := p.TryGet(4096)
	if err != nil || len(b) != 4096 {
		t.Fatalf("TryGet(4096) after a failure: %d bytes, %v", len(b), err)
	}
	p.Put(b)
}
