package replhost

import (
	"fmt"
	"math"

	"github.com/strand-io/strand/cluster/replication"
	"github.com/strand-io/strand/shard"
)

// Host runs one Replica over one log. The log must be opened with
// shard.Config.ExternalHW: its high watermark is the replica's.
type Host struct {
	Replica *replication.Replica
	Log     *shard.Log
	// Send receives what the replica asks the broker to send (ToBrokers,
	// ToController, Produced), after its log operations were handed to
	// the log.
	Send func(replication.Ready)
	// Now is the broker clock, for the inputs the log's completions feed.
	Now func() replication.Millis

	// Truncations counts the truncations that removed records (for tests
	// and metrics).
	Truncations int

	// cuts holds the offset of every truncation issued, in order; an
	// append remembers how many there were. Its acknowledgement reports
	// the batch durable only if no truncation issued since cut below the
	// batch's end: a batch below every later cut is still in the
	// replica's log, and its durability must not be lost (acks=all waits
	// for it).
	cuts      []replication.Offset
	truncates int // truncations issued and not yet run by the log
	err       error
}

// Err is the first error the log reported (an append or a truncation
// refused or failed), after which the host stops feeding the replica.
func (h *Host) Err() error { return h.err }

// Flush carries out everything the replica asks for, until it asks for
// nothing more.
func (h *Host) Flush() {
	for h.err == nil {
		rd := h.Replica.Ready()
		if rd.Empty() {
			break
		}
		for _, op := range rd.LogOps {
			h.apply(op)
		}
		if len(rd.ToBrokers)+len(rd.ToController)+len(rd.Produced) > 0 {
			h.Send(rd)
		}
	}
	if h.err != nil {
		return
	}
	h.maybeSetLeaderEpoch()
	if hw := shard.Offset(h.Replica.HighWatermark()); hw > h.Log.HighWatermark() {
		h.Log.SetHighWatermark(hw)
	}
}

func (h *Host) apply(op replication.LogOp) {
	switch op.Kind {
	case replication.OpTruncate:
		if shard.Offset(op.Offset) < h.Log.NextOffset() {
			h.Truncations++
		}
		h.cuts = append(h.cuts, op.Offset)
		h.truncates++
		h.Log.TruncateTo(shard.Offset(op.Offset), func(end shard.Offset, err error) {
			h.truncates--
			if err == nil && end > shard.Offset(op.Offset) {
				// The replica cuts at batch boundaries only; the log
				// ending past the cut means the two disagree on the log.
				// (It may end below: batches the replica appended before
				// the cut may still wait in the log's queue.)
				err = fmt.Errorf("replhost: truncation to %d ended at %d", op.Offset, end)
			}
			h.fail(err)
		})
	case replication.OpAppend:
		issued := len(h.cuts)
		for _, b := range op.Batches {
			end := b.End()
			err := h.Log.AppendReplicated(EncodeBatch(b), func(_ shard.AppendResult, err error) {
				if h.cutSince(issued) < end {
					// A truncation the replica made since removed it:
					// durable or dropped (ErrTruncated), it is no longer
					// in the replica's log.
					return
				}
				if err != nil {
					h.fail(err)
					return
				}
				if h.err != nil {
					return
				}
				h.Replica.Synced(end, h.Now())
				h.Flush()
			})
			if err != nil {
				h.fail(fmt.Errorf("replhost: append at %d: %w", b.Base, err))
				return
			}
		}
	}
}

// maybeSetLeaderEpoch records a new leader's epoch in the log's epoch
// cache, at the log end, once the log holds every batch the replica
// appended before the election and no truncation is pending.
func (h *Host) maybeSetLeaderEpoch() {
	r := h.Replica
	if r.Role() != replication.Leader || h.truncates > 0 || h.Log.NextOffset() != shard.Offset(r.LogEnd()) {
		return // asked again at the next flush
	}
	// A no-op once the epoch is the cache's newest.
	h.fail(h.Log.SetLeaderEpoch(shard.Epoch(r.LeaderEpoch())))
}

// cutSince is the lowest cut of the truncations issued after the first n.
func (h *Host) cutSince(n int) replication.Offset {
	low := replication.Offset(math.MaxInt64)
	for _, c := range h.cuts[n:] {
		low = min(low, c)
	}
	return low
}

func (h *Host) fail(err error) {
	if err != nil && h.err == nil {
		h.err = err
	}
}
