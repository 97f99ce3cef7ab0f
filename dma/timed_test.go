package dma

import (
	"os"
	"testing"
	"time"
)

func TestHistogramBuckets(t *testing.T) {
	var h Histogram
	for _, d := range []time.Duration{0, LatencyBounds[0], LatencyBounds[0] + 1, time.Millisecond, 2 * time.Second} {
		h.Observe(d)
	}
	last := len(LatencyBounds)
	want := map[int]uint64{0: 2, 1: 1, 5: 1, last: 1} // <= bound goes in that bound's bucket
	for i, c := range h.Counts {
		if c != want[i] {
			t.Fatalf("bucket %d (le %v): %d, want %d; all %v", i, bound(i), c, want[i], h.Counts)
		}
	}
	if h.Count() != 5 || h.Sum != 2*LatencyBounds[0]+1+time.Millisecond+2*time.Second {
		t.Fatalf("count %d sum %v", h.Count(), h.Sum)
	}
}

func bound(i int) any {
	if i < len(LatencyBounds) {
		return LatencyBounds[i]
	}
	return "+Inf"
}

// TimedEngine counts every operation once and times each completion, and
// passes results through unchanged.
func TestTimedEngineCountsAndTimes(t *testing.T) {
	m := NewMemFS(4096, 1)
	m.MkdirAll("/d")
	f, err := m.OpenFile("/d/f", os.O_RDWR|os.O_CREATE, 0o644, true)
	if err != nil {
		t.Fatal(err)
	}
	e := Timed(m.NewEngine())
	buf := AllocAligned(4096)
	defer FreeAligned(buf)
	var wrote, read, synced, linkedW, linkedS int
	e.Write(f, buf, 0, func(n int, err error) {
		if err != nil {
			t.Error(err)
		}
		wrote = n
	})
	e.Sync(f, func(err error) { synced++ })
	e.WriteSync(f, buf, 4096, func(n int, err error) { linkedW = n }, func(err error) { linkedS++ })
	if err := Drain(e); err != nil {
		t.Fatal(err)
	}
	e.Read(f, buf, 0, func(n int, err error) { read = n })
	if err := Drain(e); err != nil {
		t.Fatal(err)
	}
	if wrote != 4096 || read != 4096 || synced != 1 || linkedW != 4096 || linkedS != 1 {
		t.Fatalf("callbacks: wrote %d read %d synced %d linked write %d sync %d", wrote, read, synced, linkedW, linkedS)
	}
	s := e.Stats()
	if s.Writes != 2 || s.Reads != 1 || s.Syncs != 2 {
		t.Fatalf("ops: %+v", s)
	}
	if s.Write.Count() != 2 || s.Read.Count() != 1 || s.Sync.Count() != 2 {
		t.Fatalf("timed: write %d read %d sync %d", s.Write.Count(), s.Read.Count(), s.Sync.Count())
	}
}
