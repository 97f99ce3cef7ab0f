package shard

import (
	"errors"
	"fmt"
	"io"
)

// Append policies that need the records, not just the batch header, as
// Kafka's LogValidator applies them before a batch is stored:
//
//   - a compacted log refuses a record without a key (compaction keeps the
//     latest record per key, so a keyless one could never be cleaned);
//   - a CreateTime log with timestamp bounds refuses a record whose
//     timestamp is further before or after the broker's clock than they
//     allow (records without a timestamp, -1, pass).
//
// Either refuses the whole batch before it is staged, so nothing of it is
// stored. The walk costs a second pass over the records (the protocol
// layer validated them first), paid only by logs with one of these
// policies.

var (
	// ErrKeylessCompacted: a record without a key, produced to a
	// compacted log (Kafka's INVALID_RECORD).
	ErrKeylessCompacted = errors.New("shard: compacted topic cannot accept message without key")
	// ErrTimestampOutOfRange: a CreateTime record's timestamp lies outside
	// the log's bounds around the broker's clock (Kafka's
	// INVALID_TIMESTAMP).
	ErrTimestampOutOfRange = errors.New("shard: record timestamp out of range")
)

// recordFacts is what a walk learns for the policies.
type recordFacts struct {
	base         int64 // the batch's first timestamp
	nullKey      int32 // index of the first record without a key; -1: none
	minTs, maxTs int64 // over records with a timestamp; minTs > maxTs: none
	minAt, maxAt int32
}

// factRecord reads the i-th record's timestamp and key length and skips
// the rest of it, up to end.
func (w *recordWalker) factRecord(i int32, end int64) error {
	f := w.facts
	ok := w.skip(1)
	var tsDelta int64
	if ok {
		tsDelta, ok = w.varlongValue()
	}
	if ok {
		_, ok = w.varint() // offset delta
	}
	var keyLen int32
	if ok {
		keyLen, ok = w.varint()
	}
	ok = ok && w.pos() <= end && w.skip(end-w.pos())
	if !ok {
		if w.err != nil && w.err != io.ErrUnexpectedEOF {
			return w.err
		}
		return fmt.Errorf("%w: record %d does not parse", ErrCorruptRecords, i)
	}
	if keyLen < 0 && f.nullKey < 0 {
		f.nullKey = i
	}
	if ts := f.base + tsDelta; ts != -1 {
		if ts < f.minTs {
			f.minTs, f.minAt = ts, i
		}
		if ts > f.maxTs {
			f.maxTs, f.maxAt = ts, i
		}
	}
	return nil
}

// varlongValue reads a zigzag int64: at most 10 bytes, the tenth 0 or 1.
func (w *recordWalker) varlongValue() (int64, bool) {
	var ux uint64
	for i := 0; i < 10; i++ {
		c, ok := w.byte()
		if !ok || i == 9 && c > 0x01 {
			return 0, false
		}
		ux |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return int64(ux>>1) ^ -int64(ux&1), true
		}
	}
	return 0, false
}

// walkFacts walks batch's records (already validated) for their facts.
func walkFacts(batch []byte, h *BatchHeader) (recordFacts, error) {
	f := recordFacts{base: h.BaseTimestamp, nullKey: -1, minTs: 1<<63 - 1, maxTs: -1 << 63}
	body := batch[BatchHeaderSize:]
	codec := h.Attributes & 0x07
	if codec == codecNone {
		w := recordWalker{buf: body, facts: &f}
		return f, w.walk(h.RecordCount)
	}
	inf := inflaters.Get().(*inflater)
	defer inflaters.Put(inf)
	inf.facts = &f
	defer func() { inf.facts = nil }()
	return f, inf.walk(codec, body, h.RecordCount, 1<<62)
}

// checkPolicies applies the append policies to batch; nil when the log has
// none or the batch passes.
func (l *Log) checkPolicies(batch []byte, nowMs int64) error {
	compacted := l.cfg.Cleanup.compacts()
	bounded := l.cfg.BoundTimestamps && !l.cfg.LogAppendTime
	if !compacted && !bounded {
		return nil
	}
	h, err := ParseBatchHeader(batch)
	if err != nil {
		return err
	}
	f, err := walkFacts(batch, &h)
	if err != nil {
		return err
	}
	if compacted && f.nullKey >= 0 {
		return fmt.Errorf("%w (record %d of the batch)", ErrKeylessCompacted, f.nullKey)
	}
	if !bounded || f.minTs > f.maxTs {
		return nil
	}
	lo, hi := satSub(nowMs, l.cfg.TimestampBeforeMaxMs), satAdd(nowMs, l.cfg.TimestampAfterMaxMs)
	switch {
	case f.minTs < lo:
		return fmt.Errorf("%w: timestamp %d of record %d of the batch is more than %d ms before the broker's time %d (message.timestamp.before.max.ms)",
			ErrTimestampOutOfRange, f.minTs, f.minAt, l.cfg.TimestampBeforeMaxMs, nowMs)
	case f.maxTs > hi:
		return fmt.Errorf("%w: timestamp %d of record %d of the batch is more than %d ms after the broker's time %d (message.timestamp.after.max.ms)",
			ErrTimestampOutOfRange, f.maxTs, f.maxAt, l.cfg.TimestampAfterMaxMs, nowMs)
	}
	return nil
}

// satSub and satAdd clamp at the int64 range: Kafka's bounds default to
// Long.MAX_VALUE.
func satSub(a, b int64) int64 {
	if b > 0 && a < -1<<63+b {
		return -1 << 63
	}
	return a - b
}

func satAdd(a, b int64) int64 {
	if b > 0 && a > 1<<63-1-b {
		return 1<<63 - 1
	}
	return a + b
}
