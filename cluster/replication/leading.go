package replication

import (
	"fmt"
	"math"
	"slices"
)

// Leading is the leader's side of the protocol for one partition in one
// leader epoch: what each follower holds durably, the high watermark that
// follows from it, when a follower leaves or joins the in-sync set, and
// whether an append may be taken and acknowledged. It is the one
// implementation of those rules: the simulator's Replica runs it, and so
// does every broker (cluster/replicas.go) on its real logs, so what the
// simulation checks is what the brokers decide.
//
// It holds no log. The host passes the log end and the leader's own
// durable end with each input, and applies what comes out: the high
// watermark target (Target), in-sync set proposals (Propose) and
// acknowledgement verdicts (Admit, Acked).
type Leading struct {
	cfg    LeadingConfig
	state  PartitionState
	minISR int
	// epochStart is the log end when this epoch began (KIP-101): a
	// follower joins the in-sync set only once it holds it.
	epochStart Offset
	followers  map[BrokerID]*follower

	// proposed is the union of every in-sync set proposed against the
	// current partition epoch that the controller may still accept (a
	// request may be delayed, or its answer lost), so the high watermark
	// waits for all of their members until the partition epoch moves on
	// or the controller refuses the newest proposal (Kafka's "maximal
	// ISR").
	proposed []BrokerID
	// seq numbers proposals; the controller refuses one not newer than
	// the last it decided in this leader epoch, so a refusal of the
	// newest means none of them can still be accepted.
	seq uint64
	// proposal is where the newest proposal stands; proposedAt is when
	// it was sent.
	proposal   proposalState
	proposedAt Millis
}

// proposalState is where a leader's newest in-sync proposal stands.
type proposalState uint8

const (
	// proposalNone: nothing open against this partition epoch.
	proposalNone proposalState = iota
	// proposalInFlight: unanswered; sent again after RetryMs.
	proposalInFlight
	// proposalAccepted: accepted (or refused against a newer partition
	// epoch), and that partition state has not arrived; nothing is
	// proposed until it does.
	proposalAccepted
	// proposalRefused: refused; the next waits RetryMs, so a refusal
	// that persists (a fenced leader, exhausted epochs) is not proposed
	// again at every fetch.
	proposalRefused
)

// LeadingConfig is a leader's identity and limits. Times are milliseconds
// of the host's clock.
type LeadingConfig struct {
	Broker      BrokerID
	BrokerEpoch BrokerEpoch
	// LagMaxMs is replica.lag.time.max.ms: a follower that has not caught
	// up with the leader's log end for this long leaves the in-sync set.
	LagMaxMs Millis
	// RetryMs is how long an in-sync set proposal may go unanswered
	// before it is sent again.
	RetryMs Millis

	// plantBugHWBeforeFsync, set only by the simulator's planted-bug
	// test, counts a follower's fetch offset instead of its durable
	// offset toward the high watermark: the bug the simulation must find.
	// A field, not a package variable, so tests running side by side
	// cannot plant it in each other's replicas.
	plantBugHWBeforeFsync bool
}

// follower is the leader's view of one follower in this epoch.
type follower struct {
	incarnation BrokerEpoch
	seq         uint64 // of the latest fetch counted
	logDirID    uint64
	fetched     bool
	fetchOffset Offset
	durable     Offset
	// caughtUpAt is the last time the follower's durable offset reached
	// the leader's log end as of its previous fetch (Kafka's
	// lastCaughtUpTimeMs, with durability in place of the fetch offset: a
	// follower that fetches but cannot fsync holds up acks just the same).
	caughtUpAt       Millis
	lastFetchAt      Millis
	leoAtLastFetch   Offset
	hadPreviousFetch bool
}

// FollowerFetch is what a follower's fetch tells its leader.
type FollowerFetch struct {
	Broker BrokerID
	// Incarnation and Seq order a follower's fetches, and the latest one
	// describes its log: its durable end may be lower than an earlier
	// report's (a replica deleted and created again), never a late
	// report's. Incarnations are ordered: a newer one starts the
	// follower's record over, and fetches from an older one are refused.
	// In the simulator Incarnation is the broker epoch (KIP-903) and Seq
	// numbers the incarnation's fetches; on brokers they are the serial
	// number of the replica-fetch connection, which a restarted follower
	// cannot reuse (a follower told its connection is stale opens a new
	// one), and the request's number on it.
	Incarnation BrokerEpoch
	Seq         uint64
	// LogDirID is the follower's data dir (0: not known). The leader
	// names it when it proposes the follower into the in-sync set, so
	// the metadata can refuse a follower whose dir was replaced since.
	LogDirID    uint64
	FetchOffset Offset
	// Durable is the end of the follower's fsynced prefix (a broker's
	// follower fetches past a batch only once it is fsynced, so there it
	// equals FetchOffset).
	Durable Offset
}

