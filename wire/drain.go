package wire

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Draining is the first step of a clean shutdown, so that a restart is
// something every client rides through:
//
//   - long-poll fetches waiting for data answer at once, normally, with
//     what they have (empty is fine), as their max wait would have;
//   - every request already dispatched finishes with its normal answer;
//   - a new Produce gets NOT_LEADER_OR_FOLLOWER and admin writes
//     NOT_CONTROLLER, which every client retries after refreshing
//     metadata; an acks=0 produce closes its connection, Kafka's way to
//     say the same;
//   - a new Fetch or ListOffsets is parked: never answered, it ends with
//     the connection, which every client retries as a network error.
//     NOT_LEADER_OR_FOLLOWER would be worse here: KafkaJS answers a fetch
//     error of that kind by rejoining its group (a rebalance), and a
//     coordinator lookup cut by the closing connection stops the consumer
//     for good ("Failed to find group coordinator", non-retriable);
//   - Metadata and ApiVersions are answered as usual, and group requests
//     go to the GroupBackend, told whether they arrived while draining
//     (ClientInfo.Draining): it answers those that finish at once, and
//     parks or refuses the others (cluster's onCoordinator says which and
//     why).
//
// Drain returns once every request received before it began is answered
// (requests arriving later are answered at once, or by the backend's own
// rules, and do not hold it); then the broker closes its logs and its
// connections.

// drainState is the Server's part of draining. conns is guarded by mu;
// everything else is atomic.
type drainState struct {
	on       atomic.Bool
	inflight atomic.Int64  // held requests (received before draining) not yet written or dropped
	idle     chan struct{} // signalled when inflight reaches 0 while on

	mu    sync.Mutex
	conns map[*conn]struct{}
}

func (d *drainState) add(c *conn) {
	d.mu.Lock()
	if d.conns == nil {
		d.conns = map[*conn]struct{}{}
	}
	d.conns[c] = struct{}{}
	d.mu.Unlock()
}

func (d *drainState) remove(c *conn) {
	d.mu.Lock()
	delete(d.conns, c)
	d.mu.Unlock()
}

// hold counts a new request if draining has not begun, and reports
// whether it did. The count goes up before the flag is read, and Drain
// sets the flag before it reads the count, so no request is missed by both.
func (d *drainState) hold() bool {
	d.inflight.Add(1)
	if d.on.Load() {
		d.left(1)
		return false
	}
	return true
}

// release uncounts the held ones of slots leaving a connection's queue
// (answered, or dropped with the connection).
func (d *drainState) release(slots []*slot) {
	n := 0
	for _, s := range slots {
		if s.held {
			n++
		}
	}
	d.left(n)
}

func (d *drainState) left(n int) {
	if n == 0 {
		return
	}
	if d.inflight.Add(-int64(n)) == 0 && d.on.Load() {
		select {
		case d.idle <- struct{}{}:
		default:
		}
	}
}

// Draining reports whether Drain has begun. Safe from any goroutine.
func (s *Server) Draining() bool { return s.drain.on.Load() }

// Inflight is the number of requests received before draining began (all
// of them, before) and not yet answered, over every connection. Safe from
// any goroutine.
func (s *Server) Inflight() int64 { return s.drain.inflight.Load() }

// Drain switches the server to draining (see above) and waits until no
// request is in flight, or ctx ends (then it returns an error naming how
// many were left). Safe from any goroutine; call it once.
func (s *Server) Drain(ctx context.Context) error {
	s.drain.idle = make(chan struct{}, 1)
	s.drain.on.Store(true)
	// Each connection finishes its long-polls on its own loop: a Wake runs
	// OnTraffic there, which sees the flag.
	s.drain.mu.Lock()
	for c := range s.drain.conns {
		_ = c.nc.Wake(nil)
	}
	s.drain.mu.Unlock()
	for s.drain.inflight.Load() > 0 {
		select {
		case <-s.drain.idle:
		case <-ctx.Done():
			n := s.drain.inflight.Load()
			return fmt.Errorf("wire: draining: %d requests still in flight: %w", n, ctx.Err())
		}
	}
	return nil
}

// drainWaits answers every long-poll of this connection now, normally.
func (c *conn) drainWaits() {
	for w := range c.waits {
		if !w.finished {
			w.finish()
		}
	}
}

// refuseDraining answers req with a retriable error, or parks it, if the
// server is draining and req is one that must not start now. It reports
// whether it did.
func (c *conn) refuseDraining(s *slot, req kmsg.Request) bool {
	if !c.srv.drain.on.Load() {
		return false
	}
	var code int16
	switch q := req.(type) {
	case *kmsg.ProduceRequest:
		if q.Acks == 0 {
			c.completeSilent(s, true)
			return true
		}
		code = kerr.NotLeaderForPartition.Code
	case *kmsg.FetchRequest, *kmsg.ListOffsetsRequest:
		return true // parked: the slot stays open until the connection closes
	case *kmsg.CreateTopicsRequest, *kmsg.DeleteTopicsRequest, *kmsg.CreatePartitionsRequest, *kmsg.AlterConfigsRequest,
		*kmsg.IncrementalAlterConfigsRequest:
		code = kerr.NotController.Code
	default:
		return false
	}
	c.complete(s, errorResponse(req, code))
	return true
}
