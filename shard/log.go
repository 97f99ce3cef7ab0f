package shard

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/strand-io/strand/dma"
)

// Config sets the behaviour of one partition log. Zero values take the
// defaults named below.
type Config struct {
	Dir                  string
	SegmentBytes         int64 // roll when the active segment would pass this; default 1 GiB
	SegmentMs            int64 // roll when the active segment's first append is older; default 7 days
	IndexIntervalBytes   int   // log bytes between sparse index entries; default 4096
	IndexCheckpointBytes int64 // log bytes after which the active index is persisted; default 1 MiB
	RetentionBytes       int64 // delete old segments past this total; <= 0 unlimited
	RetentionMs          int64 // delete segments whose newest record is older; <= 0 unlimited
	MaxBatchBytes        int   // largest accepted batch; default 1 MiB + 12 (Kafka's message.max.bytes)
	BufferBytes          int   // largest staging buffer for the active tail; default 8 MiB, at least 2 batches
	// BufferBytesMin is the staging buffer of a quiet partition: it starts
	// there, doubles while appends need room, and returns there after
	// bufferIdleMs without appends, so a thousand idle partitions do not
	// each hold BufferBytes. Default 64 KiB.
	BufferBytesMin int
	MaxBacklog     int  // appends that may wait for buffer space; default 4096
	Preallocate    bool // fallocate segment space ahead of the writes
	// PreallocateBytes is the largest chunk reserved in one fallocate;
	// default 8 MiB. A log starts at preallocMinBytes and doubles its
	// chunk each time it fills one, so a quiet partition reserves a few
	// blocks and a busy one the full chunk.
	PreallocateBytes int64
	// DiskReserveBytes is the free space appends leave on the file
	// system: an append that would need space below it is refused with
	// ErrNoSpace, so that metadata writes, topic deletion, index and
	// producer-state writes and a clean shutdown still find room on a
	// full disk. 0: none.
	DiskReserveBytes int64
	LogAppendTime    bool // broker assigns batch timestamps
	// Compression is the topic's compression.type: batches in another
	// codec are recompressed before they are stored (recompress.go).
	Compression Compression
	// BoundTimestamps turns on the CreateTime bounds: a record more than
	// TimestampBeforeMaxMs before or TimestampAfterMaxMs after the
	// broker's clock is refused (appendpolicy.go). Off for LogAppendTime.
	BoundTimestamps                           bool
	TimestampBeforeMaxMs, TimestampAfterMaxMs int64
	// ProducerSnapshotBytes: acknowledged bytes between snapshots of the
	// idempotent-producer table, which bound the replay at recovery.
	// Default 64 MiB.
	ProducerSnapshotBytes int64
	// ReadPool, when set, is the pool of read buffers shared by the logs
	// of one core, so that the buffers cached are bounded per core rather
	// than per partition. It is used only once the log runs on that core
	// (Open's own scans use a private pool, since Open may run on another
	// goroutine). Nil: the log keeps a pool of its own.
	ReadPool *dma.Pool
	// FileCache, when set, holds the open files of sealed segments for
	// the logs of one core (see FileCache). Like ReadPool it is used only
	// once the log runs on that core. Nil: the log keeps a small one.
	FileCache *FileCache
	// ExternalHW: the high watermark belongs to replication. Local
	// fdatasyncs no longer move it; SetHighWatermark does (never past what
	// is durable here), and the log opens with it at the log start. Set
	// for a replicated partition's log, leader or follower, whose appends
	// come through AppendReplicated.
	ExternalHW bool
	// AssertOwner, when set, panics unless the caller runs on the core
	// that owns the log. The log calls it at its entry points in
	// invariants builds (-tags invariants, or -race) only.
	AssertOwner func()
	Logger      *slog.Logger

	// Compaction (compact.go). Cleanup is cleanup.policy; the rest are
	// Kafka's topic configs of the same names (0: Kafka's default).
	Cleanup                CleanupPolicy
	DeleteRetentionMs      int64   // tombstones kept this long after their first cleaning; default 1 day
	MinCompactionLagMs     int64   // records younger than this are not cleaned; default 0
	MaxCompactionLagMs     int64   // dirty records older than this force a pass; <= 0 unlimited
	MinCleanableDirtyRatio float64 // dirty share of the cleanable log that starts a pass; default 0.5
	// CleanBytesPerTick bounds the log read by the cleaner per Tick;
	// CleanBudget, when set, is the core's budget shared by its logs.
	CleanBytesPerTick int64
	CleanBudget       *CleanBudget
	// CleanMapBytes bounds a pass's key map; a pass cleans only as much
	// of the dirty log as its keys fit. Default 64 MiB.
	CleanMapBytes int64
}

