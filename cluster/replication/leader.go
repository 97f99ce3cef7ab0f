package replication

import (
	"errors"
	"slices"
)

// leaderState is what a leader keeps for its epoch: the shared leader
// rules (Leading, which the brokers run too) and the appends waiting for
// their acknowledgement.
type leaderState struct {
	lead    *Leading
	waiters []waiter
}

// waiter is an append waiting for its acknowledgement.
type waiter struct {
	req     ProduceRequest
	base    Offset
	end     Offset
	created Millis
}

func (r *Replica) becomeLeader() {
	r.role = Leader
	r.ld.lead = NewLeading(LeadingConfig{Broker: r.cfg.Broker, BrokerEpoch: r.brokerEpoch,
		LagMaxMs: r.cfg.LagMaxMs, RetryMs: r.cfg.RetryMs, plantBugHWBeforeFsync: r.cfg.plantBugHWBeforeFsync},
		r.state, r.cfg.MinISR, r.leo, r.now)
	// The leader's own unsynced suffix (written as a follower) must become
	// durable before it counts.
	if r.durable < r.leo {
		r.out.SyncTo = r.leo
	}
}

// depose stops a leader that learned of a newer epoch: nothing waiting
// will be acknowledged by it, and no metadata older than that epoch (a
// delayed update) makes it leader again.
func (r *Replica) depose(seen Epoch) {
	r.deposedBelow = max(r.deposedBelow, seen)
	if r.role != Leader {
		return
	}
	r.failWaiters(ErrNotLeader)
	r.role = Deposed
	r.ld = leaderState{}
}

func (r *Replica) failWaiters(err error) {
	for _, w := range r.ld.waiters {
		r.answer(w.req, 0, err)
	}
	r.ld.waiters = nil
}

func (r *Replica) answer(req ProduceRequest, base Offset, err error) {
	r.out.Produced = append(r.out.Produced, ProduceResponse{
		Partition: req.Partition, LeaderEpoch: r.epoch, Client: req.Client, ProducerID: req.ProducerID,
		BaseSeq: req.BaseSeq, Base: base, Err: err,
	})
}

// Produce appends a producer's batch (leader only). The answer arrives in
// a later Ready's Produced, or this one's for an immediate refusal.
func (r *Replica) Produce(req ProduceRequest, now Millis) {
	r.now = now
	if r.role != Leader {
		r.answer(req, 0, ErrNotLeader)
		return
	}
	if req.ProducerID != 0 {
		if b, ok := r.findBatch(req.ProducerID, req.BaseSeq); ok {
			// A retry of a batch we hold: answer with the original
			// offsets once they meet the acks the retry asks for.
			r.wait(req, b.Base, b.End())
			return
		}
		if !r.nextInSequence(req.ProducerID, req.BaseSeq) {
			r.answer(req, 0, ErrOutOfOrderSequence)
			return
		}
	}
	if err := r.ld.lead.Admit(req.Acks == -1); err != nil {
		r.answer(req, 0, err)
		return
	}
	b := Batch{Base: r.leo, Epoch: r.epoch, ProducerID: req.ProducerID, BaseSeq: req.BaseSeq,
		Values: slices.Clone(req.Values)}
	r.appendBatches([]Batch{b})
	r.wait(req, b.Base, b.End())
}

func (r *Replica) wait(req ProduceRequest, base, end Offset) {
	r.ld.waiters = append(r.ld.waiters, waiter{req: req, base: base, end: end, created: r.now})
	r.completeWaiters()
}

// findBatch looks up an idempotent batch in the log by its first sequence
// number (Kafka keeps the last five per producer; the log here is the
// table, rebuilt from the log as the shard rebuilds its producer state).
func (r *Replica) findBatch(pid int64, seq int32) (Batch, bool) {
	for i := len(r.log) - 1; i >= 0; i-- {
		if b := r.log[i]; b.ProducerID == pid && b.BaseSeq == seq {
			return b, true
		}
	}
	return Batch{}, false
}

func (r *Replica) nextInSequence(pid int64, seq int32) bool {
	for i := len(r.log) - 1; i >= 0; i-- {
		if b := r.log[i]; b.ProducerID == pid {
			return seq == b.BaseSeq+int32(len(b.Values))
		}
	}
	return seq == 0
}

