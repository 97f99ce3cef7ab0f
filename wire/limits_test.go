package wire

import (
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// produceN produces n batches of size bytes to partition p of topic "t".
func produceN(t *testing.T, h *harness, p int32, n, size int) {
	t.Helper()
	one := makeBatch(make([]byte, size))
	for range n {
		b := append([]byte(nil), one...)
		if r := h.do(t, produceReq("t", p, 1, b), 8).(*kmsg.ProduceResponse); r.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatal("produce failed")
		}
	}
}

// TestFetchHugeMaxBytesIsCapped: a fetch asking for 2^31-1 bytes gets at
// most the broker's fetch.max.bytes (55 MiB by default), not the whole
// partition (issue 9: one 197 MiB response).
func TestFetchHugeMaxBytesIsCapped(t *testing.T) {
	h := newHarness(Config{})
	h.broker.createTopic("t", 1, nil)
	produceN(t, h, 0, 62, 1<<20) // 62 MiB
	r := h.do(t, fetchReq(math.MaxInt32, math.MaxInt32, 0), 11).(*kmsg.FetchResponse)
	got := len(r.Topics[0].Partitions[0].RecordBatches)
	const kafkaFetchMaxBytes = 57671680
	if got == 0 || got > kafkaFetchMaxBytes {
		t.Fatalf("fetch of 2^31-1 bytes returned %d record bytes, want 1..%d", got, kafkaFetchMaxBytes)
	}
	if used := h.srv.Stats().FetchMemoryBytes; used != 0 {
		t.Fatalf("%d bytes of fetch memory still reserved after the response was written", used)
	}
}

// TestFetchBrokerLimits: the response and partition caps apply below the
// request's, and an oversized first batch is still served whole (KIP-74).
func TestFetchBrokerLimits(t *testing.T) {
	const batch = 10_000
	one := len(makeBatch(make([]byte, batch)))
	for _, tc := range []struct {
		name         string
		limits       Limits
		max, partMax int32
		want0, want1 int
	}{
		// 3*batch holds 2 whole batches with their headers.
		{"partition cap", Limits{MaxPartitionFetchBytes: 3 * batch}, math.MaxInt32, math.MaxInt32, 2, 2},
		{"response cap", Limits{FetchMaxBytes: 3 * batch}, math.MaxInt32, math.MaxInt32, 2, 0},
		{"response cap, second partition", Limits{FetchMaxBytes: 5 * batch}, math.MaxInt32, 2 * int32(one), 2, 2},
		{"request below caps", Limits{FetchMaxBytes: 5 * batch}, 2 * int32(one), math.MaxInt32, 2, 0},
		{"first batch whole", Limits{FetchMaxBytes: 10, MaxPartitionFetchBytes: 10}, math.MaxInt32, math.MaxInt32, 1, 0},
	} {
		h := newHarness(Config{Limits: tc.limits})
		h.broker.createTopic("t", 2, nil)
		produceN(t, h, 0, 10, batch)
		produceN(t, h, 1, 10, batch)
		r := h.do(t, fetchReq(tc.max, tc.partMax, 0, 1), 11).(*kmsg.FetchResponse)
		ps := r.Topics[0].Partitions
		if g0, g1 := len(ps[0].RecordBatches)/one, len(ps[1].RecordBatches)/one; g0 != tc.want0 || g1 != tc.want1 {
			t.Errorf("%s: batches %d/%d, want %d/%d", tc.name, g0, g1, tc.want0, tc.want1)
		}
		if used := h.srv.Stats().FetchMemoryBytes; used != 0 {
			t.Fatalf("%s: %d bytes of fetch memory still reserved", tc.name, used)
		}
	}
}

// TestPipelinedFetchesNotRead: 200 pipelined fetches for everything on a
// connection whose client never reads. The broker stops parsing and stops
// handing responses to gnet at the connection's buffered limit, instead of
// buffering 200 responses (issue 9: RSS 20 MB -> 5.1 GB).
func TestPipelinedFetchesNotRead(t *testing.T) {
	h := newHarness(Config{})
	h.broker.createTopic("t", 1, nil)
	produceN(t, h, 0, 4, 128<<10) // 512 KiB per response: 200 would be 100 MiB
	h.fc.noRead = true
	var in []byte
	for i := range 200 {
		req := fetchReq(math.MaxInt32, math.MaxInt32, 0)
		req.SetVersion(11)
		in = append(in, encodeRequest(req, int32(i), "c")...)
	}
	h.traffic(in, 10_000)
	const connBufferedMax = 64 << 20 // Limits.MaxConnectionBufferedBytes default
	const oneResponse = 512<<10 + 4096
	if h.fc.outQueue > connBufferedMax+oneResponse {
		t.Fatalf("%d response bytes buffered for a client that reads nothing (%d responses), want <= %d",
			h.fc.outQueue, h.fc.written, connBufferedMax+oneResponse)
	}
	if held := h.c.buffered(); held > connBufferedMax+2*oneResponse {
		t.Fatalf("connection holds %d bytes", held)
	}
	if !h.c.paused {
		t.Fatal("connection not paused")
	}
	// The client starts reading: everything is answered, in order.
	h.fc.noRead, h.fc.outQueue = false, 0
	for range 1000 {
		if h.fc.written+len(h.frames(t)) >= 200 {
			break
		}
		waitFor(t, "recheck timer", 5*time.Second, func() bool { return h.pendingTasks() > 0 || h.fc.wakes > 0 })
		h.drain(10_000)
		h.fc.written += len(h.frames(t))
	}
	if h.fc.written < 200 {
		t.Fatalf("%d of 200 fetches answered after the client read", h.fc.written)
	}
	if used := h.srv.Stats().FetchMemoryBytes; used != 0 {
		t.Fatalf("%d bytes of fetch memory still reserved", used)
	}
}

