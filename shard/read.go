package shard

import (
	"errors"
	"fmt"
	"hash/crc32"
	"sort"

	"github.com/strand-io/strand/dma"
)

// ReadResult is what a read returns: whole batches, never a partial one.
type ReadResult struct {
	Data           []byte // concatenated batches, owned by the caller
	HighWatermark  Offset
	LogStartOffset Offset
}

// ReadFunc receives a read's outcome. It may run before Read returns when
// the answer needs no disk I/O.
type ReadFunc func(ReadResult, error)

// Read returns whole batches starting with the one that holds offset, up to
// maxBytes (but always at least one whole batch, as KIP-74 requires), and
// only below the high watermark, so a reader never sees a record that a
// crash could still take back. An offset from the high watermark to the
// log end reads nothing; past the log end, or below the log start, it is
// ErrOffsetOutOfRange. Data read from disk is CRC-checked before it
// is returned; a damaged batch ends the result and, if it is the first one,
// fails the read with a CorruptionError naming file and position.
func (l *Log) Read(offset Offset, maxBytes int, done ReadFunc) {
	l.checkInvariants("Read")
	l.read(offset, maxBytes, false, done)
}

// readLimit is where a read stops: the high watermark, or for ReadToEnd
// the log end.
func (l *Log) readLimit(toEnd bool) Offset {
	if toEnd {
		return l.next
	}
	return l.hw
}

func (l *Log) read(offset Offset, maxBytes int, toEnd bool, done ReadFunc) {
	res := ReadResult{HighWatermark: l.hw, LogStartOffset: l.logStart}
	upTo := l.readLimit(toEnd)
	switch {
	case l.closed:
		done(res, ErrClosed)
		return
	case offset < l.logStart || offset > l.next:
		done(res, ErrOffsetOutOfRange)
		return
	case offset >= upTo:
		// Between the high watermark and the log end there is nothing
		// to read yet, as in Kafka: a consumer that saw a high watermark
		// a new leader has not reached yet (KIP-207) waits rather than
		// resetting its position.
		done(res, nil)
		return
	}
	if data, ok := l.readStaged(offset, maxBytes, upTo); ok {
		res.Data = data
		done(res, nil)
		return
	}
	seg := l.segmentFor(offset)
	if err := seg.loadIndexes(l.fs); err != nil {
		done(res, err)
		return
	}
	limit := seg.size
	if seg == l.active {
		limit = l.synced
		if toEnd {
			limit = l.written // the rest is in the staging buffer
		}
	}
	r := &diskRead{l: l, seg: seg, offset: offset, maxBytes: maxBytes, limit: limit, upTo: upTo, toEnd: toEnd,
		res: res, done: done, truncations: l.truncations}
	e := seg.index.lookup(uint32(offset - Offset(seg.base)))
	r.pos, r.next = int64(e.pos), Offset(seg.base)+Offset(e.rel)
	l.pinFile(seg, func(err error) {
		switch {
		case err == nil:
			r.issue()
		case errors.Is(err, errSegmentGone) && !l.closed:
			// Deleted while the read waited for its file: ask again.
			l.releaseRead(seg)
			l.read(offset, maxBytes, toEnd, done)
		default:
			l.releaseRead(seg)
			done(res, err)
		}
	})
}

// readStaged serves hot data straight from the staging buffer of the
// active segment, with no disk I/O: the common case of a tailing consumer.
// It serves whole batches that start below upTo (which is always a batch
// boundary).
func (l *Log) readStaged(offset Offset, maxBytes int, upTo Offset) ([]byte, bool) {
	if len(l.recent) == 0 || offset < l.recent[0].base {
		return nil, false
	}
	i := sort.Search(len(l.recent), func(i int) bool { return l.recent[i].last >= offset })
	if i == len(l.recent) {
		return nil, false
	}
	from := l.recent[i].pos
	to := from
	for j := i; j < len(l.recent) && l.recent[j].base < upTo; j++ {
		end := l.end
		if j+1 < len(l.recent) {
			end = l.recent[j+1].pos
		}
		if to > from && end-from > int64(maxBytes) {
			break
		}
		to = end
	}
	return append([]byte(nil), l.buf[from-l.bufPos:to-l.bufPos]...), true
}

// segmentFor returns the segment holding offset (offset within the log).
func (l *Log) segmentFor(offset Offset) *segment {
	i := sort.Search(len(l.segs), func(i int) bool { return Offset(l.segs[i].base) > offset })
	return l.segs[i-1]
}

// diskRead is one read in progress against one segment file.
type diskRead struct {
	l        *Log
	seg      *segment
	offset   Offset
	maxBytes int
	limit    int64  // readable bytes in the segment
	upTo     Offset // serve only batches wholly below it (high watermark or log end)
	toEnd    bool   // ReadToEnd
	pos      int64  // next batch boundary to look at
	next     Offset // the base offset the batch at pos must have
	need     int    // size of the batch at pos when it did not fit the last read
	buf      []byte
	bufPos   int64
	out      []byte
	res      ReadResult
	done     ReadFunc
	// truncations is Log.truncations when the read started.
	truncations uint64
	lastEpoch   Epoch // of the last batch read: epochs must not decrease
}

