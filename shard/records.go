package shard

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// The records after a v2 batch header, uncompressed or as the input of the
// codec named by attributes bits 0-2. Varints are zigzag (Kafka's
// ByteUtils), at most 5 bytes for int32 and 10 for int64.
//
//	record:
//	  length          varint   bytes that follow, up to the next record
//	  attributes      int8     unused
//	  timestampDelta  varlong
//	  offsetDelta     varint   i for the i-th record of a produced batch
//	  keyLength       varint   -1: null key
//	  key             keyLength bytes
//	  valueLength     varint   -1: null value
//	  value           valueLength bytes
//	  headerCount     varint   >= 0
//	  headers         headerCount × (keyLength varint >= 0, key,
//	                                 valueLength varint >= -1, value)
//
// A consumer decodes exactly this, so a batch whose CRC is right but whose
// records do not parse would stop every consumer at its offset for good.
// ValidateRecords walks the records before a batch is stored; the walk reads
// each byte once and allocates nothing per record.

// Errors of the record walk. The protocol layer maps them to Kafka codes.
var (
	// ErrCorruptRecords: the records do not parse as the header says
	// (lengths, varints, counts, trailing bytes, a damaged compressed
	// stream).
	ErrCorruptRecords = errors.New("shard: malformed records in batch")
	// ErrRecordsTooLarge: the records decompress past the caller's bound.
	ErrRecordsTooLarge = errors.New("shard: records decompress past the limit")
)

// Compression codecs, attributes bits 0-2.
const (
	codecNone   = 0
	codecGzip   = 1
	codecSnappy = 2
	codecLZ4    = 3
	codecZstd   = 4
)

// zstdMaxWindow bounds the history a zstd frame may ask the decoder to keep.
// The zstd format recommends every decoder support windows up to 8 MiB, and
// Kafka producers' levels stay within it; 32 MiB leaves room for higher
// levels while a hostile frame cannot make a pooled decoder hold the
// library's default of 512 MiB.
const zstdMaxWindow = 32 << 20

// ValidateRecords is ValidateBatch plus a walk of every record, as a
// producer's batch must pass before it is stored: the records parse exactly
// to the end of the batch (decompressed first, for a compressed batch),
// there are recordCount of them, and their offset deltas run 0..n-1.
// maxDecompressed bounds the decompressed records in bytes (0: no bound),
// which is what keeps a decompression bomb from costing more than walking
// that many bytes; the walk never holds the whole decompressed output,
// except for raw snappy, whose format has no streaming form.
func ValidateRecords(b []byte, maxBytes, maxDecompressed int) (BatchHeader, error) {
	h, err := ValidateBatch(b, maxBytes)
	if err != nil {
		return h, err
	}
	limit := int64(maxDecompressed)
	if limit <= 0 {
		limit = 1 << 62
	}
	body := b[BatchHeaderSize:]
	codec := h.Attributes & 0x07
	if codec == codecNone {
		if int64(len(body)) > limit {
			return h, fmt.Errorf("%w: %d bytes of records, limit %d", ErrRecordsTooLarge, len(body), limit)
		}
		w := recordWalker{buf: body}
		return h, w.walk(h.RecordCount)
	}
	inf := inflaters.Get().(*inflater)
	defer inflaters.Put(inf)
	return h, inf.walk(codec, body, h.RecordCount, limit)
}

// recordWalker reads record bytes from buf, refilled from src when src is
// set (a decompressor) and buf runs out. off is the position of buf[0] in
// the record bytes, so off+p is how far the walk has read.
type recordWalker struct {
	buf   []byte
	p     int
	off   int64
	src   io.Reader
	win   []byte // refill buffer for src
	limit int64  // most bytes src may yield
	err   error  // why the walk stopped early
	// facts, when set, collects what the append policies need (keys and
	// timestamps, appendpolicy.go); nil keeps the walk a pure check.
	facts *recordFacts
}

func (w *recordWalker) pos() int64 { return w.off + int64(w.p) }