// TestFetchMemoryBudget: with the budget spent by a connection that does
// not read, another connection's fetch waits; it runs once memory comes
// back (here: the first connection closes), and nothing leaks.
func TestFetchMemoryBudget(t *testing.T) {
	const budget = 3 << 20
	h := newHarness(Config{Limits: Limits{FetchMemoryBytes: budget}})
	h.broker.createTopic("t", 1, nil)
	produceN(t, h, 0, 8, 1<<20)
	h.fc.noRead = true
	req := fetchReq(math.MaxInt32, 2<<20, 0) // one 1 MiB batch each
	req.SetVersion(11)
	for i := range 4 { // the fourth finds the budget spent
		h.traffic(encodeRequest(req, int32(i), "c"), 1000)
	}
	if used := h.srv.Stats().FetchMemoryBytes; used < budget-(1<<20) || used > budget+(1<<20) || len(h.c.budgetQ) != 1 {
		t.Fatalf("reserved %d with %d fetches waiting, want about the budget %d and 1", used, len(h.c.budgetQ), budget)
	}
	other := &fakeConn{}
	oc := newConn(h.srv, other, &memSession{b: h.broker, exec: h.exec})
	other.feed(encodeRequest(req, 9, "d"))
	oc.onTraffic()
	if len(other.out) != 0 || len(oc.budgetQ) != 1 {
		t.Fatalf("fetch ran beyond the budget: %d bytes out, %d waiting", len(other.out), len(oc.budgetQ))
	}
	if h.srv.Stats().BudgetWaits == 0 || h.logs.count("fetch waits for fetch memory") == 0 {
		t.Fatal("budget wait neither counted nor logged")
	}
	h.close() // gives everything back and wakes the waiter
	if other.wakes == 0 {
		t.Fatal("waiting connection not woken")
	}
	oc.onTraffic()
	for h.pendingTasks() > 0 {
		h.pop()()
	}
	if len(other.out) == 0 {
		t.Fatal("waiting fetch not answered after memory came back")
	}
	oc.onClose()
	if used := h.srv.Stats().FetchMemoryBytes; used != 0 {
		t.Fatalf("%d bytes of fetch memory still reserved after both closed", used)
	}
}

// TestRequestTimeout: a frame that starts and stalls (slowloris) closes
// the connection after RequestTimeout.
func TestRequestTimeout(t *testing.T) {
	h := newHarness(Config{Limits: Limits{RequestTimeout: 50 * time.Millisecond, IdleTimeout: time.Hour}})
	h.c.startTimer()
	frame := encodeRequest(kmsg.NewPtrApiVersionsRequest(), 1, "c")
	if h.traffic(frame[:7], 10) {
		t.Fatal("closed on a partial frame at once")
	}
	waitFor(t, "request timeout", 5*time.Second, func() bool {
		h.drain(10)
		return h.c.closed
	})
	if h.srv.Stats().RequestTimeouts != 1 || h.logs.count("request not completed in time") != 1 {
		t.Fatalf("timeout not counted or logged: %+v", h.srv.Stats())
	}
}

// TestIdleTimeout: a connection that never sends anything is closed after
// IdleTimeout; one that keeps sending requests is not.
func TestIdleTimeout(t *testing.T) {
	h := newHarness(Config{Limits: Limits{IdleTimeout: 100 * time.Millisecond}})
	h.c.startTimer()
	busy := newHarness(Config{Limits: Limits{IdleTimeout: 100 * time.Millisecond}})
	busy.c.startTimer()
	start := time.Now()
	waitFor(t, "idle timeout", 5*time.Second, func() bool {
		h.drain(10)
		busy.traffic(encodeRequest(kmsg.NewPtrApiVersionsRequest(), 1, "c"), 10)
		busy.fc.out = nil
		return h.c.closed
	})
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("closed after %v, before the timeout", d)
	}
	if busy.c.closed {
		t.Fatal("a connection sending requests was closed as idle")
	}
	if h.srv.Stats().IdleClosed != 1 || h.logs.count("idle connection") != 1 {
		t.Fatalf("idle close not counted or logged: %+v", h.srv.Stats())
	}
}

