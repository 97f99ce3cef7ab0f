package cluster

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strand-io/strand/cluster/metadata"
	"github.com/strand-io/strand/cluster/topicconfig"
	"github.com/strand-io/strand/reactor"
	"github.com/strand-io/strand/shard"
	"github.com/strand-io/strand/wire"
)

// Replication of a partition with more than one replica, on the core that
// owns the partition's log. The metadata group decides who leads, the
// leader epoch and the in-sync set (replicaState); this file carries out
// this broker's part of it:
//
//   - As leader it stamps its appends with its epoch, tracks what each
//     follower holds durably (a follower's fetch offset: followers fetch
//     past a batch only once it is fsynced, fetcher.go), moves the high
//     watermark to the smallest durable end over the in-sync set, answers
//     acks=all produces once the high watermark passes them, and proposes
//     in-sync set changes (ChangePartition) when a follower lags longer
//     than --replica-lag-time-max or catches up.
//   - As follower it truncates what diverges from the leader's log
//     (OffsetForLeaderEpoch), then fetches and appends the leader's
//     batches as they are (fetcher.go).
//
// A deposed leader stops acknowledging at once: its waiting acks=all
// produces are answered NOT_LEADER_OR_FOLLOWER when it learns of the new
// epoch, and before that it cannot complete them, since the new leader
// (a member of the in-sync set it counts) no longer fetches from it.

// replicaState is a replicated partition as the metadata has it.
type replicaState struct {
	Leader         int32
	LeaderEpoch    int32
	PartitionEpoch int32
	Replicas       []int32
	ISR            []int32
	Core           reactor.CoreID // this broker's replica's core
	MinISR         int            // min.insync.replicas
}

func (s *replicaState) equal(o *replicaState) bool {
	return s.Leader == o.Leader && s.LeaderEpoch == o.LeaderEpoch && s.PartitionEpoch == o.PartitionEpoch &&
		s.Core == o.Core && s.MinISR == o.MinISR && slices.Equal(s.Replicas, o.Replicas) && slices.Equal(s.ISR, o.ISR)
}

// followerProgress is what a leader knows of one follower.
type followerProgress struct {
	durable        int64 // its last fetch offset: what it holds fsynced; -1 unknown
	lastCaughtUp   time.Time
	lastFetch      time.Time
	leoAtLastFetch int64 // the leader's log end at its previous fetch
}

// pendingAck is an acks=all produce waiting for the high watermark.
type pendingAck struct {
	last int64
	done func(code int16)
}

// replica is this broker's copy of one replicated partition.
type replica struct {
	part *partition
	me   int32
	st   replicaState

	// Leader side.
	leading    bool // st.Leader == me and the epoch is in the log
	epochStart int64
	followers  map[int32]*followerProgress
	pendingAdd map[int32]bool // in-sync additions proposed, not yet seen applied
	proposing  bool
	acks       []pendingAck
	endWatch   []*watch // follower long-polls waiting for the log end

	// Follower side: which fetcher serves it (nil when not following).
	fetcher *fetcher
}

func (cs *coreState) lagMax() time.Duration { return cs.node.cfg.ReplicaLagTimeMax }

// setReplicaState records the metadata's word on a replicated partition
// of this core and applies it if the log is open (install applies it
// otherwise).
func (cs *coreState) setReplicaState(ref wire.PartitionRef, st *replicaState) {
	if st == nil {
		delete(cs.replStates, ref)
		if part := cs.parts[ref]; part != nil && part.repl != nil {
			part.repl.stop(errNotLeader)
			part.repl = nil
		}
		return
	}
	cs.replStates[ref] = st
	if part := cs.parts[ref]; part != nil {
		part.applyState(st)
	}
}

