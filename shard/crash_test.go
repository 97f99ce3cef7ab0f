package shard

import (
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strand-io/strand/dma"
	"golang.org/x/sys/unix"
)

// The SIGKILL crash test. The test binary re-runs itself as a writer
// (TestCrashChild) that appends through a real Log on dma.OSFS and prints
// one line per acknowledged batch. The parent kills it with SIGKILL at a
// random moment, recovers the log itself, and checks that every batch it
// saw acknowledged is there byte for byte, that offsets run from 0 without
// a gap, and that no byte of a torn batch is left on disk. Then it starts
// the writer again on the same directory, which must resume at the
// recovered end.

const (
	crashDirEnv      = "STRAND_CRASH_CHILD"
	crashEngineEnv   = "STRAND_CRASH_ENGINE" // "uring" or "syscall"
	crashSeedEnv     = "STRAND_CRASH_SEED"
	crashPreallocEnv = "STRAND_CRASH_PREALLOC"
	// crashChildBytesMax bounds what one child writes, in case a parent
	// never kills it; the child then idles until it is killed.
	crashChildBytesMax = 256 << 20
)

// crashConfig is the log configuration both halves use: small segments so
// that kills land in the middle of rolls too.
func crashConfig(dir string, prealloc bool) Config {
	return Config{
		Dir:                  dir,
		SegmentBytes:         256 << 10,
		IndexIntervalBytes:   4096,
		IndexCheckpointBytes: 16 << 10,
		MaxBatchBytes:        64 << 10,
		BufferBytes:          512 << 10,
		Preallocate:          prealloc,
		Logger:               quietLogger(),
	}
}

func newEngineKind(kind string) (dma.Engine, error) {
	if kind == "syscall" {
		return dma.NewSyscallEngine()
	}
	return dma.NewEngine(64)
}

// crashLine is one acknowledged batch as the child reports it; the batch
// bytes are seededBatch(seed, records, size, ts).
type crashLine struct {
	base, last    Offset
	seed          int64
	records, size int
	ts            int64
	round         int
}

func (c crashLine) batch() []byte { return seededBatch(c.seed, c.records, c.size, c.ts) }

// TestCrashChild is the writer half of TestCrashSIGKILL. It does nothing
// unless STRAND_CRASH_CHILD names a log directory.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("writer half of TestCrashSIGKILL; runs only as its child process")
	}
	runtime.LockOSThread() // the engine belongs to this thread
	fail := func(format string, a ...any) {
		fmt.Fprintf(os.Stdout, "fail "+format+"\n", a...)
		os.Exit(3)
	}
	seed, err := strconv.ParseInt(os.Getenv(crashSeedEnv), 10, 64)
	if err != nil {
		fail("seed: %v", err)
	}
	eng, err := newEngineKind(os.Getenv(crashEngineEnv))
	if err != nil {
		fail("engine: %v", err)
	}
	l, err := Open(crashConfig(dir, os.Getenv(crashPreallocEnv) == "1"), dma.OSFS(), eng)
	if err != nil {
		fail("open: %v", err)
	}
	fmt.Fprintf(os.Stdout, "ready %d %s\n", l.NextOffset(), eng.Mode())
	rng := rand.New(rand.NewSource(seed))
	inflightMax := 1 + rng.Intn(16)
	inflight, staged := 0, 0
	for {
		for inflight < inflightMax && staged < crashChildBytesMax {
			c := crashLine{seed: rng.Int63(), records: 1 + rng.Intn(5), ts: rng.Int63n(1 << 40)}
			c.size = BatchHeaderSize + rng.Intn(4096)
			if rng.Intn(8) == 0 {
				c.size = BatchHeaderSize + rng.Intn(60<<10)
			}
			err := l.Append(c.batch(), 0, func(r AppendResult, err error) {
				inflight--
				if err != nil {
					fail("append: %v", err)
				}
				// One write(2) per line: the parent counts a batch as
				// acknowledged only once it has read the whole line.
				fmt.Fprintf(os.Stdout, "ack %d %d %d %d %d %d\n", r.Base, r.Last, c.seed, c.records, c.size, c.ts)
			})
			if err != nil {
				fail("append: %v", err)
			}
			inflight++
			staged += c.size
		}
		eng.Poll()
		if inflight == 0 && staged >= crashChildBytesMax {
			fmt.Fprintln(os.Stdout, "idle")
			select {} // wait for the parent's SIGKILL
		}
		if inflight >= inflightMax || staged >= crashChildBytesMax {
			if err := eng.Wait(); err != nil {
				fail("wait: %v", err)
			}
		}
	}
}

