package shard

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/strand-io/strand/dma"
)

// The SIGKILL crash test of a follower's log: the test binary re-runs
// itself as a follower (TestReplicatedCrashChild) that appends the
// leader's batches through AppendReplicated on dma.OSFS with io_uring,
// and now and then truncates to one of them and goes on in a new leader
// epoch, as KIP-101 truncation does. It prints each batch before handing
// it to the log ("app"), each acknowledgement ("ack"), each truncation
// before and after it ran ("trunc", "cut"), each queued batch a truncation
// dropped ("drop"). The parent kills it with
// SIGKILL at a random moment, recovers the log and checks:
//
//   - every acknowledged batch that no later truncation reached is there,
//     byte for byte;
//   - every batch there is one the child appended at that offset, and
//     none that a completed truncation removed (unless appended again
//     after it);
//   - the epoch checkpoint says exactly what the surviving batches say.
//
// Then it starts the child again on the recovered log.

const replCrashDirEnv = "STRAND_REPL_CRASH_CHILD"

func replCrashConfig(dir string) Config {
	c := crashConfig(dir, true)
	c.SegmentBytes = 64 << 10
	c.ExternalHW = true
	return c
}

// replSpec is one batch the child appends: seededBatch bytes stamped with
// base and epoch.
type replSpec struct {
	base          Offset
	seed          int64
	records, size int
	epoch         Epoch
}

func (s replSpec) bytes() []byte {
	b := seededBatch(s.seed, s.records, s.size, 1)
	stampBatch(b, s.base, s.epoch)
	return b
}

func (s replSpec) last() Offset { return s.base + Offset(s.records) - 1 }

// TestReplicatedCrashChild is the child half of TestReplicatedCrashSIGKILL.
func TestReplicatedCrashChild(t *testing.T) {
	dir := os.Getenv(replCrashDirEnv)
	if dir == "" {
		t.Skip("child half of TestReplicatedCrashSIGKILL; runs only as its child process")
	}
	runtime.LockOSThread()
	// One write(2) per line: the parent sees a line only once it is whole.
	say := func(format string, a ...any) { fmt.Fprintf(os.Stdout, format+"\n", a...) }
	fail := func(format string, a ...any) { say("fail "+format, a...); os.Exit(3) }
	seed, _ := strconv.ParseInt(os.Getenv(crashSeedEnv), 10, 64)
	eng, err := newEngineKind("uring")
	if err != nil {
		fail("engine: %v", err)
	}
	l, err := Open(replCrashConfig(dir), dma.OSFS(), eng)
	if err != nil {
		fail("open: %v", err)
	}
	say("ready %d", l.NextOffset())
	rng := rand.New(rand.NewSource(seed))
	epoch := l.LeaderEpoch()
	next := l.NextOffset()
	bounds := []Offset{next} // batch boundaries this run may cut at
	inflight := 0
	for staged := 0; staged < 64<<20; {
		if rng.Intn(40) == 0 {
			at := bounds[rng.Intn(len(bounds))]
			say("trunc %d", at)
			inflight++
			l.TruncateTo(at, func(end Offset, err error) {
				inflight--
				if err != nil || end > at {
					fail("truncate to %d: end %d: %v", at, end, err)
				}
				say("cut %d", at)
			})
			for i, b := range bounds {
				if b > at {
					bounds = bounds[:i]
					break
				}
			}
			next = at
			epoch++ // the leader that made us truncate
		} else {
			if rng.Intn(30) == 0 {
				epoch++
			}
			s := replSpec{base: next, seed: rng.Int63(), records: 1 + rng.Intn(5), size: BatchHeaderSize + rng.Intn(3000), epoch: epoch}
			say("app %d %d %d %d %d", s.base, s.seed, s.records, s.size, s.epoch)
			inflight++
			err := l.AppendReplicated(s.bytes(), func(r AppendResult, err error) {
				inflight--
				switch {
				case errors.Is(err, ErrTruncated):
					say("drop %d", s.base)
				case err != nil:
					fail("append at %d: %v", s.base, err)
				default:
					say("ack %d", r.Base)
				}
			})
			if err != nil {
				fail("append at %d: %v", s.base, err)
			}
			next = s.last() + 1
			bounds = append(bounds, next)
			staged += s.size
		}
		eng.Poll()
		if inflight > 16 {
			if err := eng.Wait(); err != nil {
				fail("wait: %v", err)
			}
		}
	}
	say("idle")
	select {}
}

