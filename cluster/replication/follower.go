package replication

// followerState is what a follower keeps while following one leader epoch.
type followerState struct {
	// truncated: the log is known to be a prefix of the leader's (KIP-279
	// rounds of OffsetForLeaderEpoch are done), so fetching may start.
	truncated bool
	inFlight  bool
	sentAt    Millis
	nextAt    Millis // earliest time of the next request
	reported  Offset // durable offset sent in the last fetch
}

func (r *Replica) becomeFollower() {
	r.role = Follower
	// An empty log cannot diverge from anyone's.
	r.fl.truncated = len(r.log) == 0
	r.sendNext()
}

func (r *Replica) leader() BrokerID { return r.state.Leader }

// sendNext sends the follower's next request: OffsetForLeaderEpoch until
// the log is a prefix of the leader's, then Fetch from the log end with
// the durable offset so the leader can count it.
func (r *Replica) sendNext() {
	r.fl.inFlight = true
	r.fl.sentAt = r.now
	if !r.fl.truncated {
		r.send(r.leader(), EpochRequest{Partition: r.cfg.Partition, Replica: r.cfg.Broker,
			CurrentLeaderEpoch: r.epoch, LeaderEpoch: r.lastEpoch()})
		return
	}
	r.fl.reported = r.durable
	r.fetchSeq++
	r.send(r.leader(), FetchRequest{Partition: r.cfg.Partition, Replica: r.cfg.Broker,
		ReplicaBrokerEpoch: r.brokerEpoch, LogDirID: r.cfg.LogDirID, CurrentLeaderEpoch: r.epoch,
		FetchOffset: r.leo, DurableOffset: r.durable, Seq: r.fetchSeq})
}

func (r *Replica) followerTick() {
	switch {
	case r.fl.inFlight && r.now-r.fl.sentAt >= r.cfg.RetryMs:
		r.sendNext() // lost, or the leader is slow: ask again
	case !r.fl.inFlight && r.now >= r.fl.nextAt:
		r.sendNext()
	}
}

// backOff ends the request in flight and waits RetryMs for the next.
func (r *Replica) backOff() {
	r.fl.inFlight = false
	r.fl.nextAt = r.now + r.cfg.RetryMs
}

// current reports whether an answer comes from our leader in our epoch and
// belongs to the phase we are in.
func (r *Replica) current(from BrokerID, epoch Epoch) bool {
	return r.role == Follower && from == r.leader() && epoch == r.epoch
}

// handleEpochResponse truncates the log to where it stops agreeing with
// the leader's. KIP-279: the leader names the largest epoch E it has at or
// below ours and where E ends in its log; we cut at the smaller of that
// and where E ends in ours. If we do not have E ourselves, what we have
// past our own largest epoch below E is not the leader's either: cut there
// and ask again with our new last epoch.
func (r *Replica) handleEpochResponse(from BrokerID, m EpochResponse) {
	if !r.current(from, m.CurrentLeaderEpoch) || r.fl.truncated || m.Requested != r.lastEpoch() {
		return
	}
	if m.Err != nil {
		r.backOff()
		return
	}
	// The next round asks for the last epoch left in the log, which is
	// at most Divergence's askNext: here every epoch has a batch.
	cut, agreed, _ := Divergence(m.Epoch, m.EndOffset, r.endForEpoch, 0)
	r.truncate(cut)
	r.fl.truncated = agreed
	if !agreed {
		r.stats.TruncationRounds++
	}
	r.sendNext()
}

// handleFetchResponse appends what the leader sent, asks for an fsync, and
// learns the high watermark, never past its own log.
func (r *Replica) handleFetchResponse(from BrokerID, m FetchResponse) {
	if !r.current(from, m.LeaderEpoch) || !r.fl.truncated || m.FetchOffset != r.leo || !r.fl.inFlight {
		return
	}
	switch m.Err {
	case nil:
	case ErrOffsetOutOfRange:
		// Our log runs past the leader's: only a missed truncation does
		// that. Start the epoch over.
		r.fl.truncated = false
		r.sendNext()
		return
	default:
		r.backOff()
		return
	}
	if len(m.Batches) > 0 {
		r.appendBatches(m.Batches)
	}
	if hw := min(m.HighWatermark, r.leo); hw > r.hw {
		r.hw = hw
	}
	// Fetch again at once while there is data or a durable offset the
	// leader has not heard of (an fsync finished while this fetch was
	// out): acks=all waits for it.
	if len(m.Batches) > 0 || r.durable > r.fl.reported {
		r.sendNext()
	} else {
		r.backOff()
	}
}

// Divergence is one round of a follower's truncation (KIP-101, KIP-279):
// the leader answered OffsetForLeaderEpoch with leaderEpoch, the largest
// epoch at or below the follower's last one in its log, ending there at
// leaderEnd. local is the follower's own leader-epoch lookup (the largest
// epoch at or below one, NoEpoch if none, and where it ends in the
// follower's log); logStart is the follower's log start.
//
// The follower cuts at cut. agreed says its log is then a prefix of the
// leader's; otherwise it asks again, for askNext: the largest epoch it
// has below the leader's answer, which falls with every round, so the
// rounds end (asking for the log's newest epoch instead would loop when
// that epoch has no batch: an epoch this broker led without writing).
// The brokers' fetchers (cluster/fetcher.go) and the simulator's
// followers both decide by this function.
func Divergence(leaderEpoch Epoch, leaderEnd Offset, local func(Epoch) (Epoch, Offset), logStart Offset) (cut Offset, agreed bool, askNext Epoch) {
	if leaderEpoch == NoEpoch {
		// The leader has no epoch this log knows: every batch here was
		// written in an epoch the leader never had.
		return logStart, true, NoEpoch
	}
	mine, end := local(leaderEpoch)
	if mine == NoEpoch {
		// Every batch here is from an epoch after leaderEpoch, which the
		// leader never had.
		return logStart, true, NoEpoch
	}
	if mine == leaderEpoch {
		// Both logs hold the epoch's batches, written by its one leader:
		// they agree up to the earlier of its two ends, a batch boundary
		// in both.
		return max(min(end, leaderEnd), logStart), true, mine
	}
	// Lacking leaderEpoch, what lies here past the end of our largest
	// epoch below it is not the leader's: cut there and ask again. Not at
	// leaderEnd too, as when the epochs match: our batches there are
	// another epoch's, and leaderEnd may fall inside one (seed 1865773).
	cut = max(end, logStart)
	return cut, cut == logStart, mine
}