// applyState moves the partition to the role st gives this broker. A
// partition with one replica whose log keeps its own high watermark has
// no role to run; one that gained followers (a reassignment) has its log
// reopened with replication's high watermark first.
func (p *partition) applyState(st *replicaState) {
	cs := p.owner
	switch {
	case len(st.Replicas) <= 1 && !p.log.ExternalHW():
		if p.repl != nil {
			p.repl.stop(errNotLeader)
			p.repl = nil
		}
		return
	case len(st.Replicas) > 1 && !p.log.ExternalHW():
		cs.reopen(p.ref)
		return
	}
	r := p.repl
	if r == nil {
		r = &replica{part: p, me: cs.node.cfg.NodeID, st: replicaState{Leader: -2, LeaderEpoch: -1}}
		p.repl = r
	}
	old := r.st
	r.st = *st
	roleChanged := old.Leader != st.Leader || old.LeaderEpoch != st.LeaderEpoch
	for b := range r.pendingAdd {
		if slices.Contains(st.ISR, b) || old.PartitionEpoch != st.PartitionEpoch {
			delete(r.pendingAdd, b)
		}
	}
	if old.PartitionEpoch != st.PartitionEpoch {
		r.proposing = false
	}
	if !roleChanged {
		if r.followers != nil {
			r.syncFollowers()
		}
		if r.leading {
			// The in-sync set changed: the high watermark's bound with it,
			// and acks waiting may now fail min.insync.replicas.
			r.recomputeHW()
		}
		return
	}
	r.stop(errNotLeader)
	switch {
	case st.Leader == r.me:
		r.becomeLeader()
	case st.Leader >= 0:
		r.fetcher = cs.fetcherFor(st.Leader)
		r.fetcher.add(p)
	}
}

// reopen closes a partition's log and opens it again, now that its
// config (ExternalHW) changed; install then applies its state.
func (cs *coreState) reopen(ref wire.PartitionRef) {
	cs.node.log.Info("replication: the partition has followers now; reopening its log with replication's high watermark", "partition", ref)
	cs.drop(ref, func(l *shard.Log) {
		t := cs.node.meta.Load().topics[ref.Topic]
		if l == nil || t == nil || cs.closing {
			return
		}
		cs.openAsync(t, ref.Partition, false, func(err error) {
			if err != nil {
				cs.node.log.Error("replication: reopening the log failed", "partition", ref, "err", err)
			}
		})
	})
}

// stop ends the current role: waiting acks get code, follower long-polls
// are woken (their re-read answers the error), fetching stops.
func (r *replica) stop(code int16) {
	r.leading = false
	acks := r.acks
	r.acks = nil
	for _, a := range acks {
		a.done(code)
	}
	r.wakeEnd(true)
	if r.fetcher != nil {
		r.fetcher.remove(r.part)
		r.fetcher = nil
	}
}

// becomeLeader assigns the new epoch in the log once every batch fetched
// as a follower has been placed (Quiesce), so the epoch starts where the
// log really ends; produces are refused until then.
func (r *replica) becomeLeader() {
	epoch := r.st.LeaderEpoch
	l := r.part.log
	r.followers = map[int32]*followerProgress{}
	r.pendingAdd = map[int32]bool{}
	r.syncFollowers()
	l.Quiesce(func() {
		if r.part.repl != r || r.part.owner.parts[r.part.ref] != r.part || r.st.Leader != r.me || r.st.LeaderEpoch != epoch {
			return
		}
		if err := l.SetLeaderEpoch(shard.Epoch(epoch)); err != nil {
			r.part.owner.node.log.Error("replication: recording the leader epoch failed; not leading", "partition", r.part.ref, "epoch", epoch, "err", err)
			return
		}
		r.leading = true
		r.epochStart = int64(l.NextOffset())
		r.part.owner.node.log.Info("replication: leading", "partition", r.part.ref, "epoch", epoch,
			"log_end", r.epochStart, "high_watermark", l.HighWatermark(), "isr", r.st.ISR)
		r.recomputeHW()
	})
}

// syncFollowers tracks exactly the replicas the metadata lists (a
// reassignment adds and removes some under the same leader). A new one
// is unknown (it holds the high watermark until it fetches if it is in
// the in-sync set) and counts as caught up from now.
func (r *replica) syncFollowers() {
	now := time.Now()
	for _, b := range r.st.Replicas {
		if b != r.me && r.followers[b] == nil {
			r.followers[b] = &followerProgress{durable: -1, lastCaughtUp: now, leoAtLastFetch: -1}
		}
	}
	for b := range r.followers {
		if !slices.Contains(r.st.Replicas, b) {
			delete(r.followers, b)
		}
	}
}

