package shard

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand"
	"strconv"
	"sync"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"golang.org/x/sys/unix"
)

// testRecord is one record as a producer encodes it.
type testRecord struct {
	key, value []byte // nil: null
	headers    [][2][]byte
}

// appendRecord encodes r as the i-th record of a batch.
func appendRecord(dst []byte, i int, r testRecord) []byte {
	var body []byte
	body = append(body, 0)                     // attributes
	body = binary.AppendVarint(body, int64(i)) // timestamp delta
	body = binary.AppendVarint(body, int64(i)) // offset delta
	field := func(b []byte) {
		if b == nil {
			body = binary.AppendVarint(body, -1)
			return
		}
		body = binary.AppendVarint(body, int64(len(b)))
		body = append(body, b...)
	}
	field(r.key)
	field(r.value)
	body = binary.AppendVarint(body, int64(len(r.headers)))
	for _, h := range r.headers {
		field(h[0])
		field(h[1])
	}
	dst = binary.AppendVarint(dst, int64(len(body)))
	return append(dst, body...)
}

// encodeRecords encodes n records with values of valueLen bytes.
func encodeRecords(n, valueLen int) []byte {
	var out []byte
	for i := range n {
		v := bytes.Repeat([]byte{byte('a' + i%26)}, valueLen)
		out = appendRecord(out, i, testRecord{key: []byte(fmt.Sprint(i)), value: v, headers: [][2][]byte{{[]byte("h"), nil}}})
	}
	return out
}

// Compressors are made once: a fresh gzip or zstd encoder costs over a
// millisecond, which would dominate a fuzz execution.
var (
	compressMu sync.Mutex
	gzipW      = gzip.NewWriter(nil)
	lz4W       = lz4.NewWriter(nil)
	zstdW, _   = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
)

// compress encodes records with codec as a producer would.
func compress(t testing.TB, codec int, records []byte) []byte {
	compressMu.Lock()
	defer compressMu.Unlock()
	var buf bytes.Buffer
	switch codec {
	case codecNone:
		return records
	case codecGzip:
		gzipW.Reset(&buf)
		gzipW.Write(records)
		gzipW.Close()
	case codecSnappy:
		return snappy.Encode(nil, records)
	case codecLZ4:
		lz4W.Reset(&buf)
		lz4W.Write(records)
		lz4W.Close()
	case codecZstd:
		return zstdW.EncodeAll(records, nil)
	default:
		t.Fatalf("codec %d", codec)
	}
	return buf.Bytes()
}

// xerial frames records the way the Java client's snappy does, in blocks.
func xerial(records []byte, block int) []byte {
	out := append([]byte(nil), xerialMagic...)
	out = binary.BigEndian.AppendUint32(out, 1)
	out = binary.BigEndian.AppendUint32(out, 1)
	for len(records) > 0 {
		n := min(block, len(records))
		c := snappy.Encode(nil, records[:n])
		out = binary.BigEndian.AppendUint32(out, uint32(len(c)))
		out = append(out, c...)
		records = records[n:]
	}
	return out
}

