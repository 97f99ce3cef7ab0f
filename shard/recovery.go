package shard

import (
	"fmt"
	"strings"

	"github.com/strand-io/strand/dma"
)

// Recovery, case by case. Open trusts sealed segments (they were complete
// before the next segment was created) and scans only the tail segment, from
// its last valid index checkpoint, so start-up cost does not grow with the
// size of the log.
//
//	case                                   detected by                          action
//	clean tail                             zero header after the last batch      end of log there
//	torn tail (crash mid-write)            batch runs past the data / bad CRC    truncate at that batch
//	stale batch from an older incarnation  base offset breaks the sequence       truncate at that batch
//	index checkpoint torn or stale         entry fails to point at a valid batch drop it, try the previous one
//	index file missing                     no file / no entries                  scan the tail from byte 0
//	garbage after the new end              file size > end rounded to a block    rewrite tail block, cut the file
//	CRC mismatch inside a sealed segment   checked on every read                 CorruptionError, never served
//
// After the scan the tail segment is fdatasynced once, so every record the
// recovered log serves is on stable storage even if the crash left some of
// it only in the device cache.

const recoveryChunk = 1 << 20

// Open recovers (or creates) the log in cfg.Dir. It runs synchronously
// with plain file reads, before the log is handed to its core's reactor;
// io is the engine the log will use from then on.
func Open(cfg Config, fs dma.FS, io dma.Engine) (*Log, error) {
	cfg.fill()
	if err := fs.MkdirAll(cfg.Dir); err != nil {
		return nil, err
	}
	l := &Log{cfg: cfg, fs: fs, io: io, pool: dma.NewPool(4), buf: dma.AllocAligned(cfg.BufferBytesMin),
		files: cfg.FileCache, preallocChunk: preallocMinBytes}
	if l.files == nil {
		l.files = NewFileCache(privateFileCacheFiles)
	}
	opened := false
	defer func() {
		// Recovery's scan buffers (megabytes) are not worth keeping for
		// the log's lifetime; reads take their own from the pool.
		l.pool.Release()
		if !opened {
			dma.FreeAligned(l.buf)
		} else if cfg.ReadPool != nil {
			l.pool.Close()
			l.pool = cfg.ReadPool
		}
	}()
	l.writeDone, l.syncDone = l.onWritten, l.onSynced
	l.kickFn = func() {
		l.kickQueued = false
		l.kick()
	}
	var err error
	if l.epochs, err = loadEpochs(fs, cfg.Dir); err != nil {
		return nil, err
	}
	names, err := fs.ReadDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	if names, err = l.recoverSwaps(names); err != nil {
		return nil, err
	}
	var bases []SegmentBase
	for _, n := range names {
		if b, ok := parseSegmentName(n); ok {
			bases = append(bases, b)
		} else if strings.HasSuffix(n, ".tmp") {
			_ = fs.Remove(cfg.Dir + "/" + n)
		}
	}
	l.live, l.durable = producerTable{}, producerTable{}
	if len(bases) == 0 {
		if err := l.startSegment(0); err != nil {
			return nil, err
		}
		if err := l.openEpochs(); err != nil {
			return nil, err
		}
		opened = true
		return l, nil
	}
	for i, b := range bases {
		seg, err := openSegment(fs, cfg.Dir, b, i == len(bases)-1)
		if err != nil {
			l.closeSegs()
			return nil, err
		}
		if i+1 < len(bases) {
			seg.last = Offset(bases[i+1]) - 1
		}
		l.segs = append(l.segs, seg)
		if i+1 < len(bases) && !fs.Exists(seg.path(indexExt)) {
			// Sealing writes both indexes before the next segment exists:
			// only a cleaner swap cut short after its rename lacks them.
			if err := l.rebuildIndexes(seg); err != nil {
				l.closeSegs()
				return nil, fmt.Errorf("shard: rebuild indexes of %s: %w", seg.path(logExt), err)
			}
		}
	}
	l.active = l.segs[len(l.segs)-1]
	if err := l.recoverTail(); err != nil {
		l.closeSegs()
		return nil, fmt.Errorf("shard: recover %s: %w", l.active.path(logExt), err)
	}
	l.logStart = Offset(l.segs[0].base)
	if err := l.loadProducers(); err != nil {
		l.closeSegs()
		return nil, fmt.Errorf("shard: rebuild producer state in %s: %w", cfg.Dir, err)
	}
	l.loadLogStart() // DeleteRecords may have moved it past the first base
	if err := l.openEpochs(); err != nil {
		l.closeSegs()
		return nil, err
	}
	opened = true
	return l, nil
}

// openEpochs ends Open: the epoch cache drops what starts at or past the
// recovered end (see epochCache), and a replicated log hides everything
// until replication says what is committed.
func (l *Log) openEpochs() error {
	if err := l.epochs.truncateFrom(l.next); err != nil {
		return fmt.Errorf("shard: trim %s to the log end %d: %w", l.epochs.path, l.next, err)
	}
	l.epochs.trimStart(l.logStart)
	l.durableNext = l.next
	if l.cfg.ExternalHW {
		// What this replica holds past the leader's high watermark may be
		// truncated when it follows again: consumers must not see it
		// (KIP-207). The leader's answers (SetHighWatermark) raise it.
		l.hw = l.logStart
	}
	return nil
}

func (l *Log) closeSegs() {
	for _, s := range l.segs {
		s.close()
	}
}

