package shard

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"hash/maphash"
	"io"
	"os"
	"strings"

	"github.com/strand-io/strand/dma"
	"golang.org/x/sys/unix"
)

// Log compaction (cleanup.policy=compact), with Kafka's LogCleaner rules:
//
//   - The cleaner works on sealed segments only, never the active one, and
//     not on a segment holding records newer than MinCompactionLagMs.
//   - A pass maps each key of the dirty section (the sealed segments past
//     the last pass's end) to its latest offset, then rewrites every
//     cleanable segment from the log start, oldest first, keeping a record
//     only if no later record of its key is in the map. Records without a
//     key are dropped, as Kafka's cleaner does (Kafka also refuses them at
//     produce time for compacted topics).
//   - A tombstone (null value) that is the latest of its key survives the
//     first pass that sees it, which stamps its batch with a delete horizon
//     (KIP-534: attributes bit 6 set, baseTimestamp = pass time +
//     DeleteRetentionMs, record timestamp deltas rebased so every record
//     keeps its timestamp). A later pass past the horizon drops it.
//   - Offsets never move: a rewritten batch keeps its baseOffset and
//     lastOffsetDelta, so consumers see gaps, not renumbered records. A
//     batch left with no record is dropped, except the last batch of an
//     idempotent producer, kept empty (Kafka's RETAIN_EMPTY) so the
//     producer's sequence survives a restart. Control batches are kept.
//   - Survivors are written with the batch's codec (gzip, snappy in the
//     xerial framing, lz4 frames, zstd); an unchanged batch is copied as is.
//   - A pass starts when the dirty bytes reach MinCleanableDirtyRatio of
//     the cleanable bytes, when the oldest dirty record is older than
//     MaxCompactionLagMs, or when a delete horizon has passed.
//
// Budget: the cleaner runs in rounds (Clean, called by Tick and by the
// core's cleaning timer), each reading at most CleanBytesPerTick of log
// (a compressed batch counts its decompressed size too), shared by all the
// logs of a core through CleanBudget. It reads and
// writes its files with plain synchronous calls in steps of at most one
// batch past the budget: a round costs a bounded amount of core time
// (budget bytes of page-cache reads, decompression and buffered writes),
// and the core's producers and consumers wait at most one round between
// their own callbacks. The fsyncs and renames of a segment swap are not
// bounded by the budget; they come once per cleaned segment.
//
// Crash safety: a cleaned segment is written to <base>.cleaned (buffered,
// not O_DIRECT), fsynced, renamed to <base>.swap and the directory fsynced:
// that is the commit point. Then the old indexes are removed (directory
// fsync), <base>.swap is renamed over <base>.log, the new indexes written
// and synced, and the directory fsynced. Open finishes a half-done swap
// (recoverSwaps); docs/ARCHITECTURE.md has the table of cases. Since
// segments are rewritten oldest first, and a record is dropped only for a
// later record of its key that the pass has not touched yet (or that is
// in the same atomically swapped segment), every prefix of a pass leaves
// the latest value of each key in the log; and a tombstone is dropped only
// in a pass after the one that removed the older values of its key.

// keyHash stands for a record key in the cleaner's key map, as Kafka's
// SkimpyOffsetMap keeps an MD5 of each key: a fixed-size, pointer-free
// entry, so a map of millions of keys costs no allocation per key and
// nothing for the garbage collector to scan (with string keys, scanning
// the map held the core for hundreds of milliseconds per round). Two
// 64-bit hashes with independent random seeds make a collision, which
// would drop the older of two different keys, a 2^-128 event per pair;
// the seeds are per process, so keys cannot be crafted to collide.
type keyHash [2]uint64

var keySeeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}

func hashKey(k []byte) keyHash {
	return keyHash{maphash.Bytes(keySeeds[0], k), maphash.Bytes(keySeeds[1], k)}
}

// CleanupPolicy is a topic's cleanup.policy.
type CleanupPolicy uint8

// Cleanup policies. The zero value is Kafka's default, delete.
const (
	PolicyDelete CleanupPolicy = iota
	PolicyCompact
	PolicyCompactDelete
)

// ParseCleanupPolicy reads Kafka's cleanup.policy list ("delete",
// "compact", "compact,delete" in any order).
func ParseCleanupPolicy(s string) CleanupPolicy {
	var c, d bool
	for _, p := range strings.Split(s, ",") {
		switch strings.TrimSpace(p) {
		case "compact":
			c = true
		case "delete":
			d = true
		}
	}
	switch {
	case c && d:
		return PolicyCompactDelete
	case c:
		return PolicyCompact
	}
	return PolicyDelete
}