// TestConnectionLimits: past the total and the per-IP cap new connections
// are closed at once, with a log line; the listener and the admitted
// connections keep working, and a freed slot admits again.
func TestConnectionLimits(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limits Limits
		cap    int
	}{
		{"total", Limits{MaxConnections: 3}, 3},
		{"per ip", Limits{MaxConnectionsPerIP: 2}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, func(c *Config, _ *memBroker) { c.Limits = tc.limits })
			var conns []*rawConn
			for range tc.cap {
				conns = append(conns, dialRaw(t, ts.addr))
			}
			// Admission happens in OnOpen, so check the admitted ones
			// answer before dialing past the cap.
			for i, c := range conns {
				apiVersions(c, int32(i))
			}
			for range 5 {
				dialRaw(t, ts.addr).expectClosed()
			}
			if r := ts.Stats().Refused; r != 5 {
				t.Fatalf("refused %d, want 5", r)
			}
			if n := ts.logs.count("refusing connection"); n < 1 || n > 5 {
				t.Fatalf("%d refusal log lines, want 1 (rate-limited)", n)
			}
			for i, c := range conns {
				apiVersions(c, int32(i))
			}
			conns[0].nc.Close()
			waitFor(t, "slot freed", 5*time.Second, func() bool { return ts.Stats().OpenConnections == int64(tc.cap-1) })
			fresh := dialRaw(t, ts.addr)
			apiVersions(fresh, 7)
		})
	}
}

func TestDefaultMaxConnections(t *testing.T) {
	n := DefaultMaxConnections()
	if lim := fdLimit(); lim > 0 && (n >= lim || n < lim/2) {
		t.Fatalf("default %d for a descriptor limit of %d", n, lim)
	}
	for _, tc := range []struct{ fds, want int }{{4000, 4000 - acceptHeadroom}, {800, 400}, {0, 0}} {
		if got := ConnectionsFor(tc.fds); got != tc.want {
			t.Errorf("ConnectionsFor(%d) = %d, want %d", tc.fds, got, tc.want)
		}
	}
}

func apiVersions(c *rawConn, corr int32) {
	c.t.Helper()
	req := kmsg.NewPtrApiVersionsRequest()
	c.send(req, 3, corr)
	if r := c.recv(req, corr).(*kmsg.ApiVersionsResponse); r.ErrorCode != 0 {
		c.t.Fatalf("ApiVersions: error %d", r.ErrorCode)
	}
}

// TestFetchMemoryFollowsOutboundDrain: response bytes gnet still buffers
// stay counted, and go back to the budget as gnet sends them, without
// another request on the connection.
func TestFetchMemoryFollowsOutboundDrain(t *testing.T) {
	h := newHarness(Config{})
	h.broker.createTopic("t", 1, nil)
	produceN(t, h, 0, 2, 100_000)
	h.fc.noRead = true
	req := fetchReq(math.MaxInt32, math.MaxInt32, 0)
	req.SetVersion(11)
	h.traffic(encodeRequest(req, 1, "c"), 100)
	if used := h.srv.Stats().FetchMemoryBytes; used < 200_000 {
		t.Fatalf("%d bytes counted while gnet holds the whole response", used)
	}
	h.fc.outQueue = 0 // gnet sent it
	waitFor(t, "fetch memory back", 5*time.Second, func() bool {
		h.drain(100)
		return h.srv.Stats().FetchMemoryBytes == 0
	})
}

// TestAdmitNearDescriptorLimit: whatever the counts, a connection whose
// descriptor number is near the limit is refused (the table is nearly
// full: gnet's next accept could fail with EMFILE and stop its engine).
func TestAdmitNearDescriptorLimit(t *testing.T) {
	s := NewServer(Config{Limits: Limits{MaxConnections: -1}}, nil)
	s.fdLimit = 4000
	ip := netip.MustParseAddr("10.0.0.1")
	if why := s.admit(100, ip); why != "" {
		t.Fatalf("fd 100 of 4000 refused: %s", why)
	}
	if why := s.admit(3500, ip); why != "descriptor table nearly full" {
		t.Fatalf("fd 3500 of 4000: %q, want refused", why)
	}
	// Partitions may fill all but the fifth of the descriptors kept for
	// connections: the guard must not bite inside that fifth.
	s.fdLimit = 1500
	if why := s.admit(1197, ip); why != "" {
		t.Fatalf("fd 1197 of 1500, inside the descriptors kept for connections, refused: %s", why)
	}
	s.leave(ip)
	s.leave(ip)
	if n := s.adm.total.Load(); n != 0 {
		t.Fatalf("%d connections counted after leave", n)
	}
}
