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
	r.send(r.leader(), FetchRequest{Partition: r.cfg.Partition, Replica: r.cfg.Broker,
		ReplicaBrokerEpoch: r.brokerEpoch, CurrentLeaderEpoch: r.epoch,
		FetchOffset: r.leo, DurableOffset: r.durable})
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
	if m.Epoch == NoEpoch {
		r.truncate(0)
		r.fl.truncated = true
		r.sendNext()
		return
	}
	mine, end := r.endForEpoch(m.Epoch)
	r.truncate(min(end, m.EndOffset))
	r.fl.truncated = mine == m.Epoch || len(r.log) == 0
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
