package e2e

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// poisoned returns a batch of two records whose CRC is right but whose
// first record's length varint claims one byte more than the record has,
// with its records gzip-compressed if gz is set.
func poisoned(t *testing.T, gz bool) []byte {
	b := makeBatch([]byte("poison-1"), []byte("poison-2"))
	recs := append([]byte(nil), b[61:]...)
	recs[0] += 2 // zigzag: one more byte
	if gz {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		if _, err := w.Write(recs); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		recs = buf.Bytes()
		binary.BigEndian.PutUint16(b[21:], 1) // attributes: gzip
	}
	b = append(b[:61], recs...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

// TestPoisonRecordsAreRefused is the black-box regression test for a batch
// whose CRC is right but whose records do not parse: the broker stored it,
// and a franz-go consumer then stalled at its offset for good. Now the
// Produce gets CORRUPT_MESSAGE, plain or gzip, nothing is stored, and a
// consumer reads the next good record at offset 0.
func TestPoisonRecordsAreRefused(t *testing.T) {
	p := startProc(t, testDataDir(t))
	cl := newClient(t, p.addr)
	createTopic(t, cl, "poison", 1)

	raw := dialRaw(t, p.addr)
	for _, gz := range []bool{false, true} {
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis = 9, -1, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "poison"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = poisoned(t, gz)
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := raw.roundTrip(req, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		part := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
		if err := kerr.ErrorForCode(part.ErrorCode); err != kerr.CorruptMessage {
			t.Fatalf("gzip=%v: produce answered %v (base offset %d), want CORRUPT_MESSAGE", gz, err, part.BaseOffset)
		}
	}

	good := &kgo.Record{Topic: "poison", Value: []byte("good")}
	if err := cl.ProduceSync(ctxFor(t, 10*time.Second), good).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if good.Offset != 0 {
		t.Fatalf("good record at offset %d: the refused batches took offsets", good.Offset)
	}
	cons := newClient(t, p.addr, kgo.ConsumeTopics("poison"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx := ctxFor(t, 15*time.Second)
	for {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumer got nothing within 15 s: %v", err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Logf("fetch error: %v", err) })
		if recs := fs.Records(); len(recs) > 0 {
			if r := recs[0]; r.Offset != 0 || string(r.Value) != "good" {
				t.Fatalf("consumer read %q at offset %d, want \"good\" at 0", r.Value, r.Offset)
			}
			return
		}
	}
}
