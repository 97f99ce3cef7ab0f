package dma

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// AllocAligned returns n bytes (rounded up to a page) of page-aligned memory
// outside the Go heap. The kernel DMAs into and out of it while an io_uring op
// is in flight, so it must neither move nor be freed by the GC; mmap gives both
// guarantees. Release it with FreeAligned.
func AllocAligned(n int) []byte {
	size := int(AlignUp(int64(n), unix.Getpagesize()))
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		panic(fmt.Sprintf("dma: mmap %d bytes: %v", size, err))
	}
	return b[:n:size]
}

// FreeAligned releases memory from AllocAligned. b must be the slice it returned.
func FreeAligned(b []byte) {
	if cap(b) == 0 {
		return
	}
	_ = unix.Munmap(b[:cap(b)])
}

// IsAligned reports whether b starts at an address that is a multiple of align.
func IsAligned(b []byte, align int) bool {
	if len(b) == 0 {
		return true
	}
	return uintptr(unsafe.Pointer(&b[0]))%uintptr(align) == 0
}

// Pool recycles aligned buffers of a few size classes so the read path does
// not mmap per request. It belongs to one core and is not goroutine-safe.
type Pool struct {
	free    map[int][][]byte
	perSize int // bound on cached buffers per size class
}

// NewPool returns a pool that caches at most perSize buffers of each size.
func NewPool(perSize int) *Pool {
	return &Pool{free: make(map[int][][]byte), perSize: perSize}
}

// Get returns an aligned buffer of at least n bytes; len is n.
func (p *Pool) Get(n int) []byte {
	class := sizeClass(n)
	if l := p.free[class]; len(l) > 0 {
		b := l[len(l)-1]
		p.free[class] = l[:len(l)-1]
		return b[:n]
	}
	return AllocAligned(class)[:n]
}

// Put returns a buffer obtained from Get.
func (p *Pool) Put(b []byte) {
	class := cap(b)
	if len(p.free[class]) >= p.perSize {
		FreeAligned(b)
		return
	}
	p.free[class] = append(p.free[class], b[:class])
}

// sizeClass rounds to a power of two of at least 64 KiB so a handful of
// classes serve every fetch size.
func sizeClass(n int) int {
	c := 64 << 10
	for c < n {
		c <<= 1
	}
	return c
}
