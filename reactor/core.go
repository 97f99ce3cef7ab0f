package reactor

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/strand-io/strand/dma"
)

// CoreID names a core: 0..len(Runtime.Cores())-1, in the order Start
// discovered the event loops. Core i is pinned to Config.CPUs[i].
type CoreID int

// Message is work sent to a core: it runs on that core's thread with the
// core as argument.
type Message = func(*Core)

// Core is one reactor: a gnet event loop whose goroutine is locked to one OS
// thread pinned to one CPU, plus everything that thread owns: its dma.Engine,
// its timers, the consumer side of the lanes into it and the producer side
// (with overflow) of the lanes out of it.
//
// Unless a method says otherwise it must be called on the core's own thread
// (from a gnet callback on one of its connections, a message sent to it, a
// timer or an I/O completion). Under the invariants build tag this is
// checked.
type Core struct {
	id  CoreID
	cpu int
	rt  *Runtime

	// Set once on the loop thread during boot; read-only afterwards.
	loop gnet.EventLoop
	tid  int
	io   dma.Engine
	rpr  *reaper

	// wakePending: a service task is queued (or about to be) on this loop.
	// Written by other cores' threads, so it sits on its own cache line.
	_           [cacheLine]byte
	wakePending atomic.Bool
	_           [cacheLine - 4]byte

	inbox      []*lane[Message]   // inbox[src]: consumer side, this thread only
	outbox     []outLane[Message] // outbox[dst]: producer side, this thread only
	overflowed int                // sum of outbox pending; this thread only

	timers timers

	quiesce  atomic.Bool // Stop asked this core to report when idle
	quiesced chan struct{}
	idleSeen bool // quiesced was closed; this thread only

	stall stallState
	stats coreStats
	task  serviceTask
}

// coreStats are single-writer counters (the core's own thread) read by any
// goroutine through Stats. Store(Load+1) avoids a locked add on the hot path.
type coreStats struct {
	sent, received, overflowed  atomic.Uint64
	overflowPending, inboxDepth atomic.Uint64
	services, stalls            atomic.Uint64
	expectedStalls              atomic.Uint64
}

func bump(c *atomic.Uint64, n uint64) { c.Store(c.Load() + n) }

// Stats is a snapshot of a core's counters.
type Stats struct {
	Sent            uint64 // messages this core sent (any destination, itself included)
	Received        uint64 // messages this core ran from its inbox
	Overflowed      uint64 // sends that found the ring full (or overflow queued) and spilled
	OverflowPending uint64 // messages waiting in this core's overflow lists now
	InboxDepthMax   uint64 // largest backlog one inbound ring had when drained
	Services        uint64 // service tasks run (wake-ups)
	Stalls          uint64 // callbacks/tasks over StallThreshold
	ExpectedStalls  uint64 // of Stalls, those marked ExpectSlow (not warned about)
}

// Stats returns the core's counters. Safe from any goroutine.
func (c *Core) Stats() Stats {
	s := &c.stats
	return Stats{
		Sent: s.sent.Load(), Received: s.received.Load(), Overflowed: s.overflowed.Load(),
		OverflowPending: s.overflowPending.Load(), InboxDepthMax: s.inboxDepth.Load(),
		Services: s.services.Load(), Stalls: s.stalls.Load(), ExpectedStalls: s.expectedStalls.Load(),
	}
}

// ID returns the core's id. Safe from any goroutine.
func (c *Core) ID() CoreID { return c.id }

// CPU returns the CPU the core's thread is pinned to. Safe from any goroutine.
func (c *Core) CPU() int { return c.cpu }

// TID returns the Linux thread id of the core's loop thread. Safe from any
// goroutine once Start has returned.
func (c *Core) TID() int { return c.tid }

// Runtime returns the runtime the core belongs to.
func (c *Core) Runtime() *Runtime { return c.rt }

// IO returns this core's asynchronous I/O engine. Valid once Start has
// returned and until Stop; use it only on this core's thread.
func (c *Core) IO() dma.Engine { return c.io }

// OnThread reports whether the caller runs on this core's thread. It costs a
// gettid syscall; hot paths use AssertOwned.
func (c *Core) OnThread() bool { return unix.Gettid() == c.tid }

// AssertOwned panics if the caller is not on this core's thread. It is free
// in normal builds and checks (one gettid syscall) under -tags invariants
// and under -race.
func (c *Core) AssertOwned() {
	if invariants && !c.OnThread() {
		panic(fmt.Sprintf("reactor: core %d used from tid %d, owner is tid %d", c.id, unix.Gettid(), c.tid))
	}
}

// Send runs fn on core `to`'s thread, in the order Send was called for that
// destination. Call it on c's own thread (c is the producer of the lane). It
// never blocks and never drops: when the lane is full the message waits in
// c's overflow list and is moved on c's next service or callback. Sending to
// c itself is allowed and runs fn later, not inline.
func (c *Core) Send(to CoreID, fn Message) {
	c.AssertOwned()
	if uint(to) >= uint(len(c.outbox)) {
		panic(fmt.Sprintf("reactor: Send to core %d of %d", to, len(c.outbox)))
	}
	bump(&c.stats.sent, 1)
	o := &c.outbox[to]
	before := o.pending()
	spilled, pushed := o.send(fn)
	if pushed > 0 {
		c.rt.cores[to].wake()
	}
	if spilled {
		bump(&c.stats.overflowed, 1)
		c.addOverflow(o.pending() - before)
	}
}

