package dma

import "time"

// LatencyBounds are the upper bounds of the latency histograms' buckets
// (the last bucket, past the final bound, is +Inf). They span a page-cache
// hit to a disk that stops for a second, in roughly 2.5x steps, so that
// NVMe completions (tens of µs) and a stalled fdatasync (hundreds of ms)
// both land in a bucket that says something.
var LatencyBounds = [...]time.Duration{
	25 * time.Microsecond, 50 * time.Microsecond, 100 * time.Microsecond,
	250 * time.Microsecond, 500 * time.Microsecond, time.Millisecond,
	2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
	250 * time.Millisecond, 500 * time.Millisecond, time.Second,
}

// Histogram is a fixed-bucket latency histogram: plain counters, written
// only by the core that owns the engine, so recording costs no atomic.
type Histogram struct {
	Counts [len(LatencyBounds) + 1]uint64 // Counts[i]: samples <= LatencyBounds[i]; last: the rest
	Sum    time.Duration
}

// Observe records one sample.
func (h *Histogram) Observe(d time.Duration) {
	i := 0
	for i < len(LatencyBounds) && d > LatencyBounds[i] {
		i++
	}
	h.Counts[i]++
	h.Sum += d
}

// Count is the number of samples.
func (h *Histogram) Count() uint64 {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// IOStats are an engine's operation counters and latencies.
type IOStats struct {
	Reads, Writes, Syncs uint64 // operations submitted (a WriteSync counts one write and one sync)
	// Read and Write time submission to completion; Sync times an
	// fdatasync, or for WriteSync the linked write+fdatasync pair, which is
	// what an acknowledgement waits for.
	Read, Write, Sync Histogram
}

// TimedEngine wraps an Engine to count and time its operations. Like the
// engine it belongs to one core, and so do its counters: Stats must be
// called on that core's thread (a reader elsewhere asks the core by
// message), which keeps the data path free of atomics and locks.
type TimedEngine struct {
	Engine
	stats IOStats
}

// Timed wraps e.
func Timed(e Engine) *TimedEngine { return &TimedEngine{Engine: e} }

// Stats returns a copy of the counters. Call it on the owning core.
func (p *TimedEngine) Stats() IOStats { return p.stats }

func (p *TimedEngine) Write(f File, b []byte, off int64, cb func(n int, err error)) {
	p.stats.Writes++
	start := time.Now()
	p.Engine.Write(f, b, off, func(n int, err error) {
		p.stats.Write.Observe(time.Since(start))
		cb(n, err)
	})
}

func (p *TimedEngine) Read(f File, b []byte, off int64, cb func(n int, err error)) {
	p.stats.Reads++
	start := time.Now()
	p.Engine.Read(f, b, off, func(n int, err error) {
		p.stats.Read.Observe(time.Since(start))
		cb(n, err)
	})
}

func (p *TimedEngine) Sync(f File, cb func(err error)) {
	p.stats.Syncs++
	start := time.Now()
	p.Engine.Sync(f, func(err error) {
		p.stats.Sync.Observe(time.Since(start))
		cb(err)
	})
}

func (p *TimedEngine) WriteSync(f File, b []byte, off int64, wcb func(n int, err error), scb func(err error)) {
	p.stats.Writes++
	p.stats.Syncs++
	start := time.Now()
	p.Engine.WriteSync(f, b, off, func(n int, err error) {
		p.stats.Write.Observe(time.Since(start))
		wcb(n, err)
	}, func(err error) {
		p.stats.Sync.Observe(time.Since(start))
		scb(err)
	})
}