func (r *diskRead) issue() {
	if r.pos >= r.limit {
		r.finish(nil)
		return
	}
	align := r.seg.file.Align()
	from := dma.AlignDown(r.pos, align)
	want := r.maxBytes - len(r.out) + int(r.pos-from) + r.l.cfg.IndexIntervalBytes + BatchHeaderSize
	if want < 64<<10 {
		want = 64 << 10
	}
	if whole := int(r.pos-from) + r.need; want < whole {
		want = whole // a batch larger than maxBytes is still served whole (KIP-74)
	}
	r.need = 0
	to := dma.AlignUp(from+int64(want), align)
	if lim := dma.AlignUp(r.limit, align); to > lim {
		to = lim
	}
	if r.buf == nil || len(r.buf) < int(to-from) {
		if r.buf != nil {
			r.l.pool.Put(r.buf)
			r.buf = nil
		}
		buf, err := r.l.pool.TryGet(int(to - from))
		if err != nil {
			// Out of memory is this read's failure, not the broker's.
			r.finish(fmt.Errorf("read buffer: %w", err))
			return
		}
		r.buf = buf
	}
	r.bufPos = from
	r.l.io.Read(r.seg.file, r.buf[:to-from], from, r.onRead)
}

func (r *diskRead) onRead(n int, err error) {
	if r.truncations != r.l.truncations {
		// The log was cut while this read was in flight: these bytes may
		// be from the removed part. Serve only what is still below the
		// high watermark; the consumer asks again for the rest.
		r.out = batchesBelow(r.out, min(r.upTo, r.l.readLimit(r.toEnd)))
		r.finish(nil)
		return
	}
	if err != nil {
		r.finish(err)
		return
	}
	data := r.buf[:n]
	if end := r.limit - r.bufPos; int64(len(data)) > end {
		data = data[:end]
	}
	for {
		off := r.pos - r.bufPos
		rest := data[off:]
		if r.pos >= r.limit {
			r.finish(nil)
			return
		}
		if len(rest) < BatchHeaderSize {
			if r.bufPos+int64(len(data)) < r.limit {
				break // read on from this batch
			}
			// Fewer bytes than a header left before the limit: reading
			// again would return the same bytes forever.
			if !allZero(rest) {
				r.finish(r.corrupt(ErrShortBatch))
				return
			}
			r.pos = r.limit // zero padding after the last batch
			continue
		}
		h, _ := ParseBatchHeader(rest)
		if err := h.check(r.l.cfg.MaxBatchBytes); err != nil {
			r.finish(r.corrupt(err))
			return
		}
		if h.BaseOffset != r.next && (h.BaseOffset < r.next || r.seg == r.l.active || h.LastOffset() > r.seg.last) {
			// A sealed segment the cleaner rewrote has gaps between
			// batches, but never offsets outside the segment.
			// baseOffset lies outside the CRC: only the sequence vouches for it.
			r.finish(r.corrupt(fmt.Errorf("%w: base offset %d, expected %d", ErrCorruptBatch, h.BaseOffset, r.next)))
			return
		}
		if h.LeaderEpoch < r.lastEpoch || h.LeaderEpoch > r.l.epochs.current() {
			// Also outside the CRC; a client fencing on epochs must not see a flipped one.
			r.finish(r.corrupt(fmt.Errorf("%w: leader epoch %d after %d (newest known %d)", ErrCorruptBatch, h.LeaderEpoch, r.lastEpoch, r.l.epochs.current())))
			return
		}
		if h.Size() > len(rest) {
			if r.pos+int64(h.Size()) > r.limit {
				r.finish(r.corrupt(ErrShortBatch))
				return
			}
			r.need = h.Size()
			break // read on from this batch
		}
		if h.BaseOffset >= r.upTo {
			r.finish(nil) // past the high watermark (or the log end)
			return
		}
		if h.LastOffset() >= r.offset {
			if len(r.out) > 0 && len(r.out)+h.Size() > r.maxBytes {
				r.finish(nil)
				return
			}
			if crc32.Checksum(rest[21:h.Size()], castagnoli) != h.CRC {
				r.finish(r.corrupt(ErrCorruptBatch))
				return
			}
			if h.LastOffset() >= r.upTo {
				// The limit is always a batch boundary: serve only
				// whole batches below it.
				r.finish(nil)
				return
			}
			r.out = append(r.out, rest[:h.Size()]...)
		}
		r.pos += int64(h.Size())
		r.next = h.LastOffset() + 1
		r.lastEpoch = h.LeaderEpoch
		if len(r.out) >= r.maxBytes {
			r.finish(nil)
			return
		}
	}
	if n == 0 {
		r.finish(r.corrupt(ErrShortBatch))
		return
	}
	r.issue()
}

// batchesBelow returns the leading batches of out whose records all lie
// below end.
func batchesBelow(out []byte, end Offset) []byte {
	n := 0
	for n+BatchHeaderSize <= len(out) {
		h, _ := ParseBatchHeader(out[n:])
		if h.LastOffset() >= end || n+h.Size() > len(out) {
			break
		}
		n += h.Size()
	}
	return out[:n]
}

