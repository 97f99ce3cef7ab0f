package wire

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// frames splits everything written so far into (corr, body) pairs.
func (h *harness) frames(t *testing.T) []struct {
	corr int32
	body []byte
} {
	t.Helper()
	var out []struct {
		corr int32
		body []byte
	}
	b := h.fc.out
	for len(b) > 0 {
		if len(b) < 8 {
			t.Fatalf("partial response frame: % x", b)
		}
		n := int(binary.BigEndian.Uint32(b))
		out = append(out, struct {
			corr int32
			body []byte
		}{int32(binary.BigEndian.Uint32(b[4:])), b[8 : 4+n]})
		b = b[4+n:]
	}
	h.fc.out = nil
	return out
}

// do sends req at version v and returns the decoded response.
func (h *harness) do(t *testing.T, req kmsg.Request, v int16) kmsg.Response {
	t.Helper()
	req.SetVersion(v)
	h.traffic(encodeRequest(req, 77, "t"), 1000)
	fs := h.frames(t)
	if len(fs) != 1 || fs[0].corr != 77 {
		t.Fatalf("%s v%d: got %d frames, closed=%v, logs=%v", kmsg.NameForKey(req.Key()), v, len(fs), h.c.closed, h.logs.lines)
	}
	return decodeResponse(t, req, fs[0].body)
}

func decodeResponse(t *testing.T, req kmsg.Request, body []byte) kmsg.Response {
	t.Helper()
	resp := req.ResponseKind()
	if resp.IsFlexible() && resp.Key() != kmsg.ApiVersions.Int16() {
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("decode %s: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp
}

func produceReq(topic string, part int32, acks int16, records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = acks, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = part, records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// heldBackend parks Append callbacks so a test can complete them in any
// order.
type heldBackend struct {
	Backend
	held []func()
}

func (b *heldBackend) Append(p PartitionRef, batch []byte, acks int16, cb func(AppendResult)) {
	batch = append([]byte(nil), batch...) // lent only for the call
	b.held = append(b.held, func() { b.Backend.Append(p, batch, acks, cb) })
}

func TestResponsesInRequestOrder(t *testing.T) {
	h := newHarness(Config{})
	h.broker.createTopic("t", 1, nil)
	hb := &heldBackend{Backend: h.c.be}
	h.c.be = hb

	var in []byte
	v := func(r kmsg.Request, ver int16) kmsg.Request { r.SetVersion(ver); return r }
	in = append(in, encodeRequest(v(produceReq("t", 0, -1, makeBatch([]byte("a"))), 7), 1, "c")...)
	in = append(in, encodeRequest(v(kmsg.NewPtrMetadataRequest(), 12), 2, "c")...)
	in = append(in, encodeRequest(v(produceReq("t", 0, 1, makeBatch([]byte("b"))), 9), 3, "c")...)
	in = append(in, encodeRequest(v(kmsg.NewPtrApiVersionsRequest(), 3), 4, "c")...)
	h.traffic(in, 100)
	if len(hb.held) != 2 {
		t.Fatalf("%d appends held, want 2", len(hb.held))
	}
	if len(h.fc.out) != 0 {
		t.Fatal("responses written while the first request is still pending")
	}
	hb.held[1]() // second produce completes first
	h.drain(100)
	if len(h.fc.out) != 0 {
		t.Fatal("response overtook the pending head")
	}
	hb.held[0]()
	h.drain(100)
	fs := h.frames(t)
	if len(fs) != 4 {
		t.Fatalf("got %d responses, want 4", len(fs))
	}
	for i, f := range fs {
		if f.corr != int32(i+1) {
			t.Fatalf("response %d has corr %d", i, f.corr)
		}
	}
	r := decodeResponse(t, v(kmsg.NewPtrProduceRequest(), 9), fs[2].body).(*kmsg.ProduceResponse)
	if got := r.Topics[0].Partitions[0].BaseOffset; got != 0 {
		t.Fatalf("second produce base offset %d, want 0 (it was appended first)", got)
	}
}

func TestInflightBound(t *testing.T) {
	h := newHarness(Config{MaxInflightRequests: 4})
	h.broker.createTopic("t", 1, nil)
	hb := &heldBackend{Backend: h.c.be}
	h.c.be = hb
	var in []byte
	for i := range 10 {
		req := produceReq("t", 0, -1, makeBatch([]byte{byte(i)}))
		req.SetVersion(8)
		in = append(in, encodeRequest(req, int32(i), "c")...)
	}
	h.traffic(in, 100)
	if len(h.c.queue) != 4 || len(hb.held) != 4 || !h.c.paused {
		t.Fatalf("queue %d held %d paused %v; want 4 4 true", len(h.c.queue), len(hb.held), h.c.paused)
	}
	if h.logs.count("requests in flight at the connection's limit") != 1 {
		t.Fatal("the in-flight limit biting was not logged")
	}
	for done := 0; done < 10; {
		if done >= len(hb.held) {
			t.Fatalf("stalled after %d completions", done)
		}
		hb.held[done]()
		done++
		h.drain(100)
		if len(h.c.queue) > 4 {
			t.Fatalf("queue grew to %d", len(h.c.queue))
		}
	}
	fs := h.frames(t)
	if len(fs) != 10 {
		t.Fatalf("got %d responses, want 10", len(fs))
	}
	for i, f := range fs {
		if f.corr != int32(i) {
			t.Fatalf("response %d has corr %d", i, f.corr)
		}
	}
}

func TestOutboundBackpressure(t *testing.T) {
	h := newHarness(Config{})
	h.fc.outQueue = DefaultMaxConnectionBufferedBytes
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(3)
	h.traffic(encodeRequest(req, 1, "c"), 10)
	if !h.c.paused || len(h.fc.in) == 0 || h.pendingTasks() != 0 {
		t.Fatalf("paused %v buffered %d: want paused with the request still buffered", h.c.paused, len(h.fc.in))
	}
	h.fc.outQueue = 0
	waitFor(t, "backpressure recheck", 5e9, func() bool { return h.pendingTasks() > 0 })
	h.drain(100)
	if fs := h.frames(t); len(fs) != 1 {
		t.Fatalf("got %d responses after the client drained, want 1", len(fs))
	}
}

// TestProduceCopiesOnce checks that the appended batch does not alias the
// input buffer (the fake poisons discarded input) and is the exact bytes.
func TestProduceCopiesOnce(t *testing.T) {
	h := newHarness(Config{})
	h.broker.createTopic("t", 1, nil)
	batch := makeBatch([]byte("hello"), []byte("world"))
	r := h.do(t, produceReq("t", 0, -1, batch), 8).(*kmsg.ProduceResponse)
	if code := r.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("produce: %s", errName(code))
	}
	stored := h.broker.topics["t"].parts[0].batches[0]
	if !bytes.Equal(stored, batch) {
		t.Fatal("stored batch differs from the produced one (aliased the poisoned input?)")
	}
}

func TestProduceValidation(t *testing.T) {
	h := newHarness(Config{})
	h.broker.createTopic("t", 2, nil)
	good := makeBatch([]byte("x"))
	badCRC := append([]byte(nil), good...)
	badCRC[len(badCRC)-1] ^= 1
	magic1 := append([]byte(nil), good...)
	magic1[16] = 1
	badCount := makeBatch([]byte("x"), []byte("y"))
	binary.BigEndian.PutUint32(badCount[57:], 5)
	binary.BigEndian.PutUint32(badCount[17:], crcOf(badCount))
	cases := []struct {
		name    string
		topic   string
		part    int32
		acks    int16
		records []byte
		want    int16
	}{
		{"ok", "t", 1, 1, good, errNone},
		{"unknown topic", "nope", 0, 1, good, errUnknownTopicOrPartition},
		{"unknown partition", "t", 2, 1, good, errUnknownTopicOrPartition},
		{"bad crc", "t", 0, -1, badCRC, errCorruptMessage},
		{"two batches", "t", 0, -1, append(append([]byte(nil), good...), good...), errInvalidRecord},
		{"magic 1", "t", 0, -1, magic1, errInvalidRecord},
		{"empty", "t", 0, -1, []byte{}, errInvalidRecord},
		{"truncated", "t", 0, -1, good[:len(good)-3], errCorruptMessage},
		{"short", "t", 0, -1, good[:20], errCorruptMessage},
		{"count mismatch", "t", 0, -1, badCount, errInvalidRecord},
		{"bad acks", "t", 0, 5, good, errInvalidRequiredAcks},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(t, produceReq(tc.topic, tc.part, tc.acks, tc.records), 9).(*kmsg.ProduceResponse)
			if got := r.Topics[0].Partitions[0].ErrorCode; got != tc.want {
				t.Fatalf("error %s, want %s", errName(got), errName(tc.want))
			}
		})
	}
}

