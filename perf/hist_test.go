package perf

import (
	"math"
	"testing"
	"time"
)

// within reports whether got is within HdrHistogram's 3-significant-digit
// precision of want (0.1%, at least one unit).
func within(got, want int64) bool {
	return math.Abs(float64(got-want)) <= max(float64(want)*0.001, 1)
}

func TestPercentilesOfUniformSamples(t *testing.T) {
	rec := newLatencyRecorder()
	for us := int64(1); us <= 10_000; us++ {
		rec.record(time.Duration(us)*time.Microsecond, true)
	}
	rec.record(time.Hour, false) // warm-up samples stay out
	h, maxUs := mergeLatency([]*latencyRecorder{rec}, true)
	p := percentilesOf(h, maxUs)
	// For 1..10000 the q-th percentile is exactly q*100 µs.
	cases := []struct {
		name      string
		got, want int64
	}{
		{"p50", p.P50Us, 5000}, {"p75", p.P75Us, 7500}, {"p95", p.P95Us, 9500},
		{"p99", p.P99Us, 9900}, {"p99.9", p.P999Us, 9990}, {"p99.99", p.P9999Us, 9999},
	}
	for _, c := range cases {
		if !within(c.got, c.want) {
			t.Errorf("%s = %d µs, want %d within 0.1%%", c.name, c.got, c.want)
		}
	}
	if p.MaxUs != 10_000 {
		t.Errorf("max = %d, want exactly 10000 (kept beside the histogram)", p.MaxUs)
	}
	if p.Count != 10_000 {
		t.Errorf("count = %d, want 10000", p.Count)
	}
	if math.Abs(p.MeanUs-5000.5) > 5 {
		t.Errorf("mean = %g, want 5000.5 within 0.1%%", p.MeanUs)
	}
}

func TestPercentilesNeverExceedMax(t *testing.T) {
	rec := newLatencyRecorder()
	rec.record(10_001*time.Microsecond, true) // a value in a wide bucket
	p := percentilesOf(mergeLatency([]*latencyRecorder{rec}, true))
	if p.P9999Us > p.MaxUs || p.P50Us > p.MaxUs || p.MaxUs != 10_001 {
		t.Fatalf("%+v: percentiles above the exact max", p)
	}
}

func TestRecorderClampsOutOfRange(t *testing.T) {
	rec := newLatencyRecorder()
	rec.record(-time.Millisecond, true) // clock skew
	rec.record(2*time.Hour, true)
	p := percentilesOf(mergeLatency([]*latencyRecorder{rec}, true))
	if p.Count != 2 || p.MaxUs != histHighUs {
		t.Fatalf("%+v: want 2 samples, max clamped to %d", p, histHighUs)
	}
}

func TestMergeAcrossRecorders(t *testing.T) {
	a, b := newLatencyRecorder(), newLatencyRecorder()
	for i := range 100 {
		a.record(time.Millisecond, true)
		b.record(time.Duration(i+1)*10*time.Millisecond, i%2 == 0)
	}
	h, maxUs := mergeLatency([]*latencyRecorder{a, b}, true)
	if h.TotalCount() != 150 || maxUs != 990_000 {
		t.Fatalf("merged count %d max %d, want 150 and 990000", h.TotalCount(), maxUs)
	}
}

func TestCurveIsMonotoneAndEndsAtMax(t *testing.T) {
	rec := newLatencyRecorder()
	for us := int64(1); us <= 10_000; us++ {
		rec.record(time.Duration(us)*time.Microsecond, true)
	}
	h, maxUs := mergeLatency([]*latencyRecorder{rec}, true)
	pts := curveOf(h, maxUs)
	if len(pts) < 50 {
		t.Fatalf("only %d points", len(pts))
	}
	for i := 1; i < len(pts); i++ {
		if pts[i].Percentile <= pts[i-1].Percentile || pts[i].ValueUs < pts[i-1].ValueUs {
			t.Fatalf("point %d %+v after %+v is not increasing", i, pts[i], pts[i-1])
		}
	}
	last := pts[len(pts)-1]
	if last.Percentile != 100 || last.ValueUs != 10_000 {
		t.Fatalf("last point %+v, want the max at 100%%", last)
	}
	// 10,000 samples resolve four nines and no more.
	if p := pts[len(pts)-2].Percentile; p < 99.99-1e-9 || p > 99.99+1e-9 {
		t.Fatalf("last resolvable percentile %g, want 99.99", p)
	}
	if curveOf(newHist(), 0) != nil {
		t.Fatal("an empty histogram has a curve")
	}
}

func TestCurveStartsAtTheSmallestSample(t *testing.T) {
	rec := newLatencyRecorder()
	for us := int64(5_000); us <= 50_000; us++ {
		rec.record(time.Duration(us)*time.Microsecond, true)
	}
	h, maxUs := mergeLatency([]*latencyRecorder{rec}, true)
	pts := curveOf(h, maxUs)
	if first := pts[0]; first.Percentile != 0 || !h.ValuesAreEquivalent(first.ValueUs, 5_000) {
		t.Fatalf("first point %+v, want the smallest sample (5000 µs) at 0%%", first)
	}
}

func TestNines(t *testing.T) {
	for p, want := range map[float64]float64{0: 0, 90: 1, 99: 2, 99.9: 3, 99.99: 4} {
		if got := nines(p); math.Abs(got-want) > 1e-9 {
			t.Errorf("nines(%g) = %g, want %g", p, got, want)
		}
	}
	if !math.IsInf(nines(100), 1) {
		t.Error("nines(100) is finite")
	}
}
