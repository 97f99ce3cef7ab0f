package reactor

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"syscall"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/strand-io/strand/dma"
)

// Loop discovery.
//
// gnet cannot enumerate its loops. With ReusePort=false one acceptor hands
// each accepted socket to the next loop round-robin, so Start dials its own
// listener, one connection at a time, and waits for each one's OnOpen: that
// callback runs ON the loop that got it, which is where the core is set up
// (pin, ring, reaper). It keeps dialing until it has seen every loop (a
// real client arriving meanwhile takes a round-robin slot, so a few extra
// dials may be needed; the cap is 4n+16).
//
// The probe connections must be told apart from clients without a race:
// each probe binds its local port in Dialer.Control, i.e. before connect(2),
// and records it; the server side sees exactly that address as RemoteAddr.
// Until every core is up, any other connection is closed at once (clients
// retry), so the protocol handler only ever sees connections on ready cores.

// openDuringBoot handles OnOpen before the runtime is running.
func (r *Runtime) openDuringBoot(c gnet.Conn) ([]byte, gnet.Action) {
	c.SetContext(internalConn{})
	r.bootMu.Lock()
	key := connKey(c.RemoteAddr())
	reply, ok := r.bootDials[key]
	delete(r.bootDials, key)
	r.bootMu.Unlock()
	if !ok {
		return refuse(c) // an early client
	}
	reply <- r.adopt(c.EventLoop())
	return nil, gnet.None // the prober closes its end; OnClose is swallowed
}

// adopt gives the loop running this callback a core, unless it has one.
// It runs on that loop's thread.
func (r *Runtime) adopt(el gnet.EventLoop) error {
	r.bootMu.Lock()
	defer r.bootMu.Unlock()
	if _, ok := r.byLoop[el]; ok {
		return nil
	}
	if r.bootClosed {
		return fmt.Errorf("%w: shutting down", ErrBoot)
	}
	if r.adopted == len(r.cores) {
		return fmt.Errorf("%w: more event loops than cores", ErrBoot)
	}
	c := r.cores[r.adopted]
	if err := c.bind(el); err != nil {
		return fmt.Errorf("%w: core %d (cpu %d): %v", ErrBoot, c.id, c.cpu, err)
	}
	r.byLoop[el] = c
	r.adopted++
	return nil
}

// bind makes the calling loop thread this core's: pins it, creates the ring
// and starts the completion reaper. It must run on the loop thread.
func (c *Core) bind(el gnet.EventLoop) error {
	// A second lock on top of gnet's: when the loop goroutine exits, gnet
	// unlocks once, the goroutine ends still locked, and Go terminates the
	// thread instead of handing a thread pinned to one CPU to other
	// goroutines.
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Set(c.cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("sched_setaffinity: %w", err)
	}
	c.loop = el
	c.tid = unix.Gettid()
	io, err := dma.NewEngine(c.rt.cfg.RingEntries)
	if err != nil {
		return fmt.Errorf("dma engine: %w", err)
	}
	// Timed counts and times every operation on plain fields of this
	// core (read by message, see Core.IOStats).
	c.io = dma.Timed(io)
	if c.rpr, err = startReaper(c); err != nil {
		_ = io.Close()
		c.io = nil
		return err
	}
	return nil
}

// boot discovers every loop and sets up its core. On success the runtime is
// running.
func (r *Runtime) boot() error {
	bound, err := listenerAddr(r.eng)
	if err != nil {
		return fmt.Errorf("%w: listener address: %v", ErrBoot, err)
	}
	r.addr = bound
	target := dialTarget(bound)
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.BootTimeout)
	defer cancel()
	maxDials := 4*len(r.cores) + 16
	for dials := 0; r.adoptedCount() < len(r.cores); dials++ {
		if dials == maxDials {
			return fmt.Errorf("%w: %d of %d loops found after %d probes", ErrBoot, r.adoptedCount(), len(r.cores), dials)
		}
		if err := r.probe(ctx, target); err != nil {
			return err
		}
	}
	register(r.cores)
	if r.cfg.HoldClients {
		r.phase.CompareAndSwap(phaseBoot, phaseHeld)
	} else {
		r.phase.CompareAndSwap(phaseBoot, phaseRunning)
	}
	return nil
}

func (r *Runtime) adoptedCount() int {
	r.bootMu.Lock()
	defer r.bootMu.Unlock()
	return r.adopted
}

// probe dials one boot connection and waits until its loop has adopted it.
func (r *Runtime) probe(ctx context.Context, target netip.AddrPort) error {
	reply := make(chan error, 1)
	var key netip.AddrPort
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var berr error
		if err := rc.Control(func(fd uintptr) {
			key, berr = r.bindProbe(int(fd), target.Addr(), reply)
		}); err != nil {
			return err
		}
		return berr
	}}
	conn, err := d.DialContext(ctx, "tcp", target.String())
	if err != nil {
		r.bootMu.Lock()
		delete(r.bootDials, key)
		r.bootMu.Unlock()
		return fmt.Errorf("%w: probe dial %s: %v", ErrBoot, target, err)
	}
	defer conn.Close()
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: waiting for loop %d: %v", ErrBoot, r.adoptedCount(), ctx.Err())
	case <-r.runDone:
		return fmt.Errorf("%w: engine exited during boot: %v", ErrBoot, r.runErr)
	}
}

// bindProbe binds the probe socket to ip:0 before connect and registers the
// port the kernel chose.
func (r *Runtime) bindProbe(fd int, ip netip.Addr, reply chan error) (netip.AddrPort, error) {
	var sa unix.Sockaddr
	if ip.Is4() {
		sa = &unix.SockaddrInet4{Addr: ip.As4()}
	} else {
		sa = &unix.SockaddrInet6{Addr: ip.As16()}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return netip.AddrPort{}, fmt.Errorf("bind probe: %w", err)
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("getsockname probe: %w", err)
	}
	key, err := sockaddrToAddrPort(got)
	if err != nil {
		return netip.AddrPort{}, err
	}
	r.bootMu.Lock()
	r.bootDials[key] = reply
	r.bootMu.Unlock()
	return key, nil
}

// abortBoot tears down a runtime whose boot failed.
func (r *Runtime) abortBoot(cause error) {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.BootTimeout)
	defer cancel()
	if err := r.shutdown(ctx, false); err != nil {
		r.log.Error("reactor: cleanup after failed boot", "cause", cause, "err", err)
	}
}
