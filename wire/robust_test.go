package wire

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestBadClientsDoNotHurtOthers runs a kgo producer on its own connections
// while side connections send garbage, truncated frames, absurd sizes,
// unknown keys, unsupported versions and a tag bomb. Each bad connection
// gets its outcome (closed, or an error response); the producer sees no
// error and the server keeps serving.
func TestBadClientsDoNotHurtOthers(t *testing.T) {
	ts := startServer(t, nil)
	admin := ts.client(t)
	createTopic(t, admin, "steady", 4, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	prod := ts.client(t, kgo.DefaultProduceTopic("steady"), kgo.ProducerLinger(0))
	stop := make(chan struct{})
	var produced atomic.Int64
	prodErr := make(chan error, 1)
	go func() {
		defer close(prodErr)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := prod.ProduceSync(ctx, kgo.StringRecord(fmt.Sprint(i))).FirstErr(); err != nil {
				prodErr <- err
				return
			}
			produced.Add(1)
		}
	}()
	waitFor(t, "producer running", 10*time.Second, func() bool { return produced.Load() > 10 })

	frame := func(key, version int16, body []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(10+len(body)))
		b = binary.BigEndian.AppendUint16(b, uint16(key))
		b = binary.BigEndian.AppendUint16(b, uint16(version))
		b = binary.BigEndian.AppendUint32(b, 1)
		b = binary.BigEndian.AppendUint16(b, 0xffff) // null client id
		return append(b, body...)
	}
	closedCases := []struct {
		name string
		data []byte
	}{
		{"garbage", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		{"2 GiB size", []byte{0x7f, 0xff, 0xff, 0xff, 0, 18, 0, 0}},
		{"negative size", []byte{0xff, 0xff, 0xff, 0xf0, 0, 0}},
		{"truncated header", []byte{0, 0, 0, 3, 0, 18, 0}},
		{"unknown key", frame(1000, 0, nil)},
		// WriteTxnMarkers' response has no field to say
		// UNSUPPORTED_VERSION in (see unservedResponse).
		{"not served key without an error field", frame(27, 0, []byte{0, 0, 0, 0})},
		{"version kmsg cannot parse", frame(3, 200, nil)},
		{"malformed body", frame(0, 7, []byte{0xff, 0xff, 0, 1, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff})},
		{"tag bomb", frame(18, 3, []byte{0, 1, 1, 0x8f, 0xff, 0xff, 0xff, 0x0f})}, // header tags, 2 empty strings, count 2^32-1
	}
	start := ts.Stats().ProtocolErrors
	for _, tc := range closedCases {
		t.Run(tc.name, func(t *testing.T) {
			rc := dialRaw(t, ts.addr)
			rc.write(tc.data)
			rc.expectClosed()
		})
	}
	// A size prefix announcing more than arrives just waits (partial frame);
	// the client closing it must not disturb anything.
	t.Run("truncated body then hang up", func(t *testing.T) {
		rc := dialRaw(t, ts.addr)
		rc.write([]byte{0, 0, 1, 0, 0, 3, 0, 9})
		rc.nc.Close()
	})
	t.Run("unsupported version gets error 35", func(t *testing.T) {
		rc := dialRaw(t, ts.addr)
		req := kmsg.NewPtrMetadataRequest()
		rc.send(req, 13, 5)
		if r := rc.recv(req, 5).(*kmsg.MetadataResponse); r.ErrorCode != errUnsupportedVersion {
			t.Fatalf("code %s", errName(r.ErrorCode))
		}
		// The connection stays usable.
		rc.send(req, 12, 6)
		if r := rc.recv(req, 6).(*kmsg.MetadataResponse); len(r.Topics) != 1 {
			t.Fatalf("follow-up metadata: %d topics", len(r.Topics))
		}
	})
	t.Run("not served key gets error 35", func(t *testing.T) {
		rc := dialRaw(t, ts.addr)
		req := kmsg.NewPtrDescribeClusterRequest()
		rc.send(req, 0, 7)
		if r := rc.recv(req, 7).(*kmsg.DescribeClusterResponse); r.ErrorCode != kerr.UnsupportedVersion.Code {
			t.Fatalf("code %s", errName(r.ErrorCode))
		}
		meta := kmsg.NewPtrMetadataRequest()
		rc.send(meta, 12, 8)
		if r := rc.recv(meta, 8).(*kmsg.MetadataResponse); len(r.Topics) != 1 {
			t.Fatalf("follow-up metadata: %d topics", len(r.Topics))
		}
	})
	if got := ts.Stats().ProtocolErrors - start; got != int64(len(closedCases)) {
		t.Errorf("%d protocol errors counted, want %d", got, len(closedCases))
	}
	if n := ts.logs.count("closing connection"); n < len(closedCases) {
		t.Errorf("%d close log lines, want >= %d", n, len(closedCases))
	}

	before := produced.Load()
	waitFor(t, "producer still progressing", 10*time.Second, func() bool { return produced.Load() > before+10 })
	close(stop)
	if err := <-prodErr; err != nil {
		t.Fatalf("producer failed: %v", err)
	}
	// And a brand-new client still works.
	fresh := ts.client(t, kgo.DefaultProduceTopic("steady"))
	if err := fresh.ProduceSync(ctx, kgo.StringRecord("after")).FirstErr(); err != nil {
		t.Fatalf("server stopped serving: %v", err)
	}
}
