package wire

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"
)

// logSink is a slog.Handler that keeps records for assertions and prints
// them only with WIRE_TEST_LOG=1. It outlives the test safely (gnet loops
// may log after t finishes).
type logSink struct {
	mu    sync.Mutex
	lines []string
	print bool
}

func (l *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (l *logSink) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != "stack" {
			b.WriteString(" " + a.String())
		}
		return true
	})
	l.mu.Lock()
	l.lines = append(l.lines, b.String())
	l.mu.Unlock()
	if l.print {
		fmt.Fprintln(os.Stderr, b.String())
	}
	return nil
}
func (l *logSink) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logSink) WithGroup(string) slog.Handler      { return l }

func (l *logSink) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, substr) {
			n++
		}
	}
	return n
}

func newLogSink() *logSink { return &logSink{print: os.Getenv("WIRE_TEST_LOG") == "1"} }

type quietGnetLogger struct{}

func (quietGnetLogger) Debugf(string, ...any) {}
func (quietGnetLogger) Infof(string, ...any)  {}
func (quietGnetLogger) Warnf(string, ...any)  {}
func (quietGnetLogger) Errorf(string, ...any) {}
func (quietGnetLogger) Fatalf(f string, a ...any) {
	panic(fmt.Sprintf(f, a...))
}

// testServer is a real gnet server over a memBroker on a kernel-chosen port.
type testServer struct {
	*Server
	broker *memBroker
	logs   *logSink
	addr   string
	booted chan int32
}

// OnBoot learns the port the kernel picked, so that Metadata can advertise
// it, then signals that the listener is ready.
func (ts *testServer) OnBoot(eng gnet.Engine) gnet.Action {
	ts.Server.OnBoot(eng)
	fd, err := eng.Dup()
	if err != nil {
		panic(err)
	}
	defer unix.Close(fd)
	sa, err := unix.Getsockname(fd)
	if err != nil {
		panic(err)
	}
	ts.booted <- int32(sa.(*unix.SockaddrInet4).Port)
	return gnet.None
}

func startServer(t testing.TB, tweak func(*Config, *memBroker)) *testServer {
	t.Helper()
	logs := newLogSink()
	broker := newMemBroker("127.0.0.1", 0)
	cfg := Config{NodeID: 1, AdvertisedHost: "127.0.0.1", Logger: slog.New(logs)}
	if tweak != nil {
		tweak(&cfg, broker)
	}
	ts := &testServer{broker: broker, logs: logs, booted: make(chan int32, 1)}
	ts.Server = NewServer(cfg, broker.attachGnet)
	done := make(chan error, 1)
	go func() {
		done <- gnet.Run(ts, "tcp://127.0.0.1:0", gnet.WithMulticore(true), gnet.WithLogger(quietGnetLogger{}))
	}()
	select {
	case port := <-ts.booted:
		broker.mu.Lock()
		broker.port = port
		broker.mu.Unlock()
		ts.addr = fmt.Sprintf("127.0.0.1:%d", port)
	case err := <-done:
		t.Fatalf("gnet.Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not boot")
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ts.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
		<-done
		if p := ts.Stats().Panics; p != 0 && !t.Failed() && broker.panicTopic == "" {
			t.Errorf("%d handler panics recovered", p)
		}
	})
	return ts
}

func (ts *testServer) client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	base := []kgo.Opt{kgo.SeedBrokers(ts.addr), kgo.DisableIdempotentWrite(), kgo.RequiredAcks(kgo.AllISRAcks())}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// createTopic creates a topic through the protocol (kadm is not a
// dependency, so this is a raw CreateTopics request).
func createTopic(t testing.TB, cl *kgo.Client, name string, parts int32, configs map[string]string) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, parts, 1
	for k, v := range configs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 5000
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
	if code := resp.Topics[0].ErrorCode; code != 0 {
		t.Fatalf("create topic %s: %s", name, errName(code))
	}
}

