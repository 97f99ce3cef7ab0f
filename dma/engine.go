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
	// Sync is fdatasync, or a full fsync for a directory from FS.OpenDir
	// (making its creations, renames and removals durable).
	Sync(f File, cb func(err error))
	// WriteSync writes p and then fdatasyncs f, the fdatasync starting only
	// once the write has completed (io_uring linked SQEs): one submission
	// instead of a round trip between them. If the write fails or is
	// short, scb gets an error too.
	WriteSync(f File, p []byte, off int64, wcb func(n int, err error), scb func(err error))
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
	// Defer runs fn at the start of the next Poll, before anything is
	// submitted. A log uses it to start its next write once the current
	// callback (a burst of appends, a batch of acks that lets producers
	// send more) has staged everything it will, so one write and one
	// fdatasync serve the whole burst.
	Defer(fn func())
	Close() error
}

// deferred is the Defer queue every engine embeds.
type deferred struct{ deferFns, deferRunning []func() }

func (d *deferred) Defer(fn func()) { d.deferFns = append(d.deferFns, fn) }

// runDeferred runs what was deferred so far (and what those defer in turn).
func (d *deferred) runDeferred() bool {
	ran := false
	for len(d.deferFns) > 0 {
		d.deferRunning, d.deferFns = d.deferFns, d.deferRunning[:0]
		for i, fn := range d.deferRunning {
			d.deferRunning[i] = nil
			fn()
		}
		ran = true
	}
	return ran
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