// producedBatch wraps body (records, compressed with codec) in a header
// claiming count records, with a correct length and CRC.
func producedBatch(codec, count int, body []byte) []byte {
	b := makeBatch(count, 1700000000000, body)
	binary.BigEndian.PutUint16(b[21:], uint16(codec))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

var codecNames = map[int]string{codecNone: "none", codecGzip: "gzip", codecSnappy: "snappy", codecLZ4: "lz4", codecZstd: "zstd"}

func TestValidateRecordsAcceptsEveryCodec(t *testing.T) {
	recs := encodeRecords(50, 1000)
	for codec, name := range codecNames {
		b := producedBatch(codec, 50, compress(t, codec, recs))
		if _, err := ValidateRecords(b, 0, 1<<20); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, block := range []int{1, 100, 32 << 10, 1 << 20} {
		if _, err := ValidateRecords(producedBatch(codecSnappy, 50, xerial(recs, block)), 0, 1<<20); err != nil {
			t.Errorf("xerial snappy, %d-byte blocks: %v", block, err)
		}
	}
	// Null keys and values, empty ones, several headers.
	var odd []byte
	odd = appendRecord(odd, 0, testRecord{})
	odd = appendRecord(odd, 1, testRecord{key: []byte{}, value: []byte{}})
	odd = appendRecord(odd, 2, testRecord{value: []byte("v"), headers: [][2][]byte{{[]byte{}, nil}, {[]byte("k"), []byte("v")}, {[]byte("x"), []byte{}}}})
	if _, err := ValidateRecords(producedBatch(codecNone, 3, odd), 0, 0); err != nil {
		t.Errorf("null and empty fields: %v", err)
	}
}

// TestValidateRecordsRefusesBadFraming is the regression test for records
// with a correct batch CRC that no consumer can read.
func TestValidateRecordsRefusesBadFraming(t *testing.T) {
	two := encodeRecords(2, 10)
	first := len(appendRecord(nil, 0, testRecord{key: []byte("0"), value: bytes.Repeat([]byte{'a'}, 10), headers: [][2][]byte{{[]byte("h"), nil}}}))
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), two...)) }
	rec := func(fields ...[]byte) []byte { // one record from raw fields
		body := bytes.Join(fields, nil)
		return append(binary.AppendVarint(nil, int64(len(body))), body...)
	}
	v := func(x int64) []byte { return binary.AppendVarint(nil, x) }
	cases := []struct {
		name  string
		count int
		recs  []byte
		want  error
	}{
		{"record length one too long", 2, edit(func(b []byte) []byte { b[0] += 2; return b }), ErrCorruptRecords},
		{"record length one too short", 2, edit(func(b []byte) []byte { b[0] -= 2; return b }), ErrCorruptRecords},
		{"negative record length", 1, append(v(-3), two[1:first]...), ErrCorruptRecords},
		{"truncated last record", 2, two[:len(two)-1], ErrCorruptRecords},
		{"count says three", 3, two, ErrCorruptRecords},
		{"count says one", 1, two[:first+1], ErrCorruptRecords},
		{"bytes after the last record", 2, append(append([]byte(nil), two...), 0), ErrCorruptRecords},
		{"varint of six bytes", 1, rec([]byte{0}, v(0), v(0), []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, v(-1), v(0)), ErrCorruptRecords},
		{"varint past 32 bits", 1, rec([]byte{0}, v(0), v(0), []byte{0x80, 0x80, 0x80, 0x80, 0x10}, v(-1), v(0)), ErrCorruptRecords},
		{"varlong of eleven bytes", 1, rec([]byte{0}, bytes.Repeat([]byte{0x80}, 10), []byte{0}, v(0), v(-1), v(-1), v(0)), ErrCorruptRecords},
		{"key length -2", 1, rec([]byte{0}, v(0), v(0), v(-2), v(-1), v(0)), ErrCorruptRecords},
		{"value past the record", 1, rec([]byte{0}, v(0), v(0), v(-1), v(5), []byte("abc"), v(0)), ErrCorruptRecords},
		{"negative header count", 1, rec([]byte{0}, v(0), v(0), v(-1), v(-1), v(-1)), ErrCorruptRecords},
		{"header count past the record", 1, rec([]byte{0}, v(0), v(0), v(-1), v(-1), v(1<<30), v(0), v(0)), ErrCorruptRecords},
		{"null header key", 1, rec([]byte{0}, v(0), v(0), v(-1), v(-1), v(1), v(-1), v(-1)), ErrCorruptRecords},
		{"header value past the record", 1, rec([]byte{0}, v(0), v(0), v(-1), v(-1), v(1), v(0), v(9)), ErrCorruptRecords},
		{"empty record", 1, rec(), ErrCorruptRecords},
		{"no records at all", 1, nil, ErrCorruptRecords},
		{"offset delta 1 first", 1, rec([]byte{0}, v(0), v(1), v(-1), v(-1), v(0)), ErrInvalidBatch},
		{"offset deltas swapped", 2, append(rec([]byte{0}, v(0), v(1), v(-1), v(-1), v(0)), rec([]byte{0}, v(0), v(0), v(-1), v(-1), v(0))...), ErrInvalidBatch},
	}
	for _, tc := range cases {
		for codec, name := range codecNames {
			b := producedBatch(codec, tc.count, compress(t, codec, tc.recs))
			if _, err := ValidateBatch(b, 0); err != nil {
				t.Fatalf("%s/%s: the header check alone refuses it: %v", tc.name, name, err)
			}
			if _, err := ValidateRecords(b, 0, 1<<20); !errors.Is(err, tc.want) {
				t.Errorf("%s/%s: %v, want %v", tc.name, name, err, tc.want)
			}
		}
	}
}

