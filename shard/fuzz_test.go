package shard

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Fuzz targets for the two decoders that read untrusted bytes: the batch
// validator (bytes from clients) and the recovery scanner (bytes from a
// crashed disk). Each is checked against a deliberately naive version.
// The seed corpus lives in testdata/fuzz/<Name>/; regenerate it with
// STRAND_WRITE_FUZZ_SEEDS=1 go test -ldflags=-checklinkname=0 -run TestWriteFuzzSeeds ./shard/.
//
//	go test -ldflags=-checklinkname=0 -run '^$' -fuzz FuzzValidateBatch -fuzztime 60s ./shard/
//	go test -ldflags=-checklinkname=0 -run '^$' -fuzz FuzzScan -fuzztime 60s ./shard/

// naiveValidate decodes a batch field by field with encoding/binary.Read,
// independently of ParseBatchHeader and check. produced adds the rule for
// batches fresh from a producer (records numbered 0..n-1), which stored
// batches thinned by compaction need not follow.
func naiveValidate(b []byte, maxBytes int, produced bool) (BatchHeader, error) {
	var raw struct {
		BaseOffset      int64
		Length          int32
		LeaderEpoch     int32
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
	if err := binary.Read(bytes.NewReader(b), binary.BigEndian, &raw); err != nil {
		return BatchHeader{}, ErrShortBatch
	}
	h := BatchHeader{Offset(raw.BaseOffset), raw.Length, Epoch(raw.LeaderEpoch), raw.Magic, raw.CRC, raw.Attributes,
		raw.LastOffsetDelta, raw.BaseTimestamp, raw.MaxTimestamp, raw.ProducerID, raw.ProducerEpoch, raw.BaseSequence, raw.RecordCount}
	size := int64(raw.Length) + 12
	switch {
	case raw.Magic != 2, raw.Length < 49:
		return h, ErrInvalidBatch
	case maxBytes > 0 && size > int64(maxBytes):
		return h, ErrBatchTooLarge
	case raw.LastOffsetDelta < 0, raw.RecordCount < 0, size != int64(len(b)):
		return h, ErrInvalidBatch
	case produced && (raw.RecordCount <= 0 || raw.LastOffsetDelta != raw.RecordCount-1):
		return h, ErrInvalidBatch
	case crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)) != raw.CRC:
		return h, ErrCorruptBatch
	}
	return h, nil
}

