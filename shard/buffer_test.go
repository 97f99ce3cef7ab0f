package shard

import (
	"math/rand"
	"testing"

	"github.com/strand-io/strand/dma"
)

// TestStagingBufferFollowsLoad: a partition's staging buffer starts small,
// grows for large or many appends, and shrinks back once the partition has
// been idle, without losing or reordering anything.
func TestStagingBufferFollowsLoad(t *testing.T) {
	fs := dma.NewMemFS(4096, 11)
	fs.Reorder = true
	l, eng := memLog(t, fs, Config{})
	if len(l.buf) != 64<<10 {
		t.Fatalf("new log buffer %d bytes, want 64 KiB", len(l.buf))
	}
	rng := rand.New(rand.NewSource(11))
	var acked int
	for i := 0; i < 300; i++ {
		size := 100 + rng.Intn(4000)
		if i%50 == 0 {
			size = 900 << 10 // a large batch forces growth
		}
		if err := l.Append(makeBatch(1, int64(i), payload(rng, size)), 1000, func(_ AppendResult, err error) {
			if err != nil {
				t.Fatal(err)
			}
			acked++
		}); err != nil {
			t.Fatal(err)
		}
		if rng.Intn(3) == 0 {
			eng.Poll()
		}
	}
	dma.Drain(eng)
	if acked != 300 {
		t.Fatalf("acked %d of 300", acked)
	}
	grown := len(l.buf)
	if grown <= 64<<10 || grown > 8<<20 {
		t.Fatalf("buffer after large appends: %d bytes", grown)
	}
	l.Tick(1000 + bufferIdleMs - 1)
	if len(l.buf) != grown {
		t.Fatal("buffer shrank before the partition was idle long enough")
	}
	l.Tick(1000 + bufferIdleMs)
	if len(l.buf) != 64<<10 {
		t.Fatalf("idle buffer %d bytes, want 64 KiB", len(l.buf))
	}
	// Everything reads back in order, from the staging buffer and disk.
	if got := readAllFrom(t, l, eng, 0); len(got) != 300 {
		t.Fatalf("read %d batches", len(got))
	}
	// And appends continue on the small buffer.
	if o := appendSync(t, l, eng, makeBatch(1, 1, []byte("after"))); o.err != nil || o.res.Base != 300 {
		t.Fatalf("append after shrink: %+v", o)
	}
}
