package metaraft

import (
	"context"
	"errors"
	"testing"

	"github.com/lni/dragonboat/v4"
)

// Dragonboat refuses proposals with ErrSystemBusy while the unapplied log
// is over InMemLogBytesMax (its limiter changes state only every few
// ticks, so a test cannot make it bite on demand). What is Strand's:
// Propose retries exactly the errors that mean "never entered the log",
// stops at its deadline, and logs the full log at most once per interval.
func TestRetryWait(t *testing.T) {
	c := context.Background()
	for _, err := range []error{dragonboat.ErrSystemBusy, dragonboat.ErrShardNotReady} {
		if got := retryWait(c, err); got != nil {
			t.Fatalf("%v not retried: %v", err, got)
		}
	}
	// A timeout may have committed the command: never retried blindly.
	for _, err := range []error{dragonboat.ErrTimeout, dragonboat.ErrClosed, dragonboat.ErrShardNotFound} {
		if got := retryWait(c, err); !errors.Is(got, err) {
			t.Fatalf("%v retried: %v", err, got)
		}
	}
	done, cancel := context.WithCancel(c)
	cancel()
	if got := retryWait(done, dragonboat.ErrSystemBusy); !errors.Is(got, context.Canceled) {
		t.Fatalf("retry after the deadline: %v", got)
	}
}

func TestLogBusyIsRateLimited(t *testing.T) {
	h := &Host{}
	h.logBusy()
	first := h.busyLoggedNs.Load()
	if first == 0 {
		t.Fatal("never logged")
	}
	for range 99 {
		h.logBusy()
	}
	if h.busy.Load() != 100 || h.busyLoggedNs.Load() != first {
		t.Fatalf("counted %d, logged again: %v", h.busy.Load(), h.busyLoggedNs.Load() != first)
	}
	h.busyLoggedNs.Store(first - int64(busyLogInterval))
	h.logBusy()
	if h.busyLoggedNs.Load() == first-int64(busyLogInterval) {
		t.Fatal("not logged again after the interval")
	}
}