func (p CleanupPolicy) compacts() bool { return p == PolicyCompact || p == PolicyCompactDelete }
func (p CleanupPolicy) deletes() bool  { return p != PolicyCompact }

// CleanBudget is the cleaning budget of one core, shared by its logs like
// the FileCache: at most PerTickBytes of log read per broker tick.
type CleanBudget struct {
	PerTickBytes int64
	left         int64
	tickMs       int64
}

// NewCleanBudget makes a core's budget.
func NewCleanBudget(perTickBytes int64) *CleanBudget {
	return &CleanBudget{PerTickBytes: perTickBytes, tickMs: -1}
}

// take grants up to want bytes for the tick at nowMs.
func (b *CleanBudget) take(nowMs, want int64) int64 {
	if nowMs != b.tickMs {
		b.tickMs, b.left = nowMs, b.PerTickBytes
	}
	n := min(want, b.left)
	b.left -= n
	return n
}

// Defaults of the compaction settings, Kafka's.
const (
	defaultDeleteRetentionMs = 24 * 3600 * 1000
	defaultDirtyRatio        = 0.5
	defaultCleanBytesPerTick = 4 << 20
	defaultCleanMapBytes     = 64 << 20
	// cleanChunkBytes is one read of a segment being cleaned.
	cleanChunkBytes = 256 << 10
	// cleanDecompressMax bounds one batch's records decompressed; a batch
	// past it is kept whole rather than cleaned.
	cleanDecompressMax = 64 << 20
	// keyEntryBytes is what one key map entry costs: the 16-byte key hash,
	// the 8-byte offset and the map's own overhead.
	keyEntryBytes = 40
	// attrDeleteHorizon is KIP-534's batch attribute: baseTimestamp holds
	// the time after which the batch's tombstones may go.
	attrDeleteHorizon = 0x40
	attrControl       = 0x20
)

const (
	cleanedExt = ".cleaned"
	swapExt    = ".swap"
)

func fillCompaction(c *Config) {
	if c.DeleteRetentionMs <= 0 {
		c.DeleteRetentionMs = defaultDeleteRetentionMs
	}
	if c.MinCleanableDirtyRatio <= 0 || c.MinCleanableDirtyRatio > 1 {
		c.MinCleanableDirtyRatio = defaultDirtyRatio
	}
	if c.CleanBytesPerTick <= 0 {
		c.CleanBytesPerTick = defaultCleanBytesPerTick
	}
	if c.CleanMapBytes <= 0 {
		c.CleanMapBytes = defaultCleanMapBytes
	}
}

type cleanPhase uint8

const (
	cleanIdle cleanPhase = iota
	cleanMap
	cleanCopy
)

// cleaner is one log's compaction state: between passes only cleanedTo
// and the next horizon; during a pass, the key map and the cursors.
type cleaner struct {
	phase cleanPhase
	// cleanedTo: offsets below it were in the dirty section of a finished
	// pass. Kept in memory only: after a restart the whole log counts as
	// dirty, which costs one extra pass, never a wrong result.
	cleanedTo Offset
	// nextHorizonMs: the earliest delete horizon of a batch with
	// tombstones left by the last pass (0: none).
	nextHorizonMs int64

	nowMs       int64
	truncations uint64
	segs        []*segment // the segments this pass rewrites, oldest first
	mapFrom     int        // index in segs of the first dirty segment
	i           int        // segment being mapped or copied
	keys        map[keyHash]Offset
	keyBytes    int64
	pids        map[int64]Offset // last batch base offset per producer id
	in          *batchReader
	out         *cleanOutput
	horizonMs   int64 // earliest horizon seen in this pass
	bytesIn     int64
	bytesOut    int64
	throttled   bool // the budget-bound log line was written for this pass

	// Passes counts finished passes (tests, metrics).
	passes int
}

// CleanerPasses reports how many compaction passes have finished.
func (l *Log) CleanerPasses() int { return l.clean.passes }

// Cleaning reports whether a compaction pass is under way.
func (l *Log) Cleaning() bool { return l.clean.phase != cleanIdle }