// FuzzValidateBatch takes bytes and a knob byte. With knob bit 0 clear the
// bytes are a whole batch, checked against naiveValidate (header, counts,
// CRC) and naiveRecords. With bit 0 set they are the records of a produced
// batch that the test wraps itself, so the CRC is right and the fuzzer's
// mutations reach the record walk: bits 1-3 pick the codec (5: xerial
// snappy, 6-7: unknown codecs), bits 4-6 the record count (0: as many as
// the records' length prefixes cut out), and bit 7 uses the bytes as the
// compressed stream itself, which fuzzes the decompressors.
func FuzzValidateBatch(f *testing.F) {
	for _, s := range fuzzSeedsValidate() {
		f.Add(s, uint8(0))
	}
	for _, s := range fuzzSeedsRecords(f) {
		f.Add(s.b, s.knobs)
	}
	f.Fuzz(func(t *testing.T, in []byte, knobs uint8) {
		b := in
		if knobs&1 != 0 {
			b = fuzzProduced(t, in, knobs)
		}
		const limit = 1 << 20
		h, err := ValidateBatch(b, 0)
		_, rerr := ValidateRecords(b, 0, limit)
		nh, nerr := naiveValidate(b, 0, true)
		if (err == nil) != (nerr == nil) || err != nil && !errors.Is(err, nerr) {
			t.Fatalf("ValidateBatch: %v, naive: %v", err, nerr)
		}
		if err != nil {
			if rerr == nil || !errors.Is(rerr, nerr) {
				t.Fatalf("ValidateRecords: %v, ValidateBatch: %v", rerr, err)
			}
			return
		}
		if h != nh {
			t.Fatalf("header %+v, naive %+v", h, nh)
		}
		nrerr, exact := naiveRecords(h.Attributes, b[BatchHeaderSize:], h.RecordCount, limit)
		switch {
		case rerr == nil && nrerr != nil:
			t.Fatalf("ValidateRecords accepted records naive refuses: %v", nrerr)
		case rerr != nil && nrerr == nil && (knobs&0x81 == 1 || h.Attributes&7 == 0):
			t.Fatalf("ValidateRecords refused records naive accepts: %v", rerr)
		case exact && rerr != nil && !errors.Is(rerr, nrerr):
			t.Fatalf("ValidateRecords: %v, naive: %v", rerr, nrerr)
		}
		if h.Size() != len(b) || h.LastOffset() < h.BaseOffset || h.RecordCount < 0 {
			t.Fatalf("accepted an inconsistent batch: %+v (%d bytes)", h, len(b))
		}
		if _, err := ValidateBatch(b, len(b)-1); !errors.Is(err, ErrBatchTooLarge) {
			t.Fatalf("limit one byte short: %v", err)
		}
		if _, err := ValidateBatch(b[:len(b)-1], 0); err == nil {
			t.Fatal("accepted the batch minus its last byte")
		}
		// The broker's stamping keeps the batch valid; it touches only
		// fields outside the CRC.
		c := append([]byte(nil), b...)
		stampBatch(c, h.BaseOffset+12345, h.LeaderEpoch+1)
		if h2, err := ValidateBatch(c, 0); err != nil || h2.BaseOffset != h.BaseOffset+12345 || h2.CRC != h.CRC {
			t.Fatalf("stamped batch: %+v %v", h2, err)
		}
		if _, err := ValidateRecords(c, 0, limit); (err == nil) != (rerr == nil) {
			t.Fatalf("stamping changed the records' verdict: %v, then %v", rerr, err)
		}
		// Any one flipped byte under the CRC is caught.
		i := 21 + int(h.CRC)%(len(b)-21)
		c[i] ^= 0x5a
		if _, err := ValidateBatch(c, 0); !errors.Is(err, ErrCorruptBatch) && !errors.Is(err, ErrInvalidBatch) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	})
}

// fuzzProduced wraps in as the records of a produced batch (see
// FuzzValidateBatch for the knobs).
func fuzzProduced(t testing.TB, in []byte, knobs uint8) []byte {
	codec, count := int(knobs>>1)&7, int32(knobs>>4)&7
	if count == 0 {
		count = max(1, countRecords(in))
	}
	body := in
	switch {
	case knobs&0x80 != 0:
	case codec == 5:
		body, codec = xerial(in, 1+len(in)/3), codecSnappy
	case codec <= codecZstd:
		body = compress(t, codec, in)
	}
	return producedBatch(codec, int(count), body)
}

// countRecords counts the records that length prefixes cut out of recs.
func countRecords(recs []byte) int32 {
	n := int32(0)
	for len(recs) > 0 && n < 1<<10 {
		l, k := naiveVarint(recs)
		if k <= 0 || l < 0 || int(l) > len(recs)-k {
			break
		}
		recs, n = recs[k+int(l):], n+1
	}
	return n
}

// naiveVarint decodes a zigzag int32 with encoding/binary: a valid one has
// at most 5 bytes and fits in 32 bits.
func naiveVarint(b []byte) (int32, int) {
	u, n := binary.Uvarint(b)
	if n <= 0 || n > 5 || u > math.MaxUint32 {
		return 0, -1
	}
	return int32(uint32(u)>>1) ^ -int32(uint32(u)&1), n
}

