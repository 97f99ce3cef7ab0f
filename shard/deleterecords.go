package shard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
)

// Durable log start offset (DeleteRecords).
//
// Retention moves the log start only to a segment base, so the first
// segment's name is enough to recover it. DeleteRecords may move it into the
// middle of a segment, which no file name records; the offset is then kept
// in a small checkpoint file, written before any segment is deleted so that
// a crash never shows records the client was told are gone:
//
//	logstart.checkpoint, 28 bytes, big-endian
//	 0       4         6     8              16             24       28
//	+-------+---------+-----+--------------+--------------+--------+
//	| "LSO1"| version | pad | log start    | segment base | crc32c |
//	|       | int16=1 |  0  | int64        | int64        | of 0:24|
//	+-------+---------+-----+--------------+--------------+--------+
//
// The segment base is that of the segment holding the log start when the
// checkpoint was written. At Open:
//
//	case                                          action
//	no checkpoint, or damaged (CRC)               log start = first segment's base (damaged: logged)
//	its segment is gone, first base > log start   retention went past it: ignored
//	its segment is gone otherwise                 the log was truncated below it: ignored, logged
//	its segment is there, log start <= end        log start = checkpoint; segments wholly below it,
//	                                              whose removal a crash undid, are deleted again
//
// Deleting them again matters: retention would otherwise drop the first
// of them later and move the log start back to the next one's base.
// A truncation that keeps nothing (TruncateTo at or below the log start)
// removes the checkpoint before any append (removeLogStart): otherwise a
// new segment at the checkpoint's base, grown past its offset, would have
// its first records hidden at the next Open. A truncation that keeps
// something cuts above the log start and leaves the checkpoint true.
const logStartFile = "logstart.checkpoint"

const logStartFileSize = 28

var logStartMagic = [4]byte{'L', 'S', 'O', '1'}

func encodeLogStart(off Offset, seg SegmentBase) []byte {
	b := make([]byte, logStartFileSize)
	copy(b, logStartMagic[:])
	binary.BigEndian.PutUint16(b[4:], 1)
	binary.BigEndian.PutUint64(b[8:], uint64(off))
	binary.BigEndian.PutUint64(b[16:], uint64(seg))
	binary.BigEndian.PutUint32(b[24:], crc32.Checksum(b[:24], castagnoli))
	return b
}

func decodeLogStart(b []byte) (Offset, SegmentBase, error) {
	if len(b) < logStartFileSize || [4]byte(b[:4]) != logStartMagic || binary.BigEndian.Uint16(b[4:]) != 1 {
		return 0, 0, errors.New("not a log start checkpoint")
	}
	if crc32.Checksum(b[:24], castagnoli) != binary.BigEndian.Uint32(b[24:]) {
		return 0, 0, errors.New("log start checkpoint CRC mismatch")
	}
	return Offset(binary.BigEndian.Uint64(b[8:])), SegmentBase(binary.BigEndian.Uint64(b[16:])), nil
}

func (l *Log) logStartPath() string { return filepath.Join(l.cfg.Dir, logStartFile) }

// readLogStart reads the checkpoint; ok is false if there is none.
func (l *Log) readLogStart() (off Offset, seg SegmentBase, ok bool, err error) {
	f, err := l.fs.OpenFile(l.logStartPath(), os.O_RDONLY, 0, false)
	if err != nil {
		return 0, 0, false, nil // none: only retention has moved the log start
	}
	b, err := readAll(f)
	f.Close()
	if err != nil {
		return 0, 0, false, err
	}
	off, seg, err = decodeLogStart(b)
	return off, seg, err == nil, err
}

// loadLogStart applies the checkpoint as the table above says. Called by
// Open once the segments and the end are known.
func (l *Log) loadLogStart() {
	off, seg, ok, err := l.readLogStart()
	if err != nil {
		l.cfg.Logger.Warn("ignoring the log start checkpoint", "file", l.logStartPath(), "err", err)
		return
	}
	if !ok || off <= l.logStart {
		return
	}
	found := false
	for _, s := range l.segs {
		found = found || s.base == seg
	}
	if !found || off > l.hw {
		l.cfg.Logger.Warn("ignoring the log start checkpoint: the log was truncated below it",
			"file", l.logStartPath(), "checkpoint", off, "segment", seg, "end", l.hw)
		return
	}
	l.DeleteBefore(off)
	l.logStart = off
	l.epochs.trimStart(off)
}

// DeleteRecordsBefore makes offset the log start, as Kafka's DeleteRecords
// does: offset -1 means the high watermark; an offset above the high
// watermark (or below -1) is ErrOffsetOutOfRange; an offset at or below the
// current log start changes nothing. The new log start is durable before it
// returns, then the sealed segments wholly below it are deleted. It returns
// the log start after the call.
//
// The checkpoint is written with synchronous file calls on the core, like
// the leader-epoch checkpoint: DeleteRecords is a rare admin request, and
// an engine round trip would need a completion path of its own.
func (l *Log) DeleteRecordsBefore(offset Offset) (Offset, error) {
	switch {
	case l.closed:
		return l.logStart, ErrClosed
	case l.failed != nil:
		return l.logStart, l.failed
	case offset == -1:
		offset = l.hw
	case offset < -1 || offset > l.hw:
		return l.logStart, fmt.Errorf("%w: delete records before %d, high watermark %d", ErrOffsetOutOfRange, offset, l.hw)
	}
	if offset <= l.logStart {
		return l.logStart, nil
	}
	seg := l.segs[sort.Search(len(l.segs), func(i int) bool { return Offset(l.segs[i].base) > offset })-1].base
	if err := writeFileDurably(l.fs, l.logStartPath(), encodeLogStart(offset, seg)); err != nil {
		// Nothing moved: the client is told it failed and may retry.
		return l.logStart, fmt.Errorf("shard: write %s: %w", l.logStartPath(), err)
	}
	l.DeleteBefore(offset)
	l.logStart = offset
	l.epochs.trimStart(offset)
	return l.logStart, nil
}

