package wire

import (
	"encoding/binary"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/strand-io/strand/shard"
)

// Record batch v2 header (61 bytes). Records follow, opaque to this package
// (shard.ValidateRecords walks them):
//
//	 0                   8        12                16  17      21    23
//	 +-------------------+--------+-----------------+---+-------+-----+
//	 | baseOffset int64  | length | partLeaderEpoch | m | crc32c| attr|
//	 +-------------------+--------+-----------------+---+-------+-----+
//	23                 27                35                43           51
//	 +------------------+-----------------+-----------------+------------+
//	 | lastOffsetDelta  | baseTimestamp   | maxTimestamp    | producerId |
//	 +------------------+-----------------+-----------------+------------+
//	51            53             57            61
//	 +-------------+--------------+-------------+----------
//	 | producerEp  | baseSequence | recordCount | records...
//	 +-------------+--------------+-------------+----------
//
// length counts from byte 12 to the end, so a batch is 12+length bytes. The
// CRC-32C (Castagnoli) covers bytes 21 to the end, which is why a broker can
// rewrite baseOffset and partLeaderEpoch without recomputing it.

// BatchHeaderLen is the size of the fixed v2 record batch header.
const BatchHeaderLen = shard.BatchHeaderSize

// batchLenOffset is where the int32 batch length lives; batchOverhead is the
// part of a batch the length does not count.
const (
	batchLenOffset = 8
	batchOverhead  = 12
	batchMagicOff  = 16
	batchCRCOff    = 17
	batchCRCStart  = 21
)

// validateProduceBatch checks that records (one partition of a Produce
// request) hold exactly one well-formed v2 batch whose records a consumer
// can read, decompressing a compressed batch to at most maxDecompressed
// bytes. It returns the Kafka error code and a message for the response's
// ErrorMessage (v8+):
//
//	no bytes, a second batch, magic != 2, header      -> INVALID_RECORD
//	  counts (lastOffsetDelta != recordCount-1), record
//	  offset deltas not 0..n-1, unknown codec
//	truncated or inconsistent length, CRC mismatch,    -> CORRUPT_MESSAGE
//	  records that do not parse or are not recordCount
//	  many, a damaged compressed stream
//	records decompressing past maxDecompressed         -> MESSAGE_TOO_LARGE
func validateProduceBatch(records []byte, maxDecompressed int) (int16, string) {
	if len(records) == 0 {
		return errInvalidRecord, "produce partition holds no record batch"
	}
	// Magic sits at byte 16 in every message format, so check it first:
	// a v0/v1 message set is the wrong format, not a corrupt v2 batch.
	if len(records) > batchMagicOff && records[batchMagicOff] != 2 {
		return errInvalidRecord, "only record batches with magic 2 are accepted"
	}
	if len(records) < BatchHeaderLen {
		return errCorruptMessage, "record batch shorter than its header"
	}
	size := int64(int32(binary.BigEndian.Uint32(records[batchLenOffset:]))) + batchOverhead
	switch {
	case size < BatchHeaderLen || size > int64(len(records)):
		return errCorruptMessage, "record batch length does not match the bytes sent"
	case size < int64(len(records)):
		return errInvalidRecord, "produce partitions may carry exactly one record batch"
	}
	// The header fields, the counts, the CRC and the record format are the
	// storage format's rules: shard owns them, and the log trusts batches
	// checked here.
	if _, err := shard.ValidateRecords(records, 0, maxDecompressed); err != nil {
		return ErrorCode(err), err.Error()
	}
	return errNone, ""
}

// decompressLogAt rate-limits logDecompressLimit to a line a second for
// the whole process: a client sending bombs must not flood the log.
var decompressLogAt atomic.Int64

// logDecompressLimit logs a batch refused because its records decompress
// past limit (--max-request-bytes), at most once a second.
func logDecompressLimit(log *slog.Logger, topic string, partition int32, limit int, msg string) {
	now := time.Now().UnixNano()
	last := decompressLogAt.Load()
	if now-last < int64(time.Second) || !decompressLogAt.CompareAndSwap(last, now) {
		return
	}
	log.Warn("produce refused: batch decompresses past the limit (max-request-bytes)",
		"topic", topic, "partition", partition, "limit", limit, "err", msg)
}

// trimBatches returns the longest prefix of whole batches in records that
// fits in limit bytes. If allowFirst is set, the first batch is kept even if
// it alone exceeds limit (KIP-74: a consumer must always make progress). A
// trailing partial batch is dropped.
func trimBatches(records []byte, limit int, allowFirst bool) []byte {
	n := 0
	for n+batchOverhead <= len(records) {
		size := int(int32(binary.BigEndian.Uint32(records[n+batchLenOffset:]))) + batchOverhead
		if size < BatchHeaderLen || n+size > len(records) {
			break
		}
		if n+size > limit && !(n == 0 && allowFirst) {
			break
		}
		n += size
	}
	return records[:n]
}
