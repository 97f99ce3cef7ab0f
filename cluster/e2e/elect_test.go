package e2e

import (
	"fmt"
	"testing"
	"time"
)

// TestPreferredLeaderReturns: with replication factor 3, killing the
// broker that leads a partition moves leadership to another in-sync
// replica; once the broker is back and has rejoined the in-sync set, the
// controller's automatic preferred-leader election gives the partition
// back to it (--leader-rebalance-delay), and every acknowledged record is
// still read.
func TestPreferredLeaderReturns(t *testing.T) {
	c := startCluster(t, 3, "--leader-rebalance-delay", "1s")
	ctx := ctxFor(t, 3*time.Minute)
	if err := createReplicated(ctx, c, 1, "pref", [][]int32{{1, 2, 3}, {2, 3, 1}, {3, 1, 2}}); err != nil {
		t.Fatalf("create pref: %v", err)
	}
	leadersAre := func(want ...int32) func() error {
		return func() error {
			for id := int32(2); id <= 3; id++ {
				l, err := c.leaders(ctx, id, "pref")
				if err != nil {
					return err
				}
				if fmt.Sprint(l) != fmt.Sprint(want) {
					return fmt.Errorf("leaders %v from broker %d, want %v", l, id, want)
				}
			}
			return nil
		}
	}
	waitUntil(t, 20*time.Second, "preferred leaders", leadersAre(1, 2, 3))
	acked := produceAll(t, ctx, c.client(), "pref", 3, 20)

	c.procs[1].kill()
	waitUntil(t, 30*time.Second, "pref-0 led by another in-sync replica", func() error {
		l, err := c.leaders(ctx, 2, "pref")
		if err != nil {
			return err
		}
		if l[0] == 1 || l[0] == -1 {
			return fmt.Errorf("pref-0 leader %d", l[0])
		}
		return nil
	})
	c.procs[1].start()
	waitUntil(t, 60*time.Second, "pref-0 back with its preferred leader", leadersAre(1, 2, 3))
	consumeCounts(t, ctx, c.seeds(), "pref", acked)
}
