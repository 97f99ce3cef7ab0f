package replication

import (
	"fmt"
	"slices"
)

// ReplicaConfig holds one replica's identity and limits. Durations are in
// milliseconds of the caller's clock.
type ReplicaConfig struct {
	Broker    BrokerID
	Partition PartitionID
	// MinISR is min.insync.replicas: acks=all appends need that many
	// in-sync replicas.
	MinISR int
	// LagMaxMs is replica.lag.time.max.ms: a follower that has not caught
	// up with the leader's durable log end for this long leaves the ISR.
	LagMaxMs Millis
	// RetryMs is how long a request (fetch, OffsetForLeaderEpoch,
	// AlterPartition) may go unanswered before it is sent again; an empty
	// fetch answer also waits this long before the next fetch.
	RetryMs Millis
	// ProduceTimeoutMs bounds how long an append waits for its
	// acknowledgement before REQUEST_TIMED_OUT.
	ProduceTimeoutMs Millis
	// FetchBatchesMax bounds the batches in one fetch answer.
	FetchBatchesMax int
	// LogDirID is the broker's data dir id, which its follower fetches
	// report (0: not known).
	LogDirID uint64

	// plantBugHWBeforeFsync, set only by the simulator's planted-bug test,
	// makes the leader count a follower's fetch offset instead of its
	// durable offset toward the high watermark: the bug the simulation
	// must find. A field, not a package variable, so that tests running
	// side by side cannot plant it in each other's replicas.
	plantBugHWBeforeFsync bool
}

// Role is what a replica currently does for its partition.
type Role int

const (
	// Idle: no usable metadata yet, or the partition has no leader.
	Idle Role = iota
	// Leader accepts appends and serves fetches.
	Leader
	// Follower truncates against, then fetches from, the leader.
	Follower
	// Deposed: was leader and saw a newer epoch (or the controller said
	// so), but has not yet learned its new role. It acknowledges nothing.
	Deposed
)

func (r Role) String() string {
	return [...]string{"idle", "leader", "follower", "deposed"}[r]
}

// OpKind is the kind of a log operation in a Ready.
type OpKind int

const (
	// OpAppend writes Batches at Offset (the log end) into the volatile
	// suffix of the log.
	OpAppend OpKind = iota
	// OpTruncate removes every record at or above Offset, durably: bytes
	// beyond the cut never reappear after a crash.
	OpTruncate
)

// LogOp is one write to the partition log, in the order the caller must
// apply them.
type LogOp struct {
	Kind    OpKind
	Offset  Offset
	Batches []Batch
}

// Envelope is an outgoing message for another broker's replica.
type Envelope struct {
	To   BrokerID
	Body any
}

// Ready is what a Replica asks its host to do, taken with Replica.Ready.
// The host applies LogOps in order before it feeds the replica another
// input, then starts an fsync covering the log up to SyncTo (when it is
// above the last one started) and reports its completion with Synced;
// it sends the messages after applying LogOps.
type Ready struct {
	LogOps       []LogOp
	SyncTo       Offset
	ToBrokers    []Envelope
	ToController []AlterPartitionRequest
	Produced     []ProduceResponse
}

// Empty reports whether r asks for nothing.
func (r *Ready) Empty() bool {
	return len(r.LogOps) == 0 && r.SyncTo == 0 && len(r.ToBrokers) == 0 &&
		len(r.ToController) == 0 && len(r.Produced) == 0
}

// Replica is one broker's copy of one partition: a pure state machine that
// is leader or follower as the controller's metadata says. It holds the
// log's batch headers (offsets, epochs, producer fields), from which it
// derives the leader-epoch cache and the idempotent-producer table; the
// host keeps the bytes and applies the LogOps it asks for.
type Replica struct {
	cfg         ReplicaConfig
	brokerEpoch BrokerEpoch
	now         Millis

	log     []Batch
	leo     Offset // log end offset (written, maybe not durable)
	durable Offset // end of the fsynced prefix
	hw      Offset

	state PartitionState // last metadata applied; PartitionEpoch 0 = none
	role  Role
	epoch Epoch // leader epoch of the current role
	// deposedBelow: a newer epoch seen in a peer's request; leadership in
	// an older epoch is not taken again.
	deposedBelow Epoch

	ld leaderState
	fl followerState

	out   Ready
	stats ReplicaStats
	// fetchSeq numbers this incarnation's fetches (FetchRequest.Seq).
	fetchSeq uint64
}

// ReplicaStats counts protocol paths taken, for the simulator's coverage
// check: a path the sweep never takes is one it does not test.
type ReplicaStats struct {
	ProposalsRefused int // refusals of the newest proposal, which end the open ones
	StaleFetches     int // fetches refused as from an older incarnation
	TruncationRounds int // divergence rounds that had to ask again
}

