package reactor

import (
	"container/heap"
	"time"
)

// Per-core timers.
//
// gnet has no Schedule, so each core keeps its own min-heap of deadlines,
// owned by its thread, and ONE runtime timer (time.AfterFunc) armed at the
// earliest deadline. When that timer fires its goroutine only wakes the core
// (a queued service task); the service pops and runs every due entry on the
// loop thread and re-arms for the next one. Cancel removes the entry from
// the heap at once, so cancelled timers hold no memory, and nothing is left
// running after Stop: the runtime timer is stopped and wakes after the gate
// closes are refused.

type timerEntry struct {
	when  time.Duration // since Runtime.epoch (monotonic)
	seq   uint64        // insertion order breaks ties: FIFO for equal deadlines
	fn    func()
	index int // position in the heap, -1 once fired or cancelled
}

type timerHeap []*timerEntry

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].when != h[j].when {
		return h[i].when < h[j].when
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *timerHeap) Push(x any) {
	e := x.(*timerEntry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.index = -1
	return e
}

// timers is a core's timer state; only the core's thread touches it (the
// runtime timer's callback only calls wakeForeign).
type timers struct {
	heap    timerHeap
	seq     uint64
	wakeup  *time.Timer   // runtime timer, armed at armedAt
	armedAt time.Duration // 0 = not armed
}

// After runs fn on this core's thread once d has passed and returns a cancel
// func. Cancel (also on this core's thread) reports whether it stopped fn
// from running; after it, fn is released. Call After on c's own thread;
// from other goroutines use Runtime.Post to get there first. Timers still
// pending when Stop runs never fire.
func (c *Core) After(d time.Duration, fn func()) (cancel func() bool) {
	c.AssertOwned()
	if d < 0 {
		d = 0
	}
	t := &c.timers
	t.seq++
	e := &timerEntry{when: c.rt.now() + d, seq: t.seq, fn: fn}
	heap.Push(&t.heap, e)
	if e.index == 0 {
		c.armTimer(e.when)
	}
	return func() bool {
		c.AssertOwned()
		if e.index < 0 {
			return false
		}
		heap.Remove(&t.heap, e.index)
		e.fn = nil
		return true
	}
}

// armTimer makes the runtime timer fire no later than when. A timer armed
// for an entry that was since cancelled just causes one empty service.
func (c *Core) armTimer(when time.Duration) {
	t := &c.timers
	if t.armedAt != 0 && t.armedAt <= when {
		return
	}
	t.armedAt = when
	d := when - c.rt.now()
	if t.wakeup == nil {
		t.wakeup = time.AfterFunc(d, c.timerFired)
		return
	}
	t.wakeup.Reset(d)
}

// timerFired runs on a runtime goroutine, never on the loop.
func (c *Core) timerFired() { c.wakeForeign() }

// runTimers fires every due entry, oldest deadline first, then re-arms for
// the earliest remaining one. now is the current wall time (for stall
// accounting); returns the time after the last timer ran.
func (c *Core) runTimers(now time.Time) time.Time {
	t := &c.timers
	if len(t.heap) == 0 {
		return now
	}
	at := c.rt.now()
	if t.armedAt != 0 && t.armedAt <= at {
		t.armedAt = 0 // that arming has fired (or is about to: harmless)
	}
	for len(t.heap) > 0 && t.heap[0].when <= at {
		e := heap.Pop(&t.heap).(*timerEntry)
		fn := e.fn
		e.fn = nil
		fn()
		now = c.checkStall(now, stallTimer, fn)
	}
	if len(t.heap) > 0 {
		c.armTimer(t.heap[0].when)
	}
	return now
}

// stopTimers drops every pending entry and stops the runtime timer. Called
// by Stop once the loop has exited (or while the gate is closed).
func (c *Core) stopTimers() {
	t := &c.timers
	if t.wakeup != nil {
		t.wakeup.Stop()
	}
	for _, e := range t.heap {
		e.index = -1
		e.fn = nil
	}
	t.heap = nil
	t.armedAt = 0
}