// maximalISR is the in-sync set the high watermark waits for: the
// applied one plus additions proposed and not yet applied (KIP-497's
// maximal ISR), so a member counts from the moment the controller may
// accept it, never after.
func (r *replica) inMaximalISR(b int32) bool {
	return slices.Contains(r.st.ISR, b) || r.pendingAdd[b]
}

// recomputeHW moves the high watermark's target to the smallest durable
// end over the in-sync set (the leader's own is the log's durable end,
// which SetHighWatermark applies by itself), then answers the acks it
// allows.
func (r *replica) recomputeHW() {
	if !r.leading {
		return
	}
	l := r.part.log
	target := int64(l.NextOffset())
	for b, f := range r.followers {
		if !r.inMaximalISR(b) {
			continue
		}
		if f.durable < 0 {
			target = min(target, int64(l.HighWatermark()))
		} else {
			target = min(target, f.durable)
		}
	}
	l.SetHighWatermark(shard.Offset(target))
	r.completeAcks()
}

// completeAcks answers the acks=all produces the high watermark passed.
// One that finds the in-sync set below min.insync.replicas gets
// NOT_ENOUGH_REPLICAS_AFTER_APPEND: its records are in every in-sync
// replica, but fewer than the topic asks for.
func (r *replica) completeAcks() {
	hw := int64(r.part.log.HighWatermark())
	n := 0
	for n < len(r.acks) && r.acks[n].last < hw {
		n++
	}
	if n == 0 {
		return
	}
	done := slices.Clone(r.acks[:n])
	r.acks = slices.Delete(r.acks, 0, n)
	code := int16(0)
	if len(r.st.ISR) < r.st.MinISR {
		code = kerr.NotEnoughReplicasAfterAppend.Code
	}
	for _, a := range done {
		a.done(code)
	}
}

// checkProduce is the leader's admission of a produce: NOT_LEADER until
// the epoch is in the log, NOT_ENOUGH_REPLICAS for acks=all with too few
// in-sync replicas (nothing is appended then).
func (r *replica) checkProduce(acks int16) (int16, string) {
	switch {
	case !r.leading:
		return errNotLeader, ""
	case !r.part.owner.leaseValid(time.Now()):
		r.part.owner.node.leaseLog.Warn(r.part.owner.node.log, "replication: refusing produces: this broker's leadership lease ran out (no controller probe renewed it)",
			"partition", r.part.ref, "broker_lease", r.part.owner.node.cfg.BrokerLease)
		return errNotLeader, ""
	case acks == -1 && len(r.st.ISR) < r.st.MinISR:
		return kerr.NotEnoughReplicas.Code, fmt.Sprintf("%d in-sync replicas, min.insync.replicas is %d", len(r.st.ISR), r.st.MinISR)
	}
	return 0, ""
}

// waitCommit answers done once the high watermark passes last.
func (r *replica) waitCommit(last int64, done func(code int16)) {
	if !r.leading {
		done(errNotLeader)
		return
	}
	r.acks = append(r.acks, pendingAck{last: last, done: done})
	// Appends complete in offset order, but a duplicate's answer carries
	// an older offset: keep the queue sorted.
	if n := len(r.acks); n > 1 && r.acks[n-2].last > last {
		slices.SortStableFunc(r.acks, func(a, b pendingAck) int { return int(a.last - b.last) })
	}
	r.completeAcks()
}

// appended runs after a produce was staged: the target moves with the
// log end (it matters when the in-sync set is the leader alone) and
// followers waiting at the old end are woken.
func (r *replica) appended() {
	r.recomputeHW()
	r.wakeEnd(false)
}

