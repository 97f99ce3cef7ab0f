package shard

import (
	"fmt"
	"math/rand"
	"os"
	"testing"

	"github.com/strand-io/strand/dma"
)

// cutFS takes a power-cut image of the file system just before its
// at-th metadata operation (open, rename, remove, directory sync) once
// armed: the points between the steps of a segment swap, with whatever
// file writes were still unsynced lost, kept or torn by MemFS.Crash.
type cutFS struct {
	*crashFS
	armed bool
	ops   int
	at    int
	seed  int64
	snap  *crashFS
}

func (c *cutFS) hit() {
	if !c.armed || c.snap != nil {
		return
	}
	if c.ops++; c.ops == c.at {
		c.snap = c.crashFS.crash(c.seed)
	}
}

func (c *cutFS) OpenFile(path string, flag int, perm os.FileMode, direct bool) (dma.File, error) {
	c.hit()
	return c.crashFS.OpenFile(path, flag, perm, direct)
}

func (c *cutFS) Rename(from, to string) error {
	c.hit()
	return c.crashFS.Rename(from, to)
}

func (c *cutFS) Remove(path string) error {
	c.hit()
	return c.crashFS.Remove(path)
}

func (c *cutFS) SyncDir(dir string) error {
	c.hit()
	return c.crashFS.SyncDir(dir)
}

// checkLatest is the crash invariant: every record served is the one
// written at its offset, and for every key the newest record served is
// the newest written (so no latest value is lost and no deleted key
// comes back), or nothing at all for a key whose newest is a tombstone.
func checkLatest(t *testing.T, got []gotRecord, w *written) {
	t.Helper()
	newest := map[string]Offset{}
	for _, g := range got {
		want, ok := w.recs[g.off]
		if !ok || string(want.key) != g.key || string(want.value) != string(g.value) || (want.value == nil) != (g.value == nil) {
			t.Fatalf("offset %d: got key %q value %q, wrote %q=%q", g.off, g.key, g.value, want.key, want.value)
		}
		if o, ok := newest[g.key]; !ok || g.off > o {
			newest[g.key] = g.off
		}
	}
	for k, off := range w.latest {
		got, ok := newest[k]
		switch {
		case ok && got != off:
			t.Fatalf("key %q: newest served is offset %d, newest written %d", k, got, off)
		case !ok && w.recs[off].value != nil:
			t.Fatalf("key %q: latest value (offset %d) lost", k, off)
		}
	}
}

// TestCompactPowerCut cuts the power at every metadata step of a cleaning
// pass (the first, which stamps tombstone horizons, or the second, which
// drops expired tombstones), under several crash images each, and checks
// that the recovered log loses no key's latest value and brings back no
// deleted key, then cleans to the end correctly.
func TestCompactPowerCut(t *testing.T) {
	// Every step of both passes is cut; each cut under several crash
	// images (which unsynced writes and names survive). The race detector
	// makes a round ten times slower, so it gets one image of every
	// fifth step (the steps of a swap repeat for every segment).
	seeds, stride := 3, 1
	if testing.Short() || raceEnabled {
		seeds, stride = 1, 5
	}
	cases := 0
	for pass := 1; pass <= 2; pass++ {
		for at := 1; ; at += stride {
			reached := false
			for seed := int64(0); seed < int64(seeds); seed++ {
				ok := powerCutRound(t, pass, at, seed)
				reached = reached || ok
				cases++
			}
			if !reached {
				break // the pass ended before the at-th step
			}
		}
	}
	t.Logf("%d power cuts", cases)
}

func powerCutRound(t *testing.T, pass, at int, seed int64) bool {
	t.Helper()
	fs := &cutFS{crashFS: newCrashFS(dma.NewMemFS(512, seed)), at: at, seed: seed}
	cfg := compactConfig(PolicyCompact)
	eng := fs.NewEngine()
	l := openLog(t, fs, eng, cfg)
	defer abandon(l)
	w := newWritten()
	rng := rand.New(rand.NewSource(99))
	now := int64(1_000_000)
	write := func(n int, keys int, tombstoneEvery int) {
		for i := 0; i < n; i++ {
			k := []byte(fmt.Sprint("k", rng.Intn(keys)))
			v := []byte(fmt.Sprint("v", now))
			if tombstoneEvery > 0 && rng.Intn(tombstoneEvery) == 0 {
				v = nil
			}
			recs := []kv{{k, v}}
			codec := int16(rng.Intn(5))
			res := appendWait(t, l, eng, keyedBatch(t, recs, now, codec, -1, 0), now)
			w.add(res, recs)
			now++
		}
	}
	write(150, 12, 6)
	if pass == 2 {
		tickUntilClean(t, l, eng, now)
		now += cfg.DeleteRetentionMs + 1
		write(60, 12, 0)
	}
	fs.armed = true
	before := l.CleanerPasses()
	for i := 0; fs.snap == nil && (l.CleanerPasses() == before || l.Cleaning()); i++ {
		l.Tick(now)
		drainLog(t, l, eng)
		if l.Err() != nil {
			t.Fatal(l.Err())
		}
		if i > 100000 {
			t.Fatal("cleaner never finished")
		}
	}
	if fs.snap == nil {
		return false
	}
	abandon(l)
	eng2 := fs.snap.NewEngine()
	l2 := openLog(t, fs.snap, eng2, cfg)
	checkLatest(t, readRecords(t, l2, eng2), w)
	tickUntilClean(t, l2, eng2, now)
	got := readRecords(t, l2, eng2)
	checkLatest(t, got, w)
	checkCompacted(t, got, w, activeBase(l2), false)
	return true
}
