package reactor

import (
	"sync/atomic"
)

// Cross-core messaging.
//
// Every ordered pair of cores (src, dst), src == dst included, has one lane:
// a bounded single-producer/single-consumer ring written only by src's
// thread and read only by dst's thread. No lock anywhere; the ring's head and
// tail are atomics, the slots are plain memory ordered by them.
//
//	src thread                                   dst thread
//	  Send ──push──► [ lane(src,dst): ring ] ──pop──► drain ──► fn(dst)
//	   │ full?                                         │ after draining:
//	   └► outLane.overflow (src-owned FIFO)            └ waiting? wake src
//	        retried by src's next service / callback
//
// Wake-up protocol (dst side): after a successful push the producer wakes
// dst only if dst.wakePending was false (CAS false→true), which queues one
// service task on dst's loop. The service clears wakePending BEFORE it reads
// the rings, so a push racing with a drain either is seen by that drain or
// sees wakePending == false and queues another service (Dekker-style; Go
// atomics are sequentially consistent).
//
// Overflow protocol (src side): a full ring never blocks the sender. The
// message goes to src's overflow list (and every later one too, to keep FIFO
// order) and src sets lane.waiting, then retries once. The consumer checks
// waiting after each drain and, if set, wakes src, whose service flushes the
// overflow. The same Dekker argument (src: store waiting, read head; dst:
// store head, read waiting) guarantees one side sees the other.

// cacheLine pads hot atomics apart so producer and consumer do not share a
// line.
const cacheLine = 64

// spsc is a bounded single-producer single-consumer ring. The buffer is
// allocated by the producer on its first push (most core pairs never talk),
// published to the consumer by the tail store.
type spsc[T any] struct {
	head atomic.Uint64 // next slot to read; written by the consumer
	_    [cacheLine - 8]byte
	tail atomic.Uint64 // next slot to write; written by the producer
	_    [cacheLine - 8]byte

	headCache uint64 // producer's last view of head
	_         [cacheLine - 8]byte
	tailCache uint64 // consumer's last view of tail
	_         [cacheLine - 8]byte

	mask uint64
	buf  []T
}

func newSPSC[T any](capacity int) *spsc[T] {
	n := uint64(1)
	for n < uint64(capacity) {
		n <<= 1
	}
	return &spsc[T]{mask: n - 1}
}

// cap returns the ring's capacity.
func (r *spsc[T]) cap() int { return int(r.mask + 1) }

// push appends v; false when the ring is full. Producer only.
func (r *spsc[T]) push(v T) bool {
	t := r.tail.Load()
	if t-r.headCache > r.mask {
		r.headCache = r.head.Load()
		if t-r.headCache > r.mask {
			return false
		}
	}
	if r.buf == nil {
		r.buf = make([]T, r.mask+1)
	}
	r.buf[t&r.mask] = v
	r.tail.Store(t + 1)
	return true
}

// pop removes the oldest value; false when empty. Consumer only.
func (r *spsc[T]) pop() (T, bool) {
	var zero T
	h := r.head.Load()
	if h == r.tailCache {
		r.tailCache = r.tail.Load()
		if h == r.tailCache {
			return zero, false
		}
	}
	i := h & r.mask
	v := r.buf[i]
	r.buf[i] = zero // let the GC have the closure
	r.head.Store(h + 1)
	return v, true
}

// len is the number of queued values as seen now. Exact when called by the
// consumer (it owns head); a lower bound of free space otherwise.
func (r *spsc[T]) len() int { return int(r.tail.Load() - r.head.Load()) }

// lane is the shared state of one ordered core pair.
type lane[T any] struct {
	ring *spsc[T]
	// waiting is set by the producer when it holds overflow for this lane;
	// the consumer clears it and wakes the producer after draining.
	waiting atomic.Bool
	_       [cacheLine - 4]byte
}

func newLane[T any](capacity int) *lane[T] { return &lane[T]{ring: newSPSC[T](capacity)} }

// takeWaiting reports (and clears) whether the producer asked to be woken.
// Consumer only, after draining.
func (l *lane[T]) takeWaiting() bool {
	return l.waiting.Load() && l.waiting.CompareAndSwap(true, false)
}

// outLane is the producer's private view of a lane: the lane plus the FIFO
// of messages that did not fit. Only the producer's thread touches it.
type outLane[T any] struct {
	lane     *lane[T]
	overflow []T
	ohead    int // overflow[ohead:] is pending
	// flushRaceHook, set only by tests, runs inside flush's race window
	// (after the failed push, before waiting is published). Overflow path
	// only. A field, not a package variable, so that no other lane (or
	// test) sees it.
	flushRaceHook func()
}

// send queues v and never blocks or drops. spilled reports that v could not
// go straight into the ring (it was full, or older overflow was waiting) and
// took the overflow path; pushed counts the messages that entered the ring
// during the call (v itself and/or older overflow moved ahead of it). The
// caller must wake the consumer whenever pushed > 0, including when v
// spilled: a consumer that already drained and cleared waiting will not
// look again on its own.
func (o *outLane[T]) send(v T) (spilled bool, pushed int) {
	if o.pending() == 0 && o.lane.ring.push(v) {
		return false, 1
	}
	o.overflow = append(o.overflow, v)
	return true, o.flush()
}

// pending is the number of overflowed messages not yet in the ring.
func (o *outLane[T]) pending() int { return len(o.overflow) - o.ohead }

// flush moves as much overflow as fits into the ring, in order, and returns
// how many it moved. If some remain it arms lane.waiting so the consumer
// wakes the producer once it has made room.
func (o *outLane[T]) flush() int {
	moved := o.moveOverflow()
	if o.pending() == 0 {
		return moved
	}
	if o.flushRaceHook != nil {
		o.flushRaceHook()
	}
	o.lane.waiting.Store(true)
	// Retry after publishing waiting: the consumer may have drained between
	// our failed push and the store, and then it will not look again.
	return moved + o.moveOverflow()
}

func (o *outLane[T]) moveOverflow() int {
	var zero T
	moved := 0
	for o.ohead < len(o.overflow) && o.lane.ring.push(o.overflow[o.ohead]) {
		o.overflow[o.ohead] = zero
		o.ohead++
		moved++
	}
	if o.ohead == len(o.overflow) {
		o.overflow = o.overflow[:0]
		o.ohead = 0
	} else if o.ohead > len(o.overflow)/2 && o.ohead > 64 {
		// Compact so a long-lived backlog does not grow the slice forever.
		n := copy(o.overflow, o.overflow[o.ohead:])
		clear(o.overflow[n:])
		o.overflow = o.overflow[:n]
		o.ohead = 0
	}
	return moved
}
