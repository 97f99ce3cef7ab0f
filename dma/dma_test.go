package dma

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

func TestAlign(t *testing.T) {
	for _, c := range []struct{ n, up, down int64 }{{0, 0, 0}, {1, 4096, 0}, {4095, 4096, 0}, {4096, 4096, 4096}, {4097, 8192, 4096}} {
		if got := AlignUp(c.n, 4096); got != c.up {
			t.Errorf("AlignUp(%d) = %d, want %d", c.n, got, c.up)
		}
		if got := AlignDown(c.n, 4096); got != c.down {
			t.Errorf("AlignDown(%d) = %d, want %d", c.n, got, c.down)
		}
	}
}

func TestAllocAlignedAndPool(t *testing.T) {
	b := AllocAligned(5000)
	if len(b) != 5000 || cap(b)%os.Getpagesize() != 0 || !IsAligned(b, os.Getpagesize()) {
		t.Fatalf("AllocAligned(5000): len %d cap %d aligned %v", len(b), cap(b), IsAligned(b, os.Getpagesize()))
	}
	FreeAligned(b)
	p := NewPool(1)
	x := p.Get(100)
	if len(x) != 100 || cap(x) != 64<<10 || !IsAligned(x, 4096) {
		t.Fatalf("Pool.Get(100): len %d cap %d", len(x), cap(x))
	}
	y := p.Get(100 << 10)
	if cap(y) != 128<<10 {
		t.Fatalf("Pool.Get(100 KiB) has cap %d, want the 128 KiB class", cap(y))
	}
	p.Put(x)
	if z := p.Get(10); &z[:1][0] != &x[:1][0] {
		t.Fatal("pool did not reuse a returned buffer")
	}
	p.Put(y)
	// Classes from hugeMin up are whole huge pages, so a buffer comes back
	// to the class it was taken from.
	big := p.Get(1 << 20)
	if cap(big) != hugePage {
		t.Fatalf("Pool.Get(1 MiB) has cap %d, want %d", cap(big), hugePage)
	}
	p.Put(big)
	if again := p.Get(900 << 10); &again[:1][0] != &big[:1][0] {
		t.Fatal("pool did not reuse a returned huge buffer")
	}
}

// TestPoolReleaseAndClose: Release frees what is cached; after Close a
// buffer put back is freed rather than cached.
func TestPoolReleaseAndClose(t *testing.T) {
	p := NewPool(4)
	a, b := p.Get(100), p.Get(3<<20)
	p.Put(a)
	p.Put(b)
	p.Release()
	if len(p.free) != 0 {
		t.Fatalf("after Release %d classes still cached", len(p.free))
	}
	c := p.Get(100)
	p.Close()
	p.Put(c)
	if len(p.free) != 0 {
		t.Fatal("a buffer put back after Close was cached")
	}
}

// TestAllocAlignedHuge: large buffers are aligned to and sized in huge
// pages, exactly that range stays mapped (the over-allocation is trimmed),
// and all of it is writable.
func TestAllocAlignedHuge(t *testing.T) {
	// Without THP the kernel may merge the buffer's mapping with a
	// neighbour, and the exact-mapping check below could not tell.
	thp, _ := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	exact := len(thp) > 0 && !strings.Contains(string(thp), "[never]")
	for _, n := range []int{hugeMin, hugeMin + 1, hugePage, 3*hugePage - 7} {
		b := AllocAligned(n)
		if len(b) != n || cap(b) != int(AlignUp(int64(n), hugePage)) || !IsAligned(b, hugePage) {
			t.Fatalf("AllocAligned(%d): len %d cap %d, 2 MiB aligned %v", n, len(b), cap(b), IsAligned(b, hugePage))
		}
		full := b[:cap(b)]
		for i := 0; i < len(full); i += 4096 {
			full[i] = 1
		}
		start := uintptr(unsafe.Pointer(&full[0]))
		maps, err := os.ReadFile("/proc/self/maps")
		if err != nil {
			t.Skip(err)
		}
		want := fmt.Sprintf("%x-%x ", start, start+uintptr(cap(b)))
		if exact && !strings.Contains(string(maps), want) {
			t.Fatalf("AllocAligned(%d): no mapping %q of exactly the buffer (head or tail left mapped, or merged)", n, want)
		}
		FreeAligned(b)
		maps, _ = os.ReadFile("/proc/self/maps")
		if strings.Contains(string(maps), fmt.Sprintf("%x-", start)) {
			t.Fatalf("FreeAligned left the mapping at %x", start)
		}
	}
}

