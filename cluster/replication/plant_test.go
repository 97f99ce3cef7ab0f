package replication

import (
	"errors"
	"testing"
	"time"
)

// TestSimulationFindsPlantedBug plants the bug the simulator exists to
// catch, a leader that advances the high watermark on a follower's fetch
// offset before the follower has fsynced, and asserts that the short run's
// seeds find it twice over: first by any invariant (the in-sync replicas'
// durable logs must reach the high watermark), then, with that check left
// out, as what the bug does to users: an acknowledged record lost. The same
// seeds pass without the bug (TestSimulation).
func TestSimulationFindsPlantedBug(t *testing.T) {
	for _, skipISRAgree := range []bool{false, true} {
		start := time.Now()
		found := false
		for seed := uint64(0); seed < uint64(*flagSeeds) && !found; seed++ {
			s := newSim(seed, false)
			s.plantBug = true // before run: replicas are made as brokers register
			s.chk.skipISRAgree = skipISRAgree
			err := s.run()
			var v *violation
			if err == nil || !errors.As(err, &v) || skipISRAgree && v.kind != "lost" {
				continue
			}
			found = true
			t.Logf("planted bug found (in-sync check skipped: %v) by seed %d, after %d seeds in %v: %v",
				skipISRAgree, seed, seed+1, time.Since(start).Round(time.Millisecond), err)
		}
		if !found {
			t.Fatalf("no seed of %d found the planted bug (in-sync check skipped: %v)", *flagSeeds, skipISRAgree)
		}
	}
}