// refill replaces the consumed buf with the next bytes of src.
func (w *recordWalker) refill() bool {
	if w.err != nil {
		return false
	}
	if w.src == nil {
		w.err = io.ErrUnexpectedEOF
		return false
	}
	w.off += int64(len(w.buf))
	w.buf, w.p = w.win[:0], 0
	// A reader that keeps returning nothing and no error would spin the
	// core; bufio gives up the same way.
	for empty := 0; ; empty++ {
		if empty == 100 {
			w.err = fmt.Errorf("%w: decompressing: %v", ErrCorruptRecords, io.ErrNoProgress)
			return false
		}
		n, err := w.src.Read(w.win)
		if n > 0 {
			w.buf = w.win[:n]
			if w.off+int64(n) > w.limit {
				w.err = fmt.Errorf("%w: more than %d bytes", ErrRecordsTooLarge, w.limit)
				return false
			}
			return true
		}
		switch {
		case err == io.EOF:
			w.err = io.ErrUnexpectedEOF
			return false
		case errors.Is(err, ErrRecordsTooLarge):
			w.err = err
			return false
		case err != nil:
			w.err = fmt.Errorf("%w: decompressing: %v", ErrCorruptRecords, err)
			return false
		}
	}
}

func (w *recordWalker) byte() (byte, bool) {
	if w.p < len(w.buf) {
		c := w.buf[w.p]
		w.p++
		return c, true
	}
	if !w.refill() {
		return 0, false
	}
	w.p = 1
	return w.buf[0], true
}

// skip consumes n bytes.
func (w *recordWalker) skip(n int64) bool {
	for {
		avail := int64(len(w.buf) - w.p)
		if n <= avail {
			w.p += int(n)
			return true
		}
		n -= avail
		w.p = len(w.buf)
		if !w.refill() {
			return false
		}
	}
}

// varint reads a zigzag int32 as kbin.Varint does: at most 5 bytes, the
// fifth no more than 4 bits.
func (w *recordWalker) varint() (int32, bool) {
	var ux uint32
	for i := 0; i < 5; i++ {
		c, ok := w.byte()
		if !ok || i == 4 && c > 0x0f {
			return 0, false
		}
		ux |= uint32(c&0x7f) << (7 * i)
		if c < 0x80 {
			return int32(ux>>1) ^ -int32(ux&1), true
		}
	}
	return 0, false
}

// varlong skips a zigzag int64: at most 10 bytes, the tenth 0 or 1.
func (w *recordWalker) varlong() bool {
	for i := 0; i < 10; i++ {
		c, ok := w.byte()
		if !ok || i == 9 && c > 0x01 {
			return false
		}
		if c < 0x80 {
			return true
		}
	}
	return false
}

// bytesField skips a varint-prefixed field of at least minLen (-1: may be
// null) that must end by end.
func (w *recordWalker) bytesField(end int64, minLen int32) bool {
	n, ok := w.varint()
	if !ok || n < minLen || w.pos() > end {
		return false
	}
	return n <= 0 || int64(n) <= end-w.pos() && w.skip(int64(n))
}

// walk checks that the record bytes hold exactly count records.
func (w *recordWalker) walk(count int32) error {
	for i := int32(0); i < count; i++ {
		if err := w.record(i); err != nil {
			return err
		}
	}
	if w.p < len(w.buf) || w.src != nil && w.refill() {
		return fmt.Errorf("%w: bytes after record %d of %d", ErrCorruptRecords, count-1, count)
	}
	if w.err != nil && w.err != io.ErrUnexpectedEOF {
		return w.err
	}
	return nil
}

// record checks the i-th record. As in Kafka, a record must parse before
// its offset delta is looked at, so a record that does not parse is
// corrupt whatever its delta says.
func (w *recordWalker) record(i int32) error {
	at := w.pos()
	length, ok := w.varint()
	if ok && length >= 0 {
		end := w.pos() + int64(length)
		if w.facts != nil {
			return w.factRecord(i, end)
		}
		ok = w.skip(1) && w.varlong() && w.pos() <= end
		var delta int32
		if ok {
			delta, ok = w.varint()
		}
		ok = ok && w.bytesField(end, -1) && w.bytesField(end, -1) // key, value
		var headers int32
		if ok {
			headers, ok = w.varint()
			ok = ok && headers >= 0
		}
		for j := int32(0); ok && j < headers; j++ {
			ok = w.bytesField(end, 0) && w.bytesField(end, -1) && w.pos() <= end
		}
		if ok && w.pos() == end {
			if delta != i {
				return fmt.Errorf("%w: record %d has offset delta %d", ErrInvalidBatch, i, delta)
			}
			return nil
		}
	}
	if w.err != nil && w.err != io.ErrUnexpectedEOF {
		return w.err
	}
	return fmt.Errorf("%w: record %d (at byte %d of the records) does not parse", ErrCorruptRecords, i, at)
}

