package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// createReplicated creates a topic with explicit replica lists.
func createReplicated(ctx context.Context, c *testCluster, via int32, name string, assign [][]int32) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, -1, -1
	for i, a := range assign {
		ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		ra.Partition, ra.Replicas = int32(i), a
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, c.clientOf(via))
	if err != nil {
		return err
	}
	return kerr.ErrorForCode(resp.Topics[0].ErrorCode)
}

// TestWipedBrokerRejoins: an initial voter killed, its data dir emptied,
// and started again under its node id with --join (a running broker) and
// its Raft address comes back as a member of its cluster (a new Raft
// replica replaces its old one), still a replica of its partitions, which
// have leaders; a partition whose only in-sync replica it was stays
// leaderless with an empty in-sync set (unclean election is off), where
// it would otherwise have led it again, empty. (Leaving the other in-sync
// sets until it has caught up is the metadata's part, tested in
// metadata.TestRegisterWithNewLogDir: with the data path a replica of an
// empty topic catches up at once.)
func TestWipedBrokerRejoins(t *testing.T) {
	c := startCluster(t, 3)
	ctx := ctxFor(t, 3*time.Minute)
	if err := createReplicated(ctx, c, 1, "w", [][]int32{{3, 1, 2}, {1, 2, 3}, {2, 3, 1}}); err != nil {
		t.Fatalf("create w: %v", err)
	}
	if err := createReplicated(ctx, c, 1, "solo", [][]int32{{3}}); err != nil {
		t.Fatalf("create solo: %v", err)
	}
	waitUntil(t, 20*time.Second, "broker 3 leads w-0 and solo-0", func() error {
		w, err := c.leaders(ctx, 1, "w")
		if err != nil {
			return err
		}
		s, err := c.leaders(ctx, 1, "solo")
		if err != nil {
			return err
		}
		if w[0] != 3 || s[0] != 3 {
			return fmt.Errorf("leaders w %v solo %v", w, s)
		}
		return nil
	})

	acked := produceAll(t, ctx, c.client(), "w", 3, 20)

	p3 := c.procs[3]
	p3.kill()
	waitUntil(t, 30*time.Second, "broker 3 fenced", func() error {
		m, err := c.metadataOf(ctx, 1)
		if err != nil {
			return err
		}
		for _, b := range m.Brokers {
			if b.NodeID == 3 {
				return fmt.Errorf("broker 3 still listed")
			}
		}
		return nil
	})
	entries, err := os.ReadDir(p3.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(p3.dir + "/" + e.Name()); err != nil {
			t.Fatal(err)
		}
	}
	p3.extra = []string{"--node-id", "3", "--join", c.procs[1].addr, "--raft-listen", c.raft[3], "--cores", "1", "--broker-lease", testLease}
	p3.start()

	waitUntil(t, 60*time.Second, "broker 3 back, solo-0 leaderless with no in-sync replica", func() error {
		m, err := c.metadataOf(ctx, 1, "w", "solo")
		if err != nil {
			return err
		}
		var brokers []int32
		for _, b := range m.Brokers {
			brokers = append(brokers, b.NodeID)
		}
		slices.Sort(brokers)
		if !slices.Equal(brokers, []int32{1, 2, 3}) {
			return fmt.Errorf("live brokers %v", brokers)
		}
		for _, mt := range m.Topics {
			for _, p := range mt.Partitions {
				if !slices.Contains(p.Replicas, 3) {
					return fmt.Errorf("%s-%d: replicas %v lost broker 3", *mt.Topic, p.Partition, p.Replicas)
				}
				if *mt.Topic == "solo" && (p.Leader != -1 || len(p.ISR) != 0) {
					return fmt.Errorf("solo-0: leader %d isr %v, want leaderless with no in-sync replica", p.Leader, p.ISR)
				}
				if *mt.Topic == "w" && p.Leader == -1 {
					return fmt.Errorf("w-%d: leaderless", p.Partition)
				}
			}
		}
		return nil
	})
	// The restarted broker sees the same metadata from its own replica.
	waitUntil(t, 30*time.Second, "broker 3's own metadata", func() error {
		l, err := c.leaders(ctx, 3, "solo")
		if err != nil {
			return err
		}
		if l[0] != -1 {
			return fmt.Errorf("solo leaders %v from broker 3", l)
		}
		return nil
	})
	// It refetches its replicas of w and rejoins their in-sync sets; no
	// acknowledged record is lost.
	waitUntil(t, 60*time.Second, "broker 3 back in w's in-sync sets", func() error {
		m, err := c.metadataOf(ctx, 1, "w")
		if err != nil {
			return err
		}
		for _, p := range m.Topics[0].Partitions {
			if !slices.Contains(p.ISR, 3) {
				return fmt.Errorf("w-%d: isr %v", p.Partition, p.ISR)
			}
		}
		return nil
	})
	consumeCounts(t, ctx, c.seeds(), "w", acked)
	// Its new replica votes in the old one's place: with broker 1 gone,
	// brokers 2 and 3 still make a quorum that applies a change.
	c.procs[1].kill()
	waitUntil(t, 60*time.Second, "a topic created without broker 1", func() error {
		err := createReplicated(ctx, c, 2, "after", [][]int32{{2, 3}})
		if errors.Is(err, kerr.TopicAlreadyExists) {
			return nil // an earlier attempt was applied, its answer lost
		}
		return err
	})
}
