package wire

import (
	"encoding/binary"
	"log/slog"
	"net"
	"net/netip"
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
	// outboundRecheck is how soon a connection held back by
	// Limits.MaxConnectionBufferedBytes looks again (gnet has no "drained"
	// callback); while the client reads nothing the wait doubles up to
	// outboundRecheckMax, so thousands of stalled clients cost few timers.
	outboundRecheck    = time.Millisecond
	outboundRecheckMax = 64 * time.Millisecond
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
	budget     int    // fetch memory reserved for frame, counted in conn.fetchHeld
}

// conn is the per-connection state machine: bytes in, frames, requests,
// responses out in request order. It lives on one event loop and is never
// touched from another goroutine.
type conn struct {
	srv *Server
	nc  netConn
	be  Backend
	gb  GroupBackend   // be, if it also serves groups; nil otherwise
	cb  ClusterBackend // be, if it is one broker of a cluster; nil otherwise
	pr  RequestProbe   // be, if it counts requests; nil otherwise
	log *slog.Logger

	queue       []*slot // in-flight requests, oldest first
	inTraffic   bool    // inside onTraffic: completions wait for its final flush
	wakePending bool    // a Wake is queued that will flush
	paused      bool    // stopped parsing: too many in flight or too much unsent
	closing     bool    // decided to close; parse nothing more
	closed      bool    // OnClose ran: drop every late completion
	bpCancel    func()  // outbound backpressure recheck timer
	bpDelay     time.Duration
	stallLogged bool // the slow-reader line was logged for this stall
	bpSeen      int  // OutboundBuffered at the last recheck
	waits       map[*fetchWait]struct{}
	iov         [][]byte

	ip netip.Addr // for the per-IP count
	id uint64     // this server's serial number for the connection
	// reqs counts the requests dispatched on the connection: with id, it
	// orders one follower's fetches (FollowerFetch's session).
	reqs uint64
	// fetchHeld is the fetch memory this connection has reserved and not
	// yet handed to gnet: fetches in progress and responses queued.
	// outHeld is what was handed to gnet and may still sit in its
	// outbound buffer; it shrinks as the buffer drains (trimOut).
	fetchHeld, outHeld int
	budgetQ            []*fetchWait // fetches waiting for the fetch memory budget
	budgetQueued       bool         // in Server.budget's wait queue; guarded by its mu

	timerCancel  func()
	lastActive   time.Time // last byte in, response out, or outbound drained
	inSeen       int       // InboundBuffered when onTraffic last returned
	partialSince time.Time // when an incomplete frame was first seen; zero if none
}

func newConn(srv *Server, nc netConn, be Backend) *conn {
	c := &conn{srv: srv, nc: nc, be: be, log: srv.log, id: srv.connSeq.Add(1)}
	c.gb, _ = be.(GroupBackend)
	c.cb, _ = be.(ClusterBackend)
	c.pr, _ = be.(RequestProbe)
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
	if in := c.nc.InboundBuffered(); in != c.inSeen {
		c.lastActive = time.Now()
	}
	defer func() { c.inSeen = c.nc.InboundBuffered() }()
	if c.paused && c.nc.InboundBuffered() > c.srv.cfg.MaxRequestBytes+sizeLen {
		// gnet keeps reading a socket whatever we parse, so a client
		// that sends on while its responses go unread is closed before
		// its requests pile up.
		c.srv.stats.slowReaders.Add(1)
		c.srv.logPaused.log(c.log, slog.LevelWarn, "wire: client sends requests faster than it reads responses; closing connection",
			"buffered_in", c.nc.InboundBuffered(), "buffered_out", c.buffered(), "in_flight", len(c.queue))
		c.closing = true
		return true
	}
	c.retryBudget()
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
	return len(c.queue) < c.srv.cfg.MaxInflightRequests && c.buffered() < c.srv.cfg.Limits.MaxConnectionBufferedBytes
}

// buffered is the response memory this connection holds: fetched records
// reserved and not yet written, and gnet's unsent bytes.
func (c *conn) buffered() int { return c.fetchHeld + c.nc.OutboundBuffered() }

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
		if buffered == 0 {
			c.partialSince = time.Time{}
			return
		}
		if buffered < sizeLen {
			c.framePartial()
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
			c.framePartial()
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
		c.partialSince = time.Time{}
	}
}

// framePartial notes that a frame has started and not completed.
func (c *conn) framePartial() {
	if c.partialSince.IsZero() {
		c.partialSince = time.Now()
	}
}

func (c *conn) pause() {
	if !c.paused && len(c.queue) >= c.srv.cfg.MaxInflightRequests {
		c.srv.logInflight.log(c.log, slog.LevelInfo, "wire: requests in flight at the connection's limit; not reading until some complete",
			"in_flight", len(c.queue), "max_inflight_requests", c.srv.cfg.MaxInflightRequests)
	}
	c.paused = true
	if c.buffered() >= c.srv.cfg.Limits.MaxConnectionBufferedBytes {
		c.armRecheck()
	}
}

