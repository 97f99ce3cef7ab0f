//go:build !amd64

package dma

import "unsafe"

const haveNT = false

func copyNT(dst, src unsafe.Pointer, n uintptr) { panic("dma: copyNT without an implementation") }
