package dma

import "unsafe"

// haveNT: SSE2's MOVNTDQ is part of the amd64 baseline.
const haveNT = true

// copyNT copies n bytes (a multiple of 64) with non-temporal stores; dst
// must be 64-byte aligned. It ends with SFENCE, so the stores are globally
// visible before any later write (the io_uring submission) is.
//
//go:noescape
func copyNT(dst, src unsafe.Pointer, n uintptr)
