package cluster

import (
	"sync/atomic"
	"time"
)

// catchUpThrottle bounds the bytes per second a broker's followers fetch
// for replicas outside the in-sync set (a reassignment's new replica, a
// broker back from a long absence), so that catching up does not starve
// producers of disk and network: Kafka's follower.replication.throttled.rate,
// applied to every catching-up replica. Shared by the cores through
// atomics (a token bucket allowed to go into debt): a fetch takes what
// it received, and a fetcher in debt pauses those replicas until the
// debt is paid.
type catchUpThrottle struct {
	rate  int64        // bytes per second; 0: unlimited
	debt  atomic.Int64 // bytes owed
	since atomic.Int64 // unix nanos the debt was last paid down to
	log   rateLog
}

// take records n bytes fetched at now and returns how long the caller
// should pause before fetching more (0: not at all).
func (t *catchUpThrottle) take(n int64, now time.Time) time.Duration {
	if t.rate <= 0 || n <= 0 {
		return 0
	}
	ns := now.UnixNano()
	for {
		last := t.since.Load()
		if last == 0 || ns <= last {
			if t.since.CompareAndSwap(last, max(last, ns)) {
				break
			}
			continue
		}
		paid := (ns - last) * t.rate / int64(time.Second)
		if t.since.CompareAndSwap(last, ns) {
			for {
				d := t.debt.Load()
				if t.debt.CompareAndSwap(d, max(d-paid, 0)) {
					break
				}
			}
			break
		}
	}
	d := t.debt.Add(n)
	if d <= t.rate/10 { // a tenth of a second's worth rides free
		return 0
	}
	return time.Duration(d * int64(time.Second) / t.rate)
}