// TestMemFSAlignment: a direct MemFS file refuses what O_DIRECT refuses.
func TestMemFSAlignment(t *testing.T) {
	m := NewMemFS(4096, 1)
	m.MkdirAll("/d")
	f, err := m.OpenFile("/d/f", os.O_RDWR|os.O_CREATE, 0o644, true)
	if err != nil {
		t.Fatal(err)
	}
	buf := AllocAligned(8192)
	defer FreeAligned(buf)
	for _, c := range []struct {
		name string
		p    []byte
		off  int64
	}{{"offset", buf[:4096], 512}, {"length", buf[:4000], 0}, {"address", buf[512 : 512+4096], 0}} {
		if _, err := f.WriteAt(c.p, c.off); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("unaligned %s write: %v, want EINVAL", c.name, err)
		}
		if _, err := f.ReadAt(c.p, c.off); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("unaligned %s read: %v, want EINVAL", c.name, err)
		}
	}
	if _, err := f.WriteAt(buf[:4096], 4096); err != nil {
		t.Fatal(err)
	}
	g, _ := m.OpenFile("/d/f", os.O_RDWR, 0, false) // buffered: anything goes
	if _, err := g.WriteAt([]byte("x"), 3); err != nil {
		t.Fatal(err)
	}
}

// TestMemFSCrash: synced bytes always survive; each unsynced write is
// lost, kept or torn at 512-byte sectors; over many seeds all three happen.
func TestMemFSCrash(t *testing.T) {
	m := NewMemFS(4096, 1)
	m.MkdirAll("/d")
	f, _ := m.OpenFile("/d/f", os.O_RDWR|os.O_CREATE, 0o644, false)
	m.SyncDir("/d")
	synced := bytes.Repeat([]byte{1}, 8192)
	f.WriteAt(synced, 0)
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	unsynced := bytes.Repeat([]byte{2}, 4096)
	f.WriteAt(unsynced, 4096)
	seen := map[string]bool{}
	for seed := int64(0); seed < 200; seed++ {
		c := m.Crash(seed)
		b := memRead(t, c, "/d/f")
		if len(b) != 8192 || !bytes.Equal(b[:4096], synced[:4096]) {
			t.Fatalf("seed %d: synced prefix damaged", seed)
		}
		tail := b[4096:]
		switch {
		case bytes.Equal(tail, synced[:4096]):
			seen["lost"] = true
		case bytes.Equal(tail, unsynced):
			seen["kept"] = true
		default:
			for s := 0; s < 4096; s += 512 {
				if sec := tail[s : s+512]; !bytes.Equal(sec, synced[:512]) && !bytes.Equal(sec, unsynced[:512]) {
					t.Fatalf("seed %d: sector %d is neither old nor new", seed, s/512)
				}
			}
			seen["torn"] = true
		}
	}
	if len(seen) != 3 {
		t.Fatalf("crash outcomes seen: %v, want lost, kept and torn", seen)
	}
	if b := memRead(t, m, "/d/f"); !bytes.Equal(b[4096:], unsynced) {
		t.Fatal("Crash changed the receiver")
	}
}