// Clean runs the cleaner for one round's budget: Tick calls it, and a
// core may call it more often to spread cleaning into smaller steps.
func (l *Log) Clean(nowMs int64) {
	if !l.cfg.Cleanup.compacts() || l.failed != nil || l.closed {
		return
	}
	c := &l.clean
	if c.phase == cleanIdle && !l.planClean(nowMs) {
		return
	}
	budget := l.cfg.CleanBytesPerTick
	if l.cfg.CleanBudget != nil {
		budget = l.cfg.CleanBudget.take(nowMs, budget)
	}
	for budget > 0 && c.phase != cleanIdle {
		n, err := l.cleanStep(budget)
		if err != nil {
			l.abortClean()
			l.storageError(nowMs, fmt.Errorf("log cleaner: %w", err))
			return
		}
		budget -= n
	}
	if c.phase != cleanIdle && !c.throttled {
		// Once per pass: the budget, not the work, ends this round.
		c.throttled = true
		l.cfg.Logger.Info("log cleaner pass continues over several rounds (cleaning budget per round used)",
			"dir", l.cfg.Dir, "bytes_per_round", l.cfg.CleanBytesPerTick)
	}
}

// segStart returns seg's first offset.
func segStart(s *segment) Offset { return Offset(s.base) }

// planClean decides whether a pass is due and sets it up.
func (l *Log) planClean(nowMs int64) bool {
	c := &l.clean
	end := 0 // cleanable segments: l.segs[:end]
	for end < len(l.segs)-1 {
		s := l.segs[end]
		if err := s.loadIndexes(l.fs); err != nil {
			return false
		}
		if l.cfg.MinCompactionLagMs > 0 && s.maxTimestamp > nowMs-l.cfg.MinCompactionLagMs {
			break
		}
		end++
	}
	if end == 0 {
		return false
	}
	var dirty, clean int64
	mapFrom := end
	forced := c.nextHorizonMs > 0 && nowMs >= c.nextHorizonMs
	for i, s := range l.segs[:end] {
		if s.last < c.cleanedTo {
			clean += s.size
			continue
		}
		if mapFrom == end {
			mapFrom = i
		}
		dirty += s.size
		if l.cfg.MaxCompactionLagMs > 0 && len(s.times.entries) > 0 && nowMs-s.times.entries[0].ts > l.cfg.MaxCompactionLagMs {
			forced = true
		}
	}
	if !forced && (dirty == 0 || float64(dirty) < l.cfg.MinCleanableDirtyRatio*float64(dirty+clean)) {
		return false
	}
	*c = cleaner{cleanedTo: c.cleanedTo, passes: c.passes, phase: cleanMap, nowMs: nowMs, truncations: l.truncations,
		segs: append([]*segment(nil), l.segs[:end]...), mapFrom: mapFrom, i: mapFrom,
		keys: map[keyHash]Offset{}, pids: map[int64]Offset{}}
	if mapFrom == end {
		c.phase, c.i = cleanCopy, 0
	}
	return true
}

// cleanStep does one bounded piece of the pass and returns the bytes of
// log it read.
func (l *Log) cleanStep(budget int64) (int64, error) {
	c := &l.clean
	if c.truncations != l.truncations {
		// A truncation may have cut or re-created the segments this pass
		// holds; the next tick plans afresh.
		l.abortClean()
		return 1, nil
	}
	if c.i >= len(c.segs) {
		return 1, l.finishPass()
	}
	seg := c.segs[c.i]
	if !l.holds(seg) {
		// Retention (compact,delete) deleted it meanwhile.
		l.closeCleanIO()
		c.i++
		return 1, nil
	}
	if c.in == nil {
		r, err := openBatchReader(l.fs, seg, l.cfg.MaxBatchBytes)
		if err != nil {
			return 0, err
		}
		c.in = r
		if c.phase == cleanCopy {
			out, err := newCleanOutput(l.fs, seg)
			if err != nil {
				return 0, err
			}
			c.out = out
		}
	}
	// work counts the bytes read plus, for compressed batches, the bytes
	// they inflate to: decompression is most of a compressed round's cost.
	start, work := c.in.pos, int64(0)
	for work < min(cleanChunkBytes, budget) {
		b, h, err := c.in.next()
		if err != nil {
			return work, err
		}
		if b == nil {
			break
		}
		var raw int
		if c.phase == cleanMap {
			raw = l.mapBatch(b, &h)
		} else if raw, err = l.copyBatch(b, &h); err != nil {
			return work, err
		}
		work += int64(len(b))
		if h.Attributes&0x07 != codecNone {
			work += int64(raw)
		}
	}
	c.bytesIn += c.in.pos - start
	n := work
	if !c.in.done() {
		return n, nil
	}
	c.in.close()
	c.in = nil
	if c.phase == cleanMap {
		c.i++
		if c.keyBytes > l.cfg.CleanMapBytes && c.i < len(c.segs) {
			// The map is full: this pass cleans up to here, the rest is
			// still dirty for the next one (as Kafka's dedupe buffer does).
			c.segs = c.segs[:c.i]
		}
		if c.i == len(c.segs) {
			c.phase, c.i = cleanCopy, 0
		}
		return max(n, 1), nil
	}
	if err := l.swapCleaned(seg); err != nil {
		return n, err
	}
	c.i++
	return max(n, 1), nil
}