// naiveRecords is the deliberately plain record check: inflate everything
// into memory, cut each record out by its length, read its fields from the
// cut slice. exact reports whether the error class must match
// ValidateRecords' (which streams, so it may meet a damaged stream or the
// limit later or earlier than this does).
func naiveRecords(attrs int16, body []byte, count int32, limit int) (err error, exact bool) {
	recs, err := naiveInflate(int(attrs&7), body, limit)
	if err != nil {
		return err, errors.Is(err, ErrInvalidBatch)
	}
	for i := range count {
		l, k := naiveVarint(recs)
		if k <= 0 || l < 0 || int(l) > len(recs)-k {
			return ErrCorruptRecords, true
		}
		rec := recs[k : k+int(l)]
		recs = recs[k+int(l):]
		if err := naiveRecord(rec, i); err != nil {
			return err, true
		}
	}
	if len(recs) != 0 {
		return ErrCorruptRecords, true
	}
	return nil, true
}

func naiveRecord(rec []byte, i int32) error {
	if len(rec) < 1 {
		return ErrCorruptRecords
	}
	rec = rec[1:] // attributes
	if _, n := binary.Varint(rec); n <= 0 {
		return ErrCorruptRecords // timestamp delta: binary.Varint refuses past 64 bits
	} else {
		rec = rec[n:]
	}
	delta, n := naiveVarint(rec)
	if n <= 0 {
		return ErrCorruptRecords
	}
	rec = rec[n:]
	field := func(minLen int32) bool {
		l, n := naiveVarint(rec)
		if n <= 0 || l < minLen || l > 0 && int(l) > len(rec)-n {
			return false
		}
		rec = rec[n+max(0, int(l)):]
		return true
	}
	if !field(-1) || !field(-1) {
		return ErrCorruptRecords
	}
	headers, n := naiveVarint(rec)
	if n <= 0 || headers < 0 {
		return ErrCorruptRecords
	}
	rec = rec[n:]
	for range headers {
		if !field(0) || !field(-1) {
			return ErrCorruptRecords
		}
	}
	if len(rec) != 0 {
		return ErrCorruptRecords
	}
	if delta != i {
		return ErrInvalidBatch
	}
	return nil
}

var naiveZstd, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(zstdMaxWindow))

// naiveInflate decompresses body whole with each library's plainest API.
func naiveInflate(codec int, body []byte, limit int) ([]byte, error) {
	var r io.Reader
	switch codec {
	case codecNone:
		if len(body) > limit {
			return nil, ErrRecordsTooLarge
		}
		return body, nil
	case codecGzip:
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, ErrCorruptRecords
		}
		r = zr
	case codecSnappy:
		if !isXerial(body) {
			if n, err := snappy.DecodedLen(body); err == nil && n > limit {
				return nil, ErrRecordsTooLarge
			}
			out, err := snappy.DecodeStrict(nil, body)
			if err != nil {
				return nil, ErrCorruptRecords
			}
			return out, nil
		}
		var out []byte
		for in := body[xerialHeaderSize:]; len(in) > 0; {
			if len(in) < 4 || int(binary.BigEndian.Uint32(in)) > len(in)-4 {
				return nil, ErrCorruptRecords
			}
			n := int(binary.BigEndian.Uint32(in))
			if d, err := snappy.DecodedLen(in[4 : 4+n]); err == nil && len(out)+d > limit {
				return nil, ErrRecordsTooLarge
			}
			block, err := snappy.DecodeStrict(nil, in[4:4+n])
			if err != nil {
				return nil, ErrCorruptRecords
			}
			out, in = append(out, block...), in[4+n:]
		}
		return out, nil
	case codecLZ4:
		r = lz4.NewReader(bytes.NewReader(body))
	case codecZstd:
		if err := naiveZstd.Reset(bytes.NewReader(body)); err != nil {
			return nil, ErrCorruptRecords
		}
		r = naiveZstd
	default:
		return nil, ErrInvalidBatch
	}
	out, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	switch {
	case len(out) > limit:
		return nil, ErrRecordsTooLarge
	case err != nil:
		return nil, ErrCorruptRecords
	}
	return out, nil
}

// scanResult is what a scan concludes.
type scanResult struct {
	pos     []int64
	headers []BatchHeader
	end     int64
	stop    stopReason
}