// Flush submits I/O queued on this core's engine and runs ready completions,
// and retries any overflowed messages. The reactor already does this after
// every callback and task it runs; call Flush only to push work out early in
// a long callback.
func (c *Core) Flush() {
	c.AssertOwned()
	c.flushOverflow()
	c.poll(time.Now())
}

// wake makes sure a service task will run on this core's loop after this
// call. Any thread may call it while the engine runs; goroutines that are not
// loop threads use wakeForeign, which is gated against Stop.
func (c *Core) wake() {
	if c.wakePending.Load() || !c.wakePending.CompareAndSwap(false, true) {
		return
	}
	if err := c.loop.Execute(context.Background(), &c.task); err != nil {
		c.wakePending.Store(false) // the engine is shutting down
	}
}

// wakeForeign is wake for goroutines that are not loop threads (reapers,
// timer callbacks, Post): it refuses once Stop has closed the gate, so
// nothing writes to a loop's poller after the engine closed it.
func (c *Core) wakeForeign() bool {
	c.rt.gate.RLock()
	defer c.rt.gate.RUnlock()
	if c.rt.gateClosed {
		return false
	}
	c.wake()
	return true
}

// serviceTask adapts a core to gnet.Runnable without allocating per wake.
type serviceTask struct{ c *Core }

func (t *serviceTask) Run(context.Context) error {
	t.c.service()
	return nil
}

// service is the core's housekeeping task: drain the inbound lanes, retry
// overflow, fire due timers, and submit/reap I/O. It runs on the loop thread.
func (c *Core) service() {
	c.wakePending.Store(false) // before reading the rings: see mailbox.go
	bump(&c.stats.services, 1)
	now := c.drain(time.Now())
	c.flushOverflow()
	now = c.runTimers(now)
	c.poll(now)
	if c.quiesce.Load() && !c.idleSeen && c.idle() {
		c.idleSeen = true
		close(c.quiesced)
	}
	if invariants {
		c.checkInvariants()
	}
}

// checkInvariants verifies the core's bookkeeping (invariants builds only).
func (c *Core) checkInvariants() {
	c.AssertOwned()
	sum := 0
	for dst := range c.outbox {
		sum += c.outbox[dst].pending()
	}
	if sum != c.overflowed {
		panic(fmt.Sprintf("reactor: core %d overflow count %d, lists hold %d", c.id, c.overflowed, sum))
	}
	for src, ln := range c.inbox {
		if n := ln.ring.len(); n < 0 || n > ln.ring.cap() {
			panic(fmt.Sprintf("reactor: core %d lane from %d holds %d of %d", c.id, src, n, ln.ring.cap()))
		}
	}
}

// drain runs the messages queued in every inbound lane, at most what each
// held on entry (messages sent while draining wait for the next service,
// which their sender's wake has queued). Returns the time after the last one.
func (c *Core) drain(now time.Time) time.Time {
	for src, ln := range c.inbox {
		n := ln.ring.len()
		if n == 0 {
			continue
		}
		if uint64(n) > c.stats.inboxDepth.Load() {
			c.stats.inboxDepth.Store(uint64(n))
		}
		for range n {
			fn, _ := ln.ring.pop()
			fn(c)
			now = c.checkStall(now, stallMessage, fn)
		}
		bump(&c.stats.received, uint64(n))
		if ln.takeWaiting() {
			c.rt.cores[src].wake()
		}
	}
	return now
}

// flushOverflow retries every outbound overflow list.
func (c *Core) flushOverflow() {
	if c.overflowed == 0 {
		return
	}
	for dst := range c.outbox {
		o := &c.outbox[dst]
		if o.pending() == 0 {
			continue
		}
		if moved := o.flush(); moved > 0 {
			c.rt.cores[dst].wake()
			c.addOverflow(-moved)
		}
	}
}

// addOverflow tracks the total of messages waiting in overflow lists.
func (c *Core) addOverflow(delta int) {
	c.overflowed += delta
	c.stats.overflowPending.Store(uint64(c.overflowed))
}

// poll submits queued I/O and runs completion callbacks (dma Poll loops
// until no completion is left, so I/O queued by those callbacks is
// submitted too).
func (c *Core) poll(start time.Time) {
	if c.io == nil {
		return
	}
	if c.io.Poll() > 0 {
		c.checkStall(start, stallIO, nil)
	}
}

// afterCallback runs after every piece of user code the reactor calls on
// this loop: stall check, overflow retry, and I/O submission, so nothing
// queued in the callback waits for the loop's next wake-up.
func (c *Core) afterCallback(start time.Time, what stallKind) {
	now := c.checkStall(start, what, nil)
	c.flushOverflow()
	c.poll(now)
}

// idle reports whether the core has no I/O in flight, no overflow and no
// queued inbound message.
func (c *Core) idle() bool {
	if c.io != nil && c.io.Inflight() > 0 || c.overflowed > 0 {
		return false
	}
	for _, ln := range c.inbox {
		if ln.ring.len() > 0 {
			return false
		}
	}
	return true
}
