package shard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/strand-io/strand/dma"
)

// Idempotent producers. Each partition remembers, per producer id, its
// epoch and its last five batches (sequence range and offsets), as Kafka
// does. A retried batch that matches one of them is answered with the
// original offsets instead of being written again; a gap in the sequence is
// refused; an older epoch is fenced.
//
// Two tables are kept. live includes batches still in flight and is what
// appends are checked against. durable is updated only as batches are
// acknowledged, so it describes exactly the log below the high watermark and
// can be snapshotted at any moment. Recovery loads the newest snapshot at or
// below the recovered end and replays the batches after it.

// Producer errors; the protocol edge maps them to Kafka codes.
var (
	ErrOutOfOrderSequence = errors.New("shard: out of order sequence number")
	ErrProducerFenced     = errors.New("shard: producer epoch is older than the current one")
)

// producerWindow is how many batches per producer are remembered for
// duplicate detection (Kafka's max.in.flight.requests limit for idempotence).
const producerWindow = 5

type seqBatch struct {
	firstSeq, lastSeq int32
	base, last        Offset
}

type producerEntry struct {
	epoch   int16
	batches []seqBatch // oldest first, at most producerWindow
}

type producerTable map[int64]*producerEntry

// isIdempotent reports whether a batch carries producer state.
func isIdempotent(h *BatchHeader) bool { return h.ProducerID >= 0 && h.BaseSequence >= 0 }

func lastSeqOf(h *BatchHeader) int32 {
	return int32((int64(h.BaseSequence) + int64(h.LastOffsetDelta)) % (1 << 31))
}

// check decides what to do with an idempotent batch: append it (nil, nil),
// answer it with an earlier batch's offsets (dup, nil), or refuse it.
func (t producerTable) check(h *BatchHeader) (*seqBatch, error) {
	e := t[h.ProducerID]
	first := h.BaseSequence
	switch {
	case e == nil:
		if first != 0 {
			return nil, fmt.Errorf("%w: producer %d is unknown here and starts at sequence %d", ErrOutOfOrderSequence, h.ProducerID, first)
		}
		return nil, nil
	case h.ProducerEpoch < e.epoch:
		return nil, fmt.Errorf("%w: producer %d epoch %d, current %d", ErrProducerFenced, h.ProducerID, h.ProducerEpoch, e.epoch)
	case h.ProducerEpoch > e.epoch:
		if first != 0 {
			return nil, fmt.Errorf("%w: producer %d new epoch %d starts at sequence %d", ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, first)
		}
		return nil, nil
	}
	last := lastSeqOf(h)
	for i := range e.batches {
		if b := &e.batches[i]; b.firstSeq == first && b.lastSeq == last {
			return b, nil
		}
	}
	if n := len(e.batches); n > 0 {
		if want := int32((int64(e.batches[n-1].lastSeq) + 1) % (1 << 31)); first != want {
			return nil, fmt.Errorf("%w: producer %d sent sequence %d, expected %d", ErrOutOfOrderSequence, h.ProducerID, first, want)
		}
	}
	return nil, nil
}

// record notes an appended batch.
func (t producerTable) record(pid int64, epoch int16, b seqBatch) {
	e := t[pid]
	if e == nil {
		e = &producerEntry{epoch: epoch}
		t[pid] = e
	}
	if epoch != e.epoch {
		e.epoch, e.batches = epoch, e.batches[:0]
	}
	if len(e.batches) == producerWindow {
		e.batches = append(e.batches[:0], e.batches[1:]...)
	}
	e.batches = append(e.batches, b)
}

func (t producerTable) clone() producerTable {
	c := make(producerTable, len(t))
	for pid, e := range t {
		c[pid] = &producerEntry{epoch: e.epoch, batches: append([]seqBatch(nil), e.batches...)}
	}
	return c
}

// Snapshot file "<offset>.snapshot": the durable table as of offset (all
// batches below it, none at or after it).
//
//	magic "SPS1" | offset int64 | count uint32 |
//	count × (pid int64 | epoch int16 | n uint8 | n × (firstSeq int32 | lastSeq int32 | base int64 | last int64)) |
//	crc32c of everything before it
const (
	snapshotExt   = ".snapshot"
	snapshotMagic = "SPS1"
)

