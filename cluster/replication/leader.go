package replication

import "slices"

// leaderState is what a leader keeps for its epoch.
type leaderState struct {
	epochStart Offset // log end when this epoch began (KIP-101)
	followers  map[BrokerID]*follower
	// proposed is the union of every in-sync set proposed to the
	// controller against the current partition epoch. Any of them may
	// still be accepted (a request may be delayed, or its answer lost),
	// so the high watermark waits for all of their members until the
	// partition epoch moves on (Kafka's "maximal ISR").
	proposed   []BrokerID
	proposedAt Millis
	waiters    []waiter
}

// follower is the leader's view of one follower in this epoch.
type follower struct {
	brokerEpoch BrokerEpoch
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

// waiter is an append waiting for its acknowledgement.
type waiter struct {
	req     ProduceRequest
	base    Offset
	end     Offset
	created Millis
}

func (r *Replica) becomeLeader() {
	r.role = Leader
	r.ld.epochStart = r.leo
	r.ld.followers = map[BrokerID]*follower{}
	for _, b := range r.state.Replicas {
		if b != r.cfg.Broker {
			r.ld.followers[b] = &follower{caughtUpAt: r.now}
		}
	}
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

// effectiveISR is the set the high watermark waits for: the committed
// in-sync set plus every member of a proposal still in flight.
func (r *Replica) effectiveISR() []BrokerID {
	isr := slices.Clone(r.state.ISR)
	for _, b := range r.ld.proposed {
		if !contains(isr, b) {
			isr = append(isr, b)
		}
	}
	return isr
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
	if req.Acks == -1 && len(r.state.ISR) < r.cfg.MinISR {
		r.answer(req, 0, ErrNotEnoughReplicas)
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
		switch {
		case w.req.Acks == -1 && r.hw >= w.end:
			if len(r.state.ISR) < r.cfg.MinISR {
				r.answer(w.req, 0, ErrNotEnoughReplicasAfter)
			} else {
				r.answer(w.req, w.base, nil)
			}
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

// advanceHW moves the high watermark to the smallest durable offset over
// the effective in-sync set. It never moves back.
func (r *Replica) advanceHW() {
	if hw := r.isrDurable(); hw > r.hw {
		r.hw = hw
	}
	r.completeWaiters()
}

// isrDurable is the smallest durable offset over the effective in-sync
// set; a member that has not fetched in this epoch counts as 0.
func (r *Replica) isrDurable() Offset {
	hw := r.durable
	for _, b := range r.effectiveISR() {
		if b == r.cfg.Broker {
			continue
		}
		f := r.ld.followers[b]
		if f == nil || !f.fetched {
			return 0
		}
		d := f.durable
		if r.cfg.plantBugHWBeforeFsync {
			d = f.fetchOffset
		}
		hw = min(hw, d)
	}
	return hw
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
	case !contains(r.state.Replicas, m.Replica) || m.Replica == r.cfg.Broker:
		resp.Err = ErrNotLeader
	case m.FetchOffset > r.leo:
		resp.Err = ErrOffsetOutOfRange
	}
	if resp.Err != nil {
		r.send(m.Replica, resp)
		return
	}
	f := r.ld.followers[m.Replica]
	if f.brokerEpoch != m.ReplicaBrokerEpoch {
		// A new incarnation: nothing the old one reported counts.
		*f = follower{brokerEpoch: m.ReplicaBrokerEpoch, caughtUpAt: f.caughtUpAt}
	}
	f.fetched = true
	f.fetchOffset = m.FetchOffset
	// Within one incarnation and epoch a follower's log is a prefix of
	// ours and its durable prefix only grows, so an older report arriving
	// late must not lower what we know.
	f.durable = max(f.durable, min(m.DurableOffset, m.FetchOffset))
	if f.durable >= r.leo {
		f.caughtUpAt = r.now
	} else if f.hadPreviousFetch && f.durable >= f.leoAtLastFetch {
		f.caughtUpAt = max(f.caughtUpAt, f.lastFetchAt)
	}
	f.hadPreviousFetch = true
	f.lastFetchAt = r.now
	f.leoAtLastFetch = r.leo
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

// maybeProposeISR proposes a new in-sync set to the controller when a
// follower lags past LagMaxMs or a non-member has caught up, one request
// at a time, resent after RetryMs.
func (r *Replica) maybeProposeISR() {
	if r.ld.proposed != nil && r.now-r.ld.proposedAt < r.cfg.RetryMs {
		return
	}
	// Built in preference order, as the controller keeps the ISR, so the
	// two compare without sorting (and without allocating when equal).
	var buf [8]BrokerID
	want := buf[:0]
	for _, b := range r.state.Replicas {
		if b == r.cfg.Broker {
			want = append(want, b)
			continue
		}
		f := r.ld.followers[b]
		if f == nil {
			continue
		}
		in := contains(r.state.ISR, b)
		switch {
		case in && (f.durable >= r.leo || r.now-f.caughtUpAt <= r.cfg.LagMaxMs):
			// Kafka's isCaughtUp: a follower holding all of the log is in
			// sync however long ago it last fetched.
			want = append(want, b)
		case !in && f.fetched && f.durable >= r.hw && f.durable >= r.ld.epochStart:
			// Joining never lowers the high watermark: the newcomer
			// already holds durably everything below it.
			want = append(want, b)
		}
	}
	if slices.Equal(want, r.state.ISR) {
		return
	}
	req := AlterPartitionRequest{Partition: r.cfg.Partition, Leader: r.cfg.Broker,
		LeaderBrokerEpoch: r.brokerEpoch, LeaderEpoch: r.epoch, PartitionEpoch: r.state.PartitionEpoch}
	for _, b := range want {
		be := r.brokerEpoch
		if b != r.cfg.Broker {
			be = r.ld.followers[b].brokerEpoch
		}
		req.NewISR = append(req.NewISR, ISRMember{Broker: b, BrokerEpoch: be})
		if !contains(r.ld.proposed, b) {
			r.ld.proposed = append(r.ld.proposed, b)
		}
	}
	r.ld.proposedAt = r.now
	r.out.ToController = append(r.out.ToController, req)
}

func (r *Replica) handleAlterPartitionResponse(m AlterPartitionResponse) {
	if r.role != Leader {
		return
	}
	// Accepted or not, the answer carries the partition as the controller
	// holds it: a newer in-sync set, or a newer epoch that deposes us.
	r.ApplyState(m.State, r.now)
	if m.Err != nil && r.role == Leader && m.State.LeaderEpoch > r.epoch {
		r.depose(m.State.LeaderEpoch)
	}
}