func (r *diskRead) corrupt(err error) error {
	return &CorruptionError{File: r.seg.path(logExt), Pos: FilePos(r.pos), Offset: r.offset, Err: err}
}

func (r *diskRead) finish(err error) {
	if r.buf != nil {
		r.l.pool.Put(r.buf)
		r.buf = nil
	}
	r.l.releaseRead(r.seg)
	var ce *CorruptionError
	if errors.As(err, &ce) {
		r.l.cfg.Logger.Error("corrupt batch in partition log; not served", "file", ce.File, "pos", ce.Pos, "offset", ce.Offset, "err", ce.Err)
		if len(r.out) > 0 {
			err = nil // serve what came before the damage; the next read reports it
		}
	}
	if err == nil && len(r.out) == 0 && r.pos >= r.limit && r.seg != r.l.active {
		// The offset lies past this segment's data (e.g. it starts the next
		// segment after a gap): continue there.
		r.l.read(Offset(r.seg.last+1), r.maxBytes, r.toEnd, r.done)
		return
	}
	r.res.Data = r.out
	r.done(r.res, err)
}

// OffsetForTime returns the base offset of the first batch whose max
// timestamp is >= ts, with that timestamp, or (-1, -1) if there is none.
// Kafka answers ListOffsets by timestamp with a record offset; Strand
// answers with the start of the batch that holds it, so it never has to
// decompress, and a consumer starting there sees the record.
//
// Batches wholly below the log start are skipped, and one that straddles it
// answers the log start: DeleteRecords can cut a segment in the middle, so
// the first candidate segment may hold no readable match at all.
func (l *Log) OffsetForTime(ts int64, done func(off Offset, ts int64, err error)) {
	l.offsetForTimeFrom(0, ts, done)
}

func (l *Log) offsetForTimeFrom(first int, ts int64, done func(off Offset, ts int64, err error)) {
	for i := first; i < len(l.segs); i++ {
		seg := l.segs[i]
		if err := seg.loadIndexes(l.fs); err != nil {
			done(-1, -1, err)
			return
		}
		if seg.maxTimestamp < ts && seg != l.active {
			continue
		}
		if seg == l.active && seg.maxTimestamp < ts {
			break
		}
		startRel := seg.times.lookup(ts)
		pos := int64(seg.index.lookup(startRel).pos)
		if seg == l.active || Offset(seg.base) >= l.logStart {
			l.scanForTime(seg, pos, ts, done)
			return
		}
		// Cut by DeleteRecords: a miss here goes on to the next segment.
		next := i + 1
		l.scanForTime(seg, pos, ts, func(off Offset, at int64, err error) {
			if err != nil || off >= 0 {
				done(off, at, err)
				return
			}
			l.offsetForTimeFrom(next, ts, done)
		})
		return
	}
	done(-1, -1, nil)
}

func (l *Log) scanForTime(seg *segment, pos int64, ts int64, done func(Offset, int64, error)) {
	limit := seg.size
	if seg == l.active {
		limit = l.synced
	}
	var found Offset = -1
	var foundTs int64 = -1
	truncations := l.truncations
	var buf []byte
	var bufPos int64
	var step func(n int, err error)
	step = func(n int, err error) {
		if truncations != l.truncations {
			// Cut meanwhile: these headers may be gone. Look again.
			l.pool.Put(buf)
			l.releaseRead(seg)
			l.OffsetForTime(ts, done)
			return
		}
		if err != nil {
			l.pool.Put(buf)
			l.releaseRead(seg)
			done(-1, -1, err)
			return
		}
		data := buf[:n]
		for {
			off := pos - bufPos
			if pos >= limit || off+BatchHeaderSize > int64(len(data)) {
				break
			}
			h, _ := ParseBatchHeader(data[off:])
			if h.check(l.cfg.MaxBatchBytes) != nil {
				pos = limit
				break
			}
			if h.MaxTimestamp >= ts && h.BaseOffset < l.hw && h.LastOffset() >= l.logStart {
				found, foundTs = max(h.BaseOffset, l.logStart), h.MaxTimestamp
				pos = limit
				break
			}
			pos += int64(h.Size())
		}
		if pos >= limit || n == 0 {
			l.pool.Put(buf)
			l.releaseRead(seg)
			done(found, foundTs, nil)
			return
		}
		bufPos = dma.AlignDown(pos, seg.file.Align())
		l.io.Read(seg.file, buf, bufPos, step)
	}
	l.pinFile(seg, func(err error) {
		if err != nil {
			l.releaseRead(seg)
			if errors.Is(err, errSegmentGone) && !l.closed {
				l.OffsetForTime(ts, done)
				return
			}
			done(-1, -1, err)
			return
		}
		// Walk batch headers without copying anything, stopping at the
		// first match; only the headers matter, so no CRC is computed here.
		buf = l.pool.Get(256 << 10)
		bufPos = dma.AlignDown(pos, seg.file.Align())
		l.io.Read(seg.file, buf, bufPos, step)
	})
}
