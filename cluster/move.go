package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/strand-io/strand/cluster/metadata"
	"github.com/strand-io/strand/cluster/topicconfig"
	"github.com/strand-io/strand/reactor"
	"github.com/strand-io/strand/wire"
)

// A live move of one partition from core S to core T of this broker, while
// clients produce and fetch. Every step is a message; the controller core
// sequences them:
//
//  1. controller: check the move and mark the partition moving.
//  2. S: take the partition out of its table, so requests reaching S from
//     now on get LEADER_NOT_AVAILABLE (retriable: every client refreshes
//     metadata, finds this same broker and retries); release its fetch
//     long-polls; let the log finish every append already staged (each is
//     acknowledged after its fdatasync, as always); close the log, which
//     writes its index and producer-state snapshot.
//  3. controller: propose the new core to the metadata Raft group (one
//     MoveReplicaCore command, off the core); once applied, reconcile
//     publishes it, so requests route to T.
//  4. T: open the log from the same directory, off the core, as at start-up
//     (shard.Open recovers the producer state from the snapshot S wrote),
//     and install it; until then T answers LEADER_NOT_AVAILABLE too.
//
// An append is either staged on S before step 2, and so durable and in the
// log T opens, or refused with a retriable error and never written; an
// idempotent producer's retry of a batch S wrote is recognised as a
// duplicate on T from the producer state that moved with the log. Committed
// offsets live in the group coordinators (the __consumer_offsets
// partitions), not with the partition, so they are untouched.
//
// An offsets partition carries its group coordinator with it: in step 2 S
// also retires the coordinator (stopCoordinator: requests for its groups
// get COORDINATOR_LOAD_IN_PROGRESS from then until T serves), and the
// Quiesce makes every commit already answered, or staged to be, durable
// before the close; in step 4 T hosts a new coordinator that loads the log
// as at start-up, groups' membership included, so members keep their
// generation and go on without a rebalance. Such a move is kept apart from
// a topic deletion's purge of committed offsets (offsetsGate), which has
// to reach every coordinator.
//
// A crash at any point leaves the partition on S (before step 3) or on T
// (after): restart opens it where the metadata says.

// Errors of MovePartition and Rebalance; wrapped with the details.
var (
	// ErrUnknownPartition: no such topic or partition.
	ErrUnknownPartition = errors.New("cluster: no such topic or partition")
	// ErrUnknownCore: the broker has no such core.
	ErrUnknownCore = errors.New("cluster: no such core")
	// ErrNotMovable: the partition cannot move (another broker holds
	// it, or its topic is pinned to other cores).
	ErrNotMovable = errors.New("cluster: partition cannot be moved")
	// ErrPlacementBusy: the partition or its topic is changing (being
	// created, moved, deleted); retry.
	ErrPlacementBusy = errors.New("cluster: partition is changing")
)