// completeWaiters answers every append whose acknowledgement condition
// holds: acks=1 once the leader's copy is durable; acks=all once the high
// watermark (durable on every in-sync replica, the leader included)
// covers it.
func (r *Replica) completeWaiters() {
	keep := r.ld.waiters[:0]
	for _, w := range r.ld.waiters {
		done, err := false, error(nil)
		if w.req.Acks == -1 {
			done, err = r.ld.lead.Acked(w.end, r.hw)
		}
		switch {
		case done && err != nil:
			r.answer(w.req, 0, err)
		case done:
			r.answer(w.req, w.base, nil)
		case w.req.Acks != -1 && r.durable >= w.end:
			r.answer(w.req, w.base, nil)
		case r.now-w.created > r.cfg.ProduceTimeoutMs:
			r.answer(w.req, 0, ErrRequestTimedOut)
		default:
			keep = append(keep, w)
		}
	}
	r.ld.waiters = keep
}

// advanceHW moves the high watermark to the leader rules' target, never
// past the leader's own durable end and never back.
func (r *Replica) advanceHW() {
	if hw := r.ld.lead.Target(r.durable); hw > r.hw {
		r.hw = hw
	}
	r.completeWaiters()
}

// handleFetch serves a follower's fetch and records its progress.
func (r *Replica) handleFetch(m FetchRequest) {
	resp := FetchResponse{Partition: r.cfg.Partition, Leader: r.cfg.Broker, LeaderEpoch: r.epoch,
		FetchOffset: m.FetchOffset}
	switch {
	case m.CurrentLeaderEpoch > r.epoch:
		// The follower knows a newer epoch than ours: whatever we were,
		// we no longer lead it.
		r.depose(m.CurrentLeaderEpoch)
		resp.Err = ErrUnknownLeaderEpoch
	case m.CurrentLeaderEpoch < r.epoch:
		resp.Err = ErrFencedLeaderEpoch
	case r.role != Leader:
		resp.Err = ErrNotLeader
	}
	if resp.Err != nil {
		r.send(m.Replica, resp)
		return
	}
	if err := r.ld.lead.Fetched(FollowerFetch{Broker: m.Replica, Incarnation: m.ReplicaBrokerEpoch, Seq: m.Seq,
		LogDirID: m.LogDirID, FetchOffset: m.FetchOffset, Durable: m.DurableOffset}, r.leo, r.now); err != nil {
		if errors.Is(err, ErrStaleBrokerEpoch) {
			r.stats.StaleFetches++
		}
		resp.Err = err
		r.send(m.Replica, resp)
		return
	}
	resp.Batches = r.batchesFrom(m.FetchOffset, r.cfg.FetchBatchesMax)
	r.advanceHW()
	resp.HighWatermark = r.hw
	r.send(m.Replica, resp)
	r.maybeProposeISR()
}

// handleEpochRequest answers OffsetForLeaderEpoch.
func (r *Replica) handleEpochRequest(m EpochRequest) {
	resp := EpochResponse{Partition: r.cfg.Partition, CurrentLeaderEpoch: m.CurrentLeaderEpoch,
		Requested: m.LeaderEpoch}
	switch {
	case m.CurrentLeaderEpoch > r.epoch:
		r.depose(m.CurrentLeaderEpoch)
		resp.Err = ErrUnknownLeaderEpoch
	case m.CurrentLeaderEpoch < r.epoch:
		resp.Err = ErrFencedLeaderEpoch
	case r.role != Leader:
		resp.Err = ErrNotLeader
	default:
		resp.Epoch, resp.EndOffset = r.endForEpoch(m.LeaderEpoch)
	}
	r.send(m.Replica, resp)
}

func (r *Replica) leaderTick() {
	r.completeWaiters()
	r.maybeProposeISR()
}

// maybeProposeISR sends the in-sync set change the leader rules call for,
// if any.
func (r *Replica) maybeProposeISR() {
	if req, ok := r.ld.lead.Propose(r.leo, r.hw, r.now); ok {
		r.out.ToController = append(r.out.ToController, req)
	}
}

func (r *Replica) handleAlterPartitionResponse(m AlterPartitionResponse) {
	if r.role != Leader {
		return
	}
	// An acceptance carries the partition it made, and a newer leader
	// epoch deposes us. A refusal within our epoch is taken as brokers
	// take it: its state comes later with the metadata, and the answer
	// only says at which partition epoch it was decided.
	if m.Err == nil || m.State.LeaderEpoch > r.epoch {
		r.ApplyState(m.State, r.now)
	}
	if m.Err != nil && r.role == Leader && m.State.LeaderEpoch > r.epoch {
		r.depose(m.State.LeaderEpoch)
	}
	if m.Err != nil && r.role == Leader {
		if r.ld.lead.Answered(m.LeaderEpoch, m.Seq, false, m.State.PartitionEpoch) {
			r.stats.ProposalsRefused++
		}
		r.advanceHW()
	}
}