func TestCrashSIGKILL(t *testing.T) {
	t.Parallel() // mostly waits on its child processes
	rounds := 30
	if testing.Short() {
		rounds = 6
	}
	t.Run("uring", func(t *testing.T) {
		runCrashRounds(t, t.TempDir(), "uring", rounds)
	})
	t.Run("syscall", func(t *testing.T) {
		runCrashRounds(t, t.TempDir(), "syscall", max(rounds/2, 4))
	})
	t.Run("ext4-4k-sectors", func(t *testing.T) {
		mnt := loopMount4K(t)
		assertDirectNeeds4K(t, mnt)
		runCrashRounds(t, filepath.Join(mnt, "log"), "uring", max(rounds/2, 4))
	})
}

// runCrashRounds kills and restarts the writer rounds times on dir.
func runCrashRounds(t *testing.T, dir, engine string, rounds int) {
	seed := time.Now().UnixNano()
	if s := os.Getenv("STRAND_CRASH_TEST_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	t.Logf("seed %d (rerun: STRAND_CRASH_TEST_SEED=%d go test -ldflags=-checklinkname=0 -run '%s' ./shard/)", seed, seed, t.Name())
	rng := rand.New(rand.NewSource(seed))
	var acked []crashLine
	var next Offset
	totalAcked, cuts := 0, 0
	for round := 0; round < rounds; round++ {
		prealloc := round%2 == 1
		delay := time.Duration(1+rng.Intn(50)) * time.Millisecond
		lines, ready := runCrashChild(t, dir, engine, rng.Int63(), prealloc, delay, round%4 >= 2)
		if ready != next {
			t.Fatalf("round %d: writer resumed at offset %d, recovered end is %d", round, ready, next)
		}
		for i, c := range lines {
			c.round = round
			want := next
			if i > 0 {
				want = lines[i-1].last + 1
			}
			if c.base != want {
				t.Fatalf("round %d: ack %d has base %d, expected %d", round, i, c.base, want)
			}
			acked = append(acked, c)
		}
		totalAcked += len(lines)
		var cut bool
		next, cut = verifyCrashedLog(t, dir, engine, acked, prealloc)
		if cut {
			cuts++
		}
		if len(acked) > 0 && next <= acked[len(acked)-1].last {
			t.Fatalf("round %d: recovered end %d, but %d was acknowledged", round, next, acked[len(acked)-1].last)
		}
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*"+logExt))
	t.Logf("%d rounds, %d acknowledged batches, log end %d, %d segments, %d recoveries cut a tail", rounds, totalAcked, next, len(segs), cuts)
	if totalAcked == 0 {
		t.Fatal("no writer acknowledged anything before being killed")
	}
}

// runCrashChild starts the writer, kills it delay after it reports ready,
// and returns the acknowledgements it printed and the offset it resumed at.
//
// The delay counts from the writer's first acknowledgement when
// afterFirstAck is set (so a slow machine still has rounds that write),
// from its start otherwise.
func runCrashChild(t *testing.T, dir, engine string, seed int64, prealloc bool, delay time.Duration, afterFirstAck bool) ([]crashLine, Offset) {
	t.Helper()
	pre := "0"
	if prealloc {
		pre = "1"
	}
	var out []crashLine
	ready := Offset(-1)
	c := &crashChild{
		test: "TestCrashChild",
		env: []string{crashDirEnv + "=" + dir, crashEngineEnv + "=" + engine,
			crashSeedEnv + "=" + strconv.FormatInt(seed, 10), crashPreallocEnv + "=" + pre},
		role:    "writer",
		timeout: func() string { return "writer did not report ready within 60s" },
	}
	c.line = func(f []string) {
		switch {
		case len(f) >= 2 && f[0] == "ready":
			v, _ := strconv.ParseInt(f[1], 10, 64)
			ready = Offset(v)
			if !afterFirstAck {
				c.killAfter(delay)
			}
		case len(f) == 7 && f[0] == "ack":
			var l crashLine
			var v [6]int64
			for i := range v {
				v[i], _ = strconv.ParseInt(f[i+1], 10, 64)
			}
			l.base, l.last, l.seed, l.records, l.size, l.ts = Offset(v[0]), Offset(v[1]), v[2], int(v[3]), int(v[4]), v[5]
			out = append(out, l)
			if afterFirstAck && len(out) == 1 {
				c.killAfter(delay)
			}
		}
	}
	c.run(t)
	if ready < 0 {
		t.Fatalf("writer never reported ready; stderr:\n%s", c.stderr.String())
	}
	return out, ready
}

// verifyCrashedLog recovers dir and checks it against every batch ever
// acknowledged. It returns the recovered end offset.
func verifyCrashedLog(t *testing.T, dir, engine string, acked []crashLine, prealloc bool) (end Offset, cut bool) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	eng, err := newEngineKind(engine)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	cfg := crashConfig(dir, prealloc)
	var warns *int
	var msgs *[]string
	cfg.Logger, warns, msgs = newWarnLogger()
	defer func() {
		for _, m := range *msgs {
			t.Logf("recovery: %s", m)
		}
	}()
	l := openLog(t, dma.OSFS(), eng, cfg)
	if l.LogStartOffset() != 0 {
		t.Fatalf("log start %d after recovery, want 0", l.LogStartOffset())
	}
	got := readRaw(t, l, eng, 0, 256<<10)
	if len(got) > 0 && got[0].h.BaseOffset != 0 {
		t.Fatalf("log starts at %d, want 0", got[0].h.BaseOffset)
	}
	byBase := make(map[Offset][]byte, len(got))
	for _, b := range got {
		byBase[b.h.BaseOffset] = b.data
	}
	for _, c := range acked {
		data, ok := byBase[c.base]
		if !ok {
			t.Fatalf("acknowledged batch %d-%d (round %d) is missing after recovery; log end %d", c.base, c.last, c.round, l.HighWatermark())
		}
		equalBatch(t, fmt.Sprintf("acknowledged in round %d", c.round), data, c.batch(), c.base)
	}
	end = l.HighWatermark()
	if end != l.NextOffset() {
		t.Fatalf("after recovery hw %d != next %d", end, l.NextOffset())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Nothing but zeros may follow the last batch of any file: a torn
	// batch left on disk could be revived by a later crash.
	onDiskBatches := 0
	names, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		base, ok := parseSegmentName(n.Name())
		if !ok {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, n.Name()))
		if err != nil {
			t.Fatal(err)
		}
		st := &scanState{next: Offset(base), maxBatch: 64 << 10}
		st.scan(b, 0, true)
		if st.stop != stopZeros {
			t.Fatalf("%s: after recovery the file holds more than batches and zero padding: %s at byte %d (%s) of %d", n.Name(), st.stop, st.pos, st.stopDetail, len(b))
		}
		if !allZero(b[st.pos:]) {
			t.Fatalf("%s: non-zero bytes after the last batch at %d", n.Name(), st.pos)
		}
		onDiskBatches += st.batches
	}
	if onDiskBatches != len(got) {
		t.Fatalf("segment files hold %d batches, the log served %d", onDiskBatches, len(got))
	}
	return end, *warns > 0
}

