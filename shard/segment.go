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
//
// Descriptors: the active segment holds its .log file open. A sealed
// segment's file is open only while the core's FileCache keeps it (or a
// read in flight still uses it); index files are opened for each load or
// write and closed after it, since their entries live in memory.
type segment struct {
	base  SegmentBase
	dir   string
	file  dma.File // nil for a sealed segment the FileCache does not hold
	size  int64    // bytes of valid data
	last  Offset   // last offset stored; base-1 when empty
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
	// closeOnRelease: a file the FileCache had no room for when its
	// segment was sealed, kept open only until the reads using it end.
	closeOnRelease bool
	// cache is the FileCache holding file, and prev/next its LRU links.
	cache      *FileCache
	prev, next *segment
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
	// No index files yet: the first checkpoint or the seal creates them.
	return s, fs.SyncDir(dir)
}

// openSegment opens an existing segment. Only the active (last) segment
// keeps its file open; a sealed one is opened on demand through the
// FileCache, so here it is opened just long enough to learn its size.
func openSegment(fs dma.FS, dir string, base SegmentBase, active bool) (*segment, error) {
	s := &segment{base: base, dir: dir, maxTimestamp: -1, firstAppendMs: -1}
	f, err := fs.OpenFile(s.path(logExt), os.O_RDWR, 0o644, true)
	if err != nil {
		return nil, err
	}
	if s.size, err = f.Size(); err != nil || !active {
		f.Close()
		return s, err
	}
	s.file = f
	return s, nil
}

// openIndexFile opens one of the segment's index files for a single load or
// write; the caller closes it.
func (s *segment) openIndexFile(fs dma.FS, ext string, flag int) (dma.File, error) {
	return fs.OpenFile(s.path(ext), flag, 0o644, false)
}

// loadIndexes reads both index files. Entries that point past the data or
// break monotonicity end the index (recovery rebuilds from there).
func (s *segment) loadIndexes(fs dma.FS) error {
	if s.indexLoaded {
		return nil
	}
	ib, err := s.readIndexFile(fs, indexExt)
	if err != nil {
		return err
	}
	tb, err := s.readIndexFile(fs, timeIndexExt)
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

// readIndexFile returns an index file's bytes; a missing file reads as
// empty (recovery then scans from the segment's start).
func (s *segment) readIndexFile(fs dma.FS, ext string) ([]byte, error) {
	f, err := s.openIndexFile(fs, ext, os.O_RDONLY)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAll(f)
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
func (s *segment) checkpointIndexes(fs dma.FS, durable int64) error {
	return s.writeIndexes(fs, s.pendingIndexes(durable), 0, false)
}

// writeIndexes applies w to the index files, opened for this call only
// (with extra flags such as O_TRUNC), and fdatasyncs them when sync is set.
func (s *segment) writeIndexes(fs dma.FS, w indexWrites, flag int, sync bool) error {
	for _, x := range []struct {
		ext string
		b   []byte
		off int64
		set func()
	}{
		{indexExt, w.idx, w.idxOff, func() { s.idxPersisted = w.idxN }},
		{timeIndexExt, w.tidx, w.tidxOff, func() { s.tidxPersisted = w.tidxN }},
	} {
		if len(x.b) == 0 && !sync && flag == 0 {
			continue
		}
		f, err := s.openIndexFile(fs, x.ext, os.O_RDWR|os.O_CREATE|flag)
		if err != nil {
			return err
		}
		if len(x.b) > 0 {
			_, err = f.WriteAt(x.b, x.off)
		}
		if err == nil && sync {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		x.set()
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
func (s *segment) rewriteIndexes(fs dma.FS) error {
	s.idxPersisted, s.tidxPersisted = 0, 0
	return s.writeIndexes(fs, s.pendingIndexes(s.size), os.O_TRUNC, true)
}

// seal makes a full segment final: the file is cut to its data (releasing
// the unused preallocation) and both indexes are written and synced. Only
// after seal does the log create the next segment, so every segment but the
// last is known to be complete.
func (s *segment) seal(fs dma.FS) error {
	if err := s.file.Truncate(s.size); err != nil {
		return err
	}
	if err := s.file.Sync(); err != nil {
		return err
	}
	return s.rewriteIndexes(fs)
}

// close releases the segment's descriptor, and its place in a FileCache.
func (s *segment) close() {
	if s.cache != nil {
		s.cache.detach(s)
	}
	if s.file != nil {
		s.file.Close()
		s.file = nil
	}
	s.closeOnRelease = false
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