func (c *Config) fill() {
	if c.SegmentBytes <= 0 {
		c.SegmentBytes = 1 << 30
	}
	if c.SegmentMs <= 0 {
		c.SegmentMs = 7 * 24 * 3600 * 1000
	}
	if c.IndexIntervalBytes <= 0 {
		c.IndexIntervalBytes = 4096
	}
	if c.IndexCheckpointBytes <= 0 {
		c.IndexCheckpointBytes = 1 << 20
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = 1<<20 + 12
	}
	if c.BufferBytes <= 0 {
		c.BufferBytes = 8 << 20
	}
	if min := 2*c.MaxBatchBytes + 2*dma.DefaultAlign; c.BufferBytes < min {
		c.BufferBytes = min
	}
	if c.PreallocateBytes <= 0 {
		c.PreallocateBytes = 8 << 20
	}
	if c.MaxBacklog <= 0 {
		c.MaxBacklog = 4096
	}
	if c.BufferBytesMin <= 0 {
		c.BufferBytesMin = 64 << 10
	}
	c.BufferBytesMin = min(max(c.BufferBytesMin, 2*dma.DefaultAlign), c.BufferBytes)
	if c.ProducerSnapshotBytes <= 0 {
		c.ProducerSnapshotBytes = 64 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	fillCompaction(c)
}

// AppendResult is what an acknowledged append reports.
type AppendResult struct {
	Base, Last    Offset
	LogAppendTime int64 // -1 unless the log assigns timestamps
}

// AppendFunc receives the outcome of an append once it is durable (or failed).
type AppendFunc func(AppendResult, error)

type waiter struct {
	end  int64 // file position the fsync must cover
	res  AppendResult
	done AppendFunc
	// dup marks the answer to a retried idempotent batch: it waits for the
	// original to be durable but moves neither the high watermark nor the
	// producer table.
	dup   bool
	size  int64
	pid   int64 // -1 unless idempotent
	epoch int16
	seq   seqBatch
}

type pendingAppend struct {
	batch []byte
	nowMs int64
	done  AppendFunc
	kept  bool // AppendReplicated: offsets and epoch are the leader's
}

// Log is one partition's log. It is owned by one core: every method, and
// every callback it makes, runs on that core's thread.
//
// Write pipeline of the active segment, in file positions:
//
//	synced <= written <= end
//	[0, synced)      covered by a completed fdatasync: acknowledged, readable
//	[synced, written) written by completed writes, fdatasync pending
//	[written, end)   appended to the staging buffer only
//
// At most one write and one fdatasync are in flight. A new write starts as
// soon as the previous one completes, while the fsync of the earlier data
// runs, so the disk always has work while appends wait. Writes never overlap
// in flight (each rewrites the partial tail block of the one before), which
// is why there is one at a time: io_uring does not order concurrent writes.
type Log struct {
	cfg  Config
	fs   dma.FS
	io   dma.Engine
	pool *dma.Pool

	segs   []*segment // by base offset; the last is active
	active *segment

	buf     []byte        // aligned staging buffer holding file bytes [bufPos, end)
	bufPos  int64         // file position of buf[0], a multiple of the alignment
	recent  []recentBatch // batches that start inside buf, for reads of hot data
	end     int64
	written int64
	synced  int64

	writing, syncing  bool
	writeEnd, syncEnd int64
	// sideIO counts the log's bookkeeping writes in flight: index
	// checkpoints and periodic producer snapshots. They never hold up an
	// acknowledgement, but the log is not idle (for roll, truncation,
	// close) until they have landed. indexing and snapshotting keep one
	// of each kind at a time.
	sideIO                 int
	indexing, snapshotting bool
	waiters                []waiter
	waitHead               int
	backlog                []pendingAppend

	next Offset // offset the next record gets
	hw   Offset // offsets below it are durable and readable
	// durableNext is the offset after the last record an fdatasync
	// covers (hw <= durableNext <= next). Without ExternalHW it equals hw.
	durableNext Offset
	// hwTarget is the highest high watermark replication has given
	// (ExternalHW); hw follows it as far as durableNext allows.
	hwTarget Offset
	logStart Offset
	epochs   epochCache

	lastAppendMs int64 // broker time of the last append, for shrinking the buffer
	// clockMs is the newest broker time the log was given (appends,
	// Tick), for rate-limiting log lines from completions, which get none.
	clockMs int64

	live, durable producerTable
	// producerReplayFrom is where the last rebuild of the producer tables
	// started replaying the log (the snapshot's offset, or the log start).
	producerReplayFrom Offset
	bytesSinceSnapshot int64

	// truncations counts TruncateTo cuts, so a disk read that spans one
	// can tell its bytes may be gone.
	truncations uint64

	files *FileCache // sealed segments' files, shared by the core's logs
	// preallocChunk is the next fallocate's size: it doubles as the log
	// fills chunks and falls back after bufferIdleMs without appends.
	preallocChunk int64
	// stalled is the error of a write refused for want of space (ENOSPC or
	// a short write). The staged bytes stay in the buffer and their
	// appends wait; Tick retries the write. linkedStall: the fdatasync
	// linked behind that write never ran, so its error is not a failed
	// fsync. See the durability rule in docs/ARCHITECTURE.md.
	stalled     error
	linked      bool // the write in flight has its fdatasync linked behind it
	linkedStall bool
	// lastStorageLogMs rate-limits the log line for storage errors that
	// do not fail the log (full disk), to one per storageLogEveryMs.
	lastStorageLogMs int64
	storageLogged    bool
	storageMuted     int

	failed    error
	closed    bool
	idleFns   []func() // run when the pipeline drains (roll, truncate)
	quiescers []func() // Quiesce callbacks, also released by fail
	// OnCommit, when set, is called each time the high watermark advances.
	OnCommit func(hw Offset)

	writeDone func(int, error)
	syncDone  func(error)
	// kickQueued: a kick is deferred to the engine's next Poll (see append).
	kickQueued bool
	kickFn     func()

	clean cleaner // compaction state (compact.go)
}

type recentBatch struct {
	base Offset
	last Offset
	pos  int64
}

// HighWatermark is the offset after the last durable record.
func (l *Log) HighWatermark() Offset { return l.hw }

// NextOffset is the offset the next appended record will get.
func (l *Log) NextOffset() Offset { return l.next }

// LogStartOffset is the first offset still stored.
func (l *Log) LogStartOffset() Offset { return l.logStart }

// Err returns the I/O error that failed the log, if any.
func (l *Log) Err() error { return l.failed }

// Dir is the log's directory.
func (l *Log) Dir() string { return l.cfg.Dir }

// Append validates batch (exactly one Kafka v2 record batch), assigns its
// offsets and stages it for the disk. done runs once the batch is covered
// by an fdatasync, or with the error that failed the log. An invalid batch
// is rejected at once with the returned error, and done is not called.
// The log keeps batch (it becomes part of the staging buffer by copy), so
// the caller may reuse it as soon as Append returns.
func (l *Log) Append(batch []byte, nowMs int64, done AppendFunc) error {
	l.checkInvariants("Append")
	if l.closed {
		return ErrClosed
	}
	if l.failed != nil {
		return l.failed
	}
	if l.stalled != nil {
		return l.stalled
	}
	if _, err := ValidateBatch(batch, l.cfg.MaxBatchBytes); err != nil {
		return err
	}
	if err := l.checkPolicies(batch, nowMs); err != nil {
		return err
	}
	batch, err := l.recompress(batch)
	if err != nil {
		return err
	}
	return l.append(batch, nowMs, done, false)
}

// AppendValidated is Append for a batch that has already passed
// ValidateBatch on its way in (the protocol layer checks every produced
// batch on the connection's core). It re-checks the header and size, which
// cost nothing, but not the CRC, so the bytes are checksummed once.
func (l *Log) AppendValidated(batch []byte, nowMs int64, done AppendFunc) error {
	l.checkInvariants("AppendValidated")
	if l.closed {
		return ErrClosed
	}
	if l.failed != nil {
		return l.failed
	}
	if l.stalled != nil {
		return l.stalled
	}
	h, err := ParseBatchHeader(batch)
	if err == nil {
		err = h.check(l.cfg.MaxBatchBytes)
	}
	if err == nil && h.Size() != len(batch) {
		err = fmt.Errorf("%w: batchLength says %d bytes, got %d", ErrInvalidBatch, h.Size(), len(batch))
	}
	if err == nil {
		err = l.checkPolicies(batch, nowMs)
	}
	if err == nil {
		batch, err = l.recompress(batch)
	}
	if err != nil {
		return err
	}
	return l.append(batch, nowMs, done, false)
}

func (l *Log) append(batch []byte, nowMs int64, done AppendFunc, kept bool) error {
	if len(l.backlog) == 0 {
		placed, err := l.place(batch, nowMs, done, kept)
		if err != nil {
			return err
		}
		if placed {
			l.deferKick()
			return nil
		}
	}
	if len(l.backlog) >= l.cfg.MaxBacklog {
		return ErrBacklogFull
	}
	l.backlog = append(l.backlog, pendingAppend{append([]byte(nil), batch...), nowMs, done, kept})
	l.deferKick()
	return nil
}

// deferKick starts the next write at the engine's next Poll rather than
// now. Appends usually come in bursts within one callback (a request
// carrying many batches, or acknowledgements that let producers send
// again); kicking on the first would send it to the disk alone and split
// the group, so the write waits until the burst is staged.
func (l *Log) deferKick() {
	if l.kickQueued {
		return
	}
	l.kickQueued = true
	l.io.Defer(l.kickFn)
}

// place copies batch into the staging buffer, or reports false when it
// must wait (buffer full while a write is in flight, or a roll is due).
// An error refuses this batch (no space to preallocate, or a replicated
// batch that does not continue the log) but not the log. kept: the batch
// keeps its offsets and epoch (AppendReplicated); they are checked here,
// where the log end is final, rather than when it was handed in, since a
// truncation or earlier batches may still have been waiting then.
func (l *Log) place(batch []byte, nowMs int64, done AppendFunc, kept bool) (bool, error) {
	seg := l.active
	if len(l.idleFns) > 0 {
		return false, nil
	}
	size := int64(len(batch))
	if seg.size > 0 && (l.end+size > l.cfg.SegmentBytes || seg.firstAppendMs >= 0 && nowMs-seg.firstAppendMs >= l.cfg.SegmentMs) {
		l.whenIdle(l.roll)
		return false, nil
	}
	align := l.active.file.Align()
	if dma.AlignUp(l.end+size, align)-l.bufPos > int64(len(l.buf)) {
		// The in-flight write reads the buffer: its layout may change only
		// when no write is in flight.
		if l.writing {
			return false, nil
		}
		l.compact()
		if need := dma.AlignUp(l.end+size, align) - l.bufPos; need > int64(len(l.buf)) && !l.growBuffer(need) {
			return false, nil
		}
	}
	l.lastAppendMs, l.clockMs = nowMs, max(l.clockMs, nowMs)
	if need := dma.AlignUp(l.end+size, align); need > seg.allocated {
		if err := l.reserveSpace(seg, need, nowMs); err != nil {
			return false, err
		}
	}
	h, _ := ParseBatchHeader(batch)
	if kept {
		if err := l.continues(&h); err != nil {
			return false, err
		}
	}
	idem := isIdempotent(&h)
	if idem && !kept {
		// The leader decided on duplicates and sequence gaps; a follower
		// records what it was sent.
		dup, err := l.live.check(&h)
		if err != nil {
			return false, err
		}
		if dup != nil {
			l.answerDuplicate(dup, done)
			return true, nil
		}
	}
	at := l.buf[l.end-l.bufPos : l.end-l.bufPos+size]
	// The header is stamped next, so it goes through the cache; the body
	// is only read again by the disk (see dma.CopyForDMA).
	hdr := min(len(batch), BatchHeaderSize)
	copy(at[:hdr], batch[:hdr])
	dma.CopyForDMA(at[hdr:], batch[hdr:])
	if !kept {
		stampBatch(at, l.next, l.epochs.current())
	}
	res := AppendResult{Base: l.next, Last: l.next + Offset(h.LastOffsetDelta), LogAppendTime: -1}
	if l.cfg.LogAppendTime && !kept {
		setLogAppendTime(at, nowMs)
		res.LogAppendTime = nowMs
		h.MaxTimestamp = nowMs
	}
	h.BaseOffset = l.next
	if seg.firstAppendMs < 0 {
		seg.firstAppendMs = nowMs
	}
	seg.indexBatch(&h, l.end, l.cfg.IndexIntervalBytes)
	l.recent = append(l.recent, recentBatch{base: res.Base, last: res.Last, pos: l.end})
	l.end += size
	seg.size = l.end
	if res.Last < l.next {
		panic(fmt.Sprintf("shard: offsets must increase: %d after %d", res.Last, l.next))
	}
	l.next = res.Last + 1
	w := waiter{end: l.end, res: res, done: done, size: size, pid: -1}
	if idem {
		w.pid, w.epoch = h.ProducerID, h.ProducerEpoch
		w.seq = seqBatch{h.BaseSequence, lastSeqOf(&h), res.Base, res.Last}
		l.live.record(w.pid, w.epoch, w.seq)
	}
	l.waiters = append(l.waiters, w)
	return true, nil
}

// answerDuplicate acknowledges a retried batch with the offsets of the
// original, once everything staged so far (which includes the original if
// it is still in flight) is durable.
func (l *Log) answerDuplicate(dup *seqBatch, done AppendFunc) {
	res := AppendResult{Base: dup.base, Last: dup.last, LogAppendTime: -1}
	if l.waitHead == len(l.waiters) && l.synced == l.end {
		done(res, nil)
		return
	}
	l.waiters = append(l.waiters, waiter{end: l.end, res: res, done: done, dup: true, pid: -1})
}

// growBuffer replaces the staging buffer with a larger one holding the
// same bytes (at least need, doubling, up to BufferBytes). Only called with
// no write in flight.
func (l *Log) growBuffer(need int64) bool {
	if need > int64(l.cfg.BufferBytes) {
		return false
	}
	n := max(2*len(l.buf), int(need))
	n = min(int(dma.AlignUp(int64(n), dma.DefaultAlign)), l.cfg.BufferBytes)
	l.resizeBuffer(n)
	return true
}

func (l *Log) resizeBuffer(n int) {
	nb := dma.AllocAligned(n)
	// Large buffers come rounded up to whole huge pages: use the rest.
	nb = nb[:max(n, min(cap(nb), l.cfg.BufferBytes))]
	copy(nb, l.buf[:l.end-l.bufPos])
	dma.FreeAligned(l.buf)
	l.buf = nb
}

// shrinkIdleBuffer gives a quiet partition's staging buffer back.
func (l *Log) shrinkIdleBuffer(nowMs int64) {
	if !l.Idle() || nowMs-l.lastAppendMs < bufferIdleMs {
		return
	}
	l.preallocChunk = preallocMinBytes
	if len(l.buf) <= l.cfg.BufferBytesMin {
		return
	}
	l.compact()
	if l.end-l.bufPos <= int64(l.cfg.BufferBytesMin) {
		l.resizeBuffer(l.cfg.BufferBytesMin)
	}
}

// bufferIdleMs: how long a partition goes without appends before its
// staging buffer shrinks back to BufferBytesMin.
const bufferIdleMs = 10_000

// compact slides the unwritten tail of the staging buffer to its front.
// Only called with no write in flight, since a write reads from the buffer.
func (l *Log) compact() bool {
	from := dma.AlignDown(l.written, l.active.file.Align())
	if from == l.bufPos {
		return false
	}
	// Bytes left behind past the new end need no clearing: a write zeroes
	// its own padding (kick), and reads stop at the synced end.
	copy(l.buf, l.buf[from-l.bufPos:l.end-l.bufPos])
	l.bufPos = from
	i := 0
	for i < len(l.recent) && l.recent[i].pos < from {
		i++
	}
	l.recent = l.recent[:copy(l.recent, l.recent[i:])]
	return true
}

// kick starts the next write and the next fdatasync if they are due.
func (l *Log) kick() {
	if l.failed != nil || l.closed && l.active == nil {
		return
	}
	f := l.active.file
	if !l.writing && l.written < l.end && l.stalled == nil {
		from := dma.AlignDown(l.written, f.Align())
		to := dma.AlignUp(l.end, f.Align())
		// The tail block goes to disk zero-padded after the last batch: that
		// is how recovery finds the end.
		clear(l.buf[l.end-l.bufPos : to-l.bufPos])
		l.writing, l.writeEnd = true, l.end
		if !l.syncing && l.synced == l.written {
			// Nothing in flight: submit the write with its fdatasync
			// linked behind it, saving a round trip per group.
			l.syncing, l.syncEnd, l.linked = true, l.end, true
			l.io.WriteSync(f, l.buf[from-l.bufPos:to-l.bufPos], from, l.writeDone, l.syncDone)
		} else {
			l.linked = false
			l.io.Write(f, l.buf[from-l.bufPos:to-l.bufPos], from, l.writeDone)
		}
	}
	if !l.syncing && l.synced < l.written {
		l.syncing, l.syncEnd = true, l.written
		l.io.Sync(f, l.syncDone)
	}
	if l.ioQuiet() {
		l.runIdle()
	}
}

// ioQuiet: no write, fdatasync or bookkeeping I/O in flight, and every
// staged byte durable.
func (l *Log) ioQuiet() bool {
	return !l.writing && !l.syncing && l.sideIO == 0 && l.synced == l.end
}

// sideIODone accounts for a finished bookkeeping write and lets whatever
// waits for the log to be idle run.
func (l *Log) sideIODone() {
	l.sideIO--
	if l.failed == nil && !l.closed && l.ioQuiet() {
		l.runIdle()
	}
}

func (l *Log) onWritten(n int, err error) {
	l.writing = false
	if err != nil {
		if isNoSpace(err) && l.failed == nil {
			// Every engine runs a linked fdatasync's callback after the
			// write's, and only if the write succeeded does it run the
			// fdatasync itself (dma.Engine.WriteSync).
			l.linkedStall = l.linked
			l.stallWrite(err)
			return
		}
		l.fail(fmt.Errorf("write %s: %w", l.active.file.Name(), err))
		return
	}
	l.written = l.writeEnd
	l.checkInvariants("write completion")
	l.drainBacklog()
	l.kick()
}

func (l *Log) onSynced(err error) {
	l.syncing = false
	if l.linkedStall {
		// The fdatasync linked to a write that ran out of space: it was
		// cancelled, not failed, and covered nothing.
		l.linkedStall = false
		if l.failed == nil {
			l.kick() // an earlier range may still need its fdatasync
		}
		return
	}
	if err != nil {
		// A failed fdatasync may have dropped dirty pages: retrying could
		// report success for data that is gone, so the log stops here.
		l.fail(fmt.Errorf("fdatasync %s: %w", l.active.file.Name(), err))
		return
	}
	l.synced = l.syncEnd
	l.checkInvariants("fdatasync completion")
	l.ackDurable()
	l.checkpointIndexesAsync()
	l.drainBacklog()
	l.kick()
}

// checkpointIndexesAsync persists the active segment's new index entries
// once IndexCheckpointBytes of log have gone by since the last checkpoint,
// through the engine, after the acknowledgements it must not delay.
func (l *Log) checkpointIndexesAsync() {
	seg := l.active
	if l.indexing || l.failed != nil || seg.lastIndexedPos == 0 || len(seg.index.entries) == seg.idxPersisted ||
		int64(seg.index.entries[len(seg.index.entries)-1].pos)-int64(seg.indexPersistedPos()) < l.cfg.IndexCheckpointBytes {
		return
	}
	w := seg.pendingIndexes(l.synced)
	writes := 0
	for _, x := range []struct {
		ext string
		b   []byte
		off int64
		set func()
	}{
		{indexExt, w.idx, w.idxOff, func() { seg.idxPersisted = max(seg.idxPersisted, w.idxN) }},
		{timeIndexExt, w.tidx, w.tidxOff, func() { seg.tidxPersisted = max(seg.tidxPersisted, w.tidxN) }},
	} {
		if len(x.b) == 0 {
			continue
		}
		// The index file is open only for this write: an idle log holds
		// no descriptor but its active segment's (DescriptorsPerLog).
		f, err := seg.openIndexFile(l.fs, x.ext, os.O_RDWR|os.O_CREATE)
		if err != nil {
			l.storageError(l.clockMs, fmt.Errorf("index checkpoint %s: %w", seg.path(x.ext), err))
			continue
		}
		writes++
		l.sideIO++
		l.io.Write(f, x.b, x.off, func(n int, err error) {
			f.Close()
			if writes--; writes == 0 {
				l.indexing = false
			}
			if err == nil && n < len(x.b) {
				err = dma.ErrShortWrite
			}
			if err != nil {
				// A missing checkpoint only lengthens recovery's scan, and
				// the next checkpoint rewrites these entries: not worth
				// failing the log for (a full disk, typically).
				l.storageError(l.clockMs, fmt.Errorf("index checkpoint %s: %w", f.Name(), err))
			} else {
				x.set()
			}
			l.sideIODone()
		})
	}
	l.indexing = writes > 0
}

func (s *segment) indexPersistedPos() uint32 {
	if s.idxPersisted == 0 {
		return 0
	}
	return s.index.entries[s.idxPersisted-1].pos
}

// ackDurable acknowledges every append now covered by an fdatasync.
func (l *Log) ackDurable() {
	advanced := false
	for l.waitHead < len(l.waiters) && l.waiters[l.waitHead].end <= l.synced {
		w := l.waiters[l.waitHead]
		l.waiters[l.waitHead] = waiter{}
		l.waitHead++
		if !w.dup {
			l.durableNext = w.res.Last + 1
			if !l.cfg.ExternalHW {
				l.advanceHW(w.res.Last + 1)
				advanced = true
			} else if w.res.Last < l.hwTarget {
				l.advanceHW(min(l.hwTarget, w.res.Last+1))
				advanced = true
			}
			l.bytesSinceSnapshot += w.size
			if w.pid >= 0 {
				l.durable.record(w.pid, w.epoch, w.seq)
			}
		}
		if w.done != nil {
			w.done(w.res, nil)
		}
	}
	if l.waitHead == len(l.waiters) {
		l.waiters, l.waitHead = l.waiters[:0], 0
	}
	if advanced && l.OnCommit != nil {
		l.OnCommit(l.hw)
	}
	if l.bytesSinceSnapshot >= l.cfg.ProducerSnapshotBytes && !l.snapshotting {
		l.bytesSinceSnapshot = 0
		l.snapshotProducersAsync()
	}
}

func (l *Log) drainBacklog() {
	i := 0
	for ; i < len(l.backlog); i++ {
		p := l.backlog[i]
		placed, err := l.place(p.batch, p.nowMs, p.done, p.kept)
		if err != nil {
			p.done(AppendResult{}, err)
			continue
		}
		if !placed {
			break
		}
	}
	clear(l.backlog[:i])
	l.backlog = l.backlog[:copy(l.backlog, l.backlog[i:])]
}

// fail stops the log after an I/O error and fails everything waiting.
func (l *Log) fail(err error) {
	if l.failed != nil {
		return
	}
	l.failed = fmt.Errorf("%w: %v", ErrLogFailed, err)
	l.cfg.Logger.Error("partition log failed; it accepts no more appends until reopened", "dir", l.cfg.Dir, "err", err)
	for _, w := range l.waiters[l.waitHead:] {
		if w.done != nil {
			w.done(AppendResult{}, l.failed)
		}
	}
	l.waiters, l.waitHead = nil, 0
	for _, p := range l.backlog {
		p.done(AppendResult{}, l.failed)
	}
	l.backlog = nil
	q := l.quiescers
	l.quiescers, l.idleFns = nil, nil
	for _, fn := range q {
		fn()
	}
}

// whenIdle runs fn once no write or fsync is in flight and every staged
// byte is durable. Appends wait behind it.
func (l *Log) whenIdle(fn func()) {
	l.idleFns = append(l.idleFns, fn)
}

func (l *Log) runIdle() {
	for len(l.idleFns) > 0 && l.failed == nil && l.ioQuiet() {
		fn := l.idleFns[0]
		l.idleFns = l.idleFns[1:]
		fn()
	}
	if len(l.idleFns) == 0 {
		l.quiescers = nil
		l.drainBacklog()
		if !l.writing && l.written < l.end {
			l.kick()
		}
	}
}

// roll seals the active segment and starts a new one at the next offset.
func (l *Log) roll() {
	if l.active.size == 0 {
		return
	}
	old := l.active
	if err := old.seal(l.fs); err != nil {
		l.rollFailed(err)
		return
	}
	if err := l.writeProducerSnapshot(); err != nil {
		l.cfg.Logger.Warn("producer state snapshot failed", "dir", l.cfg.Dir, "err", err)
	}
	if err := l.startSegment(SegmentBase(l.next)); err != nil {
		l.rollFailed(err)
		return
	}
	// The sealed file goes to the core's cache: a lagging consumer is
	// likely to read it next.
	l.files.adopt(old)
}

// startSegment creates a fresh active segment and empties the buffer.
func (l *Log) startSegment(base SegmentBase) error {
	seg, err := createSegment(l.fs, l.cfg.Dir, base)
	if err != nil {
		return err
	}
	l.segs = append(l.segs, seg)
	l.active = seg
	clear(l.buf[:l.end-l.bufPos])
	l.bufPos, l.end, l.written, l.synced = 0, 0, 0, 0
	l.recent = l.recent[:0]
	return nil
}

// Tick lets the log act on time: roll an old active segment and apply
// retention. The owner calls it periodically with the broker clock.
func (l *Log) Tick(nowMs int64) {
	l.checkInvariants("Tick")
	if l.closed || l.failed != nil {
		return
	}
	l.clockMs = max(l.clockMs, nowMs)
	seg := l.active
	if seg.size > 0 && seg.firstAppendMs >= 0 && nowMs-seg.firstAppendMs >= l.cfg.SegmentMs && len(l.idleFns) == 0 {
		l.whenIdle(l.roll)
		l.kick()
	}
	l.ApplyRetention(nowMs)
	l.Clean(nowMs)
	l.shrinkIdleBuffer(nowMs)
	l.retryStalled()
}

// Quiesce calls fn once everything staged is durable and no I/O is in
// flight (at once if the log has failed). Appends arriving meanwhile wait
// behind it. Owners use it before closing or deleting a log.
func (l *Log) Quiesce(fn func()) {
	if l.stalled != nil {
		// A full disk may never clear: closing or deleting does not wait.
		l.fail(l.stalled)
	}
	if l.failed != nil {
		fn()
		return
	}
	done := false
	once := func() {
		if !done {
			done = true
			fn()
		}
	}
	// A log that fails while fn waits releases it too (see fail).
	l.quiescers = append(l.quiescers, once)
	l.whenIdle(once)
	l.kick()
}

// Idle reports whether nothing is staged, in flight or waiting.
func (l *Log) Idle() bool {
	return l.ioQuiet() && len(l.backlog) == 0 && len(l.idleFns) == 0
}

// Close persists the active index and releases files. The caller must have
// let the pipeline drain (Idle, or Err set). Unused preallocation is
// released; it is taken again when the log reopens.
func (l *Log) Close() error {
	if l.closed {
		return nil
	}
	l.closed = true
	l.closeCleanIO()
	l.files.forget(l)
	var first error
	if l.failed == nil && l.active != nil {
		if err := l.active.checkpointIndexes(l.fs, l.synced); err != nil {
			first = err
		}
		if l.Idle() {
			if err := l.writeProducerSnapshot(); err != nil && first == nil {
				first = err
			}
		}
		if err := l.active.file.Truncate(dma.AlignUp(l.end, l.active.file.Align())); err != nil && first == nil {
			first = err
		}
	}
	for _, s := range l.segs {
		if s.reads > 0 && s.file != nil {
			// A read still uses it (Quiesce waits for writes, not reads):
			// closing now would let its queued io_uring read run on
			// whatever file next gets the descriptor number.
			if s.cache != nil {
				s.cache.detach(s)
			}
			s.closeOnRelease = true
			continue
		}
		s.close()
	}
	if l.pool != l.cfg.ReadPool {
		l.pool.Close()
	}
	if !l.writing {
		// A failed log may still have a write in flight from this buffer:
		// unmapping it under the kernel would hand the device freed memory,
		// so in that case the buffer is left mapped (and l.buf set).
		dma.FreeAligned(l.buf)
		l.buf = nil
	}
	return first
}