// loopMount4K mounts a fresh ext4 on a loop device with 4 KiB logical
// sectors, where O_DIRECT I/O that is only 512-aligned fails, or skips.
func loopMount4K(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to set up a loop device with 4 KiB sectors")
	}
	for _, tool := range []string{"mkfs.ext4", "losetup", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	run := func(name string, args ...string) (string, error) {
		out, err := exec.Command(name, args...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "ext4.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(256 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if out, err := run("mkfs.ext4", "-q", "-F", "-b", "4096", img); err != nil {
		t.Skipf("mkfs.ext4: %v: %s", err, out)
	}
	dev, err := run("losetup", "--sector-size", "4096", "-f", "--show", img)
	if err != nil {
		t.Skipf("losetup --sector-size 4096: %v: %s", err, dev)
	}
	t.Cleanup(func() {
		if out, err := run("losetup", "-d", dev); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := run("mount", "-t", "ext4", dev, mnt); err != nil {
		t.Skipf("mount %s: %v: %s", dev, err, out)
	}
	t.Cleanup(func() {
		if out, err := run("umount", mnt); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	return mnt
}

// assertDirectNeeds4K checks that the loop file system really refuses
// O_DIRECT I/O that is 512-aligned but not 4096-aligned, so the crash test
// on it proves the log's alignment.
func assertDirectNeeds4K(t *testing.T, dir string) {
	t.Helper()
	p, err := dma.ProbeDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Direct || p.Align != 4096 {
		t.Fatalf("probe of %s: %+v, want O_DIRECT with 4096 alignment", dir, p)
	}
	path := filepath.Join(dir, "align-probe")
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_DIRECT, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(path)
	defer unix.Close(fd)
	buf := dma.AllocAligned(4096)
	defer dma.FreeAligned(buf)
	if _, err := unix.Pwrite(fd, buf[:512], 512); err != unix.EINVAL {
		t.Fatalf("a 512-byte O_DIRECT write at offset 512 returned %v, want EINVAL: the device does not enforce 4 KiB sectors", err)
	}
	if _, err := unix.Pwrite(fd, buf, 4096); err != nil {
		t.Fatalf("aligned O_DIRECT write: %v", err)
	}
}
