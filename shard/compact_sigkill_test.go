package shard

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strand-io/strand/dma"
)

// The SIGKILL-during-cleaning test. The test binary re-runs itself as a
// writer (TestCompactCrashChild) that rewrites a few keys of a compacted
// Log on dma.OSFS, with tombstones, while ticking its cleaner so that a
// pass is almost always running, and prints a line per acknowledged
// record and per cleaner state change. The parent SIGKILLs it at a random
// moment after a pass has started, recovers the log itself and checks the
// compaction invariant (checkLatest): every key's newest record is the
// newest written (so no acknowledged latest value is lost), and a key whose
// newest record is a tombstone serves nothing older (so no deleted key
// comes back, whether its tombstone is still there or has expired past
// delete.retention.ms and been dropped). Then the next round's writer
// resumes on the same directory.
//
// The records are a pure function of the round's seed and their index, and
// each is a batch of its own, so the parent knows what every offset the
// recovered log holds was written with, acknowledged or not.

const (
	compactCrashDirEnv  = "STRAND_COMPACT_CRASH_CHILD"
	compactCrashSeedEnv = "STRAND_COMPACT_CRASH_SEED"
	// compactCrashOpEnv, when not -1, makes the writer SIGKILL itself at
	// that step of a segment swap (killFS), which a kill at a random time
	// rarely lands in.
	compactCrashOpEnv    = "STRAND_COMPACT_CRASH_OP"
	compactCrashHotKeys  = 16
	compactCrashColdKeys = 1000
	// compactCrashRecordsMax bounds what one writer appends, in case a
	// parent never kills it.
	compactCrashRecordsMax = 200_000
)

// compactCrashConfig: small segments, a low dirty ratio and a small
// per-tick budget keep a pass running over many ticks; tombstones expire
// after 100 ms of the writer's wall clock, so later passes drop them.
func compactCrashConfig(dir string) Config {
	return Config{
		Dir:                    dir,
		SegmentBytes:           16 << 10,
		IndexIntervalBytes:     1024,
		BufferBytes:            256 << 10,
		Cleanup:                PolicyCompact,
		MinCleanableDirtyRatio: 0.01,
		DeleteRetentionMs:      100,
		CleanBytesPerTick:      4 << 10,
		Logger:                 quietLogger(),
	}
}

// killFS SIGKILLs the process at a step of a segment swap: once armed,
// just before the at-th metadata operation (open, rename, remove,
// directory sync) counted from the rename that commits a cleaned segment
// (at 0: before that rename itself).
type killFS struct {
	dma.FS
	armed, counting bool
	ops, at         int
}