func (l *Log) holds(seg *segment) bool {
	for _, s := range l.segs[:len(l.segs)-1] {
		if s == seg {
			return true
		}
	}
	return false
}

// mapBatch records the batch's keys at their offsets and returns the
// size of its records decompressed.
func (l *Log) mapBatch(b []byte, h *BatchHeader) int {
	c := &l.clean
	if h.ProducerID >= 0 {
		c.pids[h.ProducerID] = h.BaseOffset
	}
	if h.Attributes&attrControl != 0 {
		return 0
	}
	recs, raw, err := batchRecords(b, h)
	if err != nil {
		return 0 // kept whole by copyBatch, so its keys need no entry
	}
	for i := range recs {
		r := &recs[i]
		if r.nullKey {
			continue
		}
		k := hashKey(r.key)
		if _, ok := c.keys[k]; !ok {
			c.keyBytes += keyEntryBytes
		}
		c.keys[k] = h.BaseOffset + Offset(r.offsetDelta)
	}
	return raw
}

// batchRecords decodes a batch's records; it also returns their size
// decompressed.
func batchRecords(b []byte, h *BatchHeader) ([]cleanRecord, int, error) {
	raw, err := decompressRecords(h.Attributes&0x07, b[BatchHeaderSize:], cleanDecompressMax)
	if err != nil {
		return nil, 0, err
	}
	recs, err := parseRecords(raw, h.RecordCount)
	return recs, len(raw), err
}

// copyBatch writes what survives of the batch to the pass's output and
// returns the size of its records decompressed.
func (l *Log) copyBatch(b []byte, h *BatchHeader) (int, error) {
	nb, raw, err := l.filterBatch(b, h)
	if err != nil || nb == nil {
		return raw, err
	}
	nh, _ := ParseBatchHeader(nb)
	return raw, l.clean.out.add(nb, &nh, l.cfg.IndexIntervalBytes)
}

// filterBatch returns the batch with only its surviving records (b itself
// if all survive), or nil when nothing of it is to be kept.
func (l *Log) filterBatch(b []byte, h *BatchHeader) ([]byte, int, error) {
	c := &l.clean
	if h.Attributes&attrControl != 0 {
		return b, 0, nil
	}
	recs, rawLen, err := batchRecords(b, h)
	if err != nil {
		// Valid by its CRC, so it was accepted once; keep it rather than
		// lose records the cleaner cannot read.
		l.cfg.Logger.Warn("log cleaner keeps a batch it cannot decode", "dir", l.cfg.Dir, "offset", h.BaseOffset, "err", err)
		return b, 0, nil
	}
	horizonSet := h.Attributes&attrDeleteHorizon != 0
	expired := horizonSet && c.nowMs >= h.BaseTimestamp
	keep := recs[:0:0]
	tombstones := false
	for i := range recs {
		r := &recs[i]
		if r.nullKey {
			continue
		}
		off := h.BaseOffset + Offset(r.offsetDelta)
		if latest, ok := c.keys[hashKey(r.key)]; ok && latest > off {
			continue
		}
		if r.nullValue {
			if expired {
				continue
			}
			tombstones = true
		}
		keep = append(keep, *r)
	}
	newBase := h.BaseTimestamp
	if tombstones {
		if !horizonSet {
			newBase = c.nowMs + l.cfg.DeleteRetentionMs
		}
		if c.horizonMs == 0 || newBase < c.horizonMs {
			c.horizonMs = newBase
		}
	}
	if len(keep) == len(recs) && newBase == h.BaseTimestamp {
		return b, rawLen, nil
	}
	if len(keep) == 0 {
		if h.ProducerID >= 0 && c.pids[h.ProducerID] <= h.BaseOffset {
			return emptyBatch(b), rawLen, nil
		}
		return nil, rawLen, nil
	}
	var raw []byte
	for i := range keep {
		raw = appendCleanRecord(raw, &keep[i], h.BaseTimestamp, newBase)
	}
	body, err := compressRecords(h.Attributes&0x07, raw)
	if err != nil {
		return nil, rawLen, err
	}
	nb := make([]byte, BatchHeaderSize+len(body))
	copy(nb, b[:BatchHeaderSize])
	copy(nb[BatchHeaderSize:], body)
	be := binary.BigEndian
	attrs := uint16(h.Attributes)
	if tombstones {
		attrs |= attrDeleteHorizon
	} else {
		attrs &^= attrDeleteHorizon
		newBase = h.BaseTimestamp
	}
	be.PutUint16(nb[21:], attrs)
	be.PutUint64(nb[27:], uint64(newBase))
	be.PutUint32(nb[57:], uint32(len(keep)))
	resealBatch(nb)
	return nb, rawLen, nil
}

