package wire

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
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
	// Limits bound connections, fetch memory and slow clients.
	Limits Limits
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

	// connSeq numbers connections: a follower's fetches over one
	// connection arrive in order (FollowerFetch's session).
	connSeq atomic.Uint64

	mu     sync.Mutex
	eng    gnet.Engine
	booted bool

	drain drainState

	fdLimit int // soft RLIMIT_NOFILE at start, 0 if unknown
	adm     admission
	budget  fetchBudget
	// One rate limiter per kind of refusal, so one flood does not hide
	// another's line.
	logShed, logIdle, logSlow, logBudget, logPaused, logInflight rateLog
}

type serverStats struct {
	conns          atomic.Int64
	requests       atomic.Int64
	protocolErrors atomic.Int64
	panics         atomic.Int64
	refused        atomic.Int64
	idleClosed     atomic.Int64
	requestTimeout atomic.Int64
	slowReaders    atomic.Int64
	budgetWaits    atomic.Int64
}

// Stats is a snapshot of server counters.
type Stats struct {
	OpenConnections int64
	Requests        int64 // frames parsed
	ProtocolErrors  int64 // connections closed for a malformed or unsupported frame
	Panics          int64 // handler panics recovered (each closed its connection)
	// Refused counts connections closed on open by a connection limit.
	Refused int64
	// IdleClosed and RequestTimeouts count connections closed by
	// Limits.IdleTimeout and Limits.RequestTimeout.
	IdleClosed      int64
	RequestTimeouts int64
	// SlowReaders counts connections closed for sending past their
	// buffered limit while their responses went unread.
	SlowReaders int64
	// FetchMemoryBytes is the fetch memory reserved now; BudgetWaits counts
	// fetches that had to wait for it.
	FetchMemoryBytes int64
	BudgetWaits      int64
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
	cfg.Limits = cfg.Limits.withDefaults()
	s := &Server{cfg: cfg, attach: attach, log: cfg.Logger, fdLimit: fdLimit()}
	s.adm.perIP = make(map[netip.Addr]int)
	s.budget.max = cfg.Limits.FetchMemoryBytes
	return s
}

// Stats returns the current counters. Safe from any goroutine.
func (s *Server) Stats() Stats {
	return Stats{
		OpenConnections:  s.stats.conns.Load(),
		Requests:         s.stats.requests.Load(),
		ProtocolErrors:   s.stats.protocolErrors.Load(),
		Panics:           s.stats.panics.Load(),
		Refused:          s.stats.refused.Load(),
		IdleClosed:       s.stats.idleClosed.Load(),
		RequestTimeouts:  s.stats.requestTimeout.Load(),
		SlowReaders:      s.stats.slowReaders.Load(),
		FetchMemoryBytes: s.budget.used.Load(),
		BudgetWaits:      s.stats.budgetWaits.Load(),
	}
}

// OnBoot records the engine so that Stop can shut it down, and shortens
// the listen backlog (see acceptBacklog).
func (s *Server) OnBoot(eng gnet.Engine) gnet.Action {
	s.mu.Lock()
	s.eng, s.booted = eng, true
	s.mu.Unlock()
	lim := &s.cfg.Limits
	s.log.Info("wire: limits", "max_connections", lim.MaxConnections, "max_connections_per_ip", lim.MaxConnectionsPerIP,
		"fd_limit", s.fdLimit, "idle_timeout", lim.IdleTimeout, "request_timeout", lim.RequestTimeout,
		"fetch_max_bytes", lim.FetchMaxBytes, "max_partition_fetch_bytes", lim.MaxPartitionFetchBytes,
		"fetch_memory_bytes", lim.FetchMemoryBytes, "max_connection_buffered_bytes", lim.MaxConnectionBufferedBytes,
		"max_inflight_requests", s.cfg.MaxInflightRequests)
	// listen(2) on a listening socket only changes its backlog; the dup
	// shares the socket.
	if fd, err := eng.Dup(); err == nil {
		if err := unix.Listen(fd, acceptBacklog); err != nil {
			s.log.Warn("wire: could not shorten the listen backlog", "err", err)
		}
		_ = unix.Close(fd)
	}
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

// OnOpen admits the connection under the connection limits and binds it
// to its Backend and state machine.
func (s *Server) OnOpen(c gnet.Conn) (out []byte, action gnet.Action) {
	ip := remoteIP(c.RemoteAddr())
	if why := s.admit(c.Fd(), ip); why != "" {
		s.stats.refused.Add(1)
		s.logShed.log(s.log, slog.LevelWarn, "wire: refusing connection: "+why, "remote", ip.String(),
			"open", s.adm.total.Load(), "max_connections", s.cfg.Limits.MaxConnections,
			"max_connections_per_ip", s.cfg.Limits.MaxConnectionsPerIP, "fd", c.Fd(), "fd_limit", s.fdLimit)
		return nil, gnet.Close
	}
	defer func() {
		if r := recover(); r != nil {
			s.stats.panics.Add(1)
			s.log.Error("wire: panic attaching connection", "panic", r)
			s.leave(ip)
			action = gnet.Close
		}
	}()
	be := s.attach(c)
	if be == nil {
		s.log.Warn("wire: no backend for connection", "remote", c.RemoteAddr())
		s.leave(ip)
		return nil, gnet.Close
	}
	cs := newConn(s, c, be)
	cs.ip = ip
	c.SetContext(cs)
	s.drain.add(cs)
	s.stats.conns.Add(1)
	cs.startTimer()
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
		s.leave(cs.ip)
	}
	return gnet.None
}
