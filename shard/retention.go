package shard

import (
	"fmt"
	"sort"

	"github.com/strand-io/strand/dma"
)

// ApplyRetention deletes whole sealed segments that retention no longer
// needs: the oldest first, while the log exceeds RetentionBytes or while the
// segment's newest record is older than RetentionMs. The active segment is
// never deleted. Reads in flight keep a deleted segment's file open until
// they finish (removeSegment).
func (l *Log) ApplyRetention(nowMs int64) int {
	deleted := 0
	for len(l.segs) > 1 {
		seg := l.segs[0]
		if !l.expired(seg, nowMs) {
			break
		}
		l.dropFirstSegment()
		deleted++
	}
	return deleted
}

// dropFirstSegment removes the oldest segment (never the active one) and
// advances the log start. Reads in flight keep its file until they finish.
func (l *Log) dropFirstSegment() {
	seg := l.segs[0]
	l.segs = l.segs[1:]
	l.logStart = Offset(l.segs[0].base)
	l.epochs.trimStart(l.logStart)
	if err := l.removeSegment(seg); err != nil {
		l.cfg.Logger.Error("could not delete segment", "file", seg.path(logExt), "err", err)
	}
}

// removeSegment deletes a segment's files now. With reads in flight it
// closes them only when the last read finishes (releaseRead): closing under
// a queued io_uring read would let it run on whatever file next gets the
// descriptor number. The names go at once because truncation may create a
// new segment with the same base right away.
func (l *Log) removeSegment(s *segment) error {
	if s.reads == 0 {
		return s.remove(l.fs)
	}
	s.deleted = true
	return s.unlink(l.fs)
}

// releaseRead ends a read's hold on seg. The last read of a deleted
// segment closes (and, after retention, deletes) it; of a sealed file the
// cache had no room for, closes it; of a cached one, lets the cache hand
// the file's slot to a waiting read.
func (l *Log) releaseRead(seg *segment) {
	seg.reads--
	if seg.reads > 0 {
		return
	}
	switch {
	case seg.deleted:
		if err := seg.remove(l.fs); err != nil {
			l.cfg.Logger.Error("could not delete segment", "file", seg.path(logExt), "err", err)
		}
	case seg.closeOnRelease:
		seg.close()
	case seg.cache != nil:
		seg.cache.released(seg)
	}
}

func (l *Log) expired(seg *segment, nowMs int64) bool {
	if !l.cfg.Cleanup.deletes() {
		return false // cleanup.policy=compact: only the cleaner removes records
	}
	if l.cfg.RetentionBytes > 0 && l.sizeBytes()-seg.size >= l.cfg.RetentionBytes {
		return true
	}
	if l.cfg.RetentionMs > 0 {
		if err := seg.loadIndexes(l.fs); err == nil && seg.maxTimestamp >= 0 && nowMs-seg.maxTimestamp > l.cfg.RetentionMs {
			return true
		}
	}
	return false
}

// SizeBytes is the bytes of log data stored, over all segments.
func (l *Log) SizeBytes() int64 { return l.sizeBytes() }

func (l *Log) sizeBytes() int64 {
	var n int64
	for _, s := range l.segs {
		n += s.size
	}
	return n
}

// SetRetention changes the retention limits (AlterConfigs).
func (l *Log) SetRetention(bytes, ms int64) { l.cfg.RetentionBytes, l.cfg.RetentionMs = bytes, ms }

// TruncateTo removes every record at or after offset, as a follower does
// when its log diverges from a new leader's. The cut is made at the batch
// boundary at or before offset. It waits for the write pipeline to drain,
// then runs synchronously; done reports the new end offset, which is below
// offset when the log ended there, or when batches appended before the
// call were still queued (they are placed after the cut).
func (l *Log) TruncateTo(offset Offset, done func(Offset, error)) {
	l.checkInvariants("TruncateTo")
	if offset < 0 {
		// A caller's bug (no leader epoch found, say), not the log's: it
		// is refused and the log keeps every record.
		done(l.next, fmt.Errorf("%w: truncate to negative offset %d", ErrInvalidOffset, offset))
		return
	}
	l.dropQueuedReplicated(offset)
	l.whenIdle(func() {
		err := l.truncateNow(offset)
		if err != nil {
			l.fail(err)
		}
		done(l.next, err)
	})
	l.kick()
}

