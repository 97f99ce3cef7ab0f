package dma

import (
	"golang.org/x/sys/unix"
)

// syscallEngine is the fallback where io_uring is unavailable. Operations
// queue up and run, in order, inside Poll: the core blocks for the duration
// of each syscall, which is the price of the fallback, but callers keep the
// same asynchronous contract as with io_uring.
type syscallEngine struct {
	deferred
	efd     int
	queue   []ioOp
	running []ioOp
}

func newSyscallEngine() (*syscallEngine, error) {
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &syscallEngine{efd: efd}, nil
}

// NewSyscallEngine returns the pwrite/pread/fdatasync engine regardless of
// io_uring support, for benchmarks and tests that compare the two.
func NewSyscallEngine() (Engine, error) { return newSyscallEngine() }

func (e *syscallEngine) Mode() Mode    { return ModeSyscall }
func (e *syscallEngine) NotifyFd() int { return e.efd }
func (e *syscallEngine) Inflight() int { return len(e.queue) + len(e.deferFns) }

func (e *syscallEngine) Write(f File, p []byte, off int64, cb func(int, error)) {
	e.push(ioOp{kind: opWrite, fd: f.Fd(), buf: p, off: off, rw: cb})
}

func (e *syscallEngine) Read(f File, p []byte, off int64, cb func(int, error)) {
	e.push(ioOp{kind: opRead, fd: f.Fd(), buf: p, off: off, rw: cb})
}

func (e *syscallEngine) Sync(f File, cb func(error)) {
	e.push(ioOp{kind: opSync, full: isDir(f), fd: f.Fd(), sync: cb})
}

// WriteSync runs the write and, if it fully succeeded, the fdatasync. A
// failed write must not be followed by an fdatasync whose own error it would
// hide: an fdatasync error is reported once per descriptor, and a caller
// that retries the write after ENOSPC must still learn that earlier dirty
// pages were lost.
func (e *syscallEngine) WriteSync(f File, p []byte, off int64, wcb func(int, error), scb func(error)) {
	fd, full := f.Fd(), isDir(f)
	e.Write(f, p, off, func(n int, err error) {
		wcb(n, err)
		if err != nil {
			scb(err)
			return
		}
		e.push(ioOp{kind: opSync, full: full, fd: fd, sync: scb})
	})
}

func (e *syscallEngine) push(op ioOp) {
	e.queue = append(e.queue, op)
	if len(e.queue) == 1 {
		var one = [8]byte{1}
		_, _ = unix.Write(e.efd, one[:])
	}
}

func (e *syscallEngine) Poll() int {
	ran := 0
	for e.runDeferred() || len(e.queue) > 0 {
		e.running, e.queue = e.queue, e.running[:0]
		for i := range e.running {
			op := &e.running[i]
			op.complete(execute(op))
			ran++
		}
		clear(e.running)
		e.running = e.running[:0]
	}
	return ran
}

func execute(op *ioOp) int32 {
	for {
		var n int
		var err error
		switch op.kind {
		case opWrite:
			n, err = unix.Pwrite(op.fd, op.buf, op.off)
		case opRead:
			n, err = unix.Pread(op.fd, op.buf, op.off)
		case opSync:
			if op.full {
				err = unix.Fsync(op.fd)
			} else {
				err = unix.Fdatasync(op.fd)
			}
		}
		if err == unix.EINTR {
			continue
		}
		if errno, ok := err.(unix.Errno); ok {
			return -int32(errno)
		}
		return int32(n)
	}
}

// Wait returns at once: queued work runs inside Poll.
func (e *syscallEngine) Wait() error { return nil }

func (e *syscallEngine) Close() error {
	e.Poll()
	return unix.Close(e.efd)
}
