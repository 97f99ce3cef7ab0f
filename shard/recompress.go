package shard

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Compression is a log's compression.type: the codec its batches are
// stored in. Kafka's default, producer, keeps whatever the producer sent;
// any other value has the broker recompress a batch whose codec differs
// (LogValidator does the same), so consumers and disks see one codec
// whatever the producers chose.
type Compression uint8

// Compression types, in Kafka's names. The zero value is producer.
const (
	CompressionProducer Compression = iota
	CompressionNone                 // Kafka's "uncompressed"
	CompressionGzip
	CompressionSnappy
	CompressionLZ4
	CompressionZstd
)

// ParseCompression reads Kafka's compression.type; anything it does not
// know is producer (the topic-config table refuses such values first).
func ParseCompression(s string) Compression {
	switch strings.TrimSpace(s) {
	case "uncompressed":
		return CompressionNone
	case "gzip":
		return CompressionGzip
	case "snappy":
		return CompressionSnappy
	case "lz4":
		return CompressionLZ4
	case "zstd":
		return CompressionZstd
	}
	return CompressionProducer
}

// codec is the batch attribute codec the type stores, -1 for producer.
func (c Compression) codec() int16 { return int16(c) - 1 }

// recompress returns batch with its records in the log's codec: batch
// itself when the log keeps the producer's codec, the batch already has
// the codec, or it is a control batch (Kafka never compresses those). The
// new batch keeps every header field but the length, the codec bits and
// the CRC, so offsets, producer sequences and timestamps are untouched.
// A batch the new codec makes larger than MaxBatchBytes is refused
// (MESSAGE_TOO_LARGE at the protocol edge), as Kafka refuses one it cannot store.
func (l *Log) recompress(batch []byte) ([]byte, error) {
	want := l.cfg.Compression.codec()
	if want < 0 {
		return batch, nil
	}
	h, err := ParseBatchHeader(batch)
	if err != nil {
		return nil, err
	}
	have := h.Attributes & 0x07
	if have == want || h.Attributes&attrControl != 0 {
		return batch, nil
	}
	raw, err := decompressRecords(have, batch[BatchHeaderSize:h.Size()], cleanDecompressMax)
	if err != nil {
		return nil, fmt.Errorf("%w: recompressing to codec %d: %v", ErrCorruptRecords, want, err)
	}
	body, err := compressRecords(want, raw)
	if err != nil {
		return nil, err
	}
	nb := make([]byte, BatchHeaderSize+len(body))
	copy(nb, batch[:BatchHeaderSize])
	copy(nb[BatchHeaderSize:], body)
	binary.BigEndian.PutUint16(nb[21:], uint16(h.Attributes&^0x07|want))
	resealBatch(nb)
	if l.cfg.MaxBatchBytes > 0 && len(nb) > l.cfg.MaxBatchBytes {
		return nil, fmt.Errorf("%w: %d bytes once recompressed to the topic's compression.type, limit %d", ErrBatchTooLarge, len(nb), l.cfg.MaxBatchBytes)
	}
	return nb, nil
}
