package cluster

import (
	"testing"
	"time"
)

// TestCatchUpThrottle: the bucket lets a tenth of a second's worth pass
// free, then asks for pauses that pay the debt at the rate, and time pays
// it down; a rate of 0 never pauses.
func TestCatchUpThrottle(t *testing.T) {
	th := &catchUpThrottle{rate: 1000}
	t0 := time.Unix(100, 0)
	if p := th.take(100, t0); p != 0 {
		t.Fatalf("within the free tenth: pause %v", p)
	}
	if p := th.take(900, t0); p != time.Second {
		t.Fatalf("1000 bytes owed at 1000 B/s: pause %v, want 1s", p)
	}
	// Half a second later half the debt is paid.
	if p := th.take(0+1, t0.Add(500*time.Millisecond)); p != 501*time.Millisecond {
		t.Fatalf("after 0.5 s: pause %v, want 501ms", p)
	}
	// Long idle: the debt is gone, never negative credit.
	if p := th.take(50, t0.Add(time.Hour)); p != 0 {
		t.Fatalf("after an hour: pause %v", p)
	}
	if p := th.take(1000, t0.Add(time.Hour)); p <= 0 {
		t.Fatalf("an hour of idling banked credit: pause %v", p)
	}
	free := &catchUpThrottle{}
	if p := free.take(1<<30, t0); p != 0 {
		t.Fatalf("unlimited: pause %v", p)
	}
}
