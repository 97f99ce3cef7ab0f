package shard

import (
	"encoding/binary"
	"hash/crc32"
	"io"
	"log/slog"
	"math/rand"
	"testing"

	"github.com/strand-io/strand/dma"
)

// makeBatch builds a v2 batch of n records whose body is payload bytes.
// The records section is opaque to the log, so any bytes do.
func makeBatch(n int, ts int64, payload []byte) []byte {
	b := make([]byte, BatchHeaderSize+len(payload))
	be := binary.BigEndian
	be.PutUint32(b[8:], uint32(len(b)-12))
	be.PutUint32(b[12:], 0xffffffff)
	b[16] = 2
	be.PutUint32(b[23:], uint32(n-1))
	be.PutUint64(b[27:], uint64(ts))
	be.PutUint64(b[35:], uint64(ts))
	be.PutUint64(b[43:], ^uint64(0))
	be.PutUint16(b[51:], 0xffff)
	be.PutUint32(b[53:], 0xffffffff)
	be.PutUint32(b[57:], uint32(n))
	copy(b[61:], payload)
	be.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// memLog opens a log on fs with a fresh engine of its own.
func memLog(t testing.TB, fs *dma.MemFS, cfg Config) (*Log, dma.Engine) {
	t.Helper()
	eng := fs.NewEngine()
	return openLog(t, fs, eng, cfg), eng
}

// abandon releases the staging buffer of a log whose MemFS engine is being
// thrown away (a simulated crash, the end of a test): Close keeps it mapped
// while a write is in flight, which for a real engine is right, but a
// discarded MemFS engine never touches it again. Without this, tests that
// crash hundreds of logs hold gigabytes of huge pages.
func abandon(l *Log) {
	l.Close()
	if l.buf != nil {
		dma.FreeAligned(l.buf)
		l.buf = nil
	}
}

func payload(rng *rand.Rand, n int) []byte {
	p := make([]byte, n)
	rng.Read(p)
	return p
}

// readAllFrom reads the whole log from offset, driving the engine.
func readAllFrom(t testing.TB, l *Log, eng dma.Engine, from Offset) []BatchHeader {
	t.Helper()
	var out []BatchHeader
	for off := from; off < l.HighWatermark(); {
		var got ReadResult
		var rerr error
		called := false
		l.Read(off, 64<<10, func(r ReadResult, err error) { got, rerr, called = r, err, true })
		for !called {
			if err := dma.Drain(eng); err != nil {
				t.Fatal(err)
			}
		}
		if rerr != nil {
			t.Fatalf("read at %d: %v", off, rerr)
		}
		if len(got.Data) == 0 {
			t.Fatalf("empty read at %d below hw %d", off, l.HighWatermark())
		}
		for b := got.Data; len(b) > 0; {
			h, err := ValidateBatch(b[:min(len(b), int(binary.BigEndian.Uint32(b[8:]))+12)], 0)
			if err != nil {
				t.Fatalf("served invalid batch at %d: %v", off, err)
			}
			if h.LastOffset() >= off {
				out = append(out, h)
			}
			off = h.LastOffset() + 1
			b = b[h.Size():]
		}
	}
	return out
}