// naiveScan walks data with ValidateBatch, one batch at a time.
func naiveScan(data []byte, next Offset, maxBatch int, maxEpoch Epoch) scanResult {
	var r scanResult
	p := 0
	var lastEpoch Epoch
	for {
		rest := data[p:]
		r.end = int64(p)
		if len(rest) < BatchHeaderSize {
			if allZero(rest) {
				r.stop = stopZeros
			} else {
				r.stop = stopTorn
			}
			return r
		}
		if bytes.Equal(rest[:BatchHeaderSize], make([]byte, BatchHeaderSize)) {
			r.stop = stopZeros
			return r
		}
		h, err := naiveValidate(rest[:BatchHeaderSize], maxBatch, false)
		if errors.Is(err, ErrInvalidBatch) && h.Magic == 2 && h.Length >= 49 && h.LastOffsetDelta >= 0 && h.RecordCount >= 0 {
			err = nil // only the size disagrees: the header itself is fine
		}
		if errors.Is(err, ErrCorruptBatch) {
			err = nil
		}
		if err != nil || h.BaseOffset < 0 || h.BaseOffset+Offset(h.LastOffsetDelta) < h.BaseOffset {
			r.stop = stopCorrupt
			return r
		}
		if next >= 0 && h.BaseOffset != next {
			r.stop = stopDiscontig
			return r
		}
		if maxEpoch >= 0 && (h.LeaderEpoch < lastEpoch || h.LeaderEpoch > maxEpoch) {
			r.stop = stopCorrupt
			return r
		}
		size := int(h.Length) + 12
		if size > len(rest) {
			r.stop = stopTorn
			return r
		}
		if _, err := naiveValidate(rest[:size], maxBatch, false); err != nil {
			r.stop = stopCorrupt
			return r
		}
		r.pos = append(r.pos, int64(p))
		r.headers = append(r.headers, h)
		next = h.LastOffset() + 1
		lastEpoch = h.LeaderEpoch
		p += size
	}
}

// chunkedScan runs scanState the way Log.scanFile does: aligned windows of
// a fixed size, atEOF on the window that reaches the end of the data.
func chunkedScan(t *testing.T, data []byte, next Offset, maxBatch, window, align int, maxEpoch Epoch) scanResult {
	var r scanResult
	st := &scanState{next: next, maxBatch: maxBatch, checkEpochs: maxEpoch >= 0, maxEpoch: maxEpoch, onBatch: func(h *BatchHeader, p int64) {
		r.pos = append(r.pos, p)
		r.headers = append(r.headers, *h)
	}}
	for rounds := 0; st.stop == stopNone; rounds++ {
		from := st.pos &^ int64(align-1)
		to := min(from+int64(window), int64(len(data)))
		before := st.pos
		st.scan(data[from:to], from, to == int64(len(data)))
		if st.stop == stopNone && st.pos == before {
			t.Fatalf("scan made no progress at %d with a %d-byte window", st.pos, window)
		}
		if rounds > len(data)+2 {
			t.Fatal("scan does not terminate")
		}
	}
	r.end, r.stop = st.pos, st.stop
	if st.batches != len(r.pos) {
		t.Fatalf("scan counted %d batches, reported %d", st.batches, len(r.pos))
	}
	return r
}