func TestReplicatedCrashSIGKILL(t *testing.T) {
	t.Parallel()
	rounds := 20
	if testing.Short() {
		rounds = 5
	}
	dir := t.TempDir()
	seed := time.Now().UnixNano()
	if s := os.Getenv("STRAND_CRASH_TEST_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	t.Logf("seed %d (rerun: STRAND_CRASH_TEST_SEED=%d go test -ldflags=-checklinkname=0 -run '%s' ./shard/)", seed, seed, t.Name())
	rng := rand.New(rand.NewSource(seed))
	var base []replSpec // the recovered log: durable
	acks, cuts := 0, 0
	for round := 0; round < rounds; round++ {
		lines, ready := runReplCrashChild(t, dir, rng.Int63(), time.Duration(1+rng.Intn(60))*time.Millisecond)
		if want := logEndOf(base); ready != want {
			t.Fatalf("round %d: child resumed at %d, recovered end %d", round, ready, want)
		}
		got, raw := recoverReplicated(t, dir)
		checkReplicatedRound(t, round, base, lines, got, raw)
		for _, l := range lines {
			switch l[0] {
			case "ack":
				acks++
			case "cut":
				cuts++
			}
		}
		base = got
	}
	t.Logf("%d rounds, %d acknowledged batches, %d truncations completed, log end %d", rounds, acks, cuts, logEndOf(base))
	if acks == 0 || cuts == 0 {
		t.Fatalf("the children acknowledged %d batches and completed %d truncations: nothing was tested", acks, cuts)
	}
}

func logEndOf(specs []replSpec) Offset {
	if len(specs) == 0 {
		return 0
	}
	return specs[len(specs)-1].last() + 1
}

// recoverReplicated opens the log as the next child will and returns its
// batches, as specs (without seeds) and as bytes, after checking the epoch
// checkpoint against them.
func recoverReplicated(t *testing.T, dir string) ([]replSpec, [][]byte) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	eng, err := newEngineKind("uring")
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	l := openLog(t, dma.OSFS(), eng, replCrashConfig(dir))
	defer l.Close()
	if l.HighWatermark() != l.LogStartOffset() {
		t.Fatalf("a replicated log opened with hw %d, log start %d", l.HighWatermark(), l.LogStartOffset())
	}
	raw := readAllRaw(t, l, eng)
	if n := naiveEpochs(t, raw); fmt.Sprint(n) != fmt.Sprint(l.epochs.entries) && len(raw) > 0 {
		t.Fatalf("epoch checkpoint %v, the recovered batches say %v", l.epochs.entries, n)
	}
	out := make([]replSpec, len(raw))
	for i, b := range raw {
		h, _ := ParseBatchHeader(b)
		out[i] = replSpec{base: h.BaseOffset, seed: -1, records: int(h.RecordCount), size: len(b), epoch: h.LeaderEpoch}
	}
	return out, raw
}

// checkReplicatedRound checks the recovered log against the previous one
// and what the child printed.
func checkReplicatedRound(t *testing.T, round int, base []replSpec, lines [][]string, got []replSpec, raw [][]byte) {
	t.Helper()
	type appended struct {
		s       replSpec
		at      int // line index
		acked   bool
		done    bool // its ack or drop was seen
		removed bool // by a truncation asked for after it
		cutDone bool // ... that completed
	}
	var apps []*appended
	byBase := map[Offset][]*appended{}
	for i, f := range lines {
		num := func(k int) int64 { v, _ := strconv.ParseInt(f[k], 10, 64); return v }
		switch f[0] {
		case "app":
			a := &appended{s: replSpec{base: Offset(num(1)), seed: num(2), records: int(num(3)), size: int(num(4)), epoch: Epoch(num(5))}, at: i}
			apps = append(apps, a)
			byBase[a.s.base] = append(byBase[a.s.base], a)
		case "ack", "drop":
			// Appends complete in order: this is the oldest one at that
			// offset not yet completed (an ack may come for a batch a
			// truncation asked for since will remove).
			for _, a := range byBase[Offset(num(1))] {
				if !a.done {
					a.done = true
					a.acked = f[0] == "ack" && !a.removed
					break
				}
			}
		case "trunc", "cut":
			at := Offset(num(1))
			for _, a := range apps {
				if a.s.base >= at && a.at < i {
					if f[0] == "trunc" {
						a.removed = true
					} else if a.removed {
						a.cutDone = true
					}
				}
			}
		}
	}
	// The batches of the previous recovery are durable: they stay unless
	// this round truncated below them.
	minCut := Offset(1 << 62)
	for _, f := range lines {
		if f[0] == "trunc" {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			minCut = min(minCut, Offset(v))
		}
	}
	for i, b := range got {
		if i < len(base) && base[i].base < minCut {
			if b.base != base[i].base || b.size != base[i].size || b.epoch != base[i].epoch {
				t.Fatalf("round %d: batch %d of the earlier log changed: %+v, was %+v", round, i, b, base[i])
			}
			continue
		}
		// Anything else must be a batch the child appended there, not
		// one a completed truncation removed.
		ok := false
		for _, a := range byBase[b.base] {
			if bytes.Equal(raw[i], a.s.bytes()) && !a.cutDone {
				ok = true
			}
		}
		if !ok && !(i < len(base) && b.base == base[i].base && b.size == base[i].size) {
			t.Fatalf("round %d: recovered batch at %d (epoch %d) is no batch the child appended there, or one a completed truncation removed", round, b.base, b.epoch)
		}
	}
	have := map[Offset]int{}
	for i, b := range got {
		have[b.base] = i
	}
	for _, a := range apps {
		if !a.acked || a.removed {
			continue
		}
		i, ok := have[a.s.base]
		if !ok || !bytes.Equal(raw[i], a.s.bytes()) {
			t.Fatalf("round %d: acknowledged batch at %d (epoch %d) lost", round, a.s.base, a.s.epoch)
		}
	}
}

// runReplCrashChild runs the child on dir, kills it delay after its first
// acknowledgement, and returns its lines and where it resumed.
func runReplCrashChild(t *testing.T, dir string, seed int64, delay time.Duration) ([][]string, Offset) {
	t.Helper()
	var lines [][]string
	ready := Offset(-1)
	c := &crashChild{
		test:    "TestReplicatedCrashChild",
		env:     []string{replCrashDirEnv + "=" + dir, crashSeedEnv + "=" + strconv.FormatInt(seed, 10)},
		role:    "child",
		timeout: func() string { return "child did not finish a round within 60s" },
	}
	c.line = func(f []string) {
		switch f[0] {
		case "ready":
			v, _ := strconv.ParseInt(f[1], 10, 64)
			ready = Offset(v)
		case "idle":
			c.killAfter(0)
		default:
			lines = append(lines, f)
			if f[0] == "ack" {
				c.killAfter(delay)
			}
		}
	}
	c.run(t)
	return lines, ready
}