// armRecheck looks again soon at a connection held back by its buffered
// bytes: to write the responses it holds, and to read again.
func (c *conn) armRecheck() {
	if c.bpCancel != nil || c.closed {
		return
	}
	if c.bpDelay == 0 {
		c.bpDelay = outboundRecheck
	}
	c.bpCancel = c.be.After(c.bpDelay, func() {
		defer c.recoverPanic()
		c.bpCancel = nil
		if c.closed {
			return
		}
		ob := c.nc.OutboundBuffered()
		if ob < c.bpSeen {
			c.bpDelay = outboundRecheck
			c.lastActive = time.Now()
			c.stallLogged = false
		} else if c.bpDelay = min(2*c.bpDelay, outboundRecheckMax); c.bpDelay == outboundRecheckMax && ob > 0 && !c.stallLogged {
			c.stallLogged = true
			// Nothing sent for ~130 ms: not a large response on its way
			// but a client that does not read.
			c.srv.logPaused.log(c.log, slog.LevelInfo, "wire: client does not read its responses; holding them and not reading its requests",
				"buffered", c.buffered(), "max", c.srv.cfg.Limits.MaxConnectionBufferedBytes, "in_flight", len(c.queue))
		}
		c.bpSeen = ob
		c.flush() // trims too
		if c.paused && c.canRead() {
			c.paused = false
			c.wake()
		}
		if c.outHeld > 0 || (c.paused && c.buffered() >= c.srv.cfg.Limits.MaxConnectionBufferedBytes) {
			c.armRecheck()
		}
	})
}

// trimOut gives back the fetch memory of response bytes gnet has sent.
func (c *conn) trimOut() {
	if c.outHeld == 0 {
		return
	}
	if ob := c.nc.OutboundBuffered(); c.outHeld > ob {
		c.srv.budget.release(c.outHeld - ob)
		c.outHeld = ob
	}
	if c.outHeld > 0 {
		// gnet drains its buffer without telling us: look again.
		c.armRecheck()
	}
}

// hold adds n (or, negative, gives back) fetch memory reserved by this
// connection. After close everything was given back at once: nothing more
// is counted.
func (c *conn) hold(n int) {
	if c.closed || n == 0 {
		return
	}
	c.fetchHeld += n
	if n > 0 {
		c.srv.budget.force(n)
	} else {
		c.srv.budget.release(-n)
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
	if c.pr != nil {
		c.pr.ObserveRequest(h.key, len(frame)+4)
	}
	min, max, known := versionRange(h.key, c.gb != nil, c.cb != nil)
	if h.key == kmsg.ApiVersions.Int16() && h.version > max {
		// KIP-511: answer in v0, which every client can read, without
		// parsing a body whose layout we may not know.
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.ErrorCode = errUnsupportedVersion
		resp.ApiKeys = apiVersionsKeys(c.gb != nil, c.cb != nil)
		c.complete(c.push(h), resp)
		return
	}
	if !known {
		c.unservedKey(h)
		return
	}
	req := kmsg.RequestForKey(h.key)
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
	c.reqs++
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
	case *kmsg.IncrementalAlterConfigsRequest:
		c.handleIncrementalAlterConfigs(s, q)
	case *kmsg.CreatePartitionsRequest:
		c.handleCreatePartitions(s, q)
	case *kmsg.DeleteRecordsRequest:
		c.handleDeleteRecords(s, q)
	case *kmsg.DescribeLogDirsRequest:
		c.handleDescribeLogDirs(s, q)
	case *kmsg.DescribeProducersRequest:
		c.handleDescribeProducers(s, q)
	case *kmsg.OffsetForLeaderEpochRequest:
		c.handleOffsetForLeaderEpoch(s, q)
	case *kmsg.DescribeClusterRequest:
		c.handleDescribeCluster(s, q)
	case *kmsg.AddRaftVoterRequest:
		c.handleAddRaftVoter(s, q)
	case *kmsg.UnregisterBrokerRequest:
		c.handleUnregisterBroker(s, q)
	case *kmsg.ElectLeadersRequest:
		c.handleElectLeaders(s, q)
	case *kmsg.AlterPartitionAssignmentsRequest:
		c.handleAlterPartitionAssignments(s, q)
	case *kmsg.ListPartitionReassignmentsRequest:
		c.handleListPartitionReassignments(s, q)
	default: // versionRange admits only the keys above and, with gb, groups
		c.dispatchGroup(s, req, clientID)
	}
}

// push appends a slot for a new request.
func (c *conn) push(h header) *slot {
	h.clientID = nil // aliases the frame, which is about to be discarded
	s := &slot{h: h, held: c.srv.drain.hold()}
	c.queue = append(c.queue, s)
	return s
}

// fanIn answers a request once every backend callback its handler started
// has returned. It starts at one, released by the handler's own done after
// its loop, so callbacks that run synchronously cannot answer before every
// part has been started.
type fanIn struct {
	pending int
	finish  func()
}

// add counts one more callback to wait for.
func (f *fanIn) add() { f.pending++ }

