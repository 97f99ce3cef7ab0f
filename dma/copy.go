package dma

import "unsafe"

// CopyForDMA copies src into dst (as copy does) for bytes that a device is
// about to read with DMA, and returns the count copied.
//
// An ordinary copy leaves the destination dirty in the CPU cache. When an
// O_DIRECT write then hands those pages to the device, every line has to be
// snooped out of the cache first; on this project's machines that made a
// 1 MiB write+fdatasync about 20% slower than writing an unchanged buffer
// (shard's BenchmarkAppend1MiBSync and dma's BenchmarkCopyThenWrite show
// it). Non-temporal stores send the bytes straight to memory instead, so the
// write costs what it costs for a buffer untouched by the CPU.
//
// Only the 64-byte-aligned middle of dst is stored non-temporally; the
// partial lines at either end, and copies too short to gain, use copy.
// Callers that read or modify part of dst right away (a header they stamp)
// should copy that part with copy, so it is in cache when they touch it.
func CopyForDMA(dst, src []byte) int {
	n := min(len(dst), len(src))
	if n < ntMinBytes || !haveNT {
		return copy(dst, src)
	}
	head := int((ntLine - uintptr(unsafe.Pointer(&dst[0]))%ntLine) % ntLine)
	copy(dst[:head], src[:head])
	mid := (n - head) &^ (ntLine - 1)
	// Chunks keep each assembly call short: it cannot be preempted.
	for off := head; off < head+mid; off += ntChunk {
		c := min(ntChunk, head+mid-off)
		copyNT(unsafe.Pointer(&dst[off]), unsafe.Pointer(&src[off]), uintptr(c))
	}
	copy(dst[head+mid:n], src[head+mid:n])
	return n
}

const (
	ntLine     = 64
	ntChunk    = 64 << 10
	ntMinBytes = 4096 // below a page, the fence and the bookkeeping outweigh the gain
)