// NewLeading starts leading state s (whose Leader is cfg.Broker) from a
// log that ends at logEnd. minISR is min.insync.replicas.
func NewLeading(cfg LeadingConfig, s PartitionState, minISR int, logEnd Offset, now Millis) *Leading {
	if s.Leader != cfg.Broker {
		panic(fmt.Sprintf("replication: broker %d leads a partition whose leader is %d", cfg.Broker, s.Leader))
	}
	l := &Leading{cfg: cfg, epochStart: logEnd, followers: map[BrokerID]*follower{}}
	l.SetState(s, minISR, now)
	return l
}

// State is the partition state last applied.
func (l *Leading) State() PartitionState { return l.state }

// EpochStart is the log end when this leader epoch began.
func (l *Leading) EpochStart() Offset { return l.epochStart }

// SetState applies a newer record of the partition under the same
// leadership: a changed in-sync set (a proposal accepted, or the
// controller's own change), changed replicas (a reassignment) or a
// changed min.insync.replicas. A new partition epoch ends every proposal
// made against the old one.
func (l *Leading) SetState(s PartitionState, minISR int, now Millis) {
	if l.state.PartitionEpoch != 0 && (s.LeaderEpoch != l.state.LeaderEpoch || s.Leader != l.state.Leader) {
		panic(fmt.Sprintf("replication: leadership changed under a Leading (epoch %d -> %d)", l.state.LeaderEpoch, s.LeaderEpoch))
	}
	if s.PartitionEpoch != l.state.PartitionEpoch {
		l.proposed, l.proposal = nil, proposalNone
	}
	l.state, l.minISR = s.Clone(), minISR
	for _, b := range s.Replicas {
		if b != l.cfg.Broker && l.followers[b] == nil {
			// Counts as caught up from now: it gets the lag bound to
			// show it keeps up.
			l.followers[b] = &follower{caughtUpAt: now}
		}
	}
	for b := range l.followers {
		if !contains(s.Replicas, b) {
			delete(l.followers, b)
		}
	}
}

// Fetched records a follower's fetch against a log ending at logEnd. It
// refuses one from a broker that is not a follower of the partition
// (ErrNotLeader), one whose offset lies past the log end
// (ErrOffsetOutOfRange: no copy of this log ends there, and counted it
// would carry the high watermark past what that follower holds), and one
// from an incarnation older than the follower's newest
// (ErrStaleBrokerEpoch).
func (l *Leading) Fetched(m FollowerFetch, logEnd Offset, now Millis) error {
	f := l.followers[m.Broker]
	switch {
	case f == nil:
		return ErrNotLeader
	case m.FetchOffset > logEnd:
		return ErrOffsetOutOfRange
	}
	switch {
	case m.Incarnation < f.incarnation:
		// A report from before the follower's newest incarnation: late,
		// and about a log that may be gone (a wiped restart).
		return ErrStaleBrokerEpoch
	case m.Incarnation > f.incarnation:
		*f = follower{incarnation: m.Incarnation, caughtUpAt: f.caughtUpAt}
	}
	if f.fetched && m.Seq <= f.seq {
		// Delayed behind a later fetch (or the same one read again by a
		// long poll): that one is the newer word.
		return nil
	}
	f.fetched, f.seq = true, m.Seq
	f.logDirID = m.LogDirID
	f.fetchOffset = m.FetchOffset
	f.durable = min(m.Durable, m.FetchOffset)
	if f.durable >= logEnd {
		f.caughtUpAt = now
	} else if f.hadPreviousFetch && f.durable >= f.leoAtLastFetch {
		f.caughtUpAt = max(f.caughtUpAt, f.lastFetchAt)
	}
	f.hadPreviousFetch = true
	f.lastFetchAt = now
	f.leoAtLastFetch = logEnd
	return nil
}

// Target is the high watermark the log may move to: the smallest durable
// end over the effective in-sync set (the committed one plus every member
// of a proposal still open), leaderDurable being the leader's own. A
// member that has not fetched in this epoch counts as 0 (the host never
// moves the high watermark back). It runs on every append and follower
// fetch, so it walks the two sets rather than building their union.
func (l *Leading) Target(leaderDurable Offset) Offset {
	hw := leaderDurable
	for _, b := range l.state.ISR {
		hw = min(hw, l.durableOf(b))
	}
	for _, b := range l.proposed {
		if !contains(l.state.ISR, b) {
			hw = min(hw, l.durableOf(b))
		}
	}
	return max(hw, 0)
}

// durableOf is what member b counts for toward the high watermark.
func (l *Leading) durableOf(b BrokerID) Offset {
	if b == l.cfg.Broker {
		return math.MaxInt64 // the caller's leaderDurable bounds it
	}
	f := l.followers[b]
	switch {
	case f == nil || !f.fetched:
		return 0
	case l.cfg.plantBugHWBeforeFsync:
		return f.fetchOffset
	}
	return f.durable
}