// dropQueuedReplicated refuses the replicated batches still waiting in the
// backlog that the truncation asked for now removes (records at or past
// offset): placed after the cut, one could land exactly at the new end and
// bring back what the cut removes. Their done gets ErrTruncated. Queued
// batches wholly below offset stay: the cut does not reach them, and they
// are placed after it. Batches appended by Append keep waiting too: they
// get their offsets after the cut.
func (l *Log) dropQueuedReplicated(offset Offset) {
	keep := l.backlog[:0]
	for _, p := range l.backlog {
		if h, _ := ParseBatchHeader(p.batch); !p.kept || h.LastOffset() < offset {
			keep = append(keep, p)
			continue
		}
		p.done(AppendResult{}, fmt.Errorf("%w: queued before a truncation to %d", ErrTruncated, offset))
	}
	clear(l.backlog[len(keep):])
	l.backlog = keep
}

// ResetTo empties the log and starts it again at offset, which may lie
// past its end (Kafka's truncateFullyAndStartAt): a follower whose whole
// log lies below the leader's log start, the leader's retention having
// removed what it would fetch next, starts over where the leader's log
// starts. Every replicated batch still queued is refused (ErrTruncated).
// done gets the new end (offset) once the removal is durable.
func (l *Log) ResetTo(offset Offset, done func(Offset, error)) {
	l.checkInvariants("ResetTo")
	if offset < 0 {
		done(l.next, fmt.Errorf("%w: reset to negative offset %d", ErrInvalidOffset, offset))
		return
	}
	l.dropQueuedReplicated(0)
	l.whenIdle(func() {
		l.truncations++
		err := l.startOver(offset)
		if err != nil {
			l.fail(err)
		}
		done(l.next, err)
	})
	l.kick()
}

func (l *Log) truncateNow(offset Offset) error {
	if offset >= l.next {
		return nil
	}
	// Reads in flight notice this and drop what the cut removed.
	l.truncations++
	if offset <= l.logStart {
		return l.startOver(offset)
	}
	return l.cutAt(offset)
}

// startOver removes every segment and starts the log again, empty, at
// offset.
func (l *Log) startOver(offset Offset) error {
	for _, s := range l.segs {
		if err := l.removeSegment(s); err != nil {
			return err
		}
	}
	if err := l.fs.SyncDir(l.cfg.Dir); err != nil { // see below
		return err
	}
	l.segs, l.active = nil, nil
	l.end, l.bufPos = 0, 0
	clear(l.buf)
	if err := l.startSegment(SegmentBase(offset)); err != nil {
		return err
	}
	l.next, l.hw, l.logStart, l.durableNext, l.hwTarget = offset, offset, offset, offset, offset
	// A DeleteRecords checkpoint names a log start this log no longer
	// has; left in place, it would hide records appended from here
	// once they pass it (loadLogStart). It goes before any append.
	if err := l.removeLogStart(); err != nil {
		return err
	}
	if err := l.loadProducers(); err != nil {
		return err
	}
	return l.epochs.clear()
}

// cutAt removes the records at and past offset, which lies within the
// log, past its start.
func (l *Log) cutAt(offset Offset) error {
	i := sort.Search(len(l.segs), func(i int) bool { return Offset(l.segs[i].base) >= offset })
	// Segments starting at or after offset go entirely, the last first: a
	// kill or power cut between two removals must leave a prefix of the
	// log. Removed from the first, it could leave a later segment behind
	// a gap, and Open, trusting every segment but the last up to the next
	// one's base, would serve a log with a hole in it.
	for k := len(l.segs) - 1; k >= i; k-- {
		if err := l.removeSegment(l.segs[k]); err != nil {
			return err
		}
	}
	// The removals must be durable before the surviving segment is cut: a
	// crash that brought a removed segment back would make the cut one look
	// sealed (trusted up to the next base) and serve stale records.
	if err := l.fs.SyncDir(l.cfg.Dir); err != nil {
		return err
	}
	l.segs = l.segs[:i]
	seg := l.segs[i-1]
	if err := seg.loadIndexes(l.fs); err != nil {
		return err
	}
	if err := l.holdFile(seg); err != nil {
		return err
	}
	pos, last, err := l.findBoundary(seg, offset)
	if err != nil {
		return err
	}
	seg.size = pos
	seg.last = last
	seg.index.truncate(uint32(pos))
	seg.times.truncate(uint32(last - Offset(seg.base) + 1))
	seg.maxTimestamp = seg.times.maxTimestamp()
	if n := len(seg.index.entries); n > 0 {
		seg.lastIndexedPos = int64(seg.index.entries[n-1].pos)
	} else {
		seg.lastIndexedPos = 0
	}
	if err := seg.rewriteIndexes(l.fs); err != nil {
		return err
	}
	l.active = seg
	clear(l.buf)
	align := seg.file.Align()
	l.bufPos = dma.AlignDown(pos, align)
	if pos > l.bufPos {
		if _, err := seg.file.ReadAt(l.buf[:align], l.bufPos); err != nil {
			return err
		}
		clear(l.buf[pos-l.bufPos : align])
		if _, err := seg.file.WriteAt(l.buf[:align], l.bufPos); err != nil {
			return err
		}
	}
	if err := seg.file.Truncate(dma.AlignUp(pos, align)); err != nil {
		return err
	}
	seg.allocated = dma.AlignUp(pos, align) // the cut released any preallocation
	if err := seg.file.Sync(); err != nil {
		return err
	}
	l.end, l.written, l.synced = pos, pos, pos
	l.recent = l.recent[:0]
	l.next = last + 1
	l.durableNext = l.next
	l.hw, l.hwTarget = min(l.hw, l.next), min(l.hwTarget, l.next)
	if err := l.loadProducers(); err != nil {
		return err
	}
	return l.epochs.truncateFrom(l.next)
}

