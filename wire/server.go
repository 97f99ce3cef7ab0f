package wire

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/panjf2000/gnet/v2"
)

// Config configures a Server.
type Config struct {
	NodeID         int32
	AdvertisedHost string
	AdvertisedPort int32
	// ClusterID is reported in Metadata v2+. Default "strand".
	ClusterID string
	// MaxRequestBytes bounds one request frame (Kafka's
	// socket.request.max.bytes). A larger or negative size prefix closes the
	// connection. Default 100 MiB.
	MaxRequestBytes int
	// MaxInflightRequests bounds the requests one connection may have
	// waiting for a response; past it the server stops reading that
	// connection until some complete. Default 1024.
	MaxInflightRequests int
	// Logger receives connection-level warnings. Default slog.Default().
	Logger *slog.Logger
	// AutoCreateMaxPerRequest bounds the unknown topics one Metadata
	// request may have created; the others are answered
	// LEADER_NOT_AVAILABLE (retriable) at once. 0: 16; negative: no bound.
	AutoCreateMaxPerRequest int
}

const (
	defaultMaxRequestBytes     = 100 << 20
	defaultMaxInflightRequests = 1024
)

// Server is a gnet.EventHandler speaking the Kafka protocol. It keeps no
// per-loop state and makes no assumption about which loop a connection is
// on: all state lives in the per-connection conn, stored in the gnet.Conn
// context, and the Backend returned by Attach for that connection.
type Server struct {
	gnet.BuiltinEventEngine

	cfg    Config
	attach Attach
	log    *slog.Logger
	stats  serverStats

	mu     sync.Mutex
	eng    gnet.Engine
	booted bool

	drain drainState
}

type serverStats struct {
	conns          atomic.Int64
	requests       atomic.Int64
	protocolErrors atomic.Int64
	panics         atomic.Int64
}

// Stats is a snapshot of server counters.
type Stats struct {
	OpenConnections int64
	Requests        int64 // frames parsed
	ProtocolErrors  int64 // connections closed for a malformed or unsupported frame
	Panics          int64 // handler panics recovered (each closed its connection)
}

// NewServer returns a Server that binds each connection to a Backend with
// attach. Run it with gnet.Run(srv, "tcp://host:port", ...).
func NewServer(cfg Config, attach Attach) *Server {
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = defaultMaxRequestBytes
	}
	if cfg.MaxInflightRequests <= 0 {
		cfg.MaxInflightRequests = defaultMaxInflightRequests
	}
	if cfg.ClusterID == "" {
		cfg.ClusterID = "strand"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Server{cfg: cfg, attach: attach, log: cfg.Logger}
}

// Stats returns the current counters. Safe from any goroutine.
func (s *Server) Stats() Stats {
	return Stats{
		OpenConnections: s.stats.conns.Load(),
		Requests:        s.stats.requests.Load(),
		ProtocolErrors:  s.stats.protocolErrors.Load(),
		Panics:          s.stats.panics.Load(),
	}
}

// OnBoot records the engine so that Stop can shut it down.
func (s *Server) OnBoot(eng gnet.Engine) gnet.Action {
	s.mu.Lock()
	s.eng, s.booted = eng, true
	s.mu.Unlock()
	return gnet.None
}

// Stop shuts the engine down gracefully (gnet polls, so it takes ~500 ms).
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	eng, booted := s.eng, s.booted
	s.mu.Unlock()
	if !booted {
		return errors.New("wire: server not running")
	}
	return eng.Stop(ctx)
}

// OnOpen binds the connection to its Backend and state machine.
func (s *Server) OnOpen(c gnet.Conn) (out []byte, action gnet.Action) {
	defer func() {
		if r := recover(); r != nil {
			s.stats.panics.Add(1)
			s.log.Error("wire: panic attaching connection", "panic", r)
			action = gnet.Close
		}
	}()
	be := s.attach(c)
	if be == nil {
		s.log.Warn("wire: no backend for connection", "remote", c.RemoteAddr())
		return nil, gnet.Close
	}
	cs := newConn(s, c, be)
	c.SetContext(cs)
	s.drain.add(cs)
	s.stats.conns.Add(1)
	return nil, gnet.None
}

// OnTraffic runs the connection's state machine over the new bytes.
func (s *Server) OnTraffic(c gnet.Conn) gnet.Action {
	cs, ok := c.Context().(*conn)
	if !ok {
		return gnet.Close
	}
	if cs.onTraffic() {
		return gnet.Close
	}
	return gnet.None
}

// OnClose cancels the connection's pending waits and drops its state.
func (s *Server) OnClose(c gnet.Conn, _ error) gnet.Action {
	if cs, ok := c.Context().(*conn); ok {
		s.drain.remove(cs)
		cs.onClose()
		c.SetContext(nil)
		s.stats.conns.Add(-1)
	}
	return gnet.None
}