// recoverTail scans the active segment and rebuilds its in-memory state.
func (l *Log) recoverTail() error {
	seg := l.active
	fileSize := seg.size
	seg.last = Offset(seg.base) - 1
	if err := seg.loadIndexes(l.fs); err != nil {
		return err
	}
	start := l.validCheckpoint(seg)
	// The time index is written without an fsync too, so a crash can keep
	// an offset checkpoint yet lose time entries before it. Its surviving
	// entries are a prefix: rescan from its last one, or the running
	// maximum (seg.maxTimestamp, OffsetForTime, time retention) is wrong.
	seg.times.truncate(start.rel + 1)
	if n := len(seg.times.entries); n == 0 {
		start = offsetEntry{}
	} else if e := seg.index.lookup(seg.times.entries[n-1].rel); e.pos < start.pos {
		start = e
	}
	st := l.newScan(int64(start.pos), Offset(seg.base)+Offset(start.rel))
	seg.index.truncate(start.pos + 1)
	seg.times.truncate(start.rel)
	if n := len(seg.index.entries); n > 0 {
		seg.lastIndexedPos = int64(seg.index.entries[n-1].pos)
	} else {
		seg.lastIndexedPos = 0
	}
	seg.maxTimestamp = seg.times.maxTimestamp()
	st.onBatch = func(h *BatchHeader, pos int64) {
		if pos == int64(start.pos) && start.pos > 0 {
			seg.last = h.LastOffset() // already indexed
			if h.MaxTimestamp > seg.maxTimestamp {
				seg.maxTimestamp = h.MaxTimestamp
				seg.times.add(h.MaxTimestamp, uint32(h.BaseOffset-Offset(seg.base)))
			}
			return
		}
		seg.indexBatch(h, pos, l.cfg.IndexIntervalBytes)
	}
	if err := l.scanFile(seg, st, fileSize); err != nil {
		return err
	}
	end := st.pos
	if st.stop != stopZeros {
		l.cfg.Logger.Warn("truncating partition log at a torn or invalid batch",
			"file", seg.path(logExt), "pos", end, "reason", st.stop.String(), "detail", st.stopDetail)
	}
	seg.size = end
	if st.batches > 0 || start.pos > 0 {
		seg.last = st.last.LastOffset()
	}
	l.next = seg.last + 1
	if len(l.segs) > 1 && seg.size == 0 {
		l.next = Offset(seg.base)
	}
	// Rewrite the indexes to match the data, then put the tail block in
	// the staging buffer so appends continue where the data ends.
	if err := seg.rewriteIndexes(l.fs); err != nil {
		return err
	}
	align := seg.file.Align()
	l.bufPos = dma.AlignDown(end, align)
	if end > l.bufPos {
		if _, err := seg.file.ReadAt(l.buf[:align], l.bufPos); err != nil {
			return err
		}
		clear(l.buf[end-l.bufPos : align])
	}
	l.end, l.written, l.synced = end, end, end
	if fileSize > dma.AlignUp(end, align) || st.stop != stopZeros {
		// Blocks past the end may hold batches of an earlier incarnation
		// that a later crash could make look valid again: cut them off and
		// make the zero-padded tail block durable first.
		if end > l.bufPos {
			if _, err := seg.file.WriteAt(l.buf[:align], l.bufPos); err != nil {
				return err
			}
		}
		if err := seg.file.Truncate(dma.AlignUp(end, align)); err != nil {
			return err
		}
	}
	seg.allocated = dma.AlignUp(end, align)
	if err := seg.file.Sync(); err != nil {
		return err
	}
	l.hw = l.next
	return nil
}

// newScan starts a scan of this log's data at pos, expecting offset next,
// with every check the log can make (epochs included).
func (l *Log) newScan(pos int64, next Offset) *scanState {
	return &scanState{pos: pos, next: next, maxBatch: l.cfg.MaxBatchBytes, checkEpochs: true, maxEpoch: l.epochs.current()}
}

// validCheckpoint returns the last index entry that points at a valid batch
// with the offset it claims, dropping stale or torn entries after it.
func (l *Log) validCheckpoint(seg *segment) offsetEntry {
	buf := l.pool.Get(2 * recoveryChunk)
	defer l.pool.Put(buf)
	for i := len(seg.index.entries) - 1; i >= 0 && i >= len(seg.index.entries)-8; i-- {
		e := seg.index.entries[i]
		st := l.newScan(int64(e.pos), Offset(seg.base)+Offset(e.rel))
		from := dma.AlignDown(int64(e.pos), seg.file.Align())
		n, err := seg.file.ReadAt(buf[:recoveryChunk], from)
		if err != nil {
			continue
		}
		st.scan(buf[:n], from, n < recoveryChunk)
		if st.batches > 0 {
			return e
		}
	}
	return offsetEntry{}
}

// scanFile runs st over the segment from st.pos to the end of the file.
func (l *Log) scanFile(seg *segment, st *scanState, fileSize int64) error {
	f, release, err := l.segFileSync(seg)
	if err != nil {
		return err
	}
	defer release()
	align := f.Align()
	buf := l.pool.Get(2*recoveryChunk + l.cfg.MaxBatchBytes)
	defer l.pool.Put(buf)
	for st.stop == stopNone {
		from := dma.AlignDown(st.pos, align)
		want := dma.AlignDown(int64(len(buf)), align) // O_DIRECT lengths must be block multiples
		if from+want > dma.AlignUp(fileSize, align) {
			want = dma.AlignUp(fileSize, align) - from
		}
		if want <= 0 {
			st.scan(nil, st.pos, true)
			break
		}
		n, err := f.ReadAt(buf[:want], from)
		if err != nil {
			return err
		}
		data := buf[:n]
		if from+int64(n) > fileSize {
			data = buf[:fileSize-from]
		}
		before := st.pos
		st.scan(data, from, from+int64(len(data)) >= fileSize)
		if st.stop == stopNone && st.pos == before {
			return fmt.Errorf("scan made no progress at %d", st.pos)
		}
	}
	return nil
}