// TestMemFSTruncateDoesNotSync: truncation is durable, but it must not
// make earlier unsynced writes durable, and writes past the new size are
// gone for good.
func TestMemFSTruncateDoesNotSync(t *testing.T) {
	m := NewMemFS(4096, 1)
	m.MkdirAll("/d")
	f, _ := m.OpenFile("/d/f", os.O_RDWR|os.O_CREATE, 0o644, false)
	m.SyncDir("/d")
	f.WriteAt(bytes.Repeat([]byte{1}, 4096), 0)
	f.Sync()
	f.WriteAt(bytes.Repeat([]byte{2}, 8192), 0) // unsynced, straddles the cut
	if err := f.Truncate(6000); err != nil {
		t.Fatal(err)
	}
	lost, kept := false, false
	for seed := int64(0); seed < 100; seed++ {
		b := memRead(t, m.Crash(seed), "/d/f")
		if len(b) > 6000 {
			t.Fatalf("seed %d: %d bytes after a truncate to 6000", seed, len(b))
		}
		switch {
		case len(b) >= 4096 && b[0] == 1:
			lost = true
		case len(b) == 6000 && b[0] == 2 && b[5999] == 2:
			kept = true
		}
	}
	if !lost || !kept {
		t.Fatalf("unsynced write before truncate: lost seen %v, kept seen %v; want both", lost, kept)
	}
	if err := f.Truncate(10000); err != nil { // growing pads with zeros, durably
		t.Fatal(err)
	}
	f.Sync()
	if b := memRead(t, m.Crash(1), "/d/f"); len(b) != 10000 || !bytes.Equal(b[6000:], make([]byte, 4000)) {
		t.Fatalf("after growing: %d bytes", len(b))
	}
}

// TestMemFSVolatileNames: a create, rename or remove survives a crash only
// once its directory is synced; until then the crash finds the old
// namespace, each name with its file's durable bytes.
func TestMemFSVolatileNames(t *testing.T) {
	m := NewMemFS(4096, 1)
	m.MkdirAll("/d")
	m.MkdirAll("/e")
	write := func(name string, b byte) {
		f, err := m.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644, false)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt([]byte{b}, 0)
		f.Sync()
		f.Close()
	}
	write("/d/old", 1)
	write("/d/gone", 2)
	m.SyncDir("/d")
	write("/d/new", 3)
	write("/e/other", 4)
	m.Rename("/d/old", "/d/renamed")
	m.Remove("/d/gone")
	names := func(c *MemFS) string {
		var out []string
		for _, d := range []string{"/d", "/e"} {
			ns, _ := c.ReadDir(d)
			for _, n := range ns {
				out = append(out, d+"/"+n+"="+string('0'+memRead(t, c, d+"/"+n)[0]))
			}
		}
		return strings.Join(out, " ")
	}
	if got, want := names(m), "/d/new=3 /d/renamed=1 /e/other=4"; got != want {
		t.Fatalf("before the crash: %s, want %s", got, want)
	}
	if got, want := names(m.Crash(1)), "/d/gone=2 /d/old=1"; got != want {
		t.Fatalf("crash before SyncDir: %s, want %s", got, want)
	}
	m.SyncDir("/d")
	if got, want := names(m.Crash(1)), "/d/new=3 /d/renamed=1"; got != want {
		t.Fatalf("crash after SyncDir(/d): %s, want %s", got, want)
	}
	m.VolatileNames = false
	m.Remove("/e/other")
	write("/e/now", 5)
	if got, want := names(m.Crash(1)), "/d/new=3 /d/renamed=1 /e/now=5"; got != want {
		t.Fatalf("with VolatileNames off: %s, want %s", got, want)
	}
}

func TestMemFSFaults(t *testing.T) {
	m := NewMemFS(4096, 1)
	m.MkdirAll("/d")
	f, _ := m.OpenFile("/d/f", os.O_RDWR|os.O_CREATE, 0o644, true)
	buf := AllocAligned(16384)
	defer FreeAligned(buf)
	m.Faults.FailSyncs = 1
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("sync with FailSyncs: %v", err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("second sync: %v", err)
	}
	m.Faults.ShortWrites = 1
	if n, err := f.WriteAt(buf, 0); n != 8192 || !errors.Is(err, ErrShortWrite) {
		t.Fatalf("short write: %d, %v", n, err)
	}
	m.Faults.NoSpaceAfter = 8192 + 4096
	if _, err := f.WriteAt(buf[:8192], 8192); err != nil { // grows by 8192
		t.Fatal(err)
	}
	if _, err := f.WriteAt(buf[:8192], 16384); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write past NoSpaceAfter: %v", err)
	}
	if _, err := f.WriteAt(buf[:8192], 0); err != nil { // overwrite: no growth
		t.Fatalf("overwrite: %v", err)
	}
}

