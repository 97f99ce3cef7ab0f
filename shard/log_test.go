package shard

import (
	"math/rand"
	"testing"

	"github.com/strand-io/strand/dma"
)

func TestAppendReadRoundTrip(t *testing.T) {
	fs := dma.NewMemFS(4096, 1)
	fs.Reorder = true
	l, eng := memLog(t, fs, Config{SegmentBytes: 256 << 10})
	rng := rand.New(rand.NewSource(1))
	var acked []AppendResult
	for i := 0; i < 2000; i++ {
		n := 1 + rng.Intn(5)
		b := makeBatch(n, int64(1000+i), payload(rng, rng.Intn(3000)))
		if err := l.Append(b, int64(i), func(r AppendResult, err error) {
			if err != nil {
				t.Fatalf("append: %v", err)
			}
			acked = append(acked, r)
		}); err != nil {
			t.Fatal(err)
		}
		if rng.Intn(10) == 0 {
			dma.Drain(eng)
		}
	}
	dma.Drain(eng)
	if len(acked) != 2000 {
		t.Fatalf("acked %d of 2000", len(acked))
	}
	for i := 1; i < len(acked); i++ {
		if acked[i].Base != acked[i-1].Last+1 {
			t.Fatalf("ack %d base %d after last %d", i, acked[i].Base, acked[i-1].Last)
		}
	}
	if len(l.segs) < 3 {
		t.Fatalf("expected several segments, got %d", len(l.segs))
	}
	got := readAllFrom(t, l, eng, 0)
	if len(got) != 2000 {
		t.Fatalf("read %d batches, want 2000", len(got))
	}
	for i, h := range got {
		if h.BaseOffset != acked[i].Base || h.MaxTimestamp != int64(1000+i) {
			t.Fatalf("batch %d: base %d ts %d, want %d %d", i, h.BaseOffset, h.MaxTimestamp, acked[i].Base, 1000+i)
		}
	}
	// Reopen: everything comes back.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, eng2 := memLog(t, fs, Config{SegmentBytes: 256 << 10})
	if l2.HighWatermark() != acked[len(acked)-1].Last+1 {
		t.Fatalf("hw after reopen %d, want %d", l2.HighWatermark(), acked[len(acked)-1].Last+1)
	}
	if got := readAllFrom(t, l2, eng2, 0); len(got) != 2000 {
		t.Fatalf("after reopen read %d batches", len(got))
	}
}

// TestCrashKeepsAcknowledged crashes the MemFS at random points, with
// unsynced writes lost or torn at random, and checks that every
// acknowledged batch survives and nothing after a hole is served.
func TestCrashKeepsAcknowledged(t *testing.T) {
	for seed := int64(0); seed < 200; seed++ {
		fs := dma.NewMemFS(4096, seed)
		fs.Reorder = true
		rng := rand.New(rand.NewSource(seed))
		cfg := Config{SegmentBytes: int64(64<<10 + rng.Intn(256<<10)), IndexIntervalBytes: 1024, IndexCheckpointBytes: 4096}
		l, eng := memLog(t, fs, cfg)
		var acked []AppendResult
		steps := rng.Intn(400)
		for i := 0; i < steps; i++ {
			b := makeBatch(1+rng.Intn(3), int64(i), payload(rng, rng.Intn(2000)))
			if err := l.Append(b, int64(i), func(r AppendResult, err error) {
				if err == nil {
					acked = append(acked, r)
				}
			}); err != nil {
				t.Fatal(err)
			}
			if rng.Intn(4) == 0 {
				eng.Poll() // a partial drain: some ops complete, others stay in flight
			}
		}
		crashed := fs.Crash(seed)
		l2, eng2 := memLog(t, crashed, cfg)
		got := readAllFrom(t, l2, eng2, 0)
		if len(got) < len(acked) {
			t.Fatalf("seed %d: %d acknowledged batches, %d recovered", seed, len(acked), len(got))
		}
		for i, a := range acked {
			if got[i].BaseOffset != a.Base || got[i].LastOffset() != a.Last {
				t.Fatalf("seed %d: batch %d recovered as %d-%d, acked as %d-%d", seed, i, got[i].BaseOffset, got[i].LastOffset(), a.Base, a.Last)
			}
		}
		// The recovered log accepts appends and survives another crash.
		b := makeBatch(1, 1, []byte("after"))
		var again bool
		l2.Append(b, 1, func(r AppendResult, err error) { again = err == nil })
		dma.Drain(eng2)
		if !again {
			t.Fatalf("seed %d: append after recovery failed", seed)
		}
		l3, eng3 := memLog(t, crashed.Crash(seed+1), cfg)
		if got3 := readAllFrom(t, l3, eng3, 0); len(got3) != len(got)+1 {
			t.Fatalf("seed %d: second recovery has %d batches, want %d", seed, len(got3), len(got)+1)
		}
	}
}