func TestValidateRecordsRefusesDamagedStreams(t *testing.T) {
	recs := encodeRecords(20, 100)
	for codec, name := range codecNames {
		if codec == codecNone {
			continue
		}
		c := compress(t, codec, recs)
		for _, bad := range [][]byte{c[:len(c)/2], c[:len(c)-1], append(append([]byte(nil), c...), 1, 2, 3), {}, []byte("garbage, not a compressed stream")} {
			if _, err := ValidateRecords(producedBatch(codec, 20, bad), 0, 1<<20); !errors.Is(err, ErrCorruptRecords) {
				t.Errorf("%s, %d damaged bytes: %v", name, len(bad), err)
			}
		}
	}
	if _, err := ValidateRecords(producedBatch(5, 20, recs), 0, 0); !errors.Is(err, ErrInvalidBatch) {
		t.Errorf("codec 5: %v", err)
	}
	x := xerial(recs, 100)
	if _, err := ValidateRecords(producedBatch(codecSnappy, 20, x[:len(x)-3]), 0, 0); !errors.Is(err, ErrCorruptRecords) {
		t.Errorf("truncated xerial: %v", err)
	}
}

// TestValidateRecordsBoundsDecompression drives past maxDecompressed with a
// batch that compresses 8 MiB of records into a few KiB: every codec stops
// at the bound instead of inflating the rest.
func TestValidateRecordsBoundsDecompression(t *testing.T) {
	recs := encodeRecords(8, 1<<20)
	const limit = 1 << 20
	for codec, name := range codecNames {
		b := producedBatch(codec, 8, compress(t, codec, recs))
		if _, err := ValidateRecords(b, 0, len(recs)); err != nil {
			t.Fatalf("%s at a limit that fits: %v", name, err)
		}
		if _, err := ValidateRecords(b, 0, limit); !errors.Is(err, ErrRecordsTooLarge) {
			t.Errorf("%s (%d bytes): %v, want ErrRecordsTooLarge", name, len(b), err)
		}
	}
	if _, err := ValidateRecords(producedBatch(codecSnappy, 8, xerial(recs, 64<<10)), 0, limit); !errors.Is(err, ErrRecordsTooLarge) {
		t.Errorf("xerial: %v, want ErrRecordsTooLarge", err)
	}
}

// TestValidateRecordsAllocatesNothingPerRecord checks that a walk
// allocates nothing once warm, whatever the number of records: compressed
// batches reuse a pooled decompressor reset to the new input. (Under the
// race detector sync.Pool drops items at random, so only the uncompressed
// path is checked there.)
func TestValidateRecordsAllocatesNothingPerRecord(t *testing.T) {
	for codec, name := range codecNames {
		small := producedBatch(codec, 10, compress(t, codec, encodeRecords(10, 1000)))
		large := producedBatch(codec, 1000, compress(t, codec, encodeRecords(1000, 1000)))
		allocs := func(b []byte) float64 {
			return testing.AllocsPerRun(20, func() {
				if _, err := ValidateRecords(b, 0, 0); err != nil {
					t.Fatal(err)
				}
			})
		}
		a10, a1000 := allocs(small), allocs(large)
		t.Logf("%s: %v allocations for 10 records, %v for 1000", name, a10, a1000)
		if (codec == codecNone || !raceEnabled) && (a10 != 0 || a1000 != 0) {
			t.Errorf("%s: %v allocations for 10 records, %v for 1000", name, a10, a1000)
		}
	}
}

