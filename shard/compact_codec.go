package shard

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// The cleaner needs whole record sets, decompressed, to choose survivors,
// and compresses the survivors again with the batch's own codec. Unlike
// ValidateRecords' streaming walk, it holds one batch's records at a time;
// a batch was at most MaxBatchBytes when produced and decompresses to at
// most cleanDecompressMax (below), or the batch is kept as it is.

// lz4 readers and writers hold megabytes of block buffers: pooled, so a
// round of many small batches does not allocate them per batch.
var (
	lz4Readers = sync.Pool{New: func() any { return lz4.NewReader(nil) }}
	lz4Writers = sync.Pool{New: func() any {
		// 64 KiB blocks, as the Java client writes: a reader allocates
		// the frame's block size, and the default (4 MiB) per batch
		// dominates the cost of a small batch.
		w := lz4.NewWriter(nil)
		if err := w.Apply(lz4.BlockSizeOption(lz4.Block64Kb)); err != nil {
			panic(err) // constant option
		}
		return w
	}}
)

var (
	zstdOnce sync.Once
	zstdDec  *zstd.Decoder
	zstdEnc  *zstd.Encoder
)

func zstdCodecs() (*zstd.Decoder, *zstd.Encoder) {
	zstdOnce.Do(func() {
		var err error
		// DecodeAll and EncodeAll are safe for concurrent use, which is
		// what lets every core share these two.
		zstdDec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			panic(err) // constant options
		}
		// A batch is small: a small window keeps both sides' memory
		// (and the decoder's allocation per batch) small.
		zstdEnc, err = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(1<<20))
		if err != nil {
			panic(err)
		}
	})
	return zstdDec, zstdEnc
}

// decompressRecords returns the record bytes of a batch body compressed
// with codec, refusing more than limit bytes.
func decompressRecords(codec int16, body []byte, limit int64) ([]byte, error) {
	var r io.Reader
	switch codec {
	case codecNone:
		return body, nil
	case codecGzip:
		g, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %v", ErrCorruptRecords, err)
		}
		r = g
	case codecSnappy:
		if isXerial(body) {
			x := &xerialReader{}
			x.reset(body, limit)
			r = x
			break
		}
		n, err := snappy.DecodedLen(body)
		if err != nil {
			return nil, fmt.Errorf("%w: snappy: %v", ErrCorruptRecords, err)
		}
		if int64(n) > limit {
			return nil, fmt.Errorf("%w: snappy block of %d bytes", ErrRecordsTooLarge, n)
		}
		out, err := snappy.Decode(nil, body)
		if err != nil {
			return nil, fmt.Errorf("%w: snappy: %v", ErrCorruptRecords, err)
		}
		return out, nil
	case codecLZ4:
		lr := lz4Readers.Get().(*lz4.Reader)
		defer lz4Readers.Put(lr)
		lr.Reset(bytes.NewReader(body))
		r = lr
	case codecZstd:
		dec, _ := zstdCodecs()
		out, err := dec.DecodeAll(body, nil)
		if err != nil {
			return nil, fmt.Errorf("%w: zstd: %v", ErrCorruptRecords, err)
		}
		if int64(len(out)) > limit {
			return nil, fmt.Errorf("%w: %d bytes", ErrRecordsTooLarge, len(out))
		}
		return out, nil
	default:
		return nil, fmt.Errorf("%w: unknown compression codec %d", ErrInvalidBatch, codec)
	}
	out, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: decompressing: %v", ErrCorruptRecords, err)
	}
	if int64(len(out)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrRecordsTooLarge, limit)
	}
	return out, nil
}

// xerialBlockBytes is the uncompressed size of one block of the xerial
// snappy framing, as the Java client writes it.
const xerialBlockBytes = 32 << 10

