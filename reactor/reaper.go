package reactor

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// reaper delivers a core's I/O completions to its loop (DEPS.md pattern A).
//
// gnet's poller is private, so the engine's eventfd cannot sit in the loop's
// epoll set. Instead one goroutine per core reads a dup of the eventfd
// through an *os.File: the fd is non-blocking, so the read parks on Go's
// netpoller and holds no OS thread. Each time the eventfd turns readable the
// reaper wakes the core (coalesced by wakePending); the service task then
// calls Engine.Poll on the loop thread. Only the loop thread ever touches the
// ring; the reaper only reads a counter.
type reaper struct {
	f    *os.File
	done chan struct{}
}

// startReaper starts the reaper for c, or returns nil when the engine has
// no notification fd (it then completes only inside Poll, which the core
// calls after every callback).
func startReaper(c *Core) (*reaper, error) {
	efd := c.io.NotifyFd()
	if efd < 0 {
		return nil, nil
	}
	// A dup, so closing our *os.File (to stop the reaper) leaves the
	// engine's own descriptor alone. The dup shares the O_NONBLOCK flag.
	dup, err := unix.FcntlInt(uintptr(efd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dup notify fd: %w", err)
	}
	r := &reaper{
		f:    os.NewFile(uintptr(dup), fmt.Sprintf("strand-core%d-notify", c.id)),
		done: make(chan struct{}),
	}
	go r.run(c)
	return r, nil
}

func (r *reaper) run(c *Core) {
	defer close(r.done)
	var buf [8]byte
	for {
		if _, err := r.f.Read(buf[:]); err != nil {
			if !errors.Is(err, os.ErrClosed) {
				c.rt.log.Error("reactor: completion reaper stopped", "core", int(c.id), "err", err)
			}
			return
		}
		if !c.wakeForeign() {
			return
		}
	}
}

// stop closes the reaper's fd, which fails its pending read, and waits for
// the goroutine to exit.
func (r *reaper) stop() {
	if r == nil {
		return
	}
	_ = r.f.Close()
	<-r.done
}