// inflater holds one walk's decompressors and buffers. They are pooled with
// a sync.Pool: its fast path is a per-P (so per-core) slot taken without a
// lock, the reactor loops are pinned one per core so in practice each core
// reuses its own, and the GC may drop idle ones. A decompressor is made the
// first time a codec is seen.
type inflater struct {
	src  bytes.Reader
	win  []byte
	gz   gzip.Reader
	zs   *zstd.Decoder
	lz   *lz4.Reader
	xs   xerialReader
	snap []byte
	// facts, when set, makes walk collect them (appendpolicy.go).
	facts *recordFacts
}

// inflaterWindow is the refill buffer: large enough that the per-Read cost
// of a decompressor is small next to the bytes it yields.
const inflaterWindow = 32 << 10

// snapKeepMax bounds a raw snappy output buffer kept for reuse; larger ones
// go to the GC, so one huge batch does not pin its size per core.
const snapKeepMax = 1 << 20

var inflaters = sync.Pool{New: func() any { return &inflater{win: make([]byte, inflaterWindow)} }}

func (f *inflater) walk(codec int16, body []byte, count int32, limit int64) error {
	f.src.Reset(body)
	defer f.src.Reset(nil)
	w := recordWalker{win: f.win, limit: limit, facts: f.facts}
	var err error
	switch codec {
	case codecGzip:
		err = f.gz.Reset(&f.src)
		w.src = &f.gz
	case codecSnappy:
		if isXerial(body) {
			f.xs.reset(body, limit)
			w.src = &f.xs
			break
		}
		var n int
		if n, err = snappy.DecodedLen(body); err == nil && int64(n) > limit {
			return fmt.Errorf("%w: snappy block of %d bytes, limit %d", ErrRecordsTooLarge, n, limit)
		}
		if err == nil {
			w.buf, err = snappy.DecodeStrict(f.snap[:cap(f.snap)], body)
			if cap(w.buf) <= snapKeepMax && cap(w.buf) > cap(f.snap) {
				f.snap = w.buf[:0]
			}
		}
	case codecLZ4:
		if f.lz == nil {
			f.lz = lz4.NewReader(nil)
		}
		f.lz.Reset(&f.src)
		w.src = f.lz
	case codecZstd:
		if f.zs == nil {
			f.zs, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxWindow(zstdMaxWindow))
			if err != nil {
				panic(err) // constant options
			}
		}
		err = f.zs.Reset(&f.src)
		w.src = f.zs
		defer f.zs.Reset(nil)
	default:
		return fmt.Errorf("%w: unknown compression codec %d", ErrInvalidBatch, codec)
	}
	if err != nil {
		return fmt.Errorf("%w: decompressing: %v", ErrCorruptRecords, err)
	}
	return w.walk(count)
}

// Xerial snappy framing, which the Java client writes: a 16-byte header,
// then blocks of (int32 compressed length, raw snappy block).
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const xerialHeaderSize = 16

func isXerial(b []byte) bool {
	return len(b) >= xerialHeaderSize && bytes.Equal(b[:len(xerialMagic)], xerialMagic)
}

// xerialReader yields the decoded blocks of a xerial stream one at a time.
type xerialReader struct {
	in    []byte
	out   []byte // decoded, not yet read
	buf   []byte
	total int64
	limit int64
}

func (x *xerialReader) reset(b []byte, limit int64) {
	x.in, x.out, x.total, x.limit = b[xerialHeaderSize:], nil, 0, limit
}

func (x *xerialReader) Read(p []byte) (int, error) {
	for len(x.out) == 0 {
		if len(x.in) == 0 {
			return 0, io.EOF
		}
		if len(x.in) < 4 {
			return 0, errors.New("xerial: truncated block length")
		}
		n := int64(uint32(x.in[0])<<24 | uint32(x.in[1])<<16 | uint32(x.in[2])<<8 | uint32(x.in[3]))
		if n > int64(len(x.in)-4) {
			return 0, errors.New("xerial: block longer than the stream")
		}
		block := x.in[4 : 4+n]
		x.in = x.in[4+n:]
		d, err := snappy.DecodedLen(block)
		if err != nil {
			return 0, err
		}
		if x.total += int64(d); x.total > x.limit {
			return 0, fmt.Errorf("%w: more than %d bytes", ErrRecordsTooLarge, x.limit)
		}
		out, err := snappy.DecodeStrict(x.buf[:cap(x.buf)], block)
		if err != nil {
			return 0, err
		}
		if cap(out) <= snapKeepMax {
			x.buf = out[:0]
		}
		x.out = out
	}
	n := copy(p, x.out)
	x.out = x.out[n:]
	return n, nil
}