// wakeEnd fires the follower long-polls the log end has passed (all of
// them if all).
func (r *replica) wakeEnd(all bool) {
	end := int64(r.part.log.NextOffset())
	if all {
		end = math.MaxInt64
	}
	r.endWatch = r.part.firePast(r.endWatch, end)
}

// followerFetched records a follower's fetch at offset: its durable end,
// whether it is caught up, and what that changes in the in-sync set and
// the high watermark. It returns an error code when this broker does not
// lead the partition (the follower learns of the new leader from it).
func (r *replica) followerFetched(b int32, offset int64) int16 {
	if !r.leading {
		return errNotLeader
	}
	f := r.followers[b]
	if f == nil {
		return errNotLeader
	}
	leo := int64(r.part.log.NextOffset())
	if offset > leo {
		// Not a follower's durable end: nothing it fetched from this
		// log ends there. Counted, it would carry the high watermark to
		// the log end without that follower's copy.
		return kerr.OffsetOutOfRange.Code
	}
	now := time.Now()
	if offset >= leo {
		f.lastCaughtUp = now
	} else if f.leoAtLastFetch >= 0 && offset >= f.leoAtLastFetch {
		f.lastCaughtUp = f.lastFetch
	}
	f.durable, f.lastFetch, f.leoAtLastFetch = offset, now, leo
	if !r.inMaximalISR(b) && offset >= max(int64(r.part.log.HighWatermark()), r.epochStart) {
		r.proposeISR(append(slices.Clone(r.st.ISR), b), b)
	}
	r.recomputeHW()
	return 0
}

// checkLag drops from the in-sync set the followers that have not caught
// up for longer than the lag bound (one proposal at a time).
func (r *replica) checkLag(now time.Time, lagMax time.Duration) {
	if !r.leading || r.proposing {
		return
	}
	var keep []int32
	var dropped []int32
	for _, b := range r.st.ISR {
		if f := r.followers[b]; b != r.me && f != nil && now.Sub(f.lastCaughtUp) > lagMax {
			dropped = append(dropped, b)
			continue
		}
		keep = append(keep, b)
	}
	if len(dropped) == 0 || len(keep) == 0 {
		return
	}
	r.part.owner.node.log.Warn("replication: followers lag, leaving the in-sync set", "partition", r.part.ref,
		"followers", dropped, "lag_bound", lagMax, "isr", keep)
	r.proposeISR(keep, -1)
}

// proposeISR asks the metadata group to make isr the in-sync set,
// against the partition epoch this leader holds. added, if not -1, is
// counted toward the high watermark from now on.
func (r *replica) proposeISR(isr []int32, added int32) {
	if r.proposing {
		return
	}
	r.proposing = true
	if added >= 0 {
		r.pendingAdd[added] = true
	}
	cs := r.part.owner
	n := cs.node
	c := &metadata.ChangePartition{Topic: r.part.ref.Topic, Partition: r.part.ref.Partition,
		LeaderEpoch: metadata.Epoch(r.st.LeaderEpoch), PartitionEpoch: r.st.PartitionEpoch,
		Leader: metadata.BrokerID(r.me), ISR: make([]metadata.BrokerID, len(isr))}
	for i, b := range isr {
		c.ISR[i] = metadata.BrokerID(b)
	}
	pe := r.st.PartitionEpoch
	core := cs.core.ID()
	n.proposeAsync(c, func(res metadata.Result, err error) {
		n.cores[controller].core.Send(core, func(*reactor.Core) {
			if r.part.repl != r || r.st.PartitionEpoch != pe {
				return // the metadata moved on; applyState reset the flags
			}
			r.proposing = false
			if err != nil || !res.Accepted() {
				delete(r.pendingAdd, added)
				n.log.Info("replication: in-sync set change refused", "partition", r.part.ref, "isr", isr, "err", err, "result", res.Message)
				r.recomputeHW()
			}
		})
	})
}

// tickReplicas runs the lag check of every partition this core leads.
func (cs *coreState) tickReplicas() {
	if cs.closing {
		return
	}
	now := time.Now()
	for _, p := range cs.parts {
		if p.repl != nil {
			p.repl.checkLag(now, cs.lagMax())
		}
	}
	cs.core.After(replicaTickInterval, cs.tickReplicas)
}

