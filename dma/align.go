package dma

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// DefaultAlign is used when neither statx nor the block device tells us the
// direct I/O alignment. 4096 satisfies every disk we know of (512e and 4Kn).
const DefaultAlign = 4096

// Mode says how a data directory performs I/O.
type Mode int

const (
	// ModeURing is O_DIRECT files driven by the core's io_uring ring.
	ModeURing Mode = iota
	// ModeSyscall is O_DIRECT files driven by pwrite/pread/fdatasync.
	ModeSyscall
	// ModeBuffered is the page cache plus fdatasync, for file systems that refuse O_DIRECT.
	ModeBuffered
)

func (m Mode) String() string {
	switch m {
	case ModeURing:
		return "io_uring+O_DIRECT"
	case ModeSyscall:
		return "pwrite+O_DIRECT"
	case ModeBuffered:
		return "buffered+fdatasync"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// Probe describes what a directory's file system supports.
type Probe struct {
	Direct bool // O_DIRECT accepted
	Align  int  // required alignment of offsets, lengths and memory for direct I/O
}

// ProbeDir creates a scratch file in dir to learn whether O_DIRECT works there
// and what alignment it needs. statx(STATX_DIOALIGN) only answers for regular
// files, hence the scratch file.
func ProbeDir(dir string) (Probe, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Probe{}, err
	}
	path := filepath.Join(dir, ".strand-dio-probe")
	defer os.Remove(path)
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_TRUNC|unix.O_DIRECT|unix.O_CLOEXEC, 0o644)
	if err == unix.EINVAL {
		return Probe{Direct: false, Align: DefaultAlign}, nil
	}
	if err != nil {
		return Probe{}, fmt.Errorf("dma: probe %s: %w", dir, err)
	}
	defer unix.Close(fd)
	return Probe{Direct: true, Align: alignOf(fd)}, nil
}

// alignOf returns the larger of the memory and offset alignment statx
// reports, rounded up to DefaultAlign: using whole 4 KiB blocks everywhere
// keeps read-modify-write out of the device even on 512e disks.
func alignOf(fd int) int {
	var stx unix.Statx_t
	a := DefaultAlign
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_DIOALIGN, &stx); err == nil && stx.Mask&unix.STATX_DIOALIGN != 0 {
		for _, v := range []uint32{stx.Dio_mem_align, stx.Dio_offset_align} {
			if int(v) > a {
				a = int(v)
			}
		}
	}
	return a
}

// AlignUp rounds n up to a multiple of align (a power of two).
func AlignUp(n int64, align int) int64 {
	a := int64(align)
	return (n + a - 1) &^ (a - 1)
}

// AlignDown rounds n down to a multiple of align (a power of two).
func AlignDown(n int64, align int) int64 {
	return n &^ (int64(align) - 1)
}
