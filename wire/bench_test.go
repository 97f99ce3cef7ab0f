package wire

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkProducePipelined measures the protocol path alone (framing,
// header, shape check, kmsg decode, batch validation and copy, response
// encode and write) for 64 pipelined acks=1 produces of one 16 KiB batch,
// over the in-memory broker and fake connection.
func BenchmarkProducePipelined(b *testing.B) {
	h := newHarness(Config{})
	h.broker.createTopic("t", 1, nil)
	var in []byte
	for i := range 64 {
		req := produceReq("t", 0, 1, makeBatch(make([]byte, 16<<10)))
		req.SetVersion(9)
		in = append(in, encodeRequest(req, int32(i), "bench")...)
	}
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		h.fc.out = h.fc.out[:0]
		h.traffic(in, 100)
		if len(h.c.queue) != 0 {
			b.Fatal("requests left in flight")
		}
		mp := h.broker.topics["t"].parts[0]
		mp.batches, mp.bases = mp.batches[:0], mp.bases[:0] // keep memory flat
	}
}

// BenchmarkFetchEncode measures answering a fetch for 1 MiB of batches.
func BenchmarkFetchEncode(b *testing.B) {
	h := newHarness(Config{})
	h.broker.createTopic("t", 1, nil)
	for range 64 {
		h.traffic(encodeRequest(versioned(produceReq("t", 0, 1, makeBatch(make([]byte, 16<<10))), 9), 1, "b"), 100)
	}
	h.fc.out = nil
	req := versioned(fetchReq(2<<20, 2<<20, 0), 11).(*kmsg.FetchRequest)
	frame := encodeRequest(req, 1, "bench")
	b.SetBytes(1 << 20)
	b.ReportAllocs()
	for b.Loop() {
		h.fc.out = h.fc.out[:0]
		h.traffic(frame, 100)
	}
}