func FuzzScan(f *testing.F) {
	for _, s := range fuzzSeedsScan() {
		f.Add(s, uint16(0))
		f.Add(s, uint16(0x4|3<<8)) // epochs checked; the seeds' epoch 3 is the newest known
		f.Add(s, uint16(0x4|2<<8)) // epochs checked; 3 is newer than any known
	}
	f.Fuzz(func(t *testing.T, data []byte, knobs uint16) {
		const maxBatch = 16 << 10
		align := 1 << (knobs % 13)                  // 1 .. 4096
		window := maxBatch + 4096 + int(knobs>>4)*7 // large enough for a whole batch past any aligned start
		next := Offset(-1)
		if knobs&0x8 != 0 && len(data) >= 8 {
			next = Offset(binary.BigEndian.Uint64(data)) // what recovery passes: the expected first offset
		}
		maxEpoch := Epoch(-1) // unchecked, as in tests that build files by hand
		if knobs&0x4 != 0 {
			maxEpoch = Epoch(knobs>>8) % 8 // what the log passes: its newest epoch
		}
		want := naiveScan(data, next, maxBatch, maxEpoch)
		got := chunkedScan(t, data, next, maxBatch, window, align, maxEpoch)
		if got.stop != want.stop || got.end != want.end || len(got.pos) != len(want.pos) {
			t.Fatalf("scan: %s at %d after %d batches; naive: %s at %d after %d", got.stop, got.end, len(got.pos), want.stop, want.end, len(want.pos))
		}
		for i := range got.pos {
			if got.pos[i] != want.pos[i] || got.headers[i] != want.headers[i] {
				t.Fatalf("batch %d: at %d %+v; naive at %d %+v", i, got.pos[i], got.headers[i], want.pos[i], want.headers[i])
			}
			p, h := got.pos[i], got.headers[i]
			if _, err := naiveValidate(data[p:p+int64(h.Size())], maxBatch, false); err != nil {
				t.Fatalf("scan accepted an invalid batch at %d: %v", p, err)
			}
			if i > 0 && h.BaseOffset != got.headers[i-1].LastOffset()+1 {
				t.Fatalf("scan accepted a discontiguous batch at %d", p)
			}
		}
		// Whatever follows a clean end is zero for at least a header.
		if got.stop == stopZeros && !allZero(data[got.end:min(int64(len(data)), got.end+BatchHeaderSize)]) {
			t.Fatalf("clean end at %d before non-zero bytes", got.end)
		}
	})
}

// fuzzBatch is a valid stored batch with offsets from base.
func fuzzBatch(base Offset, records, body int, seed int64) []byte {
	return onDisk(makeBatch(records, 1700000000000+seed, payload(rand.New(rand.NewSource(seed)), body)), base, 3)
}

func fuzzSeedsValidate() [][]byte {
	valid := fuzzBatch(0, 1, 20, 1)
	multi := fuzzBatch(1000, 5, 300, 2)
	empty := fuzzBatch(7, 1, 0, 3)
	badCRC := append([]byte(nil), multi...)
	badCRC[18] ^= 0x01
	badMagic := append([]byte(nil), valid...)
	badMagic[16] = 1
	negLen := append([]byte(nil), valid...)
	binary.BigEndian.PutUint32(negLen[8:], 0xfffffff0)
	negDelta := makeBatch(0, 5, []byte("x")) // lastOffsetDelta -1
	return [][]byte{valid, multi, empty, multi[:len(multi)-1], multi[:BatchHeaderSize-1], badCRC, badMagic, negLen, negDelta, {}, make([]byte, BatchHeaderSize)}
}

type recordSeed struct {
	name  string
	b     []byte
	knobs uint8
}