// TakeStats returns the counts since the last call and starts over.
func (r *Replica) TakeStats() ReplicaStats {
	s := r.stats
	r.stats = ReplicaStats{}
	return s
}

// NewReplica starts a replica over a recovered log (every batch durable),
// its broker's current incarnation, and the last partition state its
// broker had applied, which survives restarts as the broker's copy of the
// metadata log does (a zero state if it never had one).
func NewReplica(cfg ReplicaConfig, be BrokerEpoch, recovered []Batch, last PartitionState, now Millis) *Replica {
	if cfg.FetchBatchesMax <= 0 {
		cfg.FetchBatchesMax = 4
	}
	r := &Replica{cfg: cfg, brokerEpoch: be, now: now, log: slices.Clone(recovered)}
	if n := len(r.log); n > 0 {
		r.leo = r.log[n-1].End()
	}
	r.durable = r.leo
	if last.PartitionEpoch > 0 {
		r.state = last.Clone()
		r.enterRole()
	}
	return r
}

// Ready returns and clears what the replica asks of its host.
func (r *Replica) Ready() Ready {
	rd := r.out
	r.out = Ready{}
	return rd
}

// Role reports the replica's current role.
func (r *Replica) Role() Role { return r.role }

// LeaderEpoch is the epoch of the current role (the leader's epoch this
// replica leads or follows in).
func (r *Replica) LeaderEpoch() Epoch { return r.epoch }

// State is the last partition state applied.
func (r *Replica) State() PartitionState { return r.state }

// HighWatermark is this replica's high watermark.
func (r *Replica) HighWatermark() Offset { return r.hw }

// LogEnd is the log end offset, durable or not.
func (r *Replica) LogEnd() Offset { return r.leo }

// Durable is the end of the fsynced prefix as last reported by Synced.
func (r *Replica) Durable() Offset { return r.durable }

// Log returns the batch headers of the log (shared; do not modify).
func (r *Replica) Log() []Batch { return r.log }

func (r *Replica) String() string {
	return fmt.Sprintf("b%d/p%d %s e%d leo=%d dur=%d hw=%d", r.cfg.Broker, r.cfg.Partition,
		r.role, r.epoch, r.leo, r.durable, r.hw)
}

// ApplyState applies the controller's record of the partition if it is
// newer than the one held.
func (r *Replica) ApplyState(s PartitionState, now Millis) {
	r.now = now
	if s.Partition != r.cfg.Partition || s.PartitionEpoch <= r.state.PartitionEpoch {
		return
	}
	if s.LeaderEpoch < r.state.LeaderEpoch {
		panic(fmt.Sprintf("replication: partition epoch %d grew but leader epoch fell %d -> %d",
			s.PartitionEpoch, r.state.LeaderEpoch, s.LeaderEpoch))
	}
	old := r.state
	r.state = s.Clone()
	if r.role == Leader && s.Leader == r.cfg.Broker && s.LeaderEpoch == r.epoch &&
		s.LeaderBrokerEpoch == r.brokerEpoch {
		// Same leadership, new in-sync set (ours accepted, or the
		// controller removed a fenced broker). Proposals made against
		// the older partition epoch can no longer be accepted.
		r.ld.lead.SetState(s, r.cfg.MinISR, now)
		r.advanceHW()
		return
	}
	if old.LeaderEpoch == s.LeaderEpoch && old.Leader == s.Leader && r.role == Follower {
		return // ISR change only; the follower carries on
	}
	r.enterRole()
}

// enterRole takes the role r.state gives this replica.
func (r *Replica) enterRole() {
	s := r.state
	if r.role == Leader {
		r.failWaiters(ErrNotLeader)
	}
	r.epoch = s.LeaderEpoch
	r.ld = leaderState{}
	r.fl = followerState{}
	switch {
	case s.Leader == r.cfg.Broker && s.LeaderBrokerEpoch == r.brokerEpoch && s.LeaderEpoch >= r.deposedBelow:
		r.becomeLeader()
	case s.Leader == r.cfg.Broker, s.Leader == NoLeader, !contains(s.Replicas, r.cfg.Broker):
		// A grant to our previous incarnation is not ours: wait for the
		// controller, which fences that incarnation and elects again.
		r.role = Idle
	default:
		r.becomeFollower()
	}
}

// Synced reports that the log is durable up to upTo.
func (r *Replica) Synced(upTo Offset, now Millis) {
	r.now = now
	if upTo > r.leo {
		panic(fmt.Sprintf("replication: %v synced to %d beyond its log end", r, upTo))
	}
	if upTo <= r.durable {
		return
	}
	r.durable = upTo
	switch {
	case r.role == Leader:
		r.advanceHW()
	case r.role == Follower && r.fl.truncated && !r.fl.inFlight:
		// Report the new durable offset now rather than at the next
		// poll: acks=all waits for it.
		r.sendNext()
	}
}