// removeLogStart deletes the log start checkpoint, durably, if there is one.
func (l *Log) removeLogStart() error {
	if !l.fs.Exists(l.logStartPath()) {
		return nil
	}
	if err := l.fs.Remove(l.logStartPath()); err != nil {
		return err
	}
	return l.fs.SyncDir(l.cfg.Dir)
}

// LogStartCheckpointed reports the offset in the log start checkpoint (-1
// if there is none or it is damaged), for tests and diagnostics.
func (l *Log) LogStartCheckpointed() Offset {
	off, _, ok, _ := l.readLogStart()
	if !ok {
		return -1
	}
	return off
}

// MaxTimestamp answers ListOffsets' -3 (KIP-734): the largest timestamp of
// a readable record and the base offset of the first batch that carries it.
// It uses the time index, whose last entry in each segment is that
// segment's largest timestamp and the batch that set it, so it costs one
// index load per segment not yet loaded and no log reads. Batches at or
// above the high watermark are skipped (only in the active segment). An
// empty log answers (-1, -1).
//
// The exception is a first segment cut inside by DeleteRecords: its index
// may name a batch that is gone, and the index only records increases, so
// the part above the log start is walked header by header (synchronously,
// like a truncation's boundary search; it happens only for this rare
// query on such a log, and reads at most that one segment).
//
// Offsets have batch granularity, as OffsetForTime: a record-exact answer
// would mean decoding (and decompressing) the batch, and fetching from the
// batch's base returns the record all the same. A batch that straddles the
// log start answers the log start.
func (l *Log) MaxTimestamp() (Offset, int64, error) {
	var bestOff Offset = -1
	var bestTs int64 = -1
	for i, seg := range l.segs {
		if err := seg.loadIndexes(l.fs); err != nil {
			return -1, -1, err
		}
		if i == 0 && l.logStart > Offset(seg.base) {
			off, ts, err := l.maxTimestampScan(seg)
			if err != nil {
				return -1, -1, err
			}
			bestOff, bestTs = off, ts
			continue
		}
		e := seg.times.entries
		if seg == l.active {
			// Entries are in offset order; keep those below the high watermark.
			n := sort.Search(len(e), func(i int) bool { return Offset(seg.base)+Offset(e[i].rel) >= l.hw })
			e = e[:n]
		}
		if len(e) == 0 {
			continue
		}
		last := e[len(e)-1]
		if last.ts > bestTs {
			bestTs, bestOff = last.ts, Offset(seg.base)+Offset(last.rel)
		}
	}
	return bestOff, bestTs, nil
}

// maxTimestampScan walks seg's batch headers from the one holding the log
// start to the high watermark and returns the first batch with the largest
// timestamp (-1, -1 if none).
func (l *Log) maxTimestampScan(seg *segment) (Offset, int64, error) {
	var bestOff Offset = -1
	var bestTs int64 = -1
	e := seg.index.lookup(uint32(l.logStart - Offset(seg.base)))
	st := l.newScan(int64(e.pos), Offset(seg.base)+Offset(e.rel))
	st.onBatch = func(h *BatchHeader, _ int64) {
		if h.BaseOffset >= l.hw {
			st.stop = stopZeros
			return
		}
		if h.LastOffset() >= l.logStart && h.MaxTimestamp > bestTs {
			bestOff, bestTs = max(h.BaseOffset, l.logStart), h.MaxTimestamp
		}
	}
	limit := seg.size
	if seg == l.active {
		limit = l.synced
	}
	if err := l.scanFile(seg, st, limit); err != nil {
		return -1, -1, err
	}
	if st.stop == stopCorrupt || st.stop == stopTorn || st.stop == stopDiscontig {
		return -1, -1, &CorruptionError{File: seg.path(logExt), Pos: FilePos(st.pos), Offset: l.logStart, Err: fmt.Errorf("%s", st.stopDetail)}
	}
	return bestOff, bestTs, nil
}

// ProducerState is one idempotent producer as DescribeProducers reports it.
type ProducerState struct {
	ProducerID   int64
	Epoch        int16
	LastSequence int32
	// LastOffset is the last offset of the producer's newest batch.
	LastOffset Offset
}

// Producers lists the producers known below the high watermark (the
// durable table), by producer id, leaving out those whose newest batch lies
// below the log start, as Kafka drops them when its log start passes them.
// The log itself keeps their state, so a late retry is still recognised.
func (l *Log) Producers() []ProducerState {
	out := make([]ProducerState, 0, len(l.durable))
	for pid, e := range l.durable {
		ps := ProducerState{ProducerID: pid, Epoch: e.epoch, LastSequence: -1, LastOffset: -1}
		if n := len(e.batches); n > 0 {
			ps.LastSequence, ps.LastOffset = e.batches[n-1].lastSeq, e.batches[n-1].last
		}
		if ps.LastOffset < l.logStart {
			continue
		}
		out = append(out, ps)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ProducerID < out[j].ProducerID })
	return out
}
