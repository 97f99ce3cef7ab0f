package cluster

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strand-io/strand/cluster/metadata"
	"github.com/strand-io/strand/cluster/replication"
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
//   - As leader it stamps its appends with its epoch and runs
//     replication.Leading, the leader rules the simulator checks: what
//     each follower holds durably (a follower's fetch offset: followers
//     fetch past a batch only once it is fsynced, fetcher.go), the high
//     watermark target over the in-sync set, when acks=all produces are
//     admitted and answered, and the in-sync set changes to propose
//     (ChangePartition) when a follower lags longer than
//     --replica-lag-time-max or catches up. This file applies what
//     Leading decides to the log, the produce answers and the metadata
//     group.
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

	// Leader side. lead is set once the epoch is in the log.
	leading  bool // st.Leader == me and the epoch is in the log
	lead     *replication.Leading
	acks     []pendingAck
	endWatch []*watch // follower long-polls waiting for the log end

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
	if !roleChanged {
		if r.lead != nil {
			r.lead.SetState(st.partitionState(p.ref.Partition), st.MinISR, nowMillis())
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
	r.lead = nil
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
	l.Quiesce(func() {
		if r.part.repl != r || r.part.owner.parts[r.part.ref] != r.part || r.st.Leader != r.me || r.st.LeaderEpoch != epoch {
			return
		}
		if err := l.SetLeaderEpoch(shard.Epoch(epoch)); err != nil {
			r.part.owner.node.log.Error("replication: recording the leader epoch failed; not leading", "partition", r.part.ref, "epoch", epoch, "err", err)
			return
		}
		r.leading = true
		cfg := replication.LeadingConfig{Broker: replication.BrokerID(r.me),
			LagMaxMs: replication.Millis(r.part.owner.lagMax().Milliseconds()), RetryMs: replication.Millis(replicaProposeRetry.Milliseconds())}
		r.lead = replication.NewLeading(cfg, r.st.partitionState(r.part.ref.Partition), r.st.MinISR,
			replication.Offset(l.NextOffset()), nowMillis())
		r.part.owner.node.log.Info("replication: leading", "partition", r.part.ref, "epoch", epoch,
			"log_end", l.NextOffset(), "high_watermark", l.HighWatermark(), "isr", r.st.ISR)
		r.recomputeHW()
	})
}

// recomputeHW moves the log's high watermark target to Leading's (the
// log keeps it below its own durable end and never moves it back), then
// answers the acks it allows.
func (r *replica) recomputeHW() {
	if !r.leading {
		return
	}
	l := r.part.log
	l.SetHighWatermark(shard.Offset(r.lead.Target(replication.Offset(l.NextOffset()))))
	r.completeAcks()
}

// completeAcks answers the acks=all produces the high watermark passed.
// One that finds the in-sync set below min.insync.replicas gets
// NOT_ENOUGH_REPLICAS_AFTER_APPEND: its records are in every in-sync
// replica, but fewer than the topic asks for.
func (r *replica) completeAcks() {
	if r.lead == nil {
		return
	}
	hw := replication.Offset(r.part.log.HighWatermark())
	n := 0
	var err error
	for n < len(r.acks) {
		done, e := r.lead.Acked(replication.Offset(r.acks[n].last+1), hw)
		if !done {
			break
		}
		n, err = n+1, e
	}
	if n == 0 {
		return
	}
	done := slices.Clone(r.acks[:n])
	r.acks = slices.Delete(r.acks, 0, n)
	code := int16(0)
	if err != nil {
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
	}
	if err := r.lead.Admit(acks == -1); err != nil {
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

// followerFetched records a follower's fetch at offset, placed by session
// (its connection and its order on it): Leading takes it as the
// follower's durable end and decides
// what that changes in the in-sync set and the high watermark. It returns
// an error code when this broker does not lead the partition (the
// follower learns of the new leader from it) or the offset is past the
// log end.
func (r *replica) followerFetched(b int32, session wire.FetchSession, offset int64) int16 {
	if !r.leading {
		return errNotLeader
	}
	now := nowMillis()
	err := r.lead.Fetched(replication.FollowerFetch{Broker: replication.BrokerID(b),
		Incarnation: replication.BrokerEpoch(session.Conn), Seq: session.Request, LogDirID: session.LogDirID,
		FetchOffset: replication.Offset(offset),
		Durable:     replication.Offset(offset)}, replication.Offset(r.part.log.NextOffset()), now)
	switch {
	case errors.Is(err, replication.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, replication.ErrStaleBrokerEpoch):
		// The follower's own fetcher reconnects when told. Seen often,
		// something else fetches under its id (replica fetches are not
		// authenticated) and the two take turns.
		n := r.part.owner.node
		n.replLog.Warn(n.log, "replication: refused a follower's fetch over an older connection than its newest",
			"partition", r.part.ref, "follower", b, "connection", session.Conn)
		return kerr.StaleBrokerEpoch.Code
	case err != nil:
		return errNotLeader
	}
	r.propose(now)
	r.recomputeHW()
	return 0
}

// propose sends the in-sync set change Leading calls for, if any, to
// the metadata group, against the partition epoch this leader holds.
func (r *replica) propose(now replication.Millis) {
	if !r.leading {
		return
	}
	l := r.part.log
	req, ok := r.lead.Propose(replication.Offset(l.NextOffset()), replication.Offset(l.HighWatermark()), now)
	if !ok {
		return
	}
	cs := r.part.owner
	n := cs.node
	c := &metadata.ChangePartition{Topic: r.part.ref.Topic, Partition: r.part.ref.Partition,
		LeaderEpoch: metadata.Epoch(r.st.LeaderEpoch), PartitionEpoch: r.st.PartitionEpoch,
		Leader: metadata.BrokerID(r.me), ISR: make([]metadata.BrokerID, len(req.NewISR))}
	for i, m := range req.NewISR {
		c.ISR[i] = metadata.BrokerID(m.Broker)
		if m.LogDirID != 0 {
			// Each joining member's data dir as its fetches named it:
			// the metadata refuses the change if the broker has come
			// back with another (wiped) since (KIP-858's check).
			if c.ISRDirs == nil {
				c.ISRDirs = make([]uint64, len(req.NewISR))
			}
			c.ISRDirs[i] = m.LogDirID
		}
	}
	isr := brokerIDs(c.ISR)
	var left []int32
	for _, b := range r.st.ISR {
		if !slices.Contains(isr, b) {
			left = append(left, b)
		}
	}
	if len(left) > 0 {
		n.log.Warn("replication: followers lag, leaving the in-sync set", "partition", r.part.ref,
			"followers", left, "lag_bound", cs.lagMax(), "isr", isr)
	}
	lead, core := r.lead, cs.core.ID()
	n.proposeAsync(c, func(res metadata.Result, err error) {
		n.cores[controller].core.Send(core, func(*reactor.Core) {
			if r.lead != lead {
				return // another leadership since
			}
			if err != nil {
				// Not decided as far as we know: it may still apply.
				// Leading proposes again after replicaProposeRetry.
				n.log.Info("replication: in-sync set change not confirmed", "partition", r.part.ref, "isr", isr, "err", err)
				return
			}
			if !res.Accepted() {
				n.log.Info("replication: in-sync set change refused", "partition", r.part.ref, "isr", isr, "result", res.Message)
			}
			// The answer may overtake the view that holds the change
			// which made this proposal stale (an earlier one of ours,
			// accepted though we never heard): the partition epoch it
			// was decided at, read from the metadata this broker has
			// applied (at least up to the decision), tells Leading to
			// keep counting the proposed members until that view
			// arrives here.
			decidedAt := replication.PartitionEpoch(r.st.PartitionEpoch)
			if p, ok := n.raft.View().Partition(r.part.ref.Topic, r.part.ref.Partition); ok {
				decidedAt = replication.PartitionEpoch(p.PartitionEpoch)
			}
			lead.Answered(req.LeaderEpoch, req.Seq, res.Accepted(), decidedAt)
			r.recomputeHW()
		})
	})
}

// tickReplicas runs the lag check of every partition this core leads.
func (cs *coreState) tickReplicas() {
	if cs.closing {
		return
	}
	now := nowMillis()
	for _, p := range cs.parts {
		if p.repl != nil {
			p.repl.propose(now)
		}
	}
	cs.core.After(replicaTickInterval, cs.tickReplicas)
}

const replicaTickInterval = 250 * time.Millisecond

// replicaProposeRetry is how long an in-sync set proposal the metadata
// group has not confirmed either way waits before Leading proposes again.
const replicaProposeRetry = 5 * time.Second

// nowMillis is the broker clock in replication's units.
func nowMillis() replication.Millis { return replication.Millis(time.Now().UnixMilli()) }

// partitionState is st as replication's state machines take it.
func (st *replicaState) partitionState(p int32) replication.PartitionState {
	ids := func(bs []int32) []replication.BrokerID {
		out := make([]replication.BrokerID, len(bs))
		for i, b := range bs {
			out[i] = replication.BrokerID(b)
		}
		return out
	}
	return replication.PartitionState{Partition: replication.PartitionID(p), Replicas: ids(st.Replicas),
		ISR: ids(st.ISR), Leader: replication.BrokerID(st.Leader), LeaderEpoch: replication.Epoch(st.LeaderEpoch),
		PartitionEpoch: replication.PartitionEpoch(st.PartitionEpoch)}
}

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