func TestProduceAcksZero(t *testing.T) {
	h := newHarness(Config{})
	h.broker.createTopic("t", 1, nil)
	req := produceReq("t", 0, 0, makeBatch([]byte("quiet")))
	req.SetVersion(7)
	if h.traffic(encodeRequest(req, 1, "c"), 100) || len(h.fc.out) != 0 {
		t.Fatalf("acks=0 produce got a response or a close (out %d bytes)", len(h.fc.out))
	}
	if hw := h.broker.topics["t"].parts[0].hwm; hw != 1 {
		t.Fatalf("high watermark %d, want 1", hw)
	}
	// A failed acks=0 produce closes the connection: there is no other way
	// to tell the client.
	req = produceReq("missing", 0, 0, makeBatch([]byte("lost")))
	req.SetVersion(7)
	if !h.traffic(encodeRequest(req, 2, "c"), 100) {
		t.Fatal("failed acks=0 produce did not close the connection")
	}
}

func TestPanicClosesOnlyThatConnection(t *testing.T) {
	h := newHarness(Config{})
	h.broker.createTopic("boom", 1, nil)
	h.broker.panicTopic = "boom"
	req := produceReq("boom", 0, 1, makeBatch([]byte("x")))
	req.SetVersion(8)
	if !h.traffic(encodeRequest(req, 1, "c"), 100) {
		t.Fatal("connection survived a handler panic")
	}
	if h.srv.Stats().Panics != 1 || h.logs.count("panic in connection handler") != 1 {
		t.Fatalf("panic not counted/logged: %+v", h.srv.Stats())
	}
}
