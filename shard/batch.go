package shard

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Record batch v2, which is both Kafka's wire format and Strand's on-disk
// record header. Integers are big-endian.
//
//	off  size  field                  covered by CRC
//	  0     8  baseOffset             no   (assigned by the broker on append)
//	  8     4  batchLength = size-12  no
//	 12     4  partitionLeaderEpoch   no   (stamped by the broker on append)
//	 16     1  magic = 2              no
//	 17     4  crc (CRC-32C)          -
//	 21     2  attributes             yes  (codec bits 0-2, timestampType 0x08, txn 0x10, control 0x20)
//	 23     4  lastOffsetDelta        yes
//	 27     8  baseTimestamp          yes
//	 35     8  maxTimestamp           yes
//	 43     8  producerId             yes
//	 51     2  producerEpoch          yes
//	 53     4  baseSequence           yes
//	 57     4  recordCount            yes
//	 61     …  records                yes
const (
	// BatchHeaderSize is the fixed v2 header length.
	BatchHeaderSize = 61
	// batchOverhead is the part of the header not counted in batchLength.
	batchOverhead = 12
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// BatchHeader is the decoded fixed header of a v2 record batch.
type BatchHeader struct {
	BaseOffset      Offset
	Length          int32 // batchLength: bytes after this field
	LeaderEpoch     Epoch
	Magic           int8
	CRC             uint32
	Attributes      int16
	LastOffsetDelta int32
	BaseTimestamp   int64
	MaxTimestamp    int64
	ProducerID      int64
	ProducerEpoch   int16
	BaseSequence    int32
	RecordCount     int32
}

// Size is the whole batch length in bytes.
func (h *BatchHeader) Size() int { return int(h.Length) + batchOverhead }

// LastOffset is the offset of the batch's last record.
func (h *BatchHeader) LastOffset() Offset { return h.BaseOffset + Offset(h.LastOffsetDelta) }

// LogAppendTime reports whether the batch's timestamps are broker-assigned.
func (h *BatchHeader) LogAppendTime() bool { return h.Attributes&0x08 != 0 }

// ParseBatchHeader decodes the fixed header. It checks only that the bytes
// are long enough; Validate checks the rest.
func ParseBatchHeader(b []byte) (BatchHeader, error) {
	if len(b) < BatchHeaderSize {
		return BatchHeader{}, fmt.Errorf("%w: %d bytes, header needs %d", ErrShortBatch, len(b), BatchHeaderSize)
	}
	be := binary.BigEndian
	return BatchHeader{
		BaseOffset:      Offset(be.Uint64(b[0:])),
		Length:          int32(be.Uint32(b[8:])),
		LeaderEpoch:     Epoch(be.Uint32(b[12:])),
		Magic:           int8(b[16]),
		CRC:             be.Uint32(b[17:]),
		Attributes:      int16(be.Uint16(b[21:])),
		LastOffsetDelta: int32(be.Uint32(b[23:])),
		BaseTimestamp:   int64(be.Uint64(b[27:])),
		MaxTimestamp:    int64(be.Uint64(b[35:])),
		ProducerID:      int64(be.Uint64(b[43:])),
		ProducerEpoch:   int16(be.Uint16(b[51:])),
		BaseSequence:    int32(be.Uint32(b[53:])),
		RecordCount:     int32(be.Uint32(b[57:])),
	}, nil
}

// ValidateBatch checks that b holds exactly one well-formed v2 batch, as a
// producer sends it, with a correct CRC, and returns its header. maxBytes
// bounds the batch size (0: no bound).
func ValidateBatch(b []byte, maxBytes int) (BatchHeader, error) {
	h, err := ParseBatchHeader(b)
	if err != nil {
		return h, err
	}
	if err := h.check(maxBytes); err != nil {
		return h, err
	}
	if err := h.checkProduced(); err != nil {
		return h, err
	}
	if h.Size() != len(b) {
		return h, fmt.Errorf("%w: batchLength says %d bytes, got %d", ErrInvalidBatch, h.Size(), len(b))
	}
	if got := crc32.Checksum(b[21:], castagnoli); got != h.CRC {
		return h, fmt.Errorf("%w: crc %08x, header says %08x", ErrCorruptBatch, got, h.CRC)
	}
	return h, nil
}

// check validates the header fields that do not need the body.
func (h *BatchHeader) check(maxBytes int) error {
	switch {
	case h.Magic != 2:
		return fmt.Errorf("%w: magic %d", ErrInvalidBatch, h.Magic)
	case h.Length < BatchHeaderSize-batchOverhead:
		return fmt.Errorf("%w: batchLength %d", ErrInvalidBatch, h.Length)
	case maxBytes > 0 && h.Size() > maxBytes:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrBatchTooLarge, h.Size(), maxBytes)
	case h.LastOffsetDelta < 0 || h.RecordCount < 0:
		return fmt.Errorf("%w: lastOffsetDelta %d recordCount %d", ErrInvalidBatch, h.LastOffsetDelta, h.RecordCount)
	}
	return nil
}

// checkProduced adds the rules for a batch fresh from a producer: at least
// one record, numbered 0..n-1. (Batches that compaction thinned out may
// legitimately break this, so recovery and reads do not apply it.)
func (h *BatchHeader) checkProduced() error {
	if h.RecordCount <= 0 || h.LastOffsetDelta != h.RecordCount-1 {
		return fmt.Errorf("%w: %d records but last offset delta %d", ErrInvalidBatch, h.RecordCount, h.LastOffsetDelta)
	}
	return nil
}

// stampBatch writes the broker-assigned base offset and leader epoch. Both
// lie outside the CRC, so the client's checksum stays valid.
func stampBatch(b []byte, base Offset, epoch Epoch) {
	binary.BigEndian.PutUint64(b[0:], uint64(base))
	binary.BigEndian.PutUint32(b[12:], uint32(epoch))
}

// setLogAppendTime rewrites the timestamps for a LogAppendTime topic and
// recomputes the CRC, which covers them.
func setLogAppendTime(b []byte, nowMs int64) {
	be := binary.BigEndian
	be.PutUint16(b[21:], be.Uint16(b[21:])|0x08)
	be.PutUint64(b[35:], uint64(nowMs))
	resealBatch(b)
}

// resealBatch makes a batch the broker rewrote whole again: its
// batchLength field says len(b), and its CRC covers the rewritten bytes
// (attributes to the end). The cleaner, recompression and LogAppendTime
// call it after changing a batch.
func resealBatch(b []byte) {
	be := binary.BigEndian
	be.PutUint32(b[8:], uint32(len(b)-batchOverhead))
	be.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
}
