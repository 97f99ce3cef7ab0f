package shard

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/strand-io/strand/dma"
)

// Helpers shared by the tests in this package. testkit_test.go holds the
// original few (makeBatch, memLog, readAllFrom); these add byte-exact
// checking and a file system wrapper that can lose unsynced removals.

// seededBatch builds a client batch of size bytes (at least the header)
// whose body follows from seed alone, so a checker that knows (seed,
// records, size, ts) rebuilds the exact bytes.
func seededBatch(seed int64, records, size int, ts int64) []byte {
	body := max(size-BatchHeaderSize, 0)
	return makeBatch(records, ts, payload(rand.New(rand.NewSource(seed)), body))
}

// onDisk is batch as the log stores it at base: offset and epoch stamped.
func onDisk(batch []byte, base Offset, epoch Epoch) []byte {
	b := append([]byte(nil), batch...)
	stampBatch(b, base, epoch)
	return b
}

// rawBatch is one batch a read served, with its bytes.
type rawBatch struct {
	h    BatchHeader
	data []byte
}

// splitBatches cuts read data into batches, failing the test on anything
// that is not a sequence of whole, valid batches.
func splitBatches(t testing.TB, data []byte) []rawBatch {
	t.Helper()
	var out []rawBatch
	for len(data) > 0 {
		if len(data) < BatchHeaderSize {
			t.Fatalf("served %d trailing bytes, not a whole batch", len(data))
		}
		size := int(int32(binary.BigEndian.Uint32(data[8:]))) + batchOverhead
		if size < BatchHeaderSize || size > len(data) {
			t.Fatalf("served a batch of %d bytes with %d left", size, len(data))
		}
		h, err := ValidateBatch(data[:size], 0)
		if err != nil {
			t.Fatalf("served an invalid batch: %v", err)
		}
		out = append(out, rawBatch{h, data[:size:size]})
		data = data[size:]
	}
	return out
}

// readOnce runs one Read to completion, driving eng.
func readOnce(t testing.TB, l *Log, eng dma.Engine, off Offset, maxBytes int) (ReadResult, error) {
	t.Helper()
	var got ReadResult
	var rerr error
	called := 0
	l.Read(off, maxBytes, func(r ReadResult, err error) { got, rerr = r, err; called++ })
	if err := dma.Drain(eng); err != nil {
		t.Fatalf("drain: %v", err)
	}
	if called != 1 {
		t.Fatalf("read at %d: callback ran %d times after the engine drained", off, called)
	}
	return got, rerr
}

// readRaw reads every batch from offset from up to the high watermark and
// checks that offsets are contiguous.
func readRaw(t testing.TB, l *Log, eng dma.Engine, from Offset, maxBytes int) []rawBatch {
	t.Helper()
	var out []rawBatch
	for off := from; off < l.HighWatermark(); {
		r, err := readOnce(t, l, eng, off, maxBytes)
		if err != nil {
			t.Fatalf("read at %d (hw %d): %v", off, l.HighWatermark(), err)
		}
		bs := splitBatches(t, r.Data)
		if len(bs) == 0 {
			t.Fatalf("empty read at %d below hw %d", off, l.HighWatermark())
		}
		for _, b := range bs {
			if b.h.BaseOffset > off || b.h.LastOffset() < off {
				t.Fatalf("read at %d served batch %d-%d: offsets not contiguous", off, b.h.BaseOffset, b.h.LastOffset())
			}
			out = append(out, b)
			off = b.h.LastOffset() + 1
		}
	}
	return out
}

// drainLog drives eng until the log's pipeline is idle.
func drainLog(t testing.TB, l *Log, eng dma.Engine) {
	t.Helper()
	for i := 0; !l.Idle() && l.Err() == nil; i++ {
		if err := dma.Drain(eng); err != nil {
			t.Fatal(err)
		}
		if i > 1000 {
			t.Fatal("log does not become idle")
		}
	}
}

