package wire

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strand-io/strand/shard"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crcOf(b []byte) uint32 { return crc32.Checksum(b[21:], castagnoli) }

func TestErrorCodesMatchKerr(t *testing.T) {
	for code, want := range map[int16]*kerr.Error{
		errOffsetOutOfRange: kerr.OffsetOutOfRange, errCorruptMessage: kerr.CorruptMessage,
		errUnknownTopicOrPartition: kerr.UnknownTopicOrPartition, errLeaderNotAvailable: kerr.LeaderNotAvailable,
		errInvalidTopic: kerr.InvalidTopicException, errInvalidRequiredAcks: kerr.InvalidRequiredAcks,
		errUnsupportedVersion: kerr.UnsupportedVersion, errTopicAlreadyExists: kerr.TopicAlreadyExists,
		errInvalidPartitions: kerr.InvalidPartitions, errInvalidReplicationFactor: kerr.InvalidReplicationFactor,
		errInvalidReplicaAssignment: kerr.InvalidReplicaAssignment, errInvalidConfig: kerr.InvalidConfig,
		errInvalidRequest: kerr.InvalidRequest, errFetchSessionIDNotFound: kerr.FetchSessionIDNotFound,
		errInvalidRecord: kerr.InvalidRecord, errUnknownTopicID: kerr.UnknownTopicID,
	} {
		if code != want.Code {
			t.Errorf("%s: code %d, kerr says %d", want.Message, code, want.Code)
		}
	}
}

func TestTrimBatches(t *testing.T) {
	a, b, c := makeBatch(make([]byte, 100)), makeBatch(make([]byte, 200)), makeBatch(make([]byte, 300))
	all := append(append(append([]byte(nil), a...), b...), c...)
	cases := []struct {
		limit      int
		allowFirst bool
		want       int
	}{
		{len(all), false, len(all)},
		{len(a) + len(b), false, len(a) + len(b)},
		{len(a) + len(b) - 1, false, len(a)},
		{10, false, 0},
		{10, true, len(a)},
		{-5, true, len(a)},
	}
	for _, tc := range cases {
		if got := len(trimBatches(all, tc.limit, tc.allowFirst)); got != tc.want {
			t.Errorf("limit %d allowFirst %v: %d bytes, want %d", tc.limit, tc.allowFirst, got, tc.want)
		}
	}
	if got := len(trimBatches(all[:len(all)-1], len(all), false)); got != len(a)+len(b) {
		t.Errorf("partial tail kept: %d", got)
	}
}

// withRecords returns batch (from makeBatch) with its records replaced by
// recs and codec in its attributes, the length and CRC made right again.
func withRecords(batch []byte, codec int16, recs []byte) []byte {
	b := append(append([]byte(nil), batch[:BatchHeaderLen]...), recs...)
	binary.BigEndian.PutUint16(b[21:], uint16(codec))
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crcOf(b))
	return b
}

func gzipped(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestProduceRefusesUnreadableRecords is the regression test for batches
// whose CRC is right but whose records no consumer can parse: they were
// stored, and every consumer stalled at their offset. They are refused with
// CORRUPT_MESSAGE, compressed or not, and nothing is stored; a batch that
// would inflate past max-request-bytes gets MESSAGE_TOO_LARGE and a log line.
func TestProduceRefusesUnreadableRecords(t *testing.T) {
	decompressLogAt.Store(0) // the rate limit is per process
	h := newHarness(Config{MaxRequestBytes: 1 << 20})
	h.broker.createTopic("t", 1, nil)
	good := makeBatch([]byte("first"), []byte("second"))
	recs := append([]byte(nil), good[BatchHeaderLen:]...)
	recs[0] += 2 // the first record's length varint (zigzag) claims one byte more
	longRecs := makeBatch(make([]byte, 2<<20))[BatchHeaderLen:]
	cases := []struct {
		name  string
		batch []byte
		want  int16
	}{
		{"record length one too long", withRecords(good, 0, recs), kerr.CorruptMessage.Code},
		{"gzip, record length one too long", withRecords(good, 1, gzipped(t, recs)), kerr.CorruptMessage.Code},
		{"gzip stream cut short", withRecords(good, 1, gzipped(t, good[BatchHeaderLen:])[:20]), kerr.CorruptMessage.Code},
		{"gzip inflating past max-request-bytes", withRecords(makeBatch(nil), 1, gzipped(t, longRecs)), kerr.MessageTooLarge.Code},
	}
	for _, tc := range cases {
		if _, err := shard.ValidateBatch(tc.batch, 0); err != nil {
			t.Fatalf("%s: not even the header is right: %v", tc.name, err)
		}
		r := h.do(t, produceReq("t", 0, -1, tc.batch), 9).(*kmsg.ProduceResponse)
		p := r.Topics[0].Partitions[0]
		if p.ErrorCode != tc.want || p.ErrorMessage == nil {
			t.Errorf("%s: %s (%v), want %s", tc.name, errName(p.ErrorCode), p.ErrorMessage, errName(tc.want))
		}
	}
	if hw := h.broker.topics["t"].parts[0].hwm; hw != 0 {
		t.Fatalf("high watermark %d after refused batches", hw)
	}
	f := h.do(t, fetchReq(1<<20, 1<<20, 0), 11).(*kmsg.FetchResponse)
	if p := f.Topics[0].Partitions[0]; p.ErrorCode != 0 || len(p.RecordBatches) != 0 || p.HighWatermark != 0 {
		t.Fatalf("fetch after refused batches: %s, %d bytes, high watermark %d", errName(p.ErrorCode), len(p.RecordBatches), p.HighWatermark)
	}
	if n := h.logs.count("decompresses past the limit"); n != 1 {
		t.Errorf("%d log lines for the decompression limit, want 1", n)
	}
	// The same records, framed right, go in.
	for _, b := range [][]byte{good, withRecords(good, 1, gzipped(t, good[BatchHeaderLen:]))} {
		if r := h.do(t, produceReq("t", 0, -1, b), 9).(*kmsg.ProduceResponse); r.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("good batch refused: %s", errName(r.Topics[0].Partitions[0].ErrorCode))
		}
	}
}
