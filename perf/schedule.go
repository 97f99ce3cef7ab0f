package perf

import (
	"context"
	"math/bits"
	"time"
)

// schedule is the fixed-rate send plan of one producer out of several that
// share a total rate. The producers interleave on one global sequence:
// message k of producer i is global message g = k*producers + i, due at
// g/rate seconds after the start. Integer arithmetic keeps every due time
// exact (no drift from adding a rounded interval), and the interleaving
// makes the total offered load exactly rate whatever the producer count.
type schedule struct {
	rate      uint64 // total messages per second; 0 = as fast as possible
	producers uint64
	index     uint64 // this producer, in [0, producers)
}

// at is when message k is due, as an offset from the schedule's start.
// It is floor(g * 1e9 / rate) nanoseconds, computed in 128 bits so it stays
// exact past 2^63/1e9 messages.
func (s schedule) at(k int64) time.Duration {
	g := uint64(k)*s.producers + s.index
	hi, lo := bits.Mul64(g, uint64(time.Second))
	if hi >= s.rate { // beyond ~292 years: saturate rather than trap
		return time.Duration(1<<63 - 1)
	}
	q, _ := bits.Div64(hi, lo, s.rate)
	return time.Duration(q)
}

// countBefore is how many of this producer's messages are due strictly
// before t: the exact number a run up to t must send, which tests use as
// the expected count instead of a tolerance guessed from timing.
func (s schedule) countBefore(t time.Duration) int64 {
	if t <= 0 {
		return 0
	}
	// Global messages due before t are g < ceil(t*rate/1e9).
	hi, lo := bits.Mul64(uint64(t), s.rate)
	if hi >= uint64(time.Second) {
		return 1<<63 - 1
	}
	q, r := bits.Div64(hi, lo, uint64(time.Second))
	if r != 0 {
		q++
	}
	if q <= s.index {
		return 0
	}
	return int64((q - s.index + s.producers - 1) / s.producers)
}

// clock is the time source of a producer loop. Real runs use wallClock;
// tests use a fake one that jumps, so a stall is deterministic.
type clock interface {
	// now is the time since the run's base.
	now() time.Duration
	// sleepUntil returns once now() >= t, or false if ctx ended first.
	sleepUntil(ctx context.Context, t time.Duration) bool
}

// wallClock measures from base with Go's monotonic clock.
type wallClock struct{ base time.Time }

func (c wallClock) now() time.Duration { return time.Since(c.base) }

func (c wallClock) sleepUntil(ctx context.Context, t time.Duration) bool {
	d := t - c.now()
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

// sendFunc hands message k to the client. intended is the time latency is
// measured from: the scheduled time at a fixed rate, the moment the loop
// took the message at max rate. A send may block (a full client window);
// at a fixed rate that delay then shows in the latency of every message
// that was due meanwhile, which is the point.
type sendFunc func(k int64, intended time.Duration)

// produceLoop drives one producer. At a fixed rate message k is due at
// start + sched.at(k): the loop sleeps until then, or sends at once when it
// is behind, and still passes the scheduled time as intended, so a stall is
// charged to every message it delayed (no coordinated omission). It stops
// before the first message due at or after horizon, or when ctx ends; it
// returns the number of messages sent.
func produceLoop(ctx context.Context, clk clock, sched schedule, start, horizon time.Duration, send sendFunc) int64 {
	var k int64
	for ctx.Err() == nil {
		var intended time.Duration
		if sched.rate == 0 {
			intended = clk.now()
			if intended >= horizon {
				break
			}
		} else {
			intended = start + sched.at(k)
			if intended >= horizon {
				break
			}
			if clk.now() < intended && !clk.sleepUntil(ctx, intended) {
				break
			}
		}
		send(k, intended)
		k++
	}
	return k
}
