package perf

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestScheduleExactTimes(t *testing.T) {
	s := schedule{rate: 3, producers: 1}
	want := []time.Duration{0, 333_333_333, 666_666_666, time.Second, 1_333_333_333}
	for k, w := range want {
		if got := s.at(int64(k)); got != w {
			t.Errorf("rate 3: at(%d) = %d, want %d", k, got, w)
		}
	}
	// No drift: message 3e9 at 3/s is due exactly 1e9 seconds in, which
	// adding a rounded 333,333,333 ns interval would miss by 1 s.
	if got := s.at(3_000_000_000); got != 1_000_000_000*time.Second {
		t.Errorf("at(3e9) = %v, want exactly 1e9 s", got)
	}
	// Past 2^63 ns of k*1e9 the 128-bit product still divides exactly.
	big := schedule{rate: 1_000_000, producers: 1}
	if got, want := big.at(20_000_000_000), 20_000*time.Second; got != want {
		t.Errorf("at(2e10) at 1M/s = %v, want %v", got, want)
	}
}

// The producers of a run interleave on one global schedule: together they
// send message g at exactly g/rate.
func TestScheduleInterleavesProducers(t *testing.T) {
	const rate, producers, perProducer = 7, 3, 50
	var all []time.Duration
	for i := range uint64(producers) {
		s := schedule{rate: rate, producers: producers, index: i}
		for k := range int64(perProducer) {
			all = append(all, s.at(k))
		}
	}
	slices.Sort(all)
	for g, got := range all {
		if want := time.Duration(int64(g) * int64(time.Second) / rate); got != want {
			t.Fatalf("global message %d due at %d, want %d", g, got, want)
		}
	}
}

// countBefore must equal a brute-force count of at(k) < t.
func TestScheduleCountBefore(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		s := schedule{rate: 1 + rng.Uint64N(5000), producers: 1 + rng.Uint64N(6)}
		s.index = rng.Uint64N(s.producers)
		at := time.Duration(rng.Int64N(int64(2 * time.Second)))
		var want int64
		for k := int64(0); s.at(k) < at; k++ {
			want++
		}
		if got := s.countBefore(at); got != want {
			t.Fatalf("%+v countBefore(%d) = %d, brute force %d", s, at, got, want)
		}
	}
}

// fakeClock is a clock whose time moves only when told: sleeping jumps to
// the wake-up time, and a fake send can "stall" by advancing it.
type fakeClock struct{ t time.Duration }

func (c *fakeClock) now() time.Duration { return c.t }
func (c *fakeClock) sleepUntil(ctx context.Context, t time.Duration) bool {
	c.t = max(c.t, t)
	return ctx.Err() == nil
}

// A send that stalls once for 200 ms at 1000 msg/s: measured from the
// intended (scheduled) time, the 200 messages due during the stall carry
// latencies of 200, 199, ... 1 ms, so p99 of 2000 messages is 180 ms.
// Measured naively from the actual send, only the stalled message is slow
// and p99 is 0: the stall vanishes (coordinated omission).
func TestProduceLoopCorrectsCoordinatedOmission(t *testing.T) {
	const stall = 200 * time.Millisecond
	clk := &fakeClock{}
	corrected, naive := newLatencyRecorder(), newLatencyRecorder()
	var sendTimes []time.Duration
	n := produceLoop(context.Background(), clk, schedule{rate: 1000, producers: 1}, 0, 2*time.Second,
		func(k int64, intended time.Duration) {
			start := clk.now()
			sendTimes = append(sendTimes, start)
			if k == 100 {
				clk.t += stall // the client blocks, e.g. on a full window
			}
			ack := clk.now() // the fake broker acks at once
			corrected.record(ack-intended, true)
			naive.record(ack-start, true)
		})
	if n != 2000 {
		t.Fatalf("sent %d, want 2000", n)
	}
	c := percentilesOf(mergeLatency([]*latencyRecorder{corrected}, true))
	if !within(c.P99Us, 180_000) || c.MaxUs != 200_000 || !within(c.P95Us, 100_000) {
		t.Errorf("corrected p95 %d p99 %d max %d µs; want 100000, 180000, 200000", c.P95Us, c.P99Us, c.MaxUs)
	}
	nv := percentilesOf(mergeLatency([]*latencyRecorder{naive}, true))
	if nv.P99Us != 0 || nv.P9999Us != 200_000 {
		t.Errorf("naive p99 %d p99.99 %d µs; the model expects 0 and 200000", nv.P99Us, nv.P9999Us)
	}
	// Behind schedule, the loop sends at once instead of spacing out:
	// messages 101..299 all leave at the end of the stall.
	for k := 101; k < 300; k++ {
		if sendTimes[k] != 300*time.Millisecond {
			t.Fatalf("message %d sent at %v, want at once at 300ms", k, sendTimes[k])
		}
	}
	if sendTimes[300] != 300*time.Millisecond || sendTimes[301] != 301*time.Millisecond {
		t.Fatalf("after catching up, sends at %v, %v; want back on schedule", sendTimes[300], sendTimes[301])
	}
}

// At max rate (rate 0) latency counts from when the loop takes a message,
// and the loop stops at the horizon.
func TestProduceLoopMaxRate(t *testing.T) {
	clk := &fakeClock{}
	var intended []time.Duration
	n := produceLoop(context.Background(), clk, schedule{producers: 1}, 0, 10*time.Millisecond,
		func(k int64, at time.Duration) {
			intended = append(intended, at)
			clk.t += time.Millisecond
		})
	if n != 10 || intended[3] != 3*time.Millisecond {
		t.Fatalf("sent %d, intended %v; want 10 sends at 0,1,2.. ms", n, intended)
	}
}

func TestProduceLoopStopsOnContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	clk := &fakeClock{}
	n := produceLoop(ctx, clk, schedule{rate: 100, producers: 1}, 0, time.Hour, func(k int64, _ time.Duration) {
		if k == 4 {
			cancel()
		}
	})
	if n != 5 {
		t.Fatalf("sent %d after cancel at the 5th, want 5", n)
	}
}

// A short run on the real clock: the loop sends exactly the messages the
// schedule has before the horizon, each at or after its due time, and by
// any moment has sent at least what was due one max-observed-lag earlier.
// The expected counts come from the schedule, not from timing.
func TestProduceLoopRealClock(t *testing.T) {
	clk := wallClock{base: time.Now()}
	s := schedule{rate: 2000, producers: 3, index: 1}
	const horizon = 300 * time.Millisecond
	var due, actual []time.Duration
	n := produceLoop(context.Background(), clk, s, 0, horizon, func(k int64, at time.Duration) {
		due = append(due, at)
		actual = append(actual, clk.now())
	})
	if want := s.countBefore(horizon); n != want || want != 200 {
		t.Fatalf("sent %d, schedule has %d (want 200) before %v", n, want, horizon)
	}
	var maxLag time.Duration
	for k := range due {
		if due[k] != s.at(int64(k)) {
			t.Fatalf("message %d intended %v, schedule says %v", k, due[k], s.at(int64(k)))
		}
		if actual[k] < due[k] {
			t.Fatalf("message %d sent at %v, %v early", k, actual[k], due[k]-actual[k])
		}
		maxLag = max(maxLag, actual[k]-due[k])
	}
	for k, at := range actual {
		if sentBy, floor := int64(k+1), s.countBefore(at-maxLag); sentBy < floor {
			t.Fatalf("by %v only %d sent, but %d were due by %v", at, sentBy, floor, at-maxLag)
		}
	}
}
