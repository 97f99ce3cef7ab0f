package perf

import (
	"bytes"
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The progress lines (their own goroutine) and the run's warnings share
// one writer, which Main's callers may pass as a plain bytes.Buffer: the
// run must serialise them. Consumers here never catch up, so waitTail
// warns while the progress loop is still printing (-race catches an
// unserialised pair).
func TestProgressAndTailWarningShareTheWriter(t *testing.T) {
	saved := tailTimeout
	tailTimeout = 1500 * time.Millisecond // after the first progress line
	defer func() { tailTimeout = saved }()
	var out bytes.Buffer
	r := &run{runParams: runParams{w: &Workload{Name: "t"}, progress: &out}}
	r.series = newSeries(8)
	r.clk = wallClock{base: time.Now()}
	r.end.Store(int64(time.Hour))
	r.consumers = []*consumer{{r: r, lat: newLatencyRecorder()}}
	r.subConsumed = make([]atomic.Int64, 1)
	r.ackedMsgs.Store(1) // acked, never read
	pl := r.startProgress()
	r.waitTail(context.Background())
	pl.stop()
	s := out.String()
	if !strings.Contains(s, "perf measure") || !strings.Contains(s, "consumers had not read everything") {
		t.Errorf("want a progress line and the tail warning, got:\n%s", s)
	}
}