// done marks one callback (or the handler's loop) finished and calls
// finish after the last.
func (f *fanIn) done() {
	if f.pending--; f.pending == 0 {
		f.finish()
	}
}

// answerAfter is the fanIn that completes s with resp.
func (c *conn) answerAfter(s *slot, resp kmsg.Response) *fanIn {
	return &fanIn{pending: 1, finish: func() { c.complete(s, resp) }}
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
	if c.pr != nil {
		c.pr.ObserveResponse(s.h.key, len(s.frame))
	}
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
	closeNow, blocked := false, false
	bufMax := c.srv.cfg.Limits.MaxConnectionBufferedBytes
	for !c.closed && len(c.queue) > 0 && c.queue[0].done && !closeNow {
		if c.nc.OutboundBuffered() >= bufMax {
			// The client is not reading: keep the rest here, where their
			// memory stays counted, instead of in gnet's unbounded buffer.
			blocked = true
			break
		}
		iov := c.iov[:0]
		n, size := 0, 0
		for n < len(c.queue) && c.queue[n].done && len(iov) < iovBatch && size < bufMax {
			s := c.queue[n]
			n++
			if s.frame != nil {
				iov = append(iov, s.frame)
				size += len(s.frame)
			}
			if s.budget > 0 {
				c.fetchHeld -= s.budget
				c.outHeld += s.budget
				s.budget = 0
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
			c.lastActive = time.Now()
		}
		c.iov = iov[:0]
	}
	c.trimOut()
	if blocked {
		c.armRecheck()
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
	if c.timerCancel != nil {
		c.timerCancel()
		c.timerCancel = nil
	}
	c.srv.budget.forget(c)
	clear(c.budgetQ)
	c.budgetQ = nil
	// Everything this connection reserved goes back at once; the
	// callbacks still in flight see c.closed and count nothing more.
	c.srv.budget.release(c.fetchHeld + c.outHeld)
	c.fetchHeld, c.outHeld = 0, 0
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

// startTimer arms the idle and request-read timeouts. One timer per
// connection, firing at half the shorter timeout, so a connection is
// closed between 1 and 1.5 times its timeout.
func (c *conn) startTimer() {
	lim := &c.srv.cfg.Limits
	period := time.Duration(0)
	for _, d := range []time.Duration{lim.IdleTimeout, lim.RequestTimeout} {
		if d > 0 && (period == 0 || d < period) {
			period = d
		}
	}
	if period == 0 {
		return
	}
	c.lastActive = time.Now()
	c.armTimer(max(period/2, time.Millisecond))
}

func (c *conn) armTimer(period time.Duration) {
	c.timerCancel = c.be.After(period, func() {
		defer c.recoverPanic()
		c.timerCancel = nil
		if c.closed {
			return
		}
		if !c.checkTimeouts(time.Now()) {
			c.armTimer(period)
		}
	})
}

// checkTimeouts closes the connection if a timeout has passed; it reports
// whether it did.
func (c *conn) checkTimeouts(now time.Time) bool {
	lim := &c.srv.cfg.Limits
	if ob := c.nc.OutboundBuffered(); ob != c.bpSeen {
		if ob < c.bpSeen {
			c.lastActive = now // the client is reading
		}
		c.bpSeen = ob
	}
	// A frame counts as stalled only while we are reading: a connection
	// paused by backpressure has bytes buffered through our choice.
	if lim.RequestTimeout > 0 && !c.paused && !c.partialSince.IsZero() && now.Sub(c.partialSince) >= lim.RequestTimeout {
		c.srv.stats.requestTimeout.Add(1)
		c.srv.logSlow.log(c.log, slog.LevelWarn, "wire: request not completed in time; closing connection",
			"after", now.Sub(c.partialSince).Round(time.Millisecond), "request_timeout", lim.RequestTimeout,
			"buffered", c.nc.InboundBuffered())
		c.abort()
		return true
	}
	// A fetch long-poll is the broker's own wait, not the client's
	// idleness; anything else in flight for the whole timeout (responses
	// the client does not read, above all) is.
	if lim.IdleTimeout > 0 && len(c.waits) == 0 && now.Sub(c.lastActive) >= lim.IdleTimeout {
		c.srv.stats.idleClosed.Add(1)
		c.srv.logIdle.log(c.log, slog.LevelInfo, "wire: idle connection; closing",
			"idle", now.Sub(c.lastActive).Round(time.Millisecond), "idle_timeout", lim.IdleTimeout, "in_flight", len(c.queue))
		c.abort()
		return true
	}
	return false
}

// retryBudget starts the fetches waiting for fetch memory, oldest first,
// while the budget has room.
func (c *conn) retryBudget() {
	for len(c.budgetQ) > 0 && !c.closed {
		w := c.budgetQ[0]
		if !w.tryStart() {
			c.srv.budget.wait(c)
			if !w.tryStart() {
				return
			}
		}
		c.budgetQ[0] = nil
		c.budgetQ = c.budgetQ[1:]
	}
}