// rawConn is a plain TCP client for sending hand-made frames.
type rawConn struct {
	t  testing.TB
	nc net.Conn
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc}
}

func (r *rawConn) write(b []byte) {
	r.t.Helper()
	if _, err := r.nc.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// send writes req as one frame with the given version and correlation id.
func (r *rawConn) send(req kmsg.Request, version int16, corr int32) {
	r.t.Helper()
	req.SetVersion(version)
	r.write(encodeRequest(req, corr, "wire-test"))
}

func encodeRequest(req kmsg.Request, corr int32, clientID string) []byte {
	b := []byte{0, 0, 0, 0}
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, uint16(len(clientID)))
	b = append(b, clientID...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// readFrame reads one response frame; it fails the test on timeout.
func (r *rawConn) readFrame() (corr int32, body []byte, err error) {
	r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var pfx [4]byte
	if _, err := io.ReadFull(r.nc, pfx[:]); err != nil {
		return 0, nil, err
	}
	buf := make([]byte, binary.BigEndian.Uint32(pfx[:]))
	if _, err := io.ReadFull(r.nc, buf); err != nil {
		return 0, nil, err
	}
	return int32(binary.BigEndian.Uint32(buf)), buf[4:], nil
}

// recv reads the response to req (sent at version v) and decodes it.
func (r *rawConn) recv(req kmsg.Request, wantCorr int32) kmsg.Response {
	r.t.Helper()
	corr, body, err := r.readFrame()
	if err != nil {
		r.t.Fatalf("read response to %s v%d: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	if corr != wantCorr {
		r.t.Fatalf("correlation id %d, want %d", corr, wantCorr)
	}
	resp := req.ResponseKind()
	if resp.IsFlexible() && resp.Key() != kmsg.ApiVersions.Int16() {
		body = body[1:] // empty header tags
	}
	if err := resp.ReadFrom(body); err != nil {
		r.t.Fatalf("decode %s v%d response: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp
}

// expectClosed waits for the server to close the connection.
func (r *rawConn) expectClosed() {
	r.t.Helper()
	r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	for {
		_, err := r.nc.Read(buf)
		if err == nil {
			continue // responses to earlier requests may still arrive
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			r.t.Fatal("connection was not closed by the server")
		}
		return
	}
}

// makeBatch builds an uncompressed v2 batch of n records with the given
// values (CRC and lengths filled in, base offset 0).
func makeBatch(values ...[]byte) []byte {
	var recs []byte
	for i, v := range values {
		var r []byte
		r = append(r, 0)                          // attributes
		r = binary.AppendVarint(r, 0)             // timestamp delta
		r = binary.AppendVarint(r, int64(i))      // offset delta
		r = binary.AppendVarint(r, -1)            // null key
		r = binary.AppendVarint(r, int64(len(v))) // value length
		r = append(r, v...)                       //
		r = binary.AppendVarint(r, 0)             // headers
		recs = binary.AppendVarint(recs, int64(len(r)))
		recs = append(recs, r...)
	}
	b := make([]byte, BatchHeaderLen, BatchHeaderLen+len(recs))
	be := binary.BigEndian
	be.PutUint32(b[12:], 0xffffffff) // partition leader epoch -1
	b[16] = 2
	be.PutUint32(b[23:], uint32(len(values)-1))
	now := uint64(time.Now().UnixMilli())
	be.PutUint64(b[27:], now)
	be.PutUint64(b[35:], now)
	be.PutUint64(b[43:], 0xffffffffffffffff) // producer id -1
	be.PutUint16(b[51:], 0xffff)
	be.PutUint32(b[53:], 0xffffffff)
	be.PutUint32(b[57:], uint32(len(values)))
	b = append(b, recs...)
	be.PutUint32(b[8:], uint32(len(b)-12))
	be.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

// waitFor checks cond on a 1 ms ticker until it holds or the deadline
// passes. It is for conditions with no channel to wait on (counters updated
// by event loops); it returns as soon as cond holds.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}
