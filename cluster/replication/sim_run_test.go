package replication

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var (
	flagSeed     = flag.Int64("seed", -1, "replay this one simulation seed, with a trace")
	flagSeeds    = flag.Int("seeds", 10000, "simulation seeds in TestSimulation")
	flagTraceLen = flag.Int("trace-len", 80, "events of a failing seed's trace to print")
	flagFirst    = flag.Uint64("first-seed", 0, "first simulation seed in TestSimulation")
	flagDuration = flag.Duration("duration", 0, "run simulation seeds for this long instead of -seeds")
)

const pkgPath = "./cluster/replication/"

func replayCommand(seed uint64) string {
	return fmt.Sprintf("GOWORK=off go test -ldflags=-checklinkname=0 -run 'TestSimulation$' %s -seed=%d -v", pkgPath, seed)
}

// runSeed plays one seed; on failure it plays it again with a trace.
func runSeed(seed uint64) (err error, trace string) {
	return runSeedWith(seed, ctrlKind(*flagController))
}

func runSeedWith(seed uint64, kind ctrlKind) (err error, trace string) {
	if err := newSimWith(seed, false, kind).run(); err == nil {
		return nil, ""
	}
	s := newSimWith(seed, true, kind)
	err = s.run()
	if err == nil {
		return fmt.Errorf("seed %d failed once and passed on replay: the simulation is not deterministic", seed), ""
	}
	return err, fmt.Sprintf("config %+v\nlast events:\n  %s", s.cfg, strings.Join(s.trace[max(0, len(s.trace)-*flagTraceLen):], "\n  "))
}

// sweep runs seeds from first on all cores until n seeds ran (or, with
// d > 0, until d elapsed) and returns the failing seeds found and what the
// passing ones exercised.
func sweep(first uint64, n int, d time.Duration, kind ctrlKind) (ran int64, failed []uint64, cov coverage) {
	var next atomic.Uint64
	next.Store(first)
	var mu sync.Mutex
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				seed := next.Add(1) - 1
				if d > 0 && time.Now().After(deadline) || d == 0 && seed >= first+uint64(n) {
					return
				}
				s := newSimWith(seed, false, kind)
				err := s.run()
				atomic.AddInt64(&ran, 1)
				mu.Lock()
				if err != nil {
					failed = append(failed, seed)
				} else {
					cov.add(s.cov)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return ran, failed, cov
}

// TestSimulation is the short run of the deterministic simulation:
// -seeds N (default 10,000) or -duration D for a long run; -seed S replays
// one seed with a trace of its last events.
func TestSimulation(t *testing.T) {
	if *flagSeed >= 0 {
		err, trace := runSeed(uint64(*flagSeed))
		if err != nil {
			t.Fatalf("seed %d: %v\n%s\nreplay: %s", *flagSeed, err, trace, replayCommand(uint64(*flagSeed)))
		}
		return
	}
	// Each seed's garbage is small and short-lived; collecting it less
	// often is most of the speed of the short run under -race.
	defer debug.SetGCPercent(debug.SetGCPercent(800))
	start := time.Now()
	ran, failed, cov := sweep(*flagFirst, *flagSeeds, *flagDuration, ctrlKind(*flagController))
	t.Logf("%d seeds in %v: %+v", ran, time.Since(start).Round(time.Millisecond), cov)
	if ran >= 10000 && cov.staleFetches == 0 {
		// Rare (a follower's fetch outliving its incarnation, then
		// arriving after the new one's first): the 300 seeds of
		// TestSimulationCoverage do not reach it, the short run does.
		t.Errorf("no fetches from an older incarnation in %d seeds", ran)
	}
	if ran < int64(*flagSeeds) && *flagDuration == 0 {
		t.Fatalf("only %d of %d seeds ran", ran, *flagSeeds)
	}
	for i, seed := range failed {
		if i == 3 {
			t.Errorf("... and %d more failing seeds", len(failed)-3)
			break
		}
		err, trace := runSeed(seed)
		t.Errorf("seed %d: %v\n%s\nreplay: %s", seed, err, trace, replayCommand(seed))
	}
}

// TestSimulationRegressionSeeds replays the seeds in
// testdata/regression-seeds.txt.
func TestSimulationRegressionSeeds(t *testing.T) {
	data, err := os.ReadFile("testdata/regression-seeds.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		seed, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			t.Fatalf("bad seed line %q", line)
		}
		if err, trace := runSeed(seed); err != nil {
			t.Errorf("seed %d (%s): %v\n%s\nreplay: %s", seed, strings.Join(f[1:], " "), err, trace, replayCommand(seed))
		}
	}
}

// TestSimulationCoverage guards against a simulator gone tame: over the
// first seeds of the short run, every kind of event the invariants are
// meant to be tested against must happen.
func TestSimulationCoverage(t *testing.T) {
	var total coverage
	for seed := uint64(0); seed < 300; seed++ {
		s := newSim(seed, false)
		if err := s.run(); err != nil {
			t.Fatalf("seed %d: %v\nreplay: %s", seed, err, replayCommand(seed))
		}
		total.add(s.cov)
	}
	t.Logf("300 seeds: %+v", total)
	for name, n := range map[string]int{
		"leader elections": total.elections, "ISR shrinks": total.isrShrinks, "ISR growths": total.isrGrowths,
		"truncations that removed records": total.truncations, "crashes": total.crashes, "pauses": total.pauses,
		"isolations": total.cuts, "leaders stepping down": total.stepDowns, "reads from stale leaders": total.staleReads,
		"acknowledged batches": total.acked, "NOT_ENOUGH_REPLICAS answers": total.notEnough,
		"deduplicated retries": total.dupAnswers, "wiped data dirs": total.wipes,
		"refused proposals ending the open ones": total.proposalsRefused,
	} {
		if n == 0 {
			t.Errorf("no %s in 300 seeds", name)
		}
	}
}

// TestSimulationFindsLossWithoutDirIDs runs the metadata controller with
// followers that report no data dir id in their fetches, as brokers'
// fetches do not yet, and asserts that the simulation loses acknowledged
// records that way (seed 231 is the first of the short run's): a leader
// proposes to add a follower on the strength of fetches from the
// follower's previous process; the follower meanwhile came back with a
// wiped data dir (RegisterBroker with a new log dir id took it out of
// every in-sync set, or it was not in the set); the compare-and-set on
// the epochs passes, the empty replica joins, and the in-sync set holds a
// copy below the high watermark (elected, it loses acknowledged records).
// It is the brokers' exposure until their fetches carry the dir id, and
// it shows that metadata's dir check is what TestSimulation relies on.
func TestSimulationFindsLossWithoutDirIDs(t *testing.T) {
	for seed := uint64(0); seed < uint64(*flagSeeds); seed++ {
		err := newSimWith(seed, false, ctrlMetadataNoDirs).run()
		var v *violation
		if err != nil && errors.As(err, &v) && (v.kind == "isr-agree" || v.kind == "lost") {
			t.Logf("found by seed %d, after %d seeds: %v", seed, seed+1, err)
			return
		}
	}
	t.Fatalf("no seed of %d lost records or let a replica below the high watermark into the in-sync set with followers reporting no data dir id", *flagSeeds)
}