// Admit decides whether an append may be taken: acks=all needs
// min.insync.replicas in-sync replicas (ErrNotEnoughReplicas, and
// nothing is appended).
func (l *Leading) Admit(acksAll bool) error {
	if acksAll && len(l.state.ISR) < l.minISR {
		return ErrNotEnoughReplicas
	}
	return nil
}

// Acked is the verdict on an acks=all append ending at end once the high
// watermark is hw: done reports whether it is answered now; err is
// ErrNotEnoughReplicasAfter when the records are on every in-sync replica
// but those are fewer than min.insync.replicas.
func (l *Leading) Acked(end, hw Offset) (done bool, err error) {
	if hw < end {
		return false, nil
	}
	if len(l.state.ISR) < l.minISR {
		return true, ErrNotEnoughReplicasAfter
	}
	return true, nil
}

// Propose returns the in-sync set change to send to the controller, if
// one is due: a member that has not caught up for LagMaxMs leaves, a
// follower that durably holds the high watermark and the epoch start
// joins. One proposal is open at a time, sent again after RetryMs
// unanswered.
func (l *Leading) Propose(logEnd, hw Offset, now Millis) (AlterPartitionRequest, bool) {
	switch l.proposal {
	case proposalAccepted:
		return AlterPartitionRequest{}, false
	case proposalInFlight, proposalRefused:
		if now-l.proposedAt < l.cfg.RetryMs {
			return AlterPartitionRequest{}, false
		}
	}
	// Built in preference order, as the controller keeps the ISR, so the
	// two compare without sorting (and without allocating when equal).
	var buf [8]BrokerID
	want := buf[:0]
	for _, b := range l.state.Replicas {
		if b == l.cfg.Broker {
			want = append(want, b)
			continue
		}
		f := l.followers[b]
		if f == nil {
			continue
		}
		in := contains(l.state.ISR, b)
		switch {
		case in && (f.durable >= logEnd || now-f.caughtUpAt <= l.cfg.LagMaxMs):
			// Kafka's isCaughtUp: a follower holding all of the log is in
			// sync however long ago it last fetched.
			want = append(want, b)
		case !in && f.fetched && f.durable >= hw && f.durable >= l.epochStart:
			// Joining never lowers the high watermark: the newcomer
			// already holds durably everything below it.
			want = append(want, b)
		}
	}
	if slices.Equal(want, l.state.ISR) {
		return AlterPartitionRequest{}, false
	}
	l.seq++
	req := AlterPartitionRequest{Partition: l.state.Partition, Leader: l.cfg.Broker,
		LeaderBrokerEpoch: l.cfg.BrokerEpoch, LeaderEpoch: l.state.LeaderEpoch,
		PartitionEpoch: l.state.PartitionEpoch, Seq: l.seq}
	for _, b := range want {
		m := ISRMember{Broker: b, BrokerEpoch: l.cfg.BrokerEpoch}
		if b != l.cfg.Broker {
			m.BrokerEpoch, m.LogDirID = l.followers[b].incarnation, l.followers[b].logDirID
		}
		req.NewISR = append(req.NewISR, m)
		if !contains(l.proposed, b) {
			l.proposed = append(l.proposed, b)
		}
	}
	l.proposal, l.proposedAt = proposalInFlight, now
	return req, true
}

// Answered reports the controller's verdict on proposal seq of leader
// epoch epoch (sequence numbers start over with each Leading), decided
// while the partition stood at partition epoch decidedAt. An accepted one
// holds further proposals until its partition state arrives (SetState). A
// refusal of the newest proposal ends every open one: the controller
// decides a leader's proposals in order and refuses an older one after a
// newer, so none of them can take effect any more, and the high watermark
// stops waiting for their members. But a refusal decided at a partition
// epoch newer than the one held ends nothing: the change that moved the
// epoch may be an older proposal of this leader, accepted though its
// answer was lost or is still on its way, whose members are in the
// in-sync set already; the proposals are held, their members counted, as
// after an acceptance, until that state arrives. An answer to an older
// proposal, or after the partition epoch moved on, is stale and ignored.
//
// It reports whether the answer was the newest proposal's.
func (l *Leading) Answered(epoch Epoch, seq uint64, accepted bool, decidedAt PartitionEpoch) bool {
	if epoch != l.state.LeaderEpoch || seq != l.seq || l.proposal != proposalInFlight {
		return false
	}
	if accepted || decidedAt > l.state.PartitionEpoch {
		l.proposal = proposalAccepted
		return true
	}
	l.proposed, l.proposal = nil, proposalRefused
	return true
}

// Proposing reports whether a proposal is open (in flight, or accepted
// and its state not yet applied).
func (l *Leading) Proposing() bool {
	return l.proposal == proposalInFlight || l.proposal == proposalAccepted
}
