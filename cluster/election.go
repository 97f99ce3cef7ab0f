package cluster

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strand-io/strand/cluster/metadata"
	"github.com/strand-io/strand/reactor"
	"github.com/strand-io/strand/wire"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Leader elections are decided by the metadata state machine
// (cluster/metadata/election.go); this file is the broker's side of them.

// logUncleanElections warns, on the broker that now leads, about every
// partition whose new leader was not in sync between two applied views:
// records acknowledged by the old in-sync replicas may be gone
// (unclean.leader.election.enable). Off the cores (watchViews).
func (n *Node) logUncleanElections(before, after *metadata.View) {
	if before == nil {
		return
	}
	for _, e := range metadata.UncleanElections(before, after) {
		if e.Leader != n.brokerID() {
			continue
		}
		n.log.Warn("unclean leader election: this broker leads a partition it was not in sync for; records acknowledged before may be lost",
			"topic", e.Topic, "partition", e.Partition, "leader_epoch", e.Epoch)
	}
}

// ElectLeaders proposes one ElectLeader per partition (ElectLeaders, API
// 43), all at once from goroutines, and answers on this core once every
// outcome is applied here (or failed).
func (b *backend) ElectLeaders(unclean bool, parts []wire.PartitionRef, cb func([]wire.PartitionResult)) {
	n := b.node
	origin := b.cs.core.ID()
	all := parts == nil
	if all {
		v := n.raft.View()
		for _, name := range v.TopicNames() {
			t, _ := v.Topic(name)
			for p := range t.Partitions {
				parts = append(parts, wire.PartitionRef{Topic: name, Partition: int32(p)})
			}
		}
	}
	go func() {
		out := make([]wire.PartitionResult, len(parts))
		var wg sync.WaitGroup
		// Proposals in flight at once: enough to fill Raft's batches,
		// few enough that every partition of a large cluster does not
		// start a goroutine at the same moment.
		sem := make(chan struct{}, 32)
		for i, p := range parts {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				res, err := n.proposeWait(&metadata.ElectLeader{Topic: p.Topic, Partition: p.Partition, Unclean: unclean})
				code, msg := n.proposalCode("elect leader", res, err)
				out[i] = wire.PartitionResult{PartitionRef: p, ErrCode: code, Msg: msg}
				if code == 0 {
					e, _ := n.raft.View().Partition(p.Topic, p.Partition)
					n.log.Info("leader elected on request", "topic", p.Topic, "partition", p.Partition, "unclean", unclean,
						"leader", e.Leader, "leader_epoch", e.LeaderEpoch)
				}
			}()
		}
		wg.Wait()
		if all {
			out = slices.DeleteFunc(out, func(r wire.PartitionResult) bool { return r.ErrCode == kerr.ElectionNotNeeded.Code })
		}
		_ = n.rt.Post(origin, func(*reactor.Core) { cb(out) })
	}()
}

// defaultLeaderRebalanceDelay is how long a returned broker must have
// been unfenced before the controller gives it back the partitions it is
// the preferred leader of: long enough for its followers to have caught
// up and rejoined the in-sync sets (the election needs that anyway), short
// enough that leadership spreads back within seconds of a restart.
const defaultLeaderRebalanceDelay = 5 * time.Second

// leaderRebalance is the controller's automatic preferred-leader
// election (Kafka's auto.leader.rebalance.enable): on every liveness
// round it looks for partitions whose preferred replica is live, in sync
// and not leading, on a broker unfenced for at least the delay, and
// proposes their elections from one goroutine at a time, off the round
// (and far off the cores).
type leaderRebalance struct {
	n     *Node
	delay time.Duration
	// unfencedSince is when each broker was first seen unfenced (the
	// tracker goroutine only).
	unfencedSince map[metadata.BrokerID]time.Time
	running       atomic.Bool
}

func (r *leaderRebalance) round(v *metadata.View, now time.Time) {
	if r == nil || r.delay < 0 {
		return
	}
	for _, id := range v.BrokerIDs() {
		b, _ := v.Broker(id)
		if _, seen := r.unfencedSince[id]; b.Fenced {
			delete(r.unfencedSince, id)
		} else if !seen {
			r.unfencedSince[id] = now
		}
	}
	var due []wire.PartitionRef
	for _, name := range v.TopicNames() {
		t, _ := v.Topic(name)
		for i := range t.Partitions {
			p := &t.Partitions[i]
			since, ok := r.unfencedSince[p.Replicas[0]]
			if ok && now.Sub(since) >= r.delay && v.PreferredElectable(p) {
				due = append(due, wire.PartitionRef{Topic: name, Partition: int32(i)})
			}
		}
	}
	if len(due) == 0 || !r.running.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer r.running.Store(false)
		for _, p := range due {
			res, err := r.n.proposeWait(&metadata.ElectLeader{Topic: p.Topic, Partition: p.Partition})
			if err != nil {
				r.n.log.Warn("preferred leader election", "topic", p.Topic, "partition", p.Partition, "err", err)
				return
			}
			if res.Accepted() {
				e, _ := r.n.raft.View().Partition(p.Topic, p.Partition)
				r.n.log.Info("preferred leader back in charge", "topic", p.Topic, "partition", p.Partition,
					"leader", e.Leader, "leader_epoch", e.LeaderEpoch)
			}
		}
	}()
}

// reset forgets what this tracker saw: a new controller starts the delay
// afresh for every broker.
func (r *leaderRebalance) reset() {
	if r != nil {
		clear(r.unfencedSince)
	}
}