func memRead(t *testing.T, m *MemFS, path string) []byte {
	t.Helper()
	f, err := m.OpenFile(path, os.O_RDONLY, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := f.Size()
	b := make([]byte, n)
	f.ReadAt(b, 0)
	return b
}

// TestEngines runs each engine against real O_DIRECT files: ordered
// callbacks inside Poll only, more operations than ring entries, a write
// reusing the slot of an fdatasync, reads at EOF, and error reporting.
func TestEngines(t *testing.T) {
	dir := t.TempDir()
	p, err := ProbeDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: O_DIRECT %v, align %d", dir, p.Direct, p.Align)
	for _, kind := range []string{"uring", "syscall", "memfs"} {
		t.Run(kind, func(t *testing.T) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var fs FS = OSFS()
			var eng Engine
			switch kind {
			case "uring":
				eng, err = newURingEngine(8)
				if err != nil {
					t.Skipf("io_uring unavailable: %v", err)
				}
			case "syscall":
				eng, err = NewSyscallEngine()
			case "memfs":
				m := NewMemFS(4096, 1)
				m.Reorder = true
				fs, eng = m, m.NewEngine()
			}
			if err != nil {
				t.Fatal(err)
			}
			defer eng.Close()
			fs.MkdirAll(dir)
			f, err := fs.OpenFile(filepath.Join(dir, kind), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644, true)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			engineRoundTrip(t, eng, f)
		})
	}
}

func engineRoundTrip(t *testing.T, eng Engine, f File) {
	const blocks = 40 // more than the 8 ring entries: exercises the backlog
	a := f.Align()
	src := AllocAligned(blocks * a)
	defer FreeAligned(src)
	for i := range src {
		src[i] = byte(i/a + 1)
	}
	done := 0
	var firstErr error
	inCall := true
	for i := 0; i < blocks; i++ {
		// Alternate writes and syncs so write SQEs reuse fsync slots.
		eng.Write(f, src[i*a:(i+1)*a], int64(i*a), func(n int, err error) {
			if inCall {
				t.Error("write callback ran inside Write")
			}
			if err == nil && n != a {
				err = fmt.Errorf("wrote %d of %d", n, a)
			}
			if err != nil && firstErr == nil {
				firstErr = err
			}
			done++
		})
		eng.Sync(f, func(err error) {
			if err != nil && firstErr == nil {
				firstErr = err
			}
			done++
		})
	}
	inCall = false
	if eng.Inflight() != 2*blocks {
		t.Fatalf("inflight %d, want %d", eng.Inflight(), 2*blocks)
	}
	if err := Drain(eng); err != nil {
		t.Fatal(err)
	}
	if firstErr != nil || done != 2*blocks || eng.Inflight() != 0 {
		t.Fatalf("after drain: %d callbacks, inflight %d, err %v", done, eng.Inflight(), firstErr)
	}
	// Read back in one op, plus a read that straddles EOF.
	dst := AllocAligned((blocks + 2) * a)
	defer FreeAligned(dst)
	var got int
	eng.Read(f, dst, 0, func(n int, err error) {
		if err != nil {
			t.Errorf("read: %v", err)
		}
		got = n
	})
	if err := Drain(eng); err != nil {
		t.Fatal(err)
	}
	if got != blocks*a || !bytes.Equal(dst[:got], src) {
		t.Fatalf("read %d bytes, want %d identical", got, blocks*a)
	}
	engineWriteSync(t, eng, f)
	// Errors come back through the callback: direct I/O aligned to no
	// sector size at all.
	if f.Direct() {
		var werr error
		eng.Write(f, src[:100], 100, func(_ int, err error) { werr = err })
		Drain(eng)
		if !errors.Is(werr, syscall.EINVAL) {
			t.Fatalf("unaligned direct write: %v, want EINVAL", werr)
		}
	}
}

