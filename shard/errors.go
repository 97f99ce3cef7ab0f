package shard

import (
	"errors"
	"fmt"
)

// Errors returned by the log. The protocol edge maps them to Kafka codes
// (wire.ErrorCode); storage knows no Kafka numbers.
var (
	ErrShortBatch       = errors.New("shard: truncated record batch")
	ErrInvalidBatch     = errors.New("shard: invalid record batch")
	ErrInvalidOffset    = errors.New("shard: invalid offset")
	ErrCorruptBatch     = errors.New("shard: record batch CRC mismatch")
	ErrBatchTooLarge    = errors.New("shard: record batch too large")
	ErrOffsetOutOfRange = errors.New("shard: offset out of range")
	ErrLogFailed        = errors.New("shard: log failed after an I/O error")
	ErrClosed           = errors.New("shard: log closed")
	ErrBacklogFull      = errors.New("shard: append backlog full")
	ErrNoSpace          = errors.New("shard: no space left on device")
	// ErrTruncated: a replicated append was dropped by a truncation asked
	// for after it (AppendReplicated, TruncateTo).
	ErrTruncated = errors.New("shard: replicated batch dropped by a later truncation")
)

// CorruptionError reports a damaged batch found where the log expected valid
// data. It is never served as records.
type CorruptionError struct {
	File   string
	Pos    FilePos
	Offset Offset // the offset the reader was looking for
	Err    error
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("shard: corrupt data in %s at byte %d (reading offset %d): %v", e.File, e.Pos, e.Offset, e.Err)
}

func (e *CorruptionError) Unwrap() error { return e.Err }
