package wire

import (
	"io"
	"log/slog"
	"net"
	"sync"

	"github.com/panjf2000/gnet/v2"
)

// fakeConn is an in-memory netConn for driving the state machine without
// sockets. Discard poisons the bytes it drops, so any request data kept
// past the frame (instead of copied) shows up as corruption.
type fakeConn struct {
	in       []byte
	out      []byte
	wakes    int
	closed   bool
	outQueue int // pretend unsent bytes, for backpressure tests
	// noRead plays a client that never reads: what is written stays in
	// outQueue, and only the frames are counted, not kept.
	noRead  bool
	written int // frames written while noRead
}

func (f *fakeConn) Peek(n int) ([]byte, error) {
	if n <= 0 {
		n = len(f.in)
	}
	if n > len(f.in) {
		return nil, io.ErrShortBuffer
	}
	return f.in[:n], nil
}

func (f *fakeConn) Discard(n int) (int, error) {
	if n <= 0 || n > len(f.in) {
		n = len(f.in)
	}
	for i := range f.in[:n] {
		f.in[i] = 0xEE
	}
	f.in = f.in[n:]
	return n, nil
}

func (f *fakeConn) InboundBuffered() int  { return len(f.in) }
func (f *fakeConn) OutboundBuffered() int { return f.outQueue }
func (f *fakeConn) Writev(bs [][]byte) (int, error) {
	n := 0
	for _, b := range bs {
		if f.noRead {
			f.outQueue += len(b)
			f.written++
		} else {
			f.out = append(f.out, b...)
		}
		n += len(b)
	}
	return n, nil
}
func (f *fakeConn) Wake(gnet.AsyncCallback) error { f.wakes++; return nil }
func (f *fakeConn) Close() error                  { f.closed = true; return nil }
func (f *fakeConn) RemoteAddr() net.Addr          { return nil }

// feed appends bytes the way a new read would (into a fresh buffer, so
// poisoning never reaches the caller's slice).
func (f *fakeConn) feed(b []byte) { f.in = append(append([]byte(nil), f.in...), b...) }

// harness drives one conn over a fakeConn on the test goroutine, which plays
// the event loop: tasks queued by the backend (exec) and Wakes run in drain.
type harness struct {
	srv    *Server
	broker *memBroker
	fc     *fakeConn
	c      *conn
	mu     sync.Mutex // tasks: timers (After) queue from their own goroutines
	tasks  []func()
	logs   *logSink
}

func (h *harness) exec(fn func()) {
	h.mu.Lock()
	h.tasks = append(h.tasks, fn)
	h.mu.Unlock()
}

func (h *harness) pop() func() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.tasks) == 0 {
		return nil
	}
	fn := h.tasks[0]
	h.tasks = h.tasks[1:]
	return fn
}

func (h *harness) pendingTasks() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.tasks)
}

func newHarness(cfg Config) *harness {
	h := &harness{broker: newMemBroker("127.0.0.1", 9092), fc: &fakeConn{}, logs: newLogSink()}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(h.logs)
	}
	h.srv = NewServer(cfg, nil)
	sess := &memSession{b: h.broker, exec: h.exec}
	h.c = newConn(h.srv, h.fc, sess)
	return h
}

// traffic delivers b as new input and runs the loop until idle (or steps
// iterations pass, which bounds fuzz inputs). It returns whether the
// connection was closed.
func (h *harness) traffic(b []byte, steps int) bool {
	h.fc.feed(b)
	if h.c.onTraffic() {
		h.close()
		return true
	}
	return h.drain(steps)
}

func (h *harness) drain(steps int) bool {
	for i := 0; i < steps && !h.c.closed; i++ {
		if fn := h.pop(); fn != nil {
			fn()
		} else if h.fc.wakes > 0 {
			h.fc.wakes = 0
			if h.c.onTraffic() {
				h.close()
			}
		} else {
			break
		}
		if h.fc.closed {
			h.close()
		}
	}
	return h.c.closed
}

func (h *harness) close() {
	if !h.c.closed {
		h.c.onClose()
	}
	h.fc.closed = true
}