func TestProbeDir(t *testing.T) {
	p, err := ProbeDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if p.Align < DefaultAlign || p.Align&(p.Align-1) != 0 {
		t.Fatalf("probe align %d", p.Align)
	}
	for _, m := range []Mode{ModeURing, ModeSyscall, ModeBuffered, Mode(7)} {
		if m.String() == "" {
			t.Fatalf("mode %d has no name", m)
		}
	}
}

// engineWriteSync checks linked write+fdatasync pairs: each pair's write
// callback runs before its sync callback, both exactly once, including past
// the ring's size (backlog) and mixed with plain ops; a failing write fails
// its sync too; and the slots are reusable afterwards.
func engineWriteSync(t *testing.T, eng Engine, f File) {
	const pairs = 30
	a := f.Align()
	src := AllocAligned(pairs * a)
	defer FreeAligned(src)
	for i := range src {
		src[i] = byte(i/a + 7)
	}
	wrote := make([]int, pairs)
	synced := make([]int, pairs)
	plain := 0
	for i := 0; i < pairs; i++ {
		eng.WriteSync(f, src[i*a:(i+1)*a], int64(i*a), func(n int, err error) {
			if err != nil || n != a {
				t.Errorf("pair %d write: %d %v", i, n, err)
			}
			if synced[i] != 0 {
				t.Errorf("pair %d: sync callback before write callback", i)
			}
			wrote[i]++
		}, func(err error) {
			if err != nil {
				t.Errorf("pair %d sync: %v", i, err)
			}
			synced[i]++
		})
		if i%3 == 0 {
			eng.Sync(f, func(err error) {
				if err != nil {
					t.Errorf("plain sync: %v", err)
				}
				plain++
			})
		}
	}
	if err := Drain(eng); err != nil {
		t.Fatal(err)
	}
	for i := range wrote {
		if wrote[i] != 1 || synced[i] != 1 {
			t.Fatalf("pair %d: write callback %d times, sync %d times", i, wrote[i], synced[i])
		}
	}
	if plain != pairs/3 || eng.Inflight() != 0 {
		t.Fatalf("plain syncs %d of %d, inflight %d", plain, pairs/3, eng.Inflight())
	}
	if f.Direct() {
		var werr, serr error
		calls := 0
		eng.WriteSync(f, src[:100], 100, func(_ int, err error) { werr = err; calls++ }, func(err error) { serr = err; calls++ })
		if err := Drain(eng); err != nil {
			t.Fatal(err)
		}
		if calls != 2 || !errors.Is(werr, syscall.EINVAL) || serr == nil {
			t.Fatalf("failing linked write: %d callbacks, write %v, sync %v; want both, EINVAL and an error", calls, werr, serr)
		}
	}
	ok := 0
	eng.WriteSync(f, src[:a], 0, func(n int, err error) {
		if err == nil && n == a {
			ok++
		}
	}, func(err error) {
		if err == nil {
			ok++
		}
	})
	if err := Drain(eng); err != nil || ok != 2 || eng.Inflight() != 0 {
		t.Fatalf("pair after a failure: %d of 2 callbacks succeeded, inflight %d, %v", ok, eng.Inflight(), err)
	}
	dst := AllocAligned(pairs * a)
	defer FreeAligned(dst)
	var got int
	eng.Read(f, dst, 0, func(n int, _ error) { got = n })
	Drain(eng)
	if got < pairs*a || !bytes.Equal(dst, src) {
		t.Fatalf("after linked writes: read %d bytes, contents equal %v", got, bytes.Equal(dst, src))
	}
}

// The engine reads the ring's feature bits through reflection; a giouring
// that renamed the field would silently turn CQE skipping off.
func TestURingFeatures(t *testing.T) {
	e, err := newURingEngine(8)
	if err != nil {
		t.Skipf("io_uring unavailable: %v", err)
	}
	defer e.Close()
	if ringFeatures(e.ring) == 0 {
		t.Fatal("no io_uring feature bits read from giouring.Ring")
	}
	t.Logf("features %#x, CQE skip %v", ringFeatures(e.ring), e.cqeSkip)
}