// MovePartition moves topic/partition to core while clients use it, and
// returns the core it was on. Moving it to the core it is on does
// nothing. Safe from any goroutine; it waits for the move until ctx ends
// (the move itself then still completes).
func (n *Node) MovePartition(ctx context.Context, topic string, partition int32, core reactor.CoreID) (reactor.CoreID, error) {
	type result struct {
		from reactor.CoreID
		err  error
	}
	ch := make(chan result, 1)
	ref := wire.PartitionRef{Topic: topic, Partition: partition}
	if err := n.rt.Post(controller, func(*reactor.Core) {
		n.startMove(n.cores[controller], ref, core, func(from reactor.CoreID, err error) { ch <- result{from, err} })
	}); err != nil {
		return 0, err
	}
	select {
	case r := <-ch:
		if r.err == nil && r.from != core {
			n.live.moved(ref)
			n.log.Info("partition moved", "topic", topic, "partition", partition, "from_core", r.from, "to_core", core)
		}
		return r.from, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// startMove runs on the controller; done runs there too.
func (n *Node) startMove(ctl *coreState, ref wire.PartitionRef, to reactor.CoreID, done func(reactor.CoreID, error)) {
	s := n.pending()
	t := s.topics[ref.Topic]
	switch {
	case t == nil || ref.Partition < 0 || ref.Partition >= t.Partitions():
		done(0, fmt.Errorf("%w: %s/%d", ErrUnknownPartition, ref.Topic, ref.Partition))
		return
	case uint(to) >= uint(len(n.cores)):
		done(0, fmt.Errorf("%w: core %d; this broker has cores 0 to %d", ErrUnknownCore, to, len(n.cores)-1))
		return
	}
	from := t.Cores[ref.Partition]
	switch {
	case from == notLocal:
		done(from, fmt.Errorf("%w: %s/%d is held by another broker", ErrNotMovable, ref.Topic, ref.Partition))
		return
	case from == to:
		done(from, nil)
		return
	case t.Internal && ref.Topic != OffsetsTopic:
		done(from, fmt.Errorf("%w: %s is internal", ErrNotMovable, ref.Topic))
		return
	case !pinAllows(t.Configs, to):
		done(from, fmt.Errorf("%w: %s is pinned to cores %s (topic config %s)", ErrNotMovable, ref.Topic,
			t.Configs[topicconfig.PinnedCoresKey], topicconfig.PinnedCoresKey))
		return
	}
	if n.moving[ref] || n.unready[ref.Topic] > 0 || n.deleting[ref.Topic] > 0 || n.meta.Load().topics[ref.Topic] != t {
		done(from, fmt.Errorf("%w: %s/%d is being created, moved or deleted", ErrPlacementBusy, ref.Topic, ref.Partition))
		return
	}
	coord := ref.Topic == OffsetsTopic
	if coord && !n.offsetsGate.beginMove() {
		done(from, fmt.Errorf("%w: a topic deletion is deleting committed offsets from %s", ErrPlacementBusy, ref.Topic))
		return
	}
	if n.moving == nil {
		n.moving = map[wire.PartitionRef]bool{}
	}
	n.moving[ref] = true
	finish := func(err error) {
		delete(n.moving, ref)
		if coord {
			n.offsetsGate.endMove()
		}
		done(from, err)
	}
	id := t.ID
	ctl.core.Send(from, func(c *reactor.Core) {
		n.cores[from].detach(ref, func() {
			c.Send(controller, func(*reactor.Core) { n.placeMoved(ctl, ref, id, from, to, finish) })
		})
	})
}

// placeMoved is step 3, on the controller, once S has closed the log: the
// new core is proposed (one MoveReplicaCore command, off the core), and
// once this broker has applied it, reconcile has published it (requests
// route to T, which answers LEADER_NOT_AVAILABLE until step 4).
func (n *Node) placeMoved(ctl *coreState, ref wire.PartitionRef, id [16]byte, from, to reactor.CoreID, finish func(error)) {
	t := n.pending().topics[ref.Topic]
	if t == nil || t.ID != id || ref.Partition >= t.Partitions() {
		// Deleted meanwhile: the deletion removes the closed log.
		finish(fmt.Errorf("%w: %s/%d was deleted during the move", ErrPlacementBusy, ref.Topic, ref.Partition))
		return
	}
	cmd := &metadata.MoveReplicaCore{Topic: ref.Topic, Partition: ref.Partition, Broker: n.brokerID(), Core: metadata.CoreID(to)}
	n.proposeAsync(cmd, func(res metadata.Result, err error) {
		if err == nil {
			err = res.Err()
		}
		if err != nil {
			n.log.Error("moving partition: persisting its core failed; reopening it where it was", "partition", ref, "core", from, "err", err)
			n.openMoved(ctl, from, t, ref, func(rerr error) {
				finish(errors.Join(fmt.Errorf("persisting the new core: %w", err), rerr))
			})
			return
		}
		n.whenSettled("", res.Version, func() {
			nt := n.pending().topics[ref.Topic]
			if nt == nil || nt.ID != id || ref.Partition >= nt.Partitions() {
				finish(fmt.Errorf("%w: %s/%d was deleted during the move", ErrPlacementBusy, ref.Topic, ref.Partition))
				return
			}
			n.openMoved(ctl, to, nt, ref, finish)
		})
	})
}

// openMoved opens ref's existing log on core on, and calls done on the
// controller with the outcome.
func (n *Node) openMoved(ctl *coreState, on reactor.CoreID, t *Topic, ref wire.PartitionRef, done func(error)) {
	ctl.core.Send(on, func(c *reactor.Core) {
		cs := n.cores[on]
		cs.openAsync(t, ref.Partition, false, func(err error) {
			if err != nil {
				n.log.Error("moving partition: opening it on its new core failed", "partition", ref, "core", on, "err", err)
			}
			if ref.Topic == OffsetsTopic {
				// In the same step as the install: no request finds the
				// partition without its coordinator.
				cs.hostCoordinators()
			}
			c.Send(controller, func(*reactor.Core) { done(err) })
		})
	})
}

// detach is step 2, on the source core: the partition leaves the core's
// table at once, and done runs once its log is closed (or was not open).
// It runs behind any open of ref still in progress.
func (cs *coreState) detach(ref wire.PartitionRef, done func()) {
	cs.serially(ref, func(next func()) {
		part, ok := cs.parts[ref]
		if !ok {
			done()
			next()
			return
		}
		delete(cs.parts, ref)
		if ref.Topic == OffsetsTopic {
			cs.stopCoordinator(ref.Partition)
		}
		for _, w := range part.watchers {
			part.fire(w)
		}
		part.watchers = nil
		part.log.Quiesce(func() {
			// A failed close leaves what a crash would: the new core's
			// open recovers the log, and nothing acknowledged is lost.
			if err := part.log.Close(); err != nil {
				cs.node.log.Error("moving partition: closing its log", "partition", ref, "err", err)
			}
			done()
			next()
		})
	})
}

// offsetsGate keeps a move of an offsets partition and a topic deletion's
// purge of committed offsets (backend.DeleteTopic) from overlapping: the
// purge writes tombstones through every coordinator hosted at its start,
// and a coordinator in transit between cores would miss them, while the
// one T hosts would not refuse commits to the topic being deleted. A move
// finding a purge under way is refused (ErrPlacementBusy: retry); a purge
// finding a move waits for it (milliseconds). Admin paths only.
type offsetsGate struct {
	mu            sync.Mutex
	purges, moves int
}

func (g *offsetsGate) beginMove() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.purges > 0 {
		return false
	}
	g.moves++
	return true
}

func (g *offsetsGate) endMove() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.moves--
}

func (g *offsetsGate) beginPurge() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.moves > 0 {
		return false
	}
	g.purges++
	return true
}

func (g *offsetsGate) endPurge() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.purges--
}
