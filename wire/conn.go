package wire

import (
	"encoding/binary"
	"log/slog"
	"net"
	"runtime/debug"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// netConn is the part of gnet.Conn the connection state machine uses. All
// methods are called on the connection's event loop. Tests substitute an
// in-memory fake to drive the state machine without sockets.
type netConn interface {
	Peek(n int) ([]byte, error)
	Discard(n int) (int, error)
	InboundBuffered() int
	Writev(bs [][]byte) (int, error)
	OutboundBuffered() int
	Wake(cb gnet.AsyncCallback) error
	Close() error
	RemoteAddr() net.Addr
}

const (
	// outboundMax pauses parsing while gnet holds this many unsent response
	// bytes for a client that does not read, so one slow client cannot make
	// the broker buffer without bound.
	outboundMax = 64 << 20
	// outboundRecheck is how often a connection paused on outboundMax looks
	// again (gnet has no "drained" callback).
	outboundRecheck = time.Millisecond
	// iovBatch caps the buffers handed to one Writev (IOV_MAX is 1024).
	iovBatch = 512
)

// slot is one request waiting for its response. Slots sit in conn.queue in
// arrival order; responses leave strictly from the head, so a request that
// completes early waits for the ones before it.
type slot struct {
	h          header
	done       bool
	silent     bool   // Produce with acks=0: no response at all
	closeAfter bool   // close the connection when this slot reaches the head
	held       bool   // arrived before draining began: Drain waits for it
	frame      []byte // the encoded response, set when done
}

// conn is the per-connection state machine: bytes in, frames, requests,
// responses out in request order. It lives on one event loop and is never
// touched from another goroutine.
type conn struct {
	srv *Server
	nc  netConn
	be  Backend
	gb  GroupBackend // be, if it also serves groups; nil otherwise
	log *slog.Logger

	queue       []*slot // in-flight requests, oldest first
	inTraffic   bool    // inside onTraffic: completions wait for its final flush
	wakePending bool    // a Wake is queued that will flush
	paused      bool    // stopped parsing: too many in flight or too much unsent
	closing     bool    // decided to close; parse nothing more
	closed      bool    // OnClose ran: drop every late completion
	bpCancel    func()  // outbound backpressure recheck timer
	waits       map[*fetchWait]struct{}
	iov         [][]byte
}

func newConn(srv *Server, nc netConn, be Backend) *conn {
	c := &conn{srv: srv, nc: nc, be: be, log: srv.log}
	c.gb, _ = be.(GroupBackend)
	if addr := nc.RemoteAddr(); addr != nil {
		c.log = srv.log.With("remote", addr.String())
	}
	return c
}

// onTraffic parses every complete frame that is buffered, dispatches each,
// and flushes the responses that are ready. It reports whether the
// connection must be closed.
func (c *conn) onTraffic() (closeConn bool) {
	defer func() {
		if r := recover(); r != nil {
			c.panicked(r)
			closeConn = true
		}
	}()
	c.wakePending = false
	if c.srv.drain.on.Load() {
		c.drainWaits()
	}
	for !c.closing && !c.closed {
		c.inTraffic = true
		c.readFrames()
		c.inTraffic = false
		c.flush()
		// Synchronous completions may have freed room while we were
		// paused; keep going instead of waiting for bytes that may never
		// come (OnTraffic fires only on new input).
		if !c.paused || !c.canRead() || c.nc.InboundBuffered() == 0 {
			break
		}
		c.paused = false
	}
	return c.closing || c.closed
}

func (c *conn) canRead() bool {
	return len(c.queue) < c.srv.cfg.MaxInflightRequests && c.nc.OutboundBuffered() < outboundMax
}

// readFrames handles complete frames until the input runs out, the
// connection must close, or the in-flight bound is reached. A partial frame
// stays buffered in gnet until more bytes arrive.
func (c *conn) readFrames() {
	for !c.closing && !c.closed {
		if !c.canRead() {
			c.pause()
			return
		}
		buffered := c.nc.InboundBuffered()
		if buffered < sizeLen {
			return
		}
		pfx, err := c.nc.Peek(sizeLen)
		if err != nil {
			return
		}
		size := int32(binary.BigEndian.Uint32(pfx))
		if size < 0 || int64(size) > int64(c.srv.cfg.MaxRequestBytes) {
			c.protocolError("request size out of range", "size", size, "max", c.srv.cfg.MaxRequestBytes)
			return
		}
		total := sizeLen + int(size)
		if buffered < total {
			return
		}
		frame, err := c.nc.Peek(total)
		if err != nil {
			return
		}
		c.srv.stats.requests.Add(1)
		c.handleFrame(frame[sizeLen:])
		// Everything kept from the frame was copied by now (kmsg aliases
		// byte fields into it; a backend keeping a produced batch copies it).
		_, _ = c.nc.Discard(total)
	}
}

func (c *conn) pause() {
	c.paused = true
	if c.nc.OutboundBuffered() >= outboundMax && c.bpCancel == nil {
		c.bpCancel = c.be.After(outboundRecheck, func() {
			defer c.recoverPanic()
			c.bpCancel = nil
			if !c.closed && c.paused {
				if c.canRead() {
					c.paused = false
					c.wake()
				} else {
					c.pause()
				}
			}
		})
	}
}

// handleFrame parses one frame (without its size prefix) and dispatches it.
// Anything it cannot parse closes the connection, as Kafka does.
func (c *conn) handleFrame(frame []byte) {
	h, rest, ok := parseHeader(frame)
	if !ok {
		c.protocolError("truncated request header", "len", len(frame))
		return
	}
	min, max, known := versionRange(h.key, c.gb != nil)
	if h.key == kmsg.ApiVersions.Int16() && h.version > max {
		// KIP-511: answer in v0, which every client can read, without
		// parsing a body whose layout we may not know.
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.ErrorCode = errUnsupportedVersion
		resp.ApiKeys = apiVersionsKeys(c.gb != nil)
		c.complete(c.push(h), resp)
		return
	}
	var req kmsg.Request
	if known {
		req = kmsg.RequestForKey(h.key)
	}
	if req == nil {
		c.protocolError("unsupported api key", "key", h.key, "name", kmsg.NameForKey(h.key), "version", h.version)
		return
	}
	if h.version < 0 || h.version > req.MaxVersion() {
		c.protocolError("unparseable api version", "key", kmsg.NameForKey(h.key), "version", h.version)
		return
	}
	req.SetVersion(h.version)
	body := rest
	if req.IsFlexible() {
		if body, ok = skipHeaderTags(rest); !ok {
			c.protocolError("malformed request header tags", "key", kmsg.NameForKey(h.key))
			return
		}
	}
	if !checkShape(h.key, h.version, req.IsFlexible(), body) {
		c.protocolError("malformed request body", "key", kmsg.NameForKey(h.key), "version", h.version)
		return
	}
	if err := req.ReadFrom(body); err != nil {
		c.protocolError("malformed request body", "key", kmsg.NameForKey(h.key), "version", h.version, "err", err)
		return
	}
	if h.version < min || h.version > max {
		resp := errorResponse(req, errUnsupportedVersion)
		if resp == nil {
			c.protocolError("unsupported version", "key", kmsg.NameForKey(h.key), "version", h.version)
			return
		}
		c.log.Debug("wire: unsupported version", "key", kmsg.NameForKey(h.key), "version", h.version)
		c.complete(c.push(h), resp)
		return
	}
	s := c.push(h)
	c.dispatch(s, req, h.clientID)
}

// dispatch runs the handler for req. clientID aliases the frame and is
// valid only during this call.
func (c *conn) dispatch(s *slot, req kmsg.Request, clientID []byte) {
	if c.refuseDraining(s, req) {
		return
	}
	switch q := req.(type) {
	case *kmsg.ProduceRequest:
		c.handleProduce(s, q)
	case *kmsg.FetchRequest:
		c.handleFetch(s, q)
	case *kmsg.ListOffsetsRequest:
		c.handleListOffsets(s, q)
	case *kmsg.MetadataRequest:
		c.handleMetadata(s, q)
	case *kmsg.ApiVersionsRequest:
		c.handleApiVersions(s, q)
	case *kmsg.CreateTopicsRequest:
		c.handleCreateTopics(s, q)
	case *kmsg.DeleteTopicsRequest:
		c.handleDeleteTopics(s, q)
	case *kmsg.DescribeConfigsRequest:
		c.handleDescribeConfigs(s, q)
	case *kmsg.AlterConfigsRequest:
		c.handleAlterConfigs(s, q)
	case *kmsg.CreatePartitionsRequest:
		c.handleCreatePartitions(s, q)
	case *kmsg.InitProducerIDRequest:
		c.handleInitProducerID(s, q)
	default: // versionRange admits only the keys above and, with gb, groups
		c.handleGroup(s, req, clientID)
	}
}

// push appends a slot for a new request.
func (c *conn) push(h header) *slot {
	h.clientID = nil // aliases the frame, which is about to be discarded
	s := &slot{h: h, held: c.srv.drain.hold()}
	c.queue = append(c.queue, s)
	return s
}

// complete encodes resp as the answer to s and flushes when s reaches the
// head. Late completions (after close, or twice) are dropped.
func (c *conn) complete(s *slot, resp kmsg.Response) { c.completeSized(s, resp, 0) }

// completeSized is complete with a hint of the body size, so that large
// fetch responses are encoded without regrowing (and recopying) the buffer.
func (c *conn) completeSized(s *slot, resp kmsg.Response, sizeHint int) {
	if c.closed || s.done {
		return
	}
	var buf []byte
	if sizeHint > 4096 {
		buf = make([]byte, 0, sizeHint+respHeaderLen+1024)
	} else {
		buf = getBuf()
	}
	s.frame = appendResponse(buf, s.h.corr, resp)
	s.done = true
	c.scheduleFlush()
}

// completeSilent finishes a request that gets no response (acks=0).
func (c *conn) completeSilent(s *slot, closeAfter bool) {
	if c.closed || s.done {
		return
	}
	s.done, s.silent, s.closeAfter = true, true, closeAfter
	c.scheduleFlush()
}

// scheduleFlush writes ready responses soon. Inside onTraffic the final
// flush covers it. Otherwise a Wake coalesces every completion that lands in
// the same loop iteration into one writev.
func (c *conn) scheduleFlush() {
	if c.inTraffic || c.closed {
		return
	}
	if !c.wake() {
		c.flush()
	}
}

// wake queues an OnTraffic call for this connection, once.
func (c *conn) wake() bool {
	if c.wakePending {
		return true
	}
	if err := c.nc.Wake(nil); err != nil {
		return false
	}
	c.wakePending = true
	return true
}

// flush writes every completed response at the head of the queue, in order,
// batched into writev calls.
func (c *conn) flush() {
	closeNow := false
	for !c.closed && len(c.queue) > 0 && c.queue[0].done && !closeNow {
		iov := c.iov[:0]
		n := 0
		for n < len(c.queue) && c.queue[n].done && len(iov) < iovBatch {
			s := c.queue[n]
			n++
			if s.frame != nil {
				iov = append(iov, s.frame)
			}
			if s.closeAfter {
				closeNow = true
				break
			}
		}
		c.srv.drain.release(c.queue[:n])
		rest := copy(c.queue, c.queue[n:])
		clear(c.queue[rest:])
		c.queue = c.queue[:rest]
		if len(iov) > 0 {
			// On a write error gnet closes the connection inside Writev,
			// which runs onClose; c.closed stops the loop.
			_, _ = c.nc.Writev(iov)
			for i := range iov {
				putBuf(iov[i])
				iov[i] = nil
			}
		}
		c.iov = iov[:0]
	}
	if closeNow {
		c.log.Info("wire: closing connection after a failed acks=0 produce")
		c.abort()
	}
	// A connection paused on its in-flight bound resumes in onTraffic: every
	// completion outside it schedules a Wake, and readFrames re-checks room.
}

// protocolError logs a request the broker cannot serve and closes the
// connection once the responses already completed are written.
func (c *conn) protocolError(msg string, args ...any) {
	c.srv.stats.protocolErrors.Add(1)
	c.log.Warn("wire: "+msg+"; closing connection", args...)
	c.closing = true
}

// abort closes the connection from outside onTraffic (a callback).
func (c *conn) abort() {
	if c.closed {
		return
	}
	c.closing = true
	c.cancelWaits()
	_ = c.nc.Close()
}

// recoverPanic is deferred at every entry point from the loop: a bug in one
// handler closes that connection instead of killing the event loop.
func (c *conn) recoverPanic() {
	if r := recover(); r != nil {
		c.panicked(r)
	}
}

func (c *conn) panicked(r any) {
	c.srv.stats.panics.Add(1)
	c.log.Error("wire: panic in connection handler; closing connection", "panic", r, "stack", string(debug.Stack()))
	c.inTraffic = false
	c.abort()
}

// onClose runs from gnet's OnClose: stop timers and watches, drop buffers.
func (c *conn) onClose() {
	c.closed, c.closing = true, true
	c.cancelWaits()
	if c.bpCancel != nil {
		c.bpCancel()
		c.bpCancel = nil
	}
	for _, s := range c.queue {
		putBuf(s.frame)
	}
	c.srv.drain.release(c.queue)
	clear(c.queue)
	c.queue = nil
}

func (c *conn) cancelWaits() {
	for w := range c.waits {
		w.stop()
	}
	c.waits = nil
}
