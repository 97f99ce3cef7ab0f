package shard

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/strand-io/strand/dma"
)

// Disk space. An append needs the space its bytes will take; the log
// checks for it (statfs) and reserves it (fallocate) a chunk ahead, so the
// checks cost one statfs per chunk, not per append.
//
//	chunk        starts at preallocMinBytes, doubles each time the log fills
//	             one, up to PreallocateBytes; back to the minimum when idle
//	free space   the chunk shrinks to what is free above DiskReserveBytes;
//	             an append that does not fit there is refused (ErrNoSpace,
//	             the log stays up) and the next one checks again, so
//	             appends resume by themselves when space returns
//	write ENOSPC the write is retried at each Tick with the same bytes; its
//	             appends wait (see stallWrite)
const (
	preallocMinBytes  = 16 << 10
	storageLogEveryMs = 60_000
)

// reserveSpace makes room for the active segment to grow to need bytes.
func (l *Log) reserveSpace(seg *segment, need int64, nowMs int64) error {
	want := need - seg.allocated
	chunk := max(l.preallocChunk, preallocMinBytes)
	free, ferr := l.fs.FreeBytes(l.cfg.Dir)
	if ferr == nil {
		room := free - l.cfg.DiskReserveBytes
		if room < want {
			return l.storageError(nowMs, l.noSpace(free, nil))
		}
		chunk = min(chunk, room)
	}
	chunk = dma.AlignDown(max(chunk, want), seg.file.Align())
	chunk = max(chunk, want)
	if l.cfg.Preallocate {
		if err := seg.file.Allocate(seg.allocated, chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				free, _ := l.fs.FreeBytes(l.cfg.Dir)
				return l.storageError(nowMs, l.noSpace(free, err))
			}
			return l.storageError(nowMs, fmt.Errorf("%w: preallocate %d bytes in %s: %v", ErrNoSpace, chunk, seg.file.Name(), err))
		}
	}
	seg.allocated += chunk
	l.preallocChunk = min(2*max(l.preallocChunk, preallocMinBytes), l.cfg.PreallocateBytes)
	return nil
}

// noSpace is the error an append gets on a full disk: it names the
// directory, what is free and what is kept in reserve.
func (l *Log) noSpace(free int64, cause error) error {
	msg := fmt.Sprintf("%v: disk full on %s: %d bytes free", ErrNoSpace, l.cfg.Dir, free)
	if l.cfg.DiskReserveBytes > 0 {
		msg += fmt.Sprintf(", %d kept in reserve (--disk-reserve-bytes)", l.cfg.DiskReserveBytes)
	}
	if cause != nil {
		msg += ": " + cause.Error()
	}
	return &StorageError{msg: msg, err: ErrNoSpace}
}

// StorageError is a storage failure that carries the message for the
// client and the log: the cause, in words, with the file or directory.
type StorageError struct {
	msg string
	err error
}

func (e *StorageError) Error() string { return e.msg }
func (e *StorageError) Unwrap() error { return e.err }

// storageError logs err, at most once per storageLogEveryMs for this log
// (a producer retrying on a full disk would otherwise log every attempt),
// and returns it.
func (l *Log) storageError(nowMs int64, err error) error {
	if l.storageLogged && nowMs-l.lastStorageLogMs < storageLogEveryMs {
		l.storageMuted++
		return err
	}
	l.cfg.Logger.Warn("partition storage error; appends are refused until it clears", "dir", l.cfg.Dir, "err", err, "repeats_not_logged", l.storageMuted)
	l.storageLogged, l.lastStorageLogMs, l.storageMuted = true, nowMs, 0
	return err
}

// isNoSpace: a write that failed for want of space. A short write is
// counted too: the kernel stops a write short when the space runs out.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, dma.ErrShortWrite)
}

// stallWrite parks the pipeline after a write refused for want of space.
// Nothing was acknowledged for the staged bytes, so nothing is lost by
// waiting; the write is retried at each Tick with the same bytes at the
// same place (see the durability rule: only a completed fdatasync vouches
// for data, and a failed write, unlike a failed fdatasync, leaves no
// dirty page the kernel may have dropped). New appends are refused while
// it lasts. A Quiesce (close, delete) does not wait for space: it fails
// the log, whose waiting appends then get the error.
func (l *Log) stallWrite(err error) {
	free, _ := l.fs.FreeBytes(l.cfg.Dir)
	l.stalled = l.storageError(l.clockMs, l.noSpace(free, fmt.Errorf("write %s: %w", l.active.file.Name(), err)))
	if len(l.quiescers) > 0 {
		l.fail(l.stalled)
	}
}

// rollFailed handles a roll that could not seal the full segment or create
// the next one. Out of space, the log stalls like a write does: the appends
// waiting for the roll get the disk-full error (nothing of theirs was
// staged), new ones are refused until a Tick, and the next append that
// needs the roll tries it again. Sealing again is safe: the data is
// already durable, and the index files are rewritten from memory. Any
// other error fails the log.
func (l *Log) rollFailed(err error) {
	if !isNoSpace(err) {
		l.fail(err)
		return
	}
	free, _ := l.fs.FreeBytes(l.cfg.Dir)
	l.stalled = l.storageError(l.clockMs, l.noSpace(free, fmt.Errorf("roll %s: %w", l.active.path(logExt), err)))
	backlog := l.backlog
	l.backlog = nil
	for _, p := range backlog {
		p.done(AppendResult{}, l.stalled)
	}
}

// retryStalled restarts a write that stalled on a full disk.
func (l *Log) retryStalled() {
	if l.stalled == nil || l.writing || l.linkedStall {
		return
	}
	l.stalled = nil
	l.kick()
}
