package dma

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// checkCopy runs CopyForDMA into an aligned buffer at dstOff and compares the
// whole buffer with what copy would have left, so a store outside the
// destination or a missed byte fails too.
func checkCopy(t testing.TB, src []byte, dstOff, dstLen int) {
	got := AllocAligned(dstOff + dstLen + 128)
	defer FreeAligned(got)
	want := make([]byte, len(got))
	for i := range got {
		got[i], want[i] = 0xA5, 0xA5
	}
	n1 := CopyForDMA(got[dstOff:dstOff+dstLen], src)
	n2 := copy(want[dstOff:dstOff+dstLen], src)
	if n1 != n2 {
		t.Fatalf("off %d dst %d src %d: copied %d, copy copies %d", dstOff, dstLen, len(src), n1, n2)
	}
	if !bytes.Equal(got, want) {
		i := 0
		for got[i] == want[i] {
			i++
		}
		t.Fatalf("off %d dst %d src %d: first difference at byte %d", dstOff, dstLen, len(src), i-dstOff)
	}
}

func TestCopyForDMA(t *testing.T) {
	src := make([]byte, 300<<10)
	for i := range src {
		src[i] = byte(i*7 + i>>8)
	}
	for _, n := range []int{0, 1, 63, 64, ntMinBytes - 1, ntMinBytes, ntMinBytes + 1, 5000, ntChunk - 1, ntChunk, ntChunk + 65, 3*ntChunk + 17, 300 << 10} {
		for off := 0; off <= 130; off++ {
			checkCopy(t, src[:n], off, n)
			if n > 10 {
				checkCopy(t, src[:n], off, n-10) // dst shorter
				checkCopy(t, src[:n-10], off, n) // src shorter
			}
			checkCopy(t, src[off%7:][:max(0, n-7)], off, n) // unaligned source
		}
	}
}

func FuzzCopyForDMA(f *testing.F) {
	f.Add(0, 0, 0, uint64(1))
	f.Add(5000, 3, 1, uint64(2))
	f.Add(70000, 63, 5, uint64(3))
	f.Fuzz(func(t *testing.T, n, dstOff, srcOff int, seed uint64) {
		if n < 0 || n > 1<<20 || dstOff < 0 || dstOff > 4096 || srcOff < 0 || srcOff > 4096 {
			t.Skip()
		}
		src := make([]byte, n+srcOff)
		r := rand.New(rand.NewPCG(seed, 0))
		for i := range src {
			src[i] = byte(r.Uint32())
		}
		checkCopy(t, src[srcOff:], dstOff, n)
	})
}

// BenchmarkCopyThenWrite shows why CopyForDMA exists. Each op fills a 1 MiB
// aligned buffer with new bytes and writes it with O_DIRECT + fdatasync, as
// the log does for a 1 MiB batch; the baseline writes an unchanged buffer.
// The three run interleaved, op by op, so load on the machine falls on all
// alike. Run on a disk (STRAND_BENCH_DIR, default /var/tmp), not tmpfs.
//
//	go test -ldflags=-checklinkname=0 -run '^$' -bench CopyThenWrite -benchtime 512x ./dma/
func BenchmarkCopyThenWrite(b *testing.B) {
	runtime.LockOSThread() // as a core's thread is
	defer runtime.UnlockOSThread()
	root := os.Getenv("STRAND_BENCH_DIR")
	if root == "" {
		root = "/var/tmp"
	}
	dir, err := os.MkdirTemp(root, "strand-dma-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	const size = 1 << 20
	src := make([]byte, size)
	for i := range src {
		src[i] = byte(i)
	}
	type side struct {
		name string
		fill func([]byte)
		fd   int
		buf  []byte
		took time.Duration
	}
	sides := []*side{
		{name: "unchanged", fill: func([]byte) {}},
		{name: "copy", fill: func(b []byte) { copy(b, src) }},
		{name: "copyfordma", fill: func(b []byte) { CopyForDMA(b, src) }},
	}
	for _, s := range sides {
		s.fd, err = unix.Open(filepath.Join(dir, s.name), unix.O_RDWR|unix.O_CREAT|unix.O_DIRECT|unix.O_CLOEXEC, 0o644)
		if err != nil {
			b.Skipf("O_DIRECT here: %v", err)
		}
		defer unix.Close(s.fd)
		if err := unix.Fallocate(s.fd, 0, 0, int64(b.N)*size); err != nil {
			b.Fatal(err)
		}
		s.buf = AllocAligned(size)
		defer FreeAligned(s.buf)
		copy(s.buf, src)
	}
	unix.Sync()
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := range sides {
			s := sides[(i+k)%len(sides)]
			t0 := time.Now()
			s.fill(s.buf)
			if n, err := unix.Pwrite(s.fd, s.buf, int64(i)*size); err != nil || n != size {
				b.Fatalf("pwrite: %d %v", n, err)
			}
			if err := unix.Fdatasync(s.fd); err != nil {
				b.Fatal(err)
			}
			s.took += time.Since(t0)
		}
	}
	b.ReportMetric(sides[0].took.Seconds()/sides[1].took.Seconds(), "copy/unchanged")
	b.ReportMetric(sides[0].took.Seconds()/sides[2].took.Seconds(), "copyfordma/unchanged")
}