// emptyBatch is b's header alone, with no records and no codec, as Kafka
// keeps the last batch of a producer whose records were all cleaned.
func emptyBatch(b []byte) []byte {
	nb := append([]byte(nil), b[:BatchHeaderSize]...)
	be := binary.BigEndian
	be.PutUint16(nb[21:], be.Uint16(nb[21:])&^(0x07|attrDeleteHorizon))
	be.PutUint32(nb[57:], 0)
	resealBatch(nb)
	return nb
}

// finishPass ends a pass: the mapped section is clean now.
func (l *Log) finishPass() error {
	c := &l.clean
	if n := len(c.segs); n > 0 {
		c.cleanedTo = max(c.cleanedTo, c.segs[n-1].last+1)
	}
	l.cfg.Logger.Info("log cleaner pass done", "dir", l.cfg.Dir, "segments", len(c.segs),
		"bytes_in", c.bytesIn, "bytes_out", c.bytesOut, "keys", len(c.keys))
	*c = cleaner{cleanedTo: c.cleanedTo, nextHorizonMs: c.horizonMs, passes: c.passes + 1}
	return nil
}

// abortClean drops the pass under way; its output file, if any, goes.
func (l *Log) abortClean() {
	l.closeCleanIO()
	c := &l.clean
	*c = cleaner{cleanedTo: c.cleanedTo, nextHorizonMs: c.nextHorizonMs, passes: c.passes}
}

func (l *Log) closeCleanIO() {
	c := &l.clean
	if c.in != nil {
		c.in.close()
		c.in = nil
	}
	if c.out != nil {
		c.out.f.Close()
		_ = l.fs.Remove(c.out.path)
		c.out = nil
	}
}

// swapCleaned replaces seg with the pass's output (see the crash-safety
// note above), or deletes it when nothing of it survives and it is not the
// first segment (whose base is the log start).
func (l *Log) swapCleaned(old *segment) error {
	c := &l.clean
	out := c.out
	c.out = nil
	if err := out.flush(); err != nil {
		out.f.Close()
		return err
	}
	err := out.f.Sync()
	if cerr := out.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = l.fs.Remove(out.path)
		return err
	}
	c.bytesOut += out.pos
	idx := -1
	for i, s := range l.segs {
		if s == old {
			idx = i
		}
	}
	if idx < 0 {
		// Gone meanwhile (cleanStep checks before every step, so this is
		// only a guard): nothing to replace.
		return l.fs.Remove(out.path)
	}
	if out.pos == 0 && idx > 0 {
		_ = l.fs.Remove(out.path)
		if err := l.removeSegment(old); err != nil {
			return err
		}
		if err := l.fs.SyncDir(l.cfg.Dir); err != nil {
			return err
		}
		l.segs[idx-1].last = old.last
		l.segs = append(l.segs[:idx], l.segs[idx+1:]...)
		return nil
	}
	swap := old.path(swapExt)
	if err := l.fs.Rename(out.path, swap); err != nil {
		return err
	}
	if err := l.fs.SyncDir(l.cfg.Dir); err != nil {
		return err
	}
	// Committed: from here on Open completes the swap.
	ns := out.seg
	ns.size, ns.last = out.pos, old.last
	if err := l.installSwap(old.base, func() error {
		// The old file stays readable through its open descriptors until
		// the reads using it end; its names now belong to the new data.
		old.unlinked = true
		if old.reads == 0 {
			old.close()
		} else {
			old.deleted = true
		}
		return nil
	}, ns); err != nil {
		return err
	}
	l.segs[idx] = ns
	return nil
}