// benchRecords is n records with 1 KiB values of words from a small
// vocabulary: compressible about as much as typical JSON payloads.
func benchRecords(n int) []byte {
	rng := rand.New(rand.NewSource(1))
	words := []string{"user", "id", "event", "click", "view", "ts", "session", "true", "false", "null", "\"", ":", ",", "{", "}"}
	var out []byte
	for i := range n {
		v := make([]byte, 0, 1024)
		for len(v) < 1024 {
			v = append(v, words[rng.Intn(len(words))]...)
			v = strconv.AppendInt(v, int64(rng.Intn(100000)), 10)
		}
		out = appendRecord(out, i, testRecord{key: []byte(strconv.Itoa(i)), value: v[:1024]})
	}
	return out
}

// BenchmarkValidateRecords compares the record-level check against the
// header-only one (ValidateBatch: header fields and CRC) on a batch of 64
// records of 1 KiB, for each codec. SetBytes is the uncompressed records'
// size, so MB/s compare across codecs. cpu-ns/op is the process's CPU time
// per batch (getrusage), which a loaded machine inflates less than the
// wall-clock ns/op.
//
//	go test -run '^$' -bench ValidateRecords -count 5 ./shard/
func BenchmarkValidateRecords(b *testing.B) {
	const n = 64
	recs := benchRecords(n)
	for codec := codecNone; codec <= codecZstd; codec++ {
		batch := producedBatch(codec, n, compress(b, codec, recs))
		name := codecNames[codec]
		b.Run(name+"/header-only", func(b *testing.B) {
			b.SetBytes(int64(len(recs)))
			cpu := cpuNanos()
			for b.Loop() {
				if _, err := ValidateBatch(batch, 0); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuNanos()-cpu)/float64(b.N), "cpu-ns/op")
		})
		b.Run(name+"/records", func(b *testing.B) {
			b.SetBytes(int64(len(recs)))
			b.ReportAllocs()
			cpu := cpuNanos()
			for b.Loop() {
				if _, err := ValidateRecords(batch, 0, 100<<20); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuNanos()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuNanos is the process's user+system CPU time.
func cpuNanos() int64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// stuckReader returns nothing, forever, without an error.
type stuckReader struct{}

func (stuckReader) Read([]byte) (int, error) { return 0, nil }

// TestRecordWalkerGivesUpOnAStuckReader: a decompressor that makes no
// progress must not spin the core.
func TestRecordWalkerGivesUpOnAStuckReader(t *testing.T) {
	w := recordWalker{src: stuckReader{}, win: make([]byte, 64), limit: 1 << 20}
	if err := w.walk(1); !errors.Is(err, ErrCorruptRecords) {
		t.Fatalf("walk over a stuck reader: %v", err)
	}
}

// zstdFrame is a zstd frame by hand: no content size, window 1<<windowLog,
// one raw block holding data.
func zstdFrame(windowLog int, data []byte) []byte {
	b := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, byte(windowLog-10) << 3}
	hdr := uint32(len(data))<<3 | 1 // raw block, last
	b = append(b, byte(hdr), byte(hdr>>8), byte(hdr>>16))
	return append(b, data...)
}

// TestValidateRecordsRefusesHugeZstdWindows: a zstd frame may ask the
// decoder to keep up to zstdMaxWindow of history, not the library's
// default of 512 MiB.
func TestValidateRecordsRefusesHugeZstdWindows(t *testing.T) {
	recs := encodeRecords(5, 100)
	for _, tc := range []struct {
		windowLog int
		ok        bool
	}{{23, true}, {25, true}, {26, false}, {30, false}} {
		_, err := ValidateRecords(producedBatch(codecZstd, 5, zstdFrame(tc.windowLog, recs)), 0, 0)
		if tc.ok && err != nil || !tc.ok && !errors.Is(err, ErrCorruptRecords) {
			t.Errorf("%d MiB window: %v", 1<<tc.windowLog>>20, err)
		}
	}
}