const replicaTickInterval = 250 * time.Millisecond

// defaultReplicaLagTimeMax is Kafka's replica.lag.time.max.ms default.
const defaultReplicaLagTimeMax = 30 * time.Second

// topicStates are one topic's local partitions' states as last sent to
// their cores, with the metadata Topic they were computed from: Views
// share unchanged topics, so an unchanged pointer means nothing to send.
type topicStates struct {
	mt     *metadata.Topic
	states map[int32]*replicaState
}

// sendReplicaStates hands each core the states of its partitions (every
// local partition, replicated or not: one that gains or loses followers
// changes role, applyState) that changed since the last View (controller
// core), then tells every core it is at v's version (after the states, on
// the same lane). configsChanged says the dynamic broker configs changed,
// which every topic's min.insync.replicas may inherit.
func (n *Node) sendReplicaStates(v *metadata.View, s *snapshot, configsChanged bool) {
	if n.replStates == nil {
		n.replStates = map[string]*topicStates{}
	}
	me := n.brokerID()
	for _, name := range v.TopicNames() {
		mt, _ := v.Topic(name)
		old := n.replStates[name]
		if old != nil && old.mt == mt && !configsChanged {
			continue
		}
		next := &topicStates{mt: mt, states: map[int32]*replicaState{}}
		if t := s.topics[name]; t != nil {
			minISR := -1
			for p := range mt.Partitions {
				mp := &mt.Partitions[p]
				core, ok := mp.CoreOf(me)
				if !ok {
					continue
				}
				if minISR < 0 {
					minISR = 1
					eff := topicconfig.Merge(n.inherited(s), t.Configs)
					if m, err := strconv.Atoi(eff["min.insync.replicas"]); err == nil && m > 0 {
						minISR = m
					}
				}
				next.states[int32(p)] = &replicaState{
					Leader: int32(mp.Leader), LeaderEpoch: int32(mp.LeaderEpoch), PartitionEpoch: mp.PartitionEpoch,
					Replicas: brokerIDs(mp.Replicas), ISR: brokerIDs(mp.ISR), Core: reactor.CoreID(core), MinISR: minISR,
				}
			}
		}
		var prev map[int32]*replicaState
		if old != nil && old.mt.ID == mt.ID {
			prev = old.states
		} else if old != nil {
			n.dropStates(name, old.states) // a new topic of the same name
		}
		n.diffStates(name, prev, next.states)
		n.replStates[name] = next
	}
	for name, old := range n.replStates {
		if _, ok := v.Topic(name); !ok {
			n.dropStates(name, old.states)
			delete(n.replStates, name)
		}
	}
	version := v.Version()
	for _, cs := range n.cores {
		n.cores[controller].core.Send(cs.core.ID(), func(*reactor.Core) {
			cs.appliedVersion = max(cs.appliedVersion, version)
		})
	}
}

func (n *Node) diffStates(topic string, prev, next map[int32]*replicaState) {
	for p, st := range next {
		ref := wire.PartitionRef{Topic: topic, Partition: p}
		old := prev[p]
		if old != nil && old.equal(st) {
			continue
		}
		if old != nil && old.Core != st.Core {
			n.sendState(old.Core, ref, nil)
		}
		n.sendState(st.Core, ref, st)
	}
	for p, old := range prev {
		if next[p] == nil {
			n.sendState(old.Core, wire.PartitionRef{Topic: topic, Partition: p}, nil)
		}
	}
}

func (n *Node) dropStates(topic string, states map[int32]*replicaState) {
	for p, old := range states {
		n.sendState(old.Core, wire.PartitionRef{Topic: topic, Partition: p}, nil)
	}
}

func (n *Node) sendState(core reactor.CoreID, ref wire.PartitionRef, st *replicaState) {
	n.cores[controller].core.Send(core, func(*reactor.Core) {
		n.cores[core].setReplicaState(ref, st)
	})
}
