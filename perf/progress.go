package perf

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// series counts events per second of the run, by when they happened.
// Slots are preallocated for the longest possible run (warm-up, window,
// flush, tail), so the hot path is one atomic add; anything later lands
// in the last slot.
type series struct {
	pubMsgs, pubBytes, conMsgs, conBytes, errs []atomic.Int64
	// Written only by the progress goroutine, read after it has stopped.
	cpuCores []float64
	rss      []int64
}

func newSeries(seconds int) *series {
	return &series{
		pubMsgs: make([]atomic.Int64, seconds), pubBytes: make([]atomic.Int64, seconds),
		conMsgs: make([]atomic.Int64, seconds), conBytes: make([]atomic.Int64, seconds),
		errs: make([]atomic.Int64, seconds), cpuCores: make([]float64, seconds), rss: make([]int64, seconds),
	}
}

func (s *series) slot(at time.Duration) int {
	return min(max(int(at/time.Second), 0), len(s.errs)-1)
}

func (s *series) add(col []atomic.Int64, at time.Duration, n int64) {
	col[s.slot(at)].Add(n)
}

// progressLoop samples the broker process and prints a progress line once
// a second.
type progressLoop struct {
	done, finished chan struct{}
}

func (r *run) startProgress() *progressLoop {
	pl := &progressLoop{done: make(chan struct{}), finished: make(chan struct{})}
	go func() {
		defer close(pl.finished)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		var prev procSample
		var prevAt time.Duration
		if r.proc != nil {
			prev, _ = r.proc.read()
			prevAt = r.clk.now()
		}
		// sample fills the broker columns of slot sec with the CPU used
		// since the previous sample.
		sample := func(now time.Duration, sec int) {
			if s, err := r.proc.read(); err == nil && now > prevAt {
				r.series.cpuCores[sec] = float64(s.cpu-prev.cpu) / float64(now-prevAt)
				r.series.rss[sec] = s.rssBytes
				prev, prevAt = s, now
			}
		}
		for {
			select {
			case <-pl.done:
				if now := r.clk.now(); r.proc != nil && now-prevAt > time.Second/2 {
					sample(now, r.series.slot(now)) // the last, partial second
				}
				return
			case <-tick.C:
			}
			now := r.clk.now()
			sec := r.series.slot(now - time.Second) // the second that just ended
			if r.proc != nil {
				sample(now, sec)
			}
			if r.progress != nil {
				r.say("%s\n", r.progressLine(now, sec))
			}
		}
	}()
	return pl
}

func (pl *progressLoop) stop() {
	close(pl.done)
	<-pl.finished
}

// progressLine is e.g.
//
//	perf measure 0:12 elapsed, 0:48 left | publish 101234 msg/s 98.9 MB/s p99 4.21 ms | consume 101100 msg/s e2e p99 6.30 ms | errors 0
func (r *run) progressLine(now time.Duration, sec int) string {
	var b strings.Builder
	b.WriteString("perf ")
	if r.label != "" {
		b.WriteString(r.label + " ")
	}
	measured := now >= r.measureStart
	switch {
	case now < r.measureStart:
		fmt.Fprintf(&b, "warmup %s of %s", clockFmt(now), clockFmt(r.measureStart))
	case now < time.Duration(r.end.Load()):
		fmt.Fprintf(&b, "%s %s elapsed, %s left", r.phaseAt(now), clockFmt(now-r.measureStart), clockFmt(r.horizon-now))
	default:
		b.WriteString("finishing")
	}
	if bl := r.backlog; bl != nil {
		switch bl.phase.Load() {
		case backlogBuilding:
			fmt.Fprintf(&b, ", backlog %.1f of %.1f MB", float64(r.ackedBytes.Load()-bl.bytesAtPause)/1e6, float64(bl.target)/1e6)
		case backlogDraining:
			fmt.Fprintf(&b, ", draining for %s", clockFmt(now-bl.drainStart))
		}
	}
	fmt.Fprintf(&b, " | publish %d msg/s %.1f MB/s p99 %s", r.series.pubMsgs[sec].Load(),
		float64(r.series.pubBytes[sec].Load())/1e6, p99Fmt(r.producerLatencies(), measured))
	if len(r.consumers) > 0 {
		fmt.Fprintf(&b, " | consume %d msg/s e2e p99 %s", r.series.conMsgs[sec].Load(), p99Fmt(r.consumerLatencies(), measured))
	}
	fmt.Fprintf(&b, " | errors %d", r.pubErrs.n.Load()+r.conErrs.n.Load())
	return b.String()
}

// p99Fmt is the p99 so far of recs, or "–" before the first sample.
func p99Fmt(recs []*latencyRecorder, measured bool) string {
	h, maxUs := mergeLatency(recs, measured)
	if h.TotalCount() == 0 {
		return "–"
	}
	return usFmt(min(h.ValueAtQuantile(99), maxUs))
}

// phaseAt names what the run was doing at t, for progress lines and the
// per-second series.
func (r *run) phaseAt(t time.Duration) string {
	switch {
	case t < r.measureStart:
		return "warmup"
	case t >= time.Duration(r.end.Load()):
		return "tail"
	}
	if bl := r.backlog; bl != nil {
		ph := bl.phase.Load()
		switch {
		case ph == backlogBuilding || (ph > backlogBuilding && t < bl.drainStart):
			return "backlog-build"
		case ph == backlogDraining || (ph == backlogDone && t < bl.drainEnd):
			return "backlog-drain"
		}
	}
	return "measure"
}

func (r *run) producerLatencies() []*latencyRecorder {
	out := make([]*latencyRecorder, len(r.producers))
	for i, p := range r.producers {
		out[i] = p.lat
	}
	return out
}

func (r *run) consumerLatencies() []*latencyRecorder {
	out := make([]*latencyRecorder, len(r.consumers))
	for i, c := range r.consumers {
		out[i] = c.lat
	}
	return out
}

// clockFmt renders a duration as m:ss (h:mm:ss past an hour).
func clockFmt(d time.Duration) string {
	s := max(int64(d.Round(time.Second)/time.Second), 0)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// usFmt renders microseconds with a readable unit and 3 significant digits.
func usFmt(us int64) string {
	switch {
	case us < 1000:
		return fmt.Sprintf("%d µs", us)
	case us < 1_000_000:
		return sig3(float64(us)/1e3) + " ms"
	}
	return sig3(float64(us)/1e6) + " s"
}

// sig3 formats v with 3 significant digits without switching to exponent
// form (%.3g prints 999.9 as "1e+03").
func sig3(v float64) string {
	switch {
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	case v < 100:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}
