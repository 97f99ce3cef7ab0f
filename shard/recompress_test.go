package shard

import (
	"errors"
	"fmt"
	"testing"

	"github.com/strand-io/strand/dma"
)

// TestRecompress: a log with a compression.type stores every produced
// batch in that codec, whatever the producer sent, with the same records,
// offsets, timestamps and producer sequence, and a valid CRC; producer
// keeps every batch as sent.
func TestRecompress(t *testing.T) {
	codecs := []int16{codecNone, codecGzip, codecSnappy, codecLZ4, codecZstd}
	for _, target := range []Compression{CompressionProducer, CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd} {
		t.Run(fmt.Sprint("compression", target), func(t *testing.T) {
			cfg := compactConfig(PolicyDelete)
			cfg.SegmentBytes = 1 << 20
			cfg.Compression = target
			l, eng := memLog(t, dma.NewMemFS(512, 1), cfg)
			now := int64(1_000_000)
			want := map[Offset]kv{}
			sent := map[Offset]int16{}
			for i, codec := range codecs {
				recs := []kv{{[]byte(fmt.Sprint("k", i)), []byte(fmt.Sprint("value ", i, " ", codec))}, {[]byte("other"), nil}}
				// Every other batch is an idempotent producer's, whose
				// sequence must survive recompression (a retry of it is
				// still a duplicate).
				pid := int64(-1)
				if i%2 == 0 {
					pid = 7
				}
				res := appendWait(t, l, eng, keyedBatch(t, recs, now+int64(i), codec, pid, int32(i/2*2)), now)
				for j, r := range recs {
					want[res.Base+Offset(j)] = r
					sent[res.Base+Offset(j)] = codec
				}
			}
			got := readRecords(t, l, eng)
			if len(got) != len(want) {
				t.Fatalf("read %d records, wrote %d", len(got), len(want))
			}
			for _, g := range got {
				w := want[g.off]
				if g.key != string(w.key) || string(g.value) != string(w.value) || (g.value == nil) != (w.value == nil) {
					t.Errorf("offset %d: %q=%q, wrote %q=%q", g.off, g.key, g.value, w.key, w.value)
				}
				if wantCodec := target.codec(); target == CompressionProducer && g.codec != sent[g.off] || target != CompressionProducer && g.codec != wantCodec {
					t.Errorf("offset %d stored with codec %d (sent %d, compression %d)", g.off, g.codec, sent[g.off], target)
				}
			}
			// The idempotent producer's last batch, resent in another
			// codec, is a duplicate: answered with its first offsets,
			// nothing stored twice.
			next := l.NextOffset()
			dup := keyedBatch(t, []kv{{[]byte("k4"), []byte(fmt.Sprint("value ", 4, " ", codecZstd))}, {[]byte("other"), nil}}, now+4, codecGzip, 7, 4)
			if res := appendWait(t, l, eng, dup, now); res.Base != 8 || l.NextOffset() != next {
				t.Errorf("retried batch answered at %d, next offset %d (was %d)", res.Base, l.NextOffset(), next)
			}
		})
	}
}

// TestRecompressTooLarge: a batch that the topic's codec makes larger
// than max.message.bytes is refused, and nothing is stored.
func TestRecompressTooLarge(t *testing.T) {
	cfg := compactConfig(PolicyDelete)
	cfg.SegmentBytes = 1 << 20
	cfg.Compression = CompressionNone
	cfg.MaxBatchBytes = 1024
	l, _ := memLog(t, dma.NewMemFS(512, 1), cfg)
	value := make([]byte, 4096) // zeros: zstd makes them tiny
	b := keyedBatch(t, []kv{{[]byte("k"), value}}, 1, codecZstd, -1, 0)
	if len(b) > 1024 {
		t.Fatalf("test batch is %d bytes before recompression", len(b))
	}
	if err := l.Append(b, 1, func(AppendResult, error) {}); !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("append: %v, want ErrBatchTooLarge", err)
	}
	if l.NextOffset() != 0 {
		t.Fatalf("next offset %d after a refused batch", l.NextOffset())
	}
}

// TestRecompressReconfigured: compression.type changed on an open log
// applies to the next append.
func TestRecompressReconfigured(t *testing.T) {
	cfg := compactConfig(PolicyDelete)
	cfg.SegmentBytes = 1 << 20
	l, eng := memLog(t, dma.NewMemFS(512, 1), cfg)
	appendWait(t, l, eng, keyedBatch(t, []kv{{[]byte("a"), []byte("1")}}, 1, codecGzip, -1, 0), 1)
	cfg.Compression = CompressionLZ4
	l.Reconfigure(cfg)
	appendWait(t, l, eng, keyedBatch(t, []kv{{[]byte("b"), []byte("2")}}, 2, codecGzip, -1, 0), 2)
	got := readRecords(t, l, eng)
	if len(got) != 2 || got[0].codec != codecGzip || got[1].codec != codecLZ4 {
		t.Fatalf("records %+v: want the first as sent (gzip), the second in lz4", got)
	}
}
