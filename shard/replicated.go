package shard

import (
	"fmt"
	"hash/crc32"
)

// The log's side of replication (cluster/replication drives it; shard
// knows nothing of brokers or the protocol):
//
//	AppendReplicated   a batch as the leader wrote it: offsets, leader epoch
//	                   and producer fields kept; it must start at the log end
//	TruncateTo         (retention.go) cut at a batch boundary, KIP-101
//	EndOffsetForEpoch  (epochs.go) the leader-epoch cache lookup
//	ReadToEnd          a follower fetch: up to the log end, durable or not
//	SetHighWatermark   the leader's high watermark, with Config.ExternalHW
//	DurableOffset      what a follower reports: the end of its fsynced prefix
//
// The same path serves the leader's own appends once replication has
// assigned their offsets, so a leader's and a follower's logs are written
// by the same code.

// AppendReplicated stages a batch whose offsets, leader epoch and producer
// fields were assigned by the partition's leader, and calls done once it is
// durable. Nothing in the batch is rewritten. It is refused with an error,
// and done not called, when the batch is malformed, its CRC does not
// match, or (if it can be placed at once) it does not start at the log
// end or its epoch is older than the last batch's; a batch that had to
// wait behind a truncation or earlier batches is checked when it is placed
// and refused through done. A batch of a new epoch records it in the
// leader-epoch cache, durably, before the batch is staged. Segment age
// (SegmentMs) counts from the log's clock, the time of its last Tick or
// Append: the leader's timestamps are the producer's, not this broker's.
func (l *Log) AppendReplicated(batch []byte, done AppendFunc) error {
	l.checkInvariants("AppendReplicated")
	switch {
	case l.closed:
		return ErrClosed
	case l.failed != nil:
		return l.failed
	case l.stalled != nil:
		return l.stalled
	}
	h, err := ParseBatchHeader(batch)
	if err != nil {
		return err
	}
	if err := h.check(l.cfg.MaxBatchBytes); err != nil {
		return err
	}
	switch {
	case h.Size() != len(batch):
		return fmt.Errorf("%w: batchLength says %d bytes, got %d", ErrInvalidBatch, h.Size(), len(batch))
	case h.BaseOffset < 0 || h.LeaderEpoch < 0:
		return fmt.Errorf("%w: replicated batch at offset %d, leader epoch %d", ErrInvalidBatch, h.BaseOffset, h.LeaderEpoch)
	}
	if got := crc32.Checksum(batch[21:], castagnoli); got != h.CRC {
		return fmt.Errorf("%w: crc %08x, header says %08x", ErrCorruptBatch, got, h.CRC)
	}
	return l.append(batch, l.clockMs, done, true)
}

// continues checks that a replicated batch starts at the log end with an
// epoch no older than the last batch's, and records a new epoch.
func (l *Log) continues(h *BatchHeader) error {
	if h.BaseOffset != l.next {
		return fmt.Errorf("%w: replicated batch starts at %d, the log ends at %d", ErrInvalidOffset, h.BaseOffset, l.next)
	}
	// assign is a no-op for the newest epoch; an empty cache (a log that
	// never had an epoch) learns its first one here, epoch 0 included.
	if err := l.epochs.assign(h.LeaderEpoch, h.BaseOffset); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidBatch, err)
	}
	return nil
}

// ReadToEnd is Read for a follower's fetch: whole batches from the one
// holding offset up to the log end, including those not yet durable here
// (a follower's copy counts toward the high watermark only once it is
// durable there, and the leader's own only once durable here, so nothing
// is acknowledged on the strength of this read). The result carries the
// high watermark.
func (l *Log) ReadToEnd(offset Offset, maxBytes int, done ReadFunc) {
	l.checkInvariants("ReadToEnd")
	l.read(offset, maxBytes, true, done)
}

// SetHighWatermark sets the high watermark's target to hw, as replication
// computes it (the leader's, or the one a follower learned from the
// leader's fetch answer): the high watermark follows it, but never past
// what is durable here (the rest waits for this log's fdatasyncs). A
// target below the high watermark leaves the high watermark where it is
// (only TruncateTo lowers it) but still lowers the target: a leader whose
// in-sync set just grew must not let its own later fsyncs carry the high
// watermark past what the new member holds. It panics unless
// Config.ExternalHW is set, since the log moves its own high watermark
// otherwise. It returns the high watermark now in force.
func (l *Log) SetHighWatermark(hw Offset) Offset {
	l.checkInvariants("SetHighWatermark")
	if !l.cfg.ExternalHW {
		panic(fmt.Sprintf("shard: SetHighWatermark on %s, whose high watermark is its own (Config.ExternalHW unset)", l.cfg.Dir))
	}
	l.hwTarget = max(l.hw, hw)
	l.raiseHW()
	return l.hw
}

// raiseHW moves an external high watermark as far toward its target as
// the durable end allows.
func (l *Log) raiseHW() {
	if hw := min(l.hwTarget, l.durableNext); hw > l.hw {
		l.advanceHW(hw)
		if l.OnCommit != nil {
			l.OnCommit(l.hw)
		}
	}
}

// ExternalHW reports whether replication owns this log's high watermark
// (Config.ExternalHW).
func (l *Log) ExternalHW() bool { return l.cfg.ExternalHW }

// DurableOffset is the offset after the last record an fdatasync covers:
// what a follower reports to the leader, whose high watermark waits for it.
func (l *Log) DurableOffset() Offset { return l.durableNext }
