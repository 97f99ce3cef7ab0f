package shard

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/strand-io/strand/dma"
)

const (
	logExt       = ".log"
	indexExt     = ".index"
	timeIndexExt = ".timeindex"
)

// segment is one log file plus its two sparse indexes. Only the last
// segment of a Log (the active one) is ever written; the others are sealed:
// their size is final and their index files complete.
type segment struct {
	base  SegmentBase
	dir   string
	file  dma.File
	idx   dma.File // buffered index files, opened lazily for sealed segments
	tidx  dma.File
	size  int64  // bytes of valid data
	last  Offset // last offset stored; base-1 when empty
	index offsetIndex
	times timeIndex

	indexLoaded    bool
	idxPersisted   int   // offset index entries already in the .index file
	tidxPersisted  int   // time index entries already in the .timeindex file
	lastIndexedPos int64 // position of the last batch that got an index entry
	maxTimestamp   int64
	firstAppendMs  int64 // broker time of the first append, for roll by age (-1 unknown)
	allocated      int64 // bytes reserved with fallocate (active segment)
	reads          int   // reads in flight; a deleted segment is closed when it drops to 0
	deleted        bool
	unlinked       bool // names already removed (truncation); only closing is left
}

func (s *segment) path(ext string) string { return filepath.Join(s.dir, s.base.fileName(ext)) }

// parseSegmentName returns the base offset of a "<20 digits>.log" name.
func parseSegmentName(name string) (SegmentBase, bool) {
	if !strings.HasSuffix(name, logExt) || len(name) != 20+len(logExt) {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.TrimSuffix(name, logExt), 10, 64)
	if err != nil || v < 0 {
		return 0, false
	}
	return SegmentBase(v), true
}

// createSegment makes a new, empty active segment. Space is reserved
// later, chunk by chunk ahead of the writes (Log.place).
func createSegment(fs dma.FS, dir string, base SegmentBase) (*segment, error) {
	s := &segment{base: base, dir: dir, last: Offset(base) - 1, indexLoaded: true, maxTimestamp: -1, firstAppendMs: -1}
	for _, ext := range []string{indexExt, timeIndexExt} {
		_ = fs.Remove(s.path(ext)) // stale indexes of a segment removed by truncation
	}
	f, err := fs.OpenFile(s.path(logExt), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644, true)
	if err != nil {
		return nil, err
	}
	s.file = f
	if err := s.openIndexFiles(fs, true); err != nil {
		f.Close()
		return nil, err
	}
	return s, fs.SyncDir(dir)
}