func encodeSnapshot(offset Offset, t producerTable) []byte {
	be := binary.BigEndian
	b := append([]byte(snapshotMagic), make([]byte, 12)...)
	be.PutUint64(b[4:], uint64(offset))
	be.PutUint32(b[12:], uint32(len(t)))
	pids := make([]int64, 0, len(t))
	for pid := range t {
		pids = append(pids, pid)
	}
	sort.Slice(pids, func(i, j int) bool { return pids[i] < pids[j] })
	for _, pid := range pids {
		e := t[pid]
		b = be.AppendUint64(b, uint64(pid))
		b = be.AppendUint16(b, uint16(e.epoch))
		b = append(b, byte(len(e.batches)))
		for _, s := range e.batches {
			b = be.AppendUint32(b, uint32(s.firstSeq))
			b = be.AppendUint32(b, uint32(s.lastSeq))
			b = be.AppendUint64(b, uint64(s.base))
			b = be.AppendUint64(b, uint64(s.last))
		}
	}
	return be.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeSnapshot(b []byte) (Offset, producerTable, error) {
	be := binary.BigEndian
	bad := errors.New("shard: producer snapshot is damaged")
	if len(b) < 20 || string(b[:4]) != snapshotMagic || crc32.Checksum(b[:len(b)-4], castagnoli) != be.Uint32(b[len(b)-4:]) {
		return 0, nil, bad
	}
	off := Offset(be.Uint64(b[4:]))
	n := int(be.Uint32(b[12:]))
	p := b[16 : len(b)-4]
	t := make(producerTable, n)
	for i := 0; i < n; i++ {
		if len(p) < 11 {
			return 0, nil, bad
		}
		pid, epoch, k := int64(be.Uint64(p)), int16(be.Uint16(p[8:])), int(p[10])
		p = p[11:]
		if k > producerWindow || len(p) < k*24 {
			return 0, nil, bad
		}
		e := &producerEntry{epoch: epoch}
		for j := 0; j < k; j++ {
			e.batches = append(e.batches, seqBatch{int32(be.Uint32(p)), int32(be.Uint32(p[4:])), Offset(be.Uint64(p[8:])), Offset(be.Uint64(p[16:]))})
			p = p[24:]
		}
		t[pid] = e
	}
	return off, t, nil
}

func (l *Log) snapshotPath(off Offset) string {
	return filepath.Join(l.cfg.Dir, fmt.Sprintf("%020d%s", int64(off), snapshotExt))
}

// snapshotOffsets lists the snapshot files in the log directory, ascending.
func (l *Log) snapshotOffsets() []Offset {
	names, _ := l.fs.ReadDir(l.cfg.Dir)
	var out []Offset
	for _, n := range names {
		if strings.HasSuffix(n, snapshotExt) {
			if v, err := strconv.ParseInt(strings.TrimSuffix(n, snapshotExt), 10, 64); err == nil {
				out = append(out, Offset(v))
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// writeProducerSnapshot persists the durable table at the high watermark
// (write to a temp file, fsync, rename) and keeps only the newest two.
//
// It writes one even when no producer is known: the snapshot's offset is
// what bounds the replay at Open. Without one, Open would read and
// CRC-check the whole log (O(log size), and one damaged byte in any old
// segment would keep the partition from opening).
func (l *Log) writeProducerSnapshot() error {
	off := l.durableNext // what the durable table describes
	if err := writeFileDurably(l.fs, l.snapshotPath(off), encodeSnapshot(off, l.durable)); err != nil {
		return err
	}
	l.pruneSnapshots()
	return nil
}

// pruneSnapshots keeps the newest two snapshots. Only called once the
// newest one's name is durable (its directory synced).
func (l *Log) pruneSnapshots() {
	offs := l.snapshotOffsets()
	for i := 0; i+2 < len(offs); i++ {
		_ = l.fs.Remove(l.snapshotPath(offs[i]))
	}
}

// snapshotProducersAsync is the periodic snapshot (every
// ProducerSnapshotBytes acknowledged), written the way writeProducerSnapshot
// writes one, but through the engine so the core never waits on the disk:
// write and fdatasync a temporary file, rename it into place, fsync the
// directory, and only then prune the older snapshots. A crash before the
// directory fsync may lose the rename, which only means an older snapshot
// and a longer replay.
func (l *Log) snapshotProducersAsync() {
	// The directory is opened for this snapshot only (DescriptorsPerLog).
	dir, err := l.fs.OpenDir(l.cfg.Dir)
	if err != nil {
		l.cfg.Logger.Warn("producer state snapshot failed", "dir", l.cfg.Dir, "err", err)
		return
	}
	off := l.durableNext // what the durable table describes
	path := l.snapshotPath(off)
	tmp := path + ".tmp"
	data := encodeSnapshot(off, l.durable)
	f, err := l.fs.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644, false)
	if err != nil {
		dir.Close()
		l.cfg.Logger.Warn("producer state snapshot failed", "dir", l.cfg.Dir, "err", err)
		return
	}
	l.snapshotting = true
	l.sideIO++
	finish := func(err error) {
		dir.Close()
		l.snapshotting = false
		if err != nil {
			// A missing snapshot only lengthens the replay at recovery.
			l.cfg.Logger.Warn("producer state snapshot failed", "dir", l.cfg.Dir, "err", err)
		}
		l.sideIODone()
	}
	var werr error
	l.io.WriteSync(f, data, 0, func(n int, err error) {
		if err == nil && n < len(data) {
			err = dma.ErrShortWrite
		}
		werr = err
	}, func(err error) {
		f.Close()
		if werr == nil {
			werr = err
		}
		if werr == nil && l.closed {
			werr = errors.New("log closed")
		}
		if werr == nil {
			werr = l.fs.Rename(tmp, path)
		}
		if werr != nil {
			_ = l.fs.Remove(tmp)
			finish(werr)
			return
		}
		l.io.Sync(dir, func(err error) {
			if err == nil && !l.closed {
				l.pruneSnapshots()
			}
			finish(err)
		})
	})
}

// loadProducers rebuilds the producer tables after recovery: the newest
// valid snapshot at or below the log end, then every batch after it.
func (l *Log) loadProducers() error {
	l.durable = producerTable{}
	from := l.logStart
	offs := l.snapshotOffsets()
	for i := len(offs) - 1; i >= 0; i-- {
		if offs[i] > l.next {
			_ = l.fs.Remove(l.snapshotPath(offs[i])) // describes truncated data
			continue
		}
		f, err := l.fs.OpenFile(l.snapshotPath(offs[i]), os.O_RDONLY, 0, false)
		if err != nil {
			continue
		}
		b, err := readAll(f)
		f.Close()
		if err != nil {
			continue
		}
		if off, t, err := decodeSnapshot(b); err == nil && off == offs[i] {
			l.durable, from = t, off
			break
		}
		l.cfg.Logger.Warn("ignoring damaged producer snapshot", "file", l.snapshotPath(offs[i]))
	}
	if from < l.logStart {
		from = l.logStart
	}
	l.producerReplayFrom = from
	if err := l.replay(from, func(h *BatchHeader) {
		if isIdempotent(h) {
			l.durable.record(h.ProducerID, h.ProducerEpoch, seqBatch{h.BaseSequence, lastSeqOf(h), h.BaseOffset, h.LastOffset()})
		}
	}); err != nil {
		return err
	}
	l.live = l.durable.clone()
	return nil
}

// replay calls fn for every batch from offset from to the end of the log.
func (l *Log) replay(from Offset, fn func(h *BatchHeader)) error {
	if from >= l.next {
		return nil
	}
	for _, seg := range l.segs {
		if seg.last < from && seg != l.active {
			continue
		}
		if err := seg.loadIndexes(l.fs); err != nil {
			return err
		}
		var e offsetEntry
		if Offset(seg.base) <= from {
			e = seg.index.lookup(uint32(from - Offset(seg.base)))
		}
		st := l.newScan(int64(e.pos), Offset(seg.base)+Offset(e.rel))
		st.gaps = seg != l.active // cleaned segments have offset gaps
		st.onBatch = func(h *BatchHeader, _ int64) {
			if h.BaseOffset >= from {
				fn(h)
			}
		}
		if err := l.scanFile(seg, st, seg.size); err != nil {
			return err
		}
		if st.stop == stopCorrupt || st.stop == stopTorn || st.stop == stopDiscontig {
			return &CorruptionError{File: seg.path(logExt), Pos: FilePos(st.pos), Offset: from, Err: errors.New(st.stopDetail)}
		}
	}
	return nil
}
