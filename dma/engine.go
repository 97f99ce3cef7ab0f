package dma

import (
	"fmt"
	"io"
)

// Engine performs asynchronous reads, writes and fdatasyncs for one core.
//
// Contract: every method is called on the owning core's thread. Callbacks
// never run inside Write/Read/Sync; they run inside Poll (or after Wait and
// Poll), on the caller's thread, so a callback may submit more I/O. Buffers
// passed to Write and Read must stay untouched (Write) or unread (Read) until
// the callback fires; for direct files they must come from AllocAligned.
type Engine interface {
	Mode() Mode
	Write(f File, p []byte, off int64, cb func(n int, err error))
	Read(f File, p []byte, off int64, cb func(n int, err error))
	Sync(f File, cb func(err error))
	// Poll submits queued operations and runs the callbacks of completed
	// ones. It returns how many callbacks ran.
	Poll() int
	// Wait blocks until at least one operation has completed (or none are in
	// flight). Drivers without an event loop call Wait then Poll.
	Wait() error
	// Inflight counts submitted operations whose callbacks have not run.
	Inflight() int
	// NotifyFd is a non-blocking eventfd that turns readable when completions
	// are ready, or -1 when the engine completes only inside Poll.
	NotifyFd() int
	Close() error
}

// NewEngine returns an io_uring engine, or the syscall engine when io_uring
// is unavailable here. It must be called on the thread that will own it.
func NewEngine(entries uint32) (Engine, error) {
	e, err := newURingEngine(entries)
	if err == nil {
		return e, nil
	}
	s, serr := newSyscallEngine()
	if serr != nil {
		return nil, fmt.Errorf("dma: io_uring unavailable (%v) and syscall engine failed: %w", err, serr)
	}
	return s, nil
}

// ErrShortWrite is reported when the kernel wrote fewer bytes than asked
// (typically ENOSPC part-way through).
var ErrShortWrite = io.ErrShortWrite

// Drain runs an engine until nothing is in flight. For tests and for
// start-up code that runs before the reactor owns the engine.
func Drain(e Engine) error {
	for {
		e.Poll()
		if e.Inflight() == 0 {
			return nil
		}
		if err := e.Wait(); err != nil {
			return err
		}
	}
}
