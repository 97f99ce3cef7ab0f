package adminapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/strand-io/strand/cluster"
)

// Broker is what the server reads from the node; *cluster.Node implements
// it.
type Broker interface {
	Snapshot(ctx context.Context) ([]cluster.CoreSnapshot, error)
	Topics() []cluster.TopicLayout
	Info() cluster.BrokerInfo
	Members() []cluster.MemberInfo
	Ready() bool
	Limits() cluster.LimitStats
}

var _ Broker = (*cluster.Node)(nil)

// Config configures a Server.
type Config struct {
	Listen string // host:port
	Logger *slog.Logger
	// SnapshotTimeout bounds how long a request or scrape waits for the
	// cores to report; past it the request answers 503 and the scrape
	// fails. Default 2s.
	SnapshotTimeout time.Duration
}

// Server is a running admin HTTP server. Until SetBroker it answers
// health, and 503 elsewhere: the broker is starting.
type Server struct {
	cfg      Config
	log      *slog.Logger
	ln       net.Listener
	http     *http.Server
	broker   atomic.Pointer[Broker]
	draining atomic.Bool
	done     chan struct{}
	// lastTimeoutLog rate-limits the warning of a core that did not
	// report in time (unix nanoseconds).
	lastTimeoutLog atomic.Int64
}

// timeoutLogInterval: at most one "core did not report" warning per this.
const timeoutLogInterval = 10 * time.Second

// takeSnapshot is Broker.Snapshot bounded by Config.SnapshotTimeout, with a
// rate-limited warning when it bites.
func (s *Server) takeSnapshot(ctx context.Context, b Broker) ([]cluster.CoreSnapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SnapshotTimeout)
	defer cancel()
	snap, err := b.Snapshot(ctx)
	if err != nil {
		now, last := time.Now().UnixNano(), s.lastTimeoutLog.Load()
		if now-last >= int64(timeoutLogInterval) && s.lastTimeoutLog.CompareAndSwap(last, now) {
			s.log.Warn("admin API: a core did not report its state in time; answering 503 (see --admin-snapshot-timeout)",
				"err", err, "timeout", s.cfg.SnapshotTimeout)
		}
	}
	return snap, err
}

// Listen binds cfg.Listen and serves on a goroutine of its own.
func Listen(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SnapshotTimeout <= 0 {
		cfg.SnapshotTimeout = 2 * time.Second
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, ln: ln, done: make(chan struct{})}
	s.http = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.done)
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin API stopped", "err", err)
		}
	}()
	s.log.Info("admin API listening", "addr", ln.Addr().String())
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// SetBroker makes the server answer for b: call it once the node has
// started.
func (s *Server) SetBroker(b Broker) { s.broker.Store(&b) }

// Drain makes /v1/ready answer 503 from now on: the node is shutting down,
// so load balancers and orchestrators stop sending it work.
func (s *Server) Drain() { s.draining.Store(true) }

// Close stops the server, waiting for requests in flight until ctx ends
// and then cutting off the rest (a 30 s CPU profile must not hold a
// shutdown).
func (s *Server) Close(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, s.http.Close())
	}
	<-s.done
	return err
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v1/health", get(s.health))
	mux.Handle("/v1/ready", get(s.ready))
	mux.Handle("/v1/brokers", get(s.withBroker(s.brokers)))
	mux.Handle("/v1/topics", get(s.withBroker(s.topics)))
	mux.Handle("/v1/topics/{name}", get(s.withBroker(s.topic)))
	mux.Handle("/v1/groups", get(s.withBroker(s.groups)))
	mux.Handle("/v1/groups/{id}", get(s.withBroker(s.group)))
	mux.Handle("/v1/placement", get(s.withBroker(s.placement)))
	mux.Handle("/v1/placement/move", post(s.withBroker(s.move)))
	mux.Handle("/v1/placement/rebalance", post(s.withBroker(s.rebalance)))
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path,
			"the API has /v1/health, /v1/ready, /v1/brokers, /v1/topics[/{name}], /v1/groups[/{id}], /v1/placement[/move, /rebalance]; metrics are at /metrics")
	})
	mux.Handle("/", get(s.index))
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(s))
	mux.Handle("/metrics", get(promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		// A failed snapshot is logged, rate-limited, by takeSnapshot.
		ErrorHandling: promhttp.ContinueOnError,
	}).ServeHTTP))
	// Go's profiler, on this mux only (not http.DefaultServeMux).
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// get admits GET and HEAD only, answering anything else with a JSON 405.
func get(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path,
				"use GET; only /v1/placement/move and /v1/placement/rebalance take POST")
			return
		}
		h(w, r)
	}
}

// post admits POST only, answering anything else with a JSON 405.
func post(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			writeError(w, http.StatusMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path,
				"this endpoint changes the placement: use POST")
			return
		}
		h(w, r)
	}
}

// withBroker answers 503 until the node has started and while a snapshot
// cannot be taken.
func (s *Server) withBroker(h func(http.ResponseWriter, *http.Request, Broker)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b := s.broker.Load()
		if b == nil {
			writeError(w, http.StatusServiceUnavailable, "the broker is starting",
				"retry in a moment; GET /v1/ready answers 200 once every core is up and every log is open")
			return
		}
		h(w, r, *b)
	}
}

// snapshot takes the cores' snapshot for a request, answering 503 itself
// when a core does not report in time.
func (s *Server) snapshot(w http.ResponseWriter, r *http.Request, b Broker) ([]cluster.CoreSnapshot, bool) {
	snap, err := s.takeSnapshot(r.Context(), b)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error(),
			"a core is stalled, overloaded or stopping: check the log for 'reactor stall' and strand_core_busy_seconds_total; retry")
		return nil, false
	}
	return snap, true
}

// apiError is the body of every error answer.
type apiError struct {
	Error string `json:"error"`
	Hint  string `json:"hint"`
}

func writeError(w http.ResponseWriter, status int, msg, hint string) {
	writeJSON(w, status, apiError{Error: msg, Hint: hint})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