// findBoundary scans seg for the batch boundary at or before offset and
// returns its file position and the last offset before it.
func (l *Log) findBoundary(seg *segment, offset Offset) (int64, Offset, error) {
	e := seg.index.lookup(uint32(offset - Offset(seg.base)))
	var pos int64 = int64(e.pos)
	last := Offset(seg.base) + Offset(e.rel) - 1
	st := l.newScan(pos, last+1)
	st.gaps = true // a cleaned segment has offset gaps
	st.onBatch = func(h *BatchHeader, p int64) {
		if h.BaseOffset <= offset && h.LastOffset() < offset {
			pos, last = p+int64(h.Size()), h.LastOffset()
		} else if h.BaseOffset <= offset {
			pos, last = p, h.BaseOffset-1
			st.stop = stopZeros
		}
		if h.LastOffset() >= offset {
			st.stop = stopZeros
		}
	}
	if err := l.scanFile(seg, st, seg.size); err != nil {
		return 0, 0, err
	}
	if st.stop == stopCorrupt || st.stop == stopTorn || st.stop == stopDiscontig {
		return 0, 0, &CorruptionError{File: seg.path(logExt), Pos: FilePos(st.pos), Offset: offset, Err: fmt.Errorf("%s", st.stopDetail)}
	}
	return pos, last, nil
}

// Reconfigure applies new topic settings (AlterConfigs) to a running log.
// Segment size and age apply from the next roll; retention at the next
// Tick. The staging buffer was sized at Open, so a larger batch limit is
// capped to what it can hold.
func (l *Log) Reconfigure(c Config) {
	l.cfg.SegmentBytes, l.cfg.SegmentMs = c.SegmentBytes, c.SegmentMs
	l.cfg.RetentionBytes, l.cfg.RetentionMs = c.RetentionBytes, c.RetentionMs
	l.cfg.LogAppendTime, l.cfg.Compression = c.LogAppendTime, c.Compression
	l.cfg.BoundTimestamps, l.cfg.TimestampBeforeMaxMs, l.cfg.TimestampAfterMaxMs = c.BoundTimestamps, c.TimestampBeforeMaxMs, c.TimestampAfterMaxMs
	l.cfg.Cleanup, l.cfg.DeleteRetentionMs = c.Cleanup, c.DeleteRetentionMs
	l.cfg.MinCompactionLagMs, l.cfg.MaxCompactionLagMs = c.MinCompactionLagMs, c.MaxCompactionLagMs
	l.cfg.MinCleanableDirtyRatio = c.MinCleanableDirtyRatio
	fillCompaction(&l.cfg)
	if !l.cfg.Cleanup.compacts() {
		l.abortClean()
	}
	if max := (l.cfg.BufferBytes - 2*dma.DefaultAlign) / 2; c.MaxBatchBytes > max {
		c.MaxBatchBytes = max
	}
	if c.MaxBatchBytes > 0 {
		l.cfg.MaxBatchBytes = c.MaxBatchBytes
	}
}

// DeleteBefore deletes the sealed segments whose records all lie below
// offset, and advances the log start (DeleteRecords). It returns how many
// it deleted.
func (l *Log) DeleteBefore(offset Offset) int {
	deleted := 0
	for len(l.segs) > 1 && l.segs[0].last < offset {
		l.dropFirstSegment()
		deleted++
	}
	return deleted
}
