package shard

import (
	"errors"
	"fmt"
)

// Errors returned by the log. The wire layer maps them to Kafka codes with
// KafkaCode.
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

// KafkaCode maps a log error to a Kafka protocol error code.
func KafkaCode(err error) int16 {
	var ce *CorruptionError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrCorruptBatch), errors.Is(err, ErrShortBatch), errors.As(err, &ce):
		return 2 // CORRUPT_MESSAGE
	case errors.Is(err, ErrOffsetOutOfRange):
		return 1 // OFFSET_OUT_OF_RANGE
	case errors.Is(err, ErrBatchTooLarge):
		return 10 // MESSAGE_TOO_LARGE
	case errors.Is(err, ErrInvalidBatch):
		return 87 // INVALID_RECORD
	case errors.Is(err, ErrOutOfOrderSequence):
		return 45 // OUT_OF_ORDER_SEQUENCE_NUMBER
	case errors.Is(err, ErrProducerFenced):
		return 47 // INVALID_PRODUCER_EPOCH
	case errors.Is(err, ErrNoSpace):
		return 56 // KAFKA_STORAGE_ERROR, but the log itself stays up
	case errors.Is(err, ErrBacklogFull):
		return 7 // REQUEST_TIMED_OUT: retriable, the client backs off
	default:
		return 56 // KAFKA_STORAGE_ERROR
	}
}