// Tick advances time: retries, ISR checks, produce timeouts.
func (r *Replica) Tick(now Millis) {
	r.now = now
	switch r.role {
	case Leader:
		r.leaderTick()
	case Follower:
		r.followerTick()
	}
}

// Step feeds a message from another broker's replica or the controller.
func (r *Replica) Step(from BrokerID, body any, now Millis) {
	r.now = now
	switch m := body.(type) {
	case FetchRequest:
		r.handleFetch(m)
	case FetchResponse:
		r.handleFetchResponse(from, m)
	case EpochRequest:
		r.handleEpochRequest(m)
	case EpochResponse:
		r.handleEpochResponse(from, m)
	case AlterPartitionResponse:
		r.handleAlterPartitionResponse(m)
	default:
		panic(fmt.Sprintf("replication: unexpected message %T", body))
	}
}

func (r *Replica) send(to BrokerID, body any) {
	r.out.ToBrokers = append(r.out.ToBrokers, Envelope{To: to, Body: body})
}

func (r *Replica) appendBatches(bs []Batch) {
	for _, b := range bs {
		if b.Base != r.leo {
			panic(fmt.Sprintf("replication: %v appends batch at %d", r, b.Base))
		}
		r.log = append(r.log, b)
		r.leo = b.End()
	}
	r.out.LogOps = append(r.out.LogOps, LogOp{Kind: OpAppend, Offset: bs[0].Base, Batches: bs})
	r.out.SyncTo = r.leo
}

// truncate cuts the log at off, which must be a batch boundary.
func (r *Replica) truncate(off Offset) {
	if off >= r.leo {
		return
	}
	i := len(r.log)
	for i > 0 && r.log[i-1].Base >= off {
		i--
	}
	if i > 0 && r.log[i-1].End() > off {
		panic(fmt.Sprintf("replication: %v truncates inside a batch at %d", r, off))
	}
	r.log = r.log[:i]
	r.leo = off
	r.durable = min(r.durable, off)
	r.hw = min(r.hw, off)
	r.out.LogOps = append(r.out.LogOps, LogOp{Kind: OpTruncate, Offset: off})
	if r.out.SyncTo > off {
		r.out.SyncTo = 0
	}
}

// lastEpoch is the epoch of the last batch, NoEpoch for an empty log.
func (r *Replica) lastEpoch() Epoch {
	if n := len(r.log); n > 0 {
		return r.log[n-1].Epoch
	}
	return NoEpoch
}

// endForEpoch is the leader-epoch cache lookup behind OffsetForLeaderEpoch:
// the largest epoch at or below e present in the log and the offset where
// it ends (the start of the next epoch, or the log end).
func (r *Replica) endForEpoch(e Epoch) (Epoch, Offset) {
	if r.role == Leader && e >= r.epoch {
		return r.epoch, r.leo
	}
	for i := len(r.log) - 1; i >= 0; i-- {
		if r.log[i].Epoch <= e {
			found := r.log[i].Epoch
			end := r.leo
			for j := i + 1; j < len(r.log); j++ {
				if r.log[j].Epoch > found {
					end = r.log[j].Base
					break
				}
			}
			return found, end
		}
	}
	return NoEpoch, 0
}

// batchesFrom returns up to max batches starting at off (a batch boundary).
func (r *Replica) batchesFrom(off Offset, max int) []Batch {
	i, _ := slices.BinarySearchFunc(r.log, off, func(b Batch, o Offset) int {
		switch {
		case b.Base < o:
			return -1
		case b.Base > o:
			return 1
		}
		return 0
	})
	if i >= len(r.log) || r.log[i].Base != off {
		return nil
	}
	return slices.Clone(r.log[i:min(len(r.log), i+max)])
}

// Read serves a consumer: the batches from off (a batch boundary) that lie
// wholly below the high watermark, and the high watermark itself. Only a
// leader reads, and only once its high watermark has reached the start of
// its epoch (KIP-207): below that it cannot tell how far the previous
// leader had exposed, and a consumer must never see the high watermark go
// back.
func (r *Replica) Read(off Offset, maxBatches int) ([]Batch, Offset, error) {
	switch {
	case r.role != Leader:
		return nil, 0, ErrNotLeader
	case r.hw < r.ld.lead.EpochStart():
		return nil, 0, ErrOffsetNotAvailable
	case off > r.hw:
		return nil, 0, ErrOffsetOutOfRange
	}
	bs := r.batchesFrom(off, maxBatches)
	for i, b := range bs {
		if b.End() > r.hw {
			bs = bs[:i]
			break
		}
	}
	return bs, r.hw, nil
}
