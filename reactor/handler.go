package reactor

import (
	"log/slog"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// handler wraps the protocol's gnet.EventHandler. It
//   - hides the reactor's own connections from the protocol: boot probes,
//     and clients that arrive before every core is up or after Stop began,
//     which are reset at once;
//   - holds clients that arrive between boot and Serve (Config.HoldClients)
//     and hands them over at Serve, with what they sent meanwhile;
//   - times every protocol callback for the stall detector;
//   - after every callback retries overflowed messages and submits queued
//     I/O, so nothing a callback queued waits for the loop's next wake-up.
//
// Everything else is delegated unchanged.
type handler struct {
	r *Runtime
	h gnet.EventHandler
}

// internalConn marks, in Conn.Context, connections the protocol must never
// see. The protocol sets its own context only on connections it was shown.
type internalConn struct{}

func isInternal(c gnet.Conn) bool {
	_, ok := c.Context().(internalConn)
	return ok
}

// heldConn marks, in Conn.Context, a client held until Serve (see
// Runtime.hold); the protocol has not seen it yet.
type heldConn struct{}

func (w *handler) OnBoot(eng gnet.Engine) gnet.Action {
	w.r.eng = eng
	action := w.h.OnBoot(eng)
	if action != gnet.Shutdown {
		close(w.r.booted)
	}
	return action
}

func (w *handler) OnShutdown(eng gnet.Engine) { w.h.OnShutdown(eng) }

func (w *handler) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	switch w.r.phase.Load() {
	case phaseBoot:
		return w.r.openDuringBoot(c)
	case phaseHeld:
		if w.r.hold(c) {
			return nil, gnet.None
		}
	}
	if w.r.phase.Load() == phaseStopping {
		c.SetContext(internalConn{})
		return refuse(c)
	}
	return w.open(c)
}

// open shows client c to the protocol.
func (w *handler) open(c gnet.Conn) ([]byte, gnet.Action) {
	core := w.r.byLoop[c.EventLoop()]
	start := time.Now()
	out, action := w.h.OnOpen(c)
	core.afterCallback(start, stallOnOpen)
	return out, action
}

func (w *handler) OnTraffic(c gnet.Conn) gnet.Action {
	switch c.Context().(type) {
	case internalConn:
		_, _ = c.Discard(-1)
		return gnet.None
	case heldConn:
		if w.r.phase.Load() != phaseRunning {
			// Unread, what it sent stays in gnet's inbound buffer for
			// the protocol to read once Serve hands it over.
			if n := c.InboundBuffered(); n > w.r.cfg.HeldBytesMax {
				w.r.heldShed.log(w.r.log, "reactor: resetting a client that sent more than it may before the server is ready",
					"remote", c.RemoteAddr().String(), "bytes", n, "held_bytes_max", w.r.cfg.HeldBytesMax)
				w.r.unhold(c)
				return gnet.Close // reset: SO_LINGER 0 since hold
			}
			return gnet.None
		}
		// Serve's wake, or traffic after Serve: hand it over.
		_ = c.SetLinger(-1)
		c.SetContext(nil)
		out, action := w.open(c)
		if len(out) > 0 {
			_, _ = c.Write(out)
		}
		if action != gnet.None {
			return action
		}
	}
	core := w.r.byLoop[c.EventLoop()]
	start := time.Now()
	action := w.h.OnTraffic(c)
	core.afterCallback(start, stallOnTraffic)
	return action
}

func (w *handler) OnClose(c gnet.Conn, err error) gnet.Action {
	switch c.Context().(type) {
	case internalConn:
		return gnet.None
	case heldConn:
		w.r.unhold(c)
		return gnet.None
	}
	core := w.r.byLoop[c.EventLoop()]
	start := time.Now()
	action := w.h.OnClose(c, err)
	core.afterCallback(start, stallOnClose)
	return action
}

// OnTick runs on a plain goroutine (not a loop), so it is passed through
// untimed.
func (w *handler) OnTick() (time.Duration, gnet.Action) { return w.h.OnTick() }

// refuse closes a connection the protocol never sees (a client arriving
// before boot is done or after a shutdown began) with a reset, not a FIN:
// to a client a FIN before any answer looks like a protocol mismatch, which
// franz-go does not retry (it reports "is TLS missing?" and ends a group
// session, so the member rejoins: a rebalance), whereas a reset, like a
// refused dial, is a network error every client retries.
func refuse(c gnet.Conn) ([]byte, gnet.Action) {
	_ = c.SetLinger(0)
	return nil, gnet.Close
}

// rateLog logs a warning at most once per rateLogInterval, with the number
// of occurrences it left out. Safe from any goroutine.
type rateLog struct {
	mu     sync.Mutex
	last   time.Time
	missed int
}

const rateLogInterval = time.Second

func (l *rateLog) log(log *slog.Logger, msg string, args ...any) {
	l.mu.Lock()
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < rateLogInterval {
		l.missed++
		l.mu.Unlock()
		return
	}
	missed := l.missed
	l.last, l.missed = now, 0
	l.mu.Unlock()
	log.Warn(msg, append(args, "left_out", missed)...)
}
