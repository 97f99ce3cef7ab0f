package reactor

import (
	"time"

	"github.com/strand-io/strand/dma"
)

// Busy returns how long this core has spent running callbacks, messages,
// timers, posted tasks and I/O completions since it started: sampled twice,
// the difference over the wall time between is the busy fraction. A Flush
// inside a callback is counted twice, so readers clamp the fraction to 1.
// Like every per-core counter it is a plain field: call Busy on the core's
// thread (from anywhere else, ask the core with Runtime.Post).
func (c *Core) Busy() time.Duration {
	c.AssertOwned()
	return c.stall.busy
}

// IOStats returns the counters and latency histograms of the core's I/O
// engine (zero before boot). Call it on the core's thread.
func (c *Core) IOStats() dma.IOStats {
	c.AssertOwned()
	if p, ok := c.io.(*dma.TimedEngine); ok {
		return p.Stats()
	}
	return dma.IOStats{}
}
