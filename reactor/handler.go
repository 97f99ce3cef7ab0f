package reactor

import (
	"time"

	"github.com/panjf2000/gnet/v2"
)

// handler wraps the protocol's gnet.EventHandler. It
//   - hides the reactor's own connections from the protocol: boot probes,
//     and clients that arrive before every core is up or after Stop began,
//     which are closed at once;
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
	case phaseHeld, phaseStopping:
		c.SetContext(internalConn{})
		return refuse(c)
	}
	core := w.r.byLoop[c.EventLoop()]
	start := time.Now()
	out, action := w.h.OnOpen(c)
	core.afterCallback(start, stallOnOpen)
	return out, action
}

func (w *handler) OnTraffic(c gnet.Conn) gnet.Action {
	if isInternal(c) {
		_, _ = c.Discard(-1)
		return gnet.None
	}
	core := w.r.byLoop[c.EventLoop()]
	start := time.Now()
	action := w.h.OnTraffic(c)
	core.afterCallback(start, stallOnTraffic)
	return action
}

func (w *handler) OnClose(c gnet.Conn, err error) gnet.Action {
	if isInternal(c) {
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