func openLog(t testing.TB, fs dma.FS, eng dma.Engine, cfg Config) *Log {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = "/data/t-0"
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	l, err := Open(cfg, fs, eng)
	if err != nil {
		t.Fatalf("open %s: %v", cfg.Dir, err)
	}
	switch fs.(type) {
	case *dma.MemFS, *crashFS: // engines that never touch memory once dropped
		t.Cleanup(func() { abandon(l) })
	}
	return l
}

// memFileBytes returns a MemFS file's current contents.
func memFileBytes(t testing.TB, fs dma.FS, path string) []byte {
	t.Helper()
	f, err := fs.OpenFile(path, os.O_RDONLY, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := readAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeMemFile replaces a MemFS file's contents, durably.
func writeMemFile(t testing.TB, fs dma.FS, path string, b []byte) {
	t.Helper()
	f, err := fs.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644, false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	// The file stands for what a crash left on disk, name included.
	if err := fs.SyncDir(filepath.Dir(path)); err != nil {
		t.Fatal(err)
	}
}

// crashFS wraps a MemFS so that a removal is durable only once its
// directory is synced, as POSIX promises and no more (MemFS itself makes
// every metadata operation durable at once). Like a journaling file
// system, it keeps metadata operations in order: a crash makes some prefix
// of the unsynced removals durable and brings the rest back.
type crashFS struct {
	*dma.MemFS
	removed []removal // since the last SyncDir, in order
}

type removal struct {
	path string
	data []byte // contents when removed
}

func newCrashFS(m *dma.MemFS) *crashFS { return &crashFS{MemFS: m} }

func (c *crashFS) Remove(path string) error {
	path = filepath.Clean(path)
	if f, err := c.MemFS.OpenFile(path, os.O_RDONLY, 0, false); err == nil {
		b, rerr := readAll(f)
		f.Close()
		if rerr == nil {
			c.removed = append(c.removed, removal{path, b})
		}
	}
	return c.MemFS.Remove(path)
}

// SyncDir makes every earlier removal durable, as a journal commit does.
func (c *crashFS) SyncDir(dir string) error {
	c.removed = nil
	return c.MemFS.SyncDir(dir)
}

// crash returns the state after a power cut: MemFS.Crash for the data,
// and a random suffix of the unsynced removals undone.
func (c *crashFS) crash(seed int64) *crashFS {
	out := newCrashFS(c.MemFS.Crash(seed))
	rng := rand.New(rand.NewSource(seed ^ 0x5eed))
	for _, r := range c.removed[rng.Intn(len(c.removed)+1):] {
		if out.Exists(r.path) {
			continue // created again since: the new file wins
		}
		f, err := out.MemFS.OpenFile(r.path, os.O_RDWR|os.O_CREATE, 0o644, false)
		if err != nil {
			panic(err)
		}
		if _, err := f.WriteAt(r.data, 0); err != nil {
			panic(err)
		}
		if err := f.Sync(); err != nil {
			panic(err)
		}
		f.Close()
	}
	return out
}

// equalBatch fails the test when got is not want stamped at base.
func equalBatch(t testing.TB, what string, got []byte, want []byte, base Offset) {
	t.Helper()
	if exp := onDisk(want, base, 0); !bytes.Equal(got, exp) {
		t.Fatalf("%s: batch at %d differs from what was appended (%d bytes, want %d)", what, base, len(got), len(exp))
	}
}

// warnCounter is a slog.Handler that counts records at Warn and above, so
// a test can tell whether recovery had to cut anything.
type warnCounter struct {
	n    *int
	msgs *[]string
}

func newWarnLogger() (*slog.Logger, *int, *[]string) {
	h := warnCounter{n: new(int), msgs: new([]string)}
	return slog.New(h), h.n, h.msgs
}

func (h warnCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h warnCounter) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h warnCounter) WithGroup(string) slog.Handler            { return h }
func (h warnCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		*h.n++
		msg := r.Message
		r.Attrs(func(a slog.Attr) bool { msg += " " + a.String(); return true })
		*h.msgs = append(*h.msgs, msg)
	}
	return nil
}