// compressRecords compresses record bytes with codec, in the framing the
// Java client writes (xerial for snappy, LZ4 frames), which every client
// reads.
func compressRecords(codec int16, raw []byte) ([]byte, error) {
	var buf bytes.Buffer
	switch codec {
	case codecNone:
		return raw, nil
	case codecGzip:
		w := gzip.NewWriter(&buf)
		if _, err := w.Write(raw); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
	case codecSnappy:
		buf.Write(xerialMagic)
		buf.Write([]byte{0, 0, 0, 1, 0, 0, 0, 1}) // version 1, compatible with 1
		for len(raw) > 0 {
			n := min(len(raw), xerialBlockBytes)
			block := snappy.Encode(nil, raw[:n])
			buf.Write(binary.BigEndian.AppendUint32(nil, uint32(len(block))))
			buf.Write(block)
			raw = raw[n:]
		}
	case codecLZ4:
		w := lz4Writers.Get().(*lz4.Writer)
		defer lz4Writers.Put(w)
		w.Reset(&buf)
		if _, err := w.Write(raw); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
	case codecZstd:
		_, enc := zstdCodecs()
		return enc.EncodeAll(raw, nil), nil
	default:
		return nil, fmt.Errorf("%w: unknown compression codec %d", ErrInvalidBatch, codec)
	}
	return buf.Bytes(), nil
}

// cleanRecord is one record of a batch as the cleaner sees it.
type cleanRecord struct {
	attrs       byte
	offsetDelta int32
	tsDelta     int64
	key         []byte
	nullKey     bool
	nullValue   bool
	raw         []byte // the whole record, length prefix included
	tail        []byte // from offsetDelta to the end of the record
}

// parseRecords splits decompressed record bytes into count records.
func parseRecords(b []byte, count int32) ([]cleanRecord, error) {
	recs := make([]cleanRecord, 0, count)
	for i := int32(0); i < count; i++ {
		start := b
		length, n := binary.Varint(b)
		if n <= 0 || length < 0 || int64(len(b)-n) < length {
			return nil, fmt.Errorf("%w: record %d length", ErrCorruptRecords, i)
		}
		body := b[n : n+int(length)]
		rest := b[n+int(length):]
		r := cleanRecord{raw: start[:n+int(length)]}
		p := body
		if len(p) < 1 {
			return nil, fmt.Errorf("%w: record %d empty", ErrCorruptRecords, i)
		}
		r.attrs, p = p[0], p[1:]
		ts, m := binary.Varint(p)
		if m <= 0 {
			return nil, fmt.Errorf("%w: record %d timestamp", ErrCorruptRecords, i)
		}
		r.tsDelta, p = ts, p[m:]
		r.tail = p
		od, m := binary.Varint(p)
		if m <= 0 {
			return nil, fmt.Errorf("%w: record %d offset delta", ErrCorruptRecords, i)
		}
		r.offsetDelta, p = int32(od), p[m:]
		kl, m := binary.Varint(p)
		if m <= 0 || kl < -1 || int64(len(p)-m) < kl {
			return nil, fmt.Errorf("%w: record %d key", ErrCorruptRecords, i)
		}
		p = p[m:]
		if kl < 0 {
			r.nullKey = true
		} else {
			r.key, p = p[:kl], p[kl:]
		}
		vl, m := binary.Varint(p)
		if m <= 0 || vl < -1 {
			return nil, fmt.Errorf("%w: record %d value", ErrCorruptRecords, i)
		}
		r.nullValue = vl < 0
		recs = append(recs, r)
		b = rest
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last record", ErrCorruptRecords, len(b))
	}
	return recs, nil
}

// appendCleanRecord appends r with its timestamp delta moved from base
// oldBase to newBase (the record's timestamp is unchanged).
func appendCleanRecord(out []byte, r *cleanRecord, oldBase, newBase int64) []byte {
	if oldBase == newBase {
		return append(out, r.raw...)
	}
	var hdr [1 + binary.MaxVarintLen64]byte
	hdr[0] = r.attrs
	n := 1 + binary.PutVarint(hdr[1:], oldBase+r.tsDelta-newBase)
	out = binary.AppendVarint(out, int64(n+len(r.tail)))
	out = append(out, hdr[:n]...)
	return append(out, r.tail...)
}