// openSegment opens an existing segment file; indexes load later.
func openSegment(fs dma.FS, dir string, base SegmentBase) (*segment, error) {
	s := &segment{base: base, dir: dir, maxTimestamp: -1, firstAppendMs: -1}
	f, err := fs.OpenFile(s.path(logExt), os.O_RDWR, 0o644, true)
	if err != nil {
		return nil, err
	}
	s.file = f
	if s.size, err = f.Size(); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

func (s *segment) openIndexFiles(fs dma.FS, truncate bool) error {
	flag := os.O_RDWR | os.O_CREATE
	if truncate {
		flag |= os.O_TRUNC
	}
	var err error
	if s.idx == nil {
		if s.idx, err = fs.OpenFile(s.path(indexExt), flag, 0o644, false); err != nil {
			return err
		}
	}
	if s.tidx == nil {
		s.tidx, err = fs.OpenFile(s.path(timeIndexExt), flag, 0o644, false)
	}
	return err
}

// loadIndexes reads both index files. Entries that point past the data or
// break monotonicity end the index (recovery rebuilds from there).
func (s *segment) loadIndexes(fs dma.FS) error {
	if s.indexLoaded {
		return nil
	}
	if err := s.openIndexFiles(fs, false); err != nil {
		return err
	}
	ib, err := readAll(s.idx)
	if err != nil {
		return err
	}
	tb, err := readAll(s.tidx)
	if err != nil {
		return err
	}
	s.index = decodeOffsetIndex(ib, s.size)
	s.times = decodeTimeIndex(tb, uint32(s.last-Offset(s.base)))
	s.idxPersisted, s.tidxPersisted = len(s.index.entries), len(s.times.entries)
	if n := len(s.index.entries); n > 0 {
		s.lastIndexedPos = int64(s.index.entries[n-1].pos)
	}
	s.maxTimestamp = s.times.maxTimestamp()
	s.indexLoaded = true
	return nil
}

func readAll(f dma.File) ([]byte, error) {
	n, err := f.Size()
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	m, err := f.ReadAt(b, 0)
	return b[:m], err
}

// indexBatch records a batch appended or scanned at pos in the indexes.
func (s *segment) indexBatch(h *BatchHeader, pos int64, interval int) {
	rel := uint32(h.BaseOffset - Offset(s.base))
	if pos > 0 && (len(s.index.entries) == 0 && pos >= int64(interval) || len(s.index.entries) > 0 && pos-s.lastIndexedPos >= int64(interval)) {
		s.index.add(rel, uint32(pos))
		s.lastIndexedPos = pos
	}
	if h.MaxTimestamp > s.maxTimestamp {
		s.maxTimestamp = h.MaxTimestamp
		s.times.add(h.MaxTimestamp, rel)
	}
	s.last = h.LastOffset()
}

// checkpointIndexes appends to the files the index entries for batches
// that start below durable, the position an fdatasync has covered. Recovery
// scans only from the last checkpointed entry, so an entry must never vouch
// for bytes before it that a crash could still take: hence only durable
// positions. No fsync of its own: recovery re-validates the entry it starts
// from, so a lost or torn index write only means a longer scan.
func (s *segment) checkpointIndexes(durable int64) error {
	w := s.pendingIndexes(durable)
	if len(w.idx) > 0 {
		if _, err := s.idx.WriteAt(w.idx, w.idxOff); err != nil {
			return err
		}
		s.idxPersisted = w.idxN
	}
	if len(w.tidx) > 0 {
		if _, err := s.tidx.WriteAt(w.tidx, w.tidxOff); err != nil {
			return err
		}
		s.tidxPersisted = w.tidxN
	}
	return nil
}

// indexWrites are the bytes a checkpoint appends to each index file, where,
// and how many entries each file then holds.
type indexWrites struct {
	idx, tidx       []byte
	idxOff, tidxOff int64
	idxN, tidxN     int
}

// pendingIndexes encodes the entries not yet persisted, the offset index's
// only up to durable (see checkpointIndexes).
func (s *segment) pendingIndexes(durable int64) indexWrites {
	n := len(s.index.entries)
	for n > s.idxPersisted && int64(s.index.entries[n-1].pos) >= durable {
		n--
	}
	return indexWrites{
		idx:     s.index.encode(s.idxPersisted)[:(n-s.idxPersisted)*offsetEntrySize],
		idxOff:  int64(s.idxPersisted * offsetEntrySize),
		idxN:    n,
		tidx:    s.times.encode(s.tidxPersisted),
		tidxOff: int64(s.tidxPersisted * timeEntrySize),
		tidxN:   len(s.times.entries),
	}
}

// rewriteIndexes replaces both index files with the in-memory indexes.
func (s *segment) rewriteIndexes() error {
	for _, f := range []dma.File{s.idx, s.tidx} {
		if err := f.Truncate(0); err != nil {
			return err
		}
	}
	s.idxPersisted, s.tidxPersisted = 0, 0
	if err := s.checkpointIndexes(s.size); err != nil {
		return err
	}
	if err := s.idx.Sync(); err != nil {
		return err
	}
	return s.tidx.Sync()
}

// seal makes a full segment final: the file is cut to its data (releasing
// the unused preallocation) and both indexes are written and synced. Only
// after seal does the log create the next segment, so every segment but the
// last is known to be complete.
func (s *segment) seal() error {
	if err := s.file.Truncate(s.size); err != nil {
		return err
	}
	if err := s.file.Sync(); err != nil {
		return err
	}
	return s.rewriteIndexes()
}

func (s *segment) close() {
	for _, f := range []dma.File{s.file, s.idx, s.tidx} {
		if f != nil {
			f.Close()
		}
	}
}

func (s *segment) remove(fs dma.FS) error {
	s.close()
	return s.unlink(fs)
}

// unlink removes the segment's files by name. Open descriptors keep the
// data readable (reads in flight) until they are closed.
func (s *segment) unlink(fs dma.FS) error {
	if s.unlinked {
		return nil
	}
	s.unlinked = true
	for _, ext := range []string{logExt, indexExt, timeIndexExt} {
		if err := fs.Remove(s.path(ext)); err != nil && !os.IsNotExist(err) && ext == logExt {
			return fmt.Errorf("shard: remove segment %s: %w", s.path(ext), err)
		}
	}
	return nil
}
