package reactor

import (
	"fmt"
	"testing"
	"time"
)

func TestSPSCWrapAround(t *testing.T) {
	r := newSPSC[int](3) // rounds up to 4
	if r.cap() != 4 {
		t.Fatalf("cap = %d, want 4", r.cap())
	}
	next, want := 0, 0
	for round := 0; round < 100; round++ { // head/tail wrap the 4 slots many times
		for i := 0; i < 1+round%4; i++ {
			if !r.push(next) {
				t.Fatalf("round %d: push %d failed with len %d", round, next, r.len())
			}
			next++
		}
		for {
			v, ok := r.pop()
			if !ok {
				break
			}
			if v != want {
				t.Fatalf("pop = %d, want %d", v, want)
			}
			want++
		}
	}
	if want != next {
		t.Fatalf("popped %d of %d", want, next)
	}
}

func TestSPSCFull(t *testing.T) {
	r := newSPSC[int](4)
	for i := 0; i < 4; i++ {
		if !r.push(i) {
			t.Fatalf("push %d failed", i)
		}
	}
	if r.push(99) {
		t.Fatal("push into a full ring succeeded")
	}
	if v, _ := r.pop(); v != 0 {
		t.Fatalf("pop = %d, want 0", v)
	}
	if !r.push(4) {
		t.Fatal("push after pop failed")
	}
	if r.len() != 4 {
		t.Fatalf("len = %d, want 4", r.len())
	}
}

func TestOutLaneOverflowFIFO(t *testing.T) {
	o := outLane[int]{lane: newLane[int](4)}
	direct := 0
	for i := 0; i < 10; i++ {
		if spilled, _ := o.send(i); !spilled {
			direct++
		}
	}
	if direct != 4 || o.pending() != 6 {
		t.Fatalf("direct = %d pending = %d, want 4 and 6", direct, o.pending())
	}
	if !o.lane.waiting.Load() {
		t.Fatal("producer with overflow did not arm waiting")
	}
	// Once overflow exists, even a send that would fit must queue behind it.
	var got []int
	v, _ := o.lane.ring.pop()
	got = append(got, v)
	if spilled, pushed := o.send(10); !spilled || pushed != 1 {
		// The freed slot goes to the oldest overflowed message (4), not 10.
		t.Fatalf("send(10): spilled %v pushed %d, want true 1", spilled, pushed)
	}
	for len(got) < 11 {
		if !o.lane.takeWaiting() && o.pending() > 0 {
			t.Fatal("consumer was not asked to wake the producer")
		}
		o.flush()
		for {
			v, ok := o.lane.ring.pop()
			if !ok {
				break
			}
			got = append(got, v)
		}
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("got %v, want 0..10 in order", got)
		}
	}
	if o.pending() != 0 || len(o.overflow) != 0 {
		t.Fatalf("overflow not emptied: pending %d len %d", o.pending(), len(o.overflow))
	}
}

// TestOverflowRaceWindow replays the interleaving the waiting flag's retry
// exists for: the consumer drains the whole ring and checks waiting after
// the producer's push failed but before it published waiting. Without the
// retry the overflow would be stranded with nobody left to wake anyone.
func TestOverflowRaceWindow(t *testing.T) {
	o := outLane[int]{lane: newLane[int](2)}
	o.send(0)
	o.send(1)
	var drained []int
	o.flushRaceHook = func() {
		o.flushRaceHook = nil
		for {
			v, ok := o.lane.ring.pop()
			if !ok {
				break
			}
			drained = append(drained, v)
		}
		if o.lane.takeWaiting() {
			t.Error("waiting was set before the producer published it")
		}
	}
	if spilled, pushed := o.send(2); !spilled || pushed != 1 {
		t.Fatalf("send(2): spilled %v pushed %d, want the retry to push it", spilled, pushed)
	}
	if v, ok := o.lane.ring.pop(); !ok || v != 2 || len(drained) != 2 || o.pending() != 0 {
		t.Fatalf("after race: ring head %d/%v, drained %v, pending %d", v, ok, drained, o.pending())
	}
}

// TestLaneStress runs one producer and one consumer goroutine through a tiny
// lane with the same wake protocol the cores use (wakes coalesced in
// one-slot channels, the consumer waking the producer through waiting). The
// producer sends bursts larger than the ring and then waits to be woken, so
// every burst ends in the race the waiting flag exists for. Every value must
// arrive exactly once, in order; a lost wake-up shows as a timeout. Run it
// with -race.
func TestLaneStress(t *testing.T) {
	const total, burst = 400_000, 11
	o := outLane[int]{lane: newLane[int](4)}
	consWake := make(chan struct{}, 1)
	prodWake := make(chan struct{}, 1)
	done := make(chan error, 1)
	poke := func(ch chan struct{}) {
		select {
		case ch <- struct{}{}:
		default:
		}
	}

	go func() { // consumer
		want := 0
		for want < total {
			<-consWake
			for {
				v, ok := o.lane.ring.pop()
				if !ok {
					break
				}
				if v != want {
					done <- fmt.Errorf("got %d, want %d", v, want)
					return
				}
				want++
			}
			if o.lane.takeWaiting() {
				poke(prodWake)
			}
		}
		done <- nil
	}()

	go func() { // producer: bursts, then goes quiet until woken
		for i := 0; i < total; {
			for end := min(i+burst, total); i < end; i++ {
				if _, pushed := o.send(i); pushed > 0 {
					poke(consWake)
				}
			}
			// Quiet: only the consumer's wake can get the overflow out. A
			// lost wake-up leaves it here forever.
			for o.pending() > 0 {
				<-prodWake
				if o.flush() > 0 {
					poke(consWake)
				}
			}
		}
	}()

	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("stress test stuck: a wake-up was lost")
	}
}