func (k *killFS) hit(commit bool) {
	if !k.armed || k.at < 0 {
		return
	}
	if commit && !k.counting {
		k.counting = true
	} else if k.counting {
		k.ops++
	}
	if k.counting && k.ops == k.at {
		fmt.Fprintf(os.Stdout, "selfkill %d\n", k.ops)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}

func (k *killFS) OpenFile(path string, flag int, perm os.FileMode, direct bool) (dma.File, error) {
	k.hit(false)
	return k.FS.OpenFile(path, flag, perm, direct)
}

func (k *killFS) Rename(from, to string) error {
	k.hit(strings.HasSuffix(from, cleanedExt))
	return k.FS.Rename(from, to)
}

func (k *killFS) Remove(path string) error {
	k.hit(false)
	return k.FS.Remove(path)
}

func (k *killFS) SyncDir(dir string) error {
	k.hit(false)
	return k.FS.SyncDir(dir)
}

// compactCrashGen generates a round's records, from its seed, in order.
type compactCrashGen struct {
	rng   *rand.Rand
	round int64
}

func (g *compactCrashGen) next(i int) (kv, int16) {
	// Half the records rewrite a few hot keys; the rest land on many cold
	// keys, whose latest records (and tombstones) sit in the old segments
	// the cleaner rewrites, where a botched swap would lose them.
	k := []byte(fmt.Sprint("h", g.rng.Intn(compactCrashHotKeys)))
	if g.rng.Intn(2) == 0 {
		k = []byte(fmt.Sprint("c", g.rng.Intn(compactCrashColdKeys)))
	}
	var v []byte
	if g.rng.Intn(7) != 0 {
		v = []byte(fmt.Sprintf("r%d-%d", g.round, i))
	}
	return kv{k, v}, int16(g.rng.Intn(5))
}

// TestCompactCrashChild is the writer half of TestCompactSIGKILL. It does
// nothing unless STRAND_COMPACT_CRASH_CHILD names a log directory.
func TestCompactCrashChild(t *testing.T) {
	dir := os.Getenv(compactCrashDirEnv)
	if dir == "" {
		t.Skip("writer half of TestCompactSIGKILL; runs only as its child process")
	}
	runtime.LockOSThread() // the engine belongs to this thread
	fail := func(format string, a ...any) {
		fmt.Fprintf(os.Stdout, "fail "+format+"\n", a...)
		os.Exit(3)
	}
	seed, err := strconv.ParseInt(os.Getenv(compactCrashSeedEnv), 10, 64)
	if err != nil {
		fail("seed: %v", err)
	}
	killAt, err := strconv.Atoi(os.Getenv(compactCrashOpEnv))
	if err != nil {
		fail("kill op: %v", err)
	}
	eng, err := newEngineKind("uring")
	if err != nil {
		fail("engine: %v", err)
	}
	fs := &killFS{FS: dma.OSFS(), at: killAt}
	l, err := Open(compactCrashConfig(dir), fs, eng)
	if err != nil {
		fail("open: %v", err)
	}
	fmt.Fprintf(os.Stdout, "ready %d\n", l.NextOffset())
	g := &compactCrashGen{rng: rand.New(rand.NewSource(seed)), round: seed}
	cleaning, acks := false, 0
	for i := 0; ; {
		// Once a swap step is the kill point, the pass only has to reach
		// it: more appends would only grow the log the pass must cover.
		for j := 0; j < 32 && i < compactCrashRecordsMax && !(fs.armed && killAt >= 0); j, i = j+1, i+1 {
			r, codec := g.next(i)
			idx := i
			now := time.Now().UnixMilli()
			err := l.Append(keyedBatch(t, []kv{r}, now, codec, -1, 0), now, func(res AppendResult, err error) {
				if err != nil {
					fail("append: %v", err)
				}
				// One write(2) per line: the parent counts a record as
				// acknowledged only once it has read the whole line.
				fmt.Fprintf(os.Stdout, "ack %d %d\n", res.Base, idx)
				acks++
			})
			if err != nil {
				fail("append %d: %v", i, err)
			}
		}
		l.Tick(time.Now().UnixMilli())
		if err := dma.Drain(eng); err != nil {
			fail("drain: %v", err)
		}
		if l.Err() != nil {
			fail("log: %v", l.Err())
		}
		if c := l.Cleaning(); c != cleaning {
			cleaning = c
			fmt.Fprintf(os.Stdout, "cleaning %v %d\n", c, l.CleanerPasses())
		}
		fs.armed = fs.armed || cleaning && acks >= 150
	}
}

func TestCompactSIGKILL(t *testing.T) {
	t.Parallel() // mostly waits on its child processes
	rounds := 24
	if testing.Short() {
		rounds = 6
	}
	seed := time.Now().UnixNano()
	if s := os.Getenv("STRAND_CRASH_TEST_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	t.Logf("seed %d (rerun: STRAND_CRASH_TEST_SEED=%d go test -ldflags=-checklinkname=0 -run '%s' ./shard/)", seed, seed, t.Name())
	rng := rand.New(rand.NewSource(seed))
	dir := t.TempDir()
	w := newWritten()
	var next Offset
	acked, midClean, leftovers, selfKills := 0, 0, 0, 0
	for round := 0; round < rounds; round++ {
		childSeed := rng.Int63()
		delay := time.Duration(rng.Intn(60)) * time.Millisecond
		killOp := -1
		if round%2 == 1 {
			killOp = rng.Intn(9)
		}
		r := runCompactChild(t, dir, childSeed, delay, killOp)
		if r.ready != next {
			t.Fatalf("round %d: writer resumed at %d, recovered end is %d", round, r.ready, next)
		}
		// The model: offsets from the resume point on are this round's
		// records, in order, whether or not they survived.
		for o := range w.recs {
			if o >= next {
				delete(w.recs, o)
			}
		}
		g := &compactCrashGen{rng: rand.New(rand.NewSource(childSeed)), round: childSeed}
		var lastAck Offset = -1
		for _, a := range r.acks {
			if a.base != r.ready+Offset(a.idx) {
				t.Fatalf("round %d: record %d acknowledged at %d, expected %d", round, a.idx, a.base, r.ready+Offset(a.idx))
			}
			lastAck = max(lastAck, a.base)
		}
		if r.midClean {
			midClean++
		}
		if r.selfKilled {
			selfKills++
		}
		acked += len(r.acks)
		// A kill between a cleaned segment's write and its swap leaves
		// its files for recovery to finish or drop.
		for _, ext := range []string{cleanedExt, swapExt} {
			m, _ := filepath.Glob(filepath.Join(dir, "*"+ext))
			leftovers += len(m)
			for _, f := range m {
				t.Logf("round %d left %s", round, filepath.Base(f))
			}
		}
		next = verifyCompactedLog(t, dir, w, g, next, lastAck, round%6 == 5 || round == rounds-1)
	}
	t.Logf("%d rounds, %d acknowledged records, log end %d, %d killed while a pass ran (%d before a metadata step), %d cleaner files left by kills",
		rounds, acked, next, midClean, selfKills, leftovers)
	if acked == 0 || midClean == 0 || selfKills == 0 {
		t.Fatalf("no round killed the writer while it cleaned (%d acknowledged records)", acked)
	}
}

type compactChildResult struct {
	ready Offset
	acks  []struct {
		base Offset
		idx  int
	}
	midClean   bool // the last cleaner line before the kill said a pass ran
	selfKilled bool // the writer killed itself before a metadata step
}

// runCompactChild starts the writer and SIGKILLs it delay after the first
// pass that starts once it has 150 acknowledgements (or, should none
// start, delay after its 3,000th). With killOp >= 0 the writer kills
// itself at that step of a swap (killFS), unless the parent's kill comes
// first.
func runCompactChild(t *testing.T, dir string, seed int64, delay time.Duration, killOp int) compactChildResult {
	t.Helper()
	if killOp >= 0 {
		delay += 5 * time.Second // the parent's kill is only the backstop
	}
	res := compactChildResult{ready: -1}
	cleaning := false
	c := &crashChild{
		test: "TestCompactCrashChild",
		env: []string{compactCrashDirEnv + "=" + dir, compactCrashSeedEnv + "=" + strconv.FormatInt(seed, 10),
			compactCrashOpEnv + "=" + strconv.Itoa(killOp)},
		role:   "writer",
		onKill: func() { res.midClean = cleaning },
		timeout: func() string {
			return fmt.Sprintf("writer not killed within 60s (ready %d, %d acks)", res.ready, len(res.acks))
		},
	}
	c.line = func(f []string) {
		switch {
		case len(f) == 2 && f[0] == "ready":
			v, _ := strconv.ParseInt(f[1], 10, 64)
			res.ready = Offset(v)
		case len(f) == 3 && f[0] == "ack":
			base, _ := strconv.ParseInt(f[1], 10, 64)
			idx, _ := strconv.Atoi(f[2])
			res.acks = append(res.acks, struct {
				base Offset
				idx  int
			}{Offset(base), idx})
			if len(res.acks) == 3000 || cleaning && len(res.acks) >= 150 {
				c.killAfter(delay)
			}
		case len(f) == 3 && f[0] == "cleaning":
			if !c.killed {
				cleaning = f[1] == "true"
			}
			if cleaning && len(res.acks) >= 150 {
				c.killAfter(delay)
			}
		case len(f) == 2 && f[0] == "selfkill":
			c.selfKilled()
			res.selfKilled, res.midClean = true, cleaning
		}
	}
	c.run(t)
	if res.ready < 0 {
		t.Fatalf("writer never reported ready; stderr:\n%s", c.stderr.String())
	}
	return res
}

// verifyCompactedLog recovers dir, fills the model with this round's
// records up to the recovered end (g generates them in offset order from
// from), checks the invariant (with pass, after one more pass too) and
// returns the end.
func verifyCompactedLog(t *testing.T, dir string, w *written, g *compactCrashGen, from, lastAck Offset, pass bool) Offset {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	eng, err := newEngineKind("uring")
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	l := openLog(t, dma.OSFS(), eng, compactCrashConfig(dir))
	end := l.HighWatermark()
	if end <= lastAck {
		t.Fatalf("recovered end %d, but offset %d was acknowledged", end, lastAck)
	}
	for o, i := from, 0; o < end; o, i = o+1, i+1 {
		r, _ := g.next(i)
		w.recs[o] = r
	}
	w.latest = map[string]Offset{}
	for o, r := range w.recs {
		if cur, ok := w.latest[string(r.key)]; !ok || o > cur {
			w.latest[string(r.key)] = o
		}
	}
	checkLatest(t, readRecords(t, l, eng), w)
	// A pass over what recovery left (a swap it finished, a cleaned
	// file it dropped) keeps the invariant too.
	if pass {
		tickUntilClean(t, l, eng, time.Now().UnixMilli())
		checkLatest(t, readRecords(t, l, eng), w)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return end
}