// installSwap turns <base>.swap into <base>.log: old indexes removed and
// the removal made durable first, so no crash pairs old indexes with new
// data; then the rename and the new indexes.
func (l *Log) installSwap(base SegmentBase, dropOld func() error, ns *segment) error {
	probe := &segment{base: base, dir: l.cfg.Dir}
	for _, ext := range []string{indexExt, timeIndexExt} {
		if err := l.fs.Remove(probe.path(ext)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	if err := l.fs.SyncDir(l.cfg.Dir); err != nil {
		return err
	}
	if dropOld != nil {
		if err := dropOld(); err != nil {
			return err
		}
	}
	if err := l.fs.Rename(probe.path(swapExt), probe.path(logExt)); err != nil {
		return err
	}
	if ns != nil {
		if err := ns.rewriteIndexes(l.fs); err != nil {
			return err
		}
	}
	return l.fs.SyncDir(l.cfg.Dir)
}

// recoverSwaps finishes or undoes the cleaner's file swaps that a crash
// interrupted, before Open lists the segments. It returns the bases whose
// indexes must be rebuilt from their data.
//
//	file left                 meaning                          action
//	<base>.cleaned            output not committed             remove it; old .log intact
//	<base>.swap               committed, rename not done       drop old indexes, rename to .log, rebuild indexes
//	sealed .log, no .index    crashed after the rename         rebuild indexes (Open, rebuildIndexes)
func (l *Log) recoverSwaps(names []string) ([]string, error) {
	var out []string
	for _, n := range names {
		switch {
		case strings.HasSuffix(n, cleanedExt):
			if err := l.fs.Remove(l.cfg.Dir + "/" + n); err != nil && !os.IsNotExist(err) {
				return nil, err
			}
		case strings.HasSuffix(n, swapExt):
			b, ok := parseSegmentName(strings.TrimSuffix(n, swapExt) + logExt)
			if !ok {
				out = append(out, n)
				continue
			}
			l.cfg.Logger.Warn("completing an interrupted log cleaner swap", "dir", l.cfg.Dir, "file", n)
			if err := l.installSwap(b, nil, nil); err != nil {
				return nil, err
			}
			out = append(out, b.fileName(logExt))
		default:
			out = append(out, n)
		}
	}
	return dedupe(out), nil
}

func dedupe(names []string) []string {
	seen := map[string]bool{}
	out := names[:0]
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// rebuildIndexes recreates a sealed segment's index files from its data,
// after a swap whose new indexes a crash lost.
func (l *Log) rebuildIndexes(seg *segment) error {
	seg.index, seg.times = offsetIndex{}, timeIndex{}
	seg.lastIndexedPos, seg.maxTimestamp = 0, -1
	last := seg.last
	st := &scanState{pos: 0, next: -1, gaps: true, maxBatch: l.cfg.MaxBatchBytes}
	st.onBatch = func(h *BatchHeader, pos int64) { seg.indexBatch(h, pos, l.cfg.IndexIntervalBytes) }
	if err := l.scanFile(seg, st, seg.size); err != nil {
		return err
	}
	if st.stop != stopZeros {
		return &CorruptionError{File: seg.path(logExt), Pos: FilePos(st.pos), Offset: Offset(seg.base), Err: fmt.Errorf("%s", st.stopDetail)}
	}
	seg.last = last
	seg.indexLoaded = true
	return seg.rewriteIndexes(l.fs)
}

// batchReader walks the batches of one sealed segment in bounded reads.
type batchReader struct {
	f        dma.File
	size     int64
	pos      int64
	buf      []byte
	bufPos   int64
	n        int
	maxBatch int
	path     string
}

func openBatchReader(fs dma.FS, seg *segment, maxBatch int) (*batchReader, error) {
	f, err := fs.OpenFile(seg.path(logExt), os.O_RDONLY, 0, false)
	if err != nil {
		return nil, err
	}
	return &batchReader{f: f, size: seg.size, maxBatch: maxBatch, path: seg.path(logExt)}, nil
}

func (r *batchReader) done() bool { return r.pos >= r.size }

func (r *batchReader) close() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
}

// fill makes buf hold [pos, pos+want) or up to the end of the data.
func (r *batchReader) fill(want int) error {
	if r.pos >= r.bufPos && r.pos+int64(want) <= r.bufPos+int64(r.n) {
		return nil
	}
	want = max(want, cleanChunkBytes)
	if len(r.buf) < want {
		r.buf = make([]byte, want)
	}
	want = int(min(int64(want), r.size-r.pos))
	n, err := r.f.ReadAt(r.buf[:want], r.pos)
	if err != nil && err != io.EOF {
		return err
	}
	r.bufPos, r.n = r.pos, n
	return nil
}

// next returns the next batch (nil at the end of the data), CRC-checked.
func (r *batchReader) next() ([]byte, BatchHeader, error) {
	if r.pos >= r.size {
		return nil, BatchHeader{}, nil
	}
	if err := r.fill(BatchHeaderSize); err != nil {
		return nil, BatchHeader{}, err
	}
	rest := r.buf[r.pos-r.bufPos : r.n]
	h, err := ParseBatchHeader(rest)
	if err == nil {
		err = h.check(r.maxBatch)
	}
	if err == nil && r.pos+int64(h.Size()) > r.size {
		err = ErrShortBatch
	}
	if err == nil {
		if err = r.fill(h.Size()); err == nil {
			rest = r.buf[r.pos-r.bufPos : r.n]
			if len(rest) < h.Size() {
				err = ErrShortBatch
			} else if crc32.Checksum(rest[21:h.Size()], castagnoli) != h.CRC {
				err = ErrCorruptBatch
			}
		}
	}
	if err != nil {
		if len(rest) >= BatchHeaderSize && allZero(rest[:BatchHeaderSize]) || len(rest) < BatchHeaderSize && allZero(rest) {
			r.pos = r.size // zero padding after the last batch
			return nil, BatchHeader{}, nil
		}
		return nil, h, &CorruptionError{File: r.path, Pos: FilePos(r.pos), Offset: h.BaseOffset, Err: err}
	}
	b := rest[:h.Size()]
	r.pos += int64(h.Size())
	return b, h, nil
}

// cleanOutput is the file a segment's survivors go to, and the new
// segment's indexes built as they are written.
type cleanOutput struct {
	f       dma.File
	path    string
	pos     int64
	pending []byte
	seg     *segment
}

func newCleanOutput(fs dma.FS, old *segment) (*cleanOutput, error) {
	p := old.path(cleanedExt)
	f, err := fs.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644, false)
	if err != nil {
		return nil, err
	}
	ns := &segment{base: old.base, dir: old.dir, last: old.last, indexLoaded: true, maxTimestamp: -1, firstAppendMs: -1}
	return &cleanOutput{f: f, path: p, seg: ns}, nil
}

func (o *cleanOutput) add(b []byte, h *BatchHeader, interval int) error {
	o.seg.indexBatch(h, o.pos+int64(len(o.pending)), interval)
	o.pending = append(o.pending, b...)
	if len(o.pending) >= cleanChunkBytes {
		return o.flush()
	}
	return nil
}

func (o *cleanOutput) flush() error {
	if len(o.pending) == 0 {
		return nil
	}
	n, err := o.f.WriteAt(o.pending, o.pos)
	if err == nil && n < len(o.pending) {
		err = dma.ErrShortWrite
	}
	if err != nil {
		return err
	}
	// Start the writeback of what was just written, without waiting
	// for it: the fsync that commits the cleaned segment then finds most
	// pages clean, instead of holding the core while a whole segment's
	// worth of dirty pages reaches the disk. Only a hint: fsync is still
	// the durability point, so an error here is ignored.
	if fd := o.f.Fd(); fd >= 0 {
		_ = unix.SyncFileRange(fd, o.pos, int64(n), unix.SYNC_FILE_RANGE_WRITE)
	}
	o.pos += int64(n)
	o.pending = o.pending[:0]
	return nil
}

// ActiveBase is the first offset of the active segment, which the cleaner
// never touches: below it a compacted log holds at most one record per key.
func (l *Log) ActiveBase() Offset { return Offset(l.active.base) }
