package shard

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
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

func FuzzValidateBatch(f *testing.F) {
	for _, s := range fuzzSeedsValidate() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ValidateBatch(b, 0)
		nh, nerr := naiveValidate(b, 0, true)
		if (err == nil) != (nerr == nil) || err != nil && !errors.Is(err, nerr) {
			t.Fatalf("ValidateBatch: %v, naive: %v", err, nerr)
		}
		if err != nil {
			return
		}
		if h != nh {
			t.Fatalf("header %+v, naive %+v", h, nh)
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
		// Any one flipped byte under the CRC is caught.
		i := 21 + int(h.CRC)%(len(b)-21)
		c[i] ^= 0x5a
		if _, err := ValidateBatch(c, 0); !errors.Is(err, ErrCorruptBatch) && !errors.Is(err, ErrInvalidBatch) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	})
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
		write("FuzzValidateBatch", names[i], fmt.Sprintf("[]byte(%q)", s))
	}
	scanNames := []string{"three-batches", "zeroed-tail", "torn-batch", "flipped-payload", "flipped-crc", "stale-offset", "garbage-after-batch", "lost-sector", "short-header", "empty", "zeros"}
	for i, s := range fuzzSeedsScan() {
		write("FuzzScan", scanNames[i], fmt.Sprintf("[]byte(%q)", s), "uint16(0)")
		write("FuzzScan", scanNames[i]+"-aligned-next", fmt.Sprintf("[]byte(%q)", s), fmt.Sprintf("uint16(%d)", 12|8|0x3f0))
	}
}
