package perf

import (
	"math"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latency histograms hold microseconds from 1 µs to 1 hour with 3
// significant digits, HdrHistogram's usual setting: every percentile is
// within 0.1% of the true sample value. Longer values are clamped to the
// top (an hour-late message is reported as an hour late).
const (
	histLowUs  = 1
	histHighUs = int64(time.Hour / time.Microsecond)
	histDigits = 3
)

func newHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowUs, histHighUs, histDigits)
}

// latencyRecorder collects one source's latencies (one producer client's
// acks, one consumer's receipts), kept apart for warm-up and for the
// measured window. Each source has its own so the hot path takes an
// uncontended lock; snapshots merge them.
type latencyRecorder struct {
	mu       sync.Mutex
	warm     *hdrhistogram.Histogram
	measured *hdrhistogram.Histogram
	maxUs    int64 // exact measured max: HdrHistogram's Max is rounded up
}

func newLatencyRecorder() *latencyRecorder {
	return &latencyRecorder{warm: newHist(), measured: newHist()}
}

// record adds one latency. Negative values (clock skew between a remote
// producer and this consumer, or a sample landing a few ns early) count as 0.
func (r *latencyRecorder) record(d time.Duration, measured bool) {
	us := min(max(int64(d/time.Microsecond), 0), histHighUs)
	r.mu.Lock()
	if measured {
		_ = r.measured.RecordValue(us) // cannot fail: us is within range
		r.maxUs = max(r.maxUs, us)
	} else {
		_ = r.warm.RecordValue(us)
	}
	r.mu.Unlock()
}

// mergeLatency merges the measured (or warm-up) histograms of recs and
// returns the exact max alongside.
func mergeLatency(recs []*latencyRecorder, measured bool) (*hdrhistogram.Histogram, int64) {
	out := newHist()
	var maxUs int64
	for _, r := range recs {
		r.mu.Lock()
		if measured {
			out.Merge(r.measured)
			maxUs = max(maxUs, r.maxUs)
		} else {
			out.Merge(r.warm)
			maxUs = max(maxUs, r.warm.Max())
		}
		r.mu.Unlock()
	}
	return out, maxUs
}

// Percentiles summarizes a latency distribution in microseconds.
type Percentiles struct {
	Count   int64   `json:"count"`
	MeanUs  float64 `json:"mean_us"`
	P50Us   int64   `json:"p50_us"`
	P75Us   int64   `json:"p75_us"`
	P95Us   int64   `json:"p95_us"`
	P99Us   int64   `json:"p99_us"`
	P999Us  int64   `json:"p99_9_us"`
	P9999Us int64   `json:"p99_99_us"`
	MaxUs   int64   `json:"max_us"`
}

// percentilesOf reads the standard percentiles from h. maxUs is the exact
// maximum when known (0: use h's).
func percentilesOf(h *hdrhistogram.Histogram, maxUs int64) Percentiles {
	if h.TotalCount() == 0 {
		return Percentiles{}
	}
	if maxUs == 0 {
		maxUs = h.Max()
	}
	// HdrHistogram reports the top of a value's bucket; cap at the exact
	// max so p99.99 never exceeds max in a report.
	at := func(q float64) int64 { return min(h.ValueAtQuantile(q), maxUs) }
	return Percentiles{
		Count: h.TotalCount(), MeanUs: math.Round(h.Mean()*10) / 10,
		P50Us: at(50), P75Us: at(75), P95Us: at(95), P99Us: at(99),
		P999Us: at(99.9), P9999Us: at(99.99), MaxUs: maxUs,
	}
}

// CurvePoint is one point of a latency percentile curve.
type CurvePoint struct {
	Percentile float64 `json:"percentile"`
	ValueUs    int64   `json:"value_us"`
}

// curveStep is the spacing of curve points in "nines": 20 points per
// decade (90%, 99%, 99.9%...), fine enough for a smooth chart line.
const curveStep = 0.05

// curveOf samples h on a log-percentile axis: x = log10(1/(1-p)), from 0 up
// to the last percentile the sample count can resolve, then the max at
// 100%. This is the shape HdrHistogram's percentile plots use: tails get as
// much room as the median.
func curveOf(h *hdrhistogram.Histogram, maxUs int64) []CurvePoint {
	n := h.TotalCount()
	if n == 0 {
		return nil
	}
	if maxUs == 0 {
		maxUs = h.Max()
	}
	top := math.Log10(float64(n)) // beyond 1/n the curve has no data
	var pts []CurvePoint
	for i := 0; ; i++ {
		x := float64(i) * curveStep
		if x > top {
			break
		}
		p := 100 * (1 - math.Pow(10, -x))
		p = math.Round(p*1e6) / 1e6
		v := h.ValueAtQuantile(p)
		if i == 0 {
			// ValueAtQuantile(0) is the histogram's lowest bucket (0),
			// not the smallest sample: the curve would start at 0 µs.
			v = h.Min()
		}
		pts = append(pts, CurvePoint{Percentile: p, ValueUs: min(v, maxUs)})
	}
	return append(pts, CurvePoint{Percentile: 100, ValueUs: maxUs})
}

// nines is a percentile's position on the chart's log axis.
func nines(p float64) float64 {
	if p >= 100 {
		return math.Inf(1)
	}
	return math.Log10(100 / (100 - p))
}