// fuzzSeedsRecords are record bytes for FuzzValidateBatch's wrapping mode:
// good and broken records under every codec, and compressed streams given
// as they are.
func fuzzSeedsRecords(t testing.TB) []recordSeed {
	good := encodeRecords(3, 20)
	v := func(x int64) []byte { return binary.AppendVarint(nil, x) }
	rec := func(fields ...[]byte) []byte {
		body := bytes.Join(fields, nil)
		return append(binary.AppendVarint(nil, int64(len(body))), body...)
	}
	badLen := append([]byte(nil), good...)
	badLen[0] += 2
	records := []recordSeed{
		{"good", good, 0},
		{"length-too-long", badLen, 3 << 4},
		{"truncated", good[:len(good)-1], 3 << 4},
		{"count-four", good, 4 << 4},
		{"trailing-byte", append(append([]byte(nil), good...), 0), 3 << 4},
		{"headers", appendRecord(nil, 0, testRecord{key: []byte{}, headers: [][2][]byte{{[]byte("k"), nil}, {[]byte{}, []byte("v")}}}), 0},
		{"header-count-past-end", rec([]byte{0}, v(0), v(0), v(-1), v(-1), v(1<<30), v(0), v(0)), 0},
		{"long-varint", rec([]byte{0}, v(0), v(0), []byte{0x80, 0x80, 0x80, 0x80, 0x10}, v(-1), v(0)), 0},
		{"delta-one", rec([]byte{0}, v(0), v(1), v(-1), v(-1), v(0)), 0},
	}
	var seeds []recordSeed
	for _, r := range records {
		for codec := range 6 {
			seeds = append(seeds, recordSeed{fmt.Sprintf("records-%s-%d", r.name, codec), r.b, r.knobs | 1 | uint8(codec)<<1})
		}
	}
	for codec := 1; codec <= codecZstd; codec++ {
		seeds = append(seeds, recordSeed{fmt.Sprintf("stream-%d", codec), compress(t, codec, good), 1 | uint8(codec)<<1 | 3<<4 | 0x80})
	}
	seeds = append(seeds, recordSeed{"stream-xerial", xerial(good, 16), 1 | codecSnappy<<1 | 3<<4 | 0x80})
	return seeds
}

func fuzzSeedsScan() [][]byte {
	a, b, c := fuzzBatch(0, 2, 100, 4), fuzzBatch(2, 3, 700, 5), fuzzBatch(5, 1, 40, 6)
	run := bytes.Join([][]byte{a, b, c}, nil)
	zeroTail := append(append([]byte(nil), run...), make([]byte, 4096-len(run)%4096)...)
	torn := run[:len(a)+len(b)/2]
	flipped := append([]byte(nil), run...)
	flipped[len(a)+30] ^= 0x80
	crcFlip := append([]byte(nil), run...)
	crcFlip[len(a)+18] ^= 0x01
	stale := append(append([]byte(nil), run...), fuzzBatch(3, 1, 50, 7)...) // offset goes back
	garbage := append(append([]byte(nil), a...), []byte("not a batch at all, just some bytes after one")...)
	sectorLost := append([]byte(nil), zeroTail...)
	clear(sectorLost[len(a)+64 : len(a)+64+512])
	return [][]byte{run, zeroTail, torn, flipped, crcFlip, stale, garbage, sectorLost, a[:30], {}, make([]byte, 200)}
}

// TestWriteFuzzSeeds regenerates the checked-in seed corpus.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("STRAND_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("STRAND_WRITE_FUZZ_SEEDS=1 go test -ldflags=-checklinkname=0 -run TestWriteFuzzSeeds ./shard/ rewrites testdata/fuzz")
	}
	names := []string{"valid", "multi-record", "empty-records", "truncated-by-one", "truncated-header", "flipped-crc", "bad-magic", "negative-length", "negative-delta", "empty", "zero-header"}
	write := func(target, name string, args ...string) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		body := "go test fuzz v1\n"
		for _, a := range args {
			body += a + "\n"
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range fuzzSeedsValidate() {
		write("FuzzValidateBatch", names[i], fmt.Sprintf("[]byte(%q)", s), "byte('\\x00')")
	}
	for _, s := range fuzzSeedsRecords(t) {
		write("FuzzValidateBatch", s.name, fmt.Sprintf("[]byte(%q)", s.b), fmt.Sprintf("byte(%q)", s.knobs))
	}
	scanNames := []string{"three-batches", "zeroed-tail", "torn-batch", "flipped-payload", "flipped-crc", "stale-offset", "garbage-after-batch", "lost-sector", "short-header", "empty", "zeros"}
	for i, s := range fuzzSeedsScan() {
		write("FuzzScan", scanNames[i], fmt.Sprintf("[]byte(%q)", s), "uint16(0)")
		write("FuzzScan", scanNames[i]+"-aligned-next", fmt.Sprintf("[]byte(%q)", s), fmt.Sprintf("uint16(%d)", 12|8|0x3f0))
	}
}
