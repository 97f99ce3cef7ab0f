package reactor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// Runtime phases, in order. OnOpen serves clients only in phaseRunning;
// phaseHeld (Config.HoldClients) lasts from boot until Serve.
const (
	phaseBoot int32 = iota
	phaseHeld
	phaseRunning
	phaseStopping
)

// Runtime is the set of cores of one process and the gnet engine they run.
// Its methods are safe from any goroutine.
type Runtime struct {
	cfg   Config
	log   *slog.Logger
	cores []*Core
	epoch time.Time
	addr  netip.AddrPort

	eng     gnet.Engine   // set in OnBoot
	booted  chan struct{} // closed by OnBoot
	runDone chan struct{} // closed when gnet.Run returns
	runErr  error

	// Boot state, guarded by bootMu until boot ends (phaseHeld or
	// phaseRunning); byLoop is read-only afterwards (that store publishes
	// it).
	bootMu     sync.Mutex
	bootDials  map[netip.AddrPort]chan error
	byLoop     map[gnet.EventLoop]*Core
	adopted    int
	bootClosed bool
	phase      atomic.Int32 // phaseBoot → (phaseHeld →) phaseRunning → phaseStopping

	// heldMu orders hold (a loop taking a client in phaseHeld) against
	// Serve (leaving it), so that Serve wakes every client held before it.
	heldMu   sync.Mutex
	held     map[gnet.Conn]struct{}
	heldShed rateLog // "held client sent too much" warnings

	// gate orders goroutines that are not loop threads (reapers, timer
	// callbacks, Post) against Stop: once closed, they no longer touch loops.
	gate       sync.RWMutex
	gateClosed bool

	prevProcs int // GOMAXPROCS before Start, 0 if untouched

	keptMu   sync.Mutex
	kept     net.Listener // Config.KeepPort: the address, held after Stop
	stopOnce sync.Once
	stopErr  error
}

// Start runs the gnet engine with one event loop per CPU, pins each loop's
// thread to its CPU, creates its dma.Engine on that thread, and returns once
// every core is ready and the listener accepts clients. h is the protocol
// handler; it sees only client connections, each on a ready core.
func Start(cfg Config, h gnet.EventHandler) (*Runtime, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: nil handler", ErrConfig)
	}
	if cfg.Listen == "" || strings.Contains(cfg.Listen, "://") {
		return nil, fmt.Errorf("%w: Listen %q must be host:port without a scheme", ErrConfig, cfg.Listen)
	}
	cfg = cfg.withDefaults()
	cpus, err := resolveCPUs(cfg.CPUs)
	if err != nil {
		return nil, err
	}
	r := newRuntime(cfg, cpus)
	if n := procsFor(cfg.GOMAXPROCS, len(cpus)); n > 0 {
		r.prevProcs = runtime.GOMAXPROCS(n)
	}
	opts := append(append([]gnet.Option(nil), cfg.Options...),
		gnet.WithMulticore(false),
		gnet.WithNumEventLoop(len(cpus)),
		gnet.WithLockOSThread(true),
		gnet.WithReusePort(false),
		gnet.WithLoadBalancing(gnet.RoundRobin),
		gnet.WithLogger(gnetLogger{cfg.Logger}),
	)
	w := &handler{r: r, h: h}
	go func() {
		r.runErr = gnet.Run(w, "tcp://"+cfg.Listen, opts...)
		close(r.runDone)
	}()
	select {
	case <-r.booted:
	case <-r.runDone:
		r.restoreProcs()
		if r.runErr == nil {
			r.runErr = errors.New("handler's OnBoot returned Shutdown")
		}
		return nil, fmt.Errorf("%w: %v", ErrBoot, r.runErr)
	}
	if err := r.boot(); err != nil {
		r.abortBoot(err)
		return nil, err
	}
	return r, nil
}

// procsFor returns the GOMAXPROCS to set (0 = leave it): see doc.go.
func procsFor(want, cores int) int {
	switch {
	case want < 0:
		return 0
	case want == 0:
		return cores + 1
	}
	return want
}

func newRuntime(cfg Config, cpus []int) *Runtime {
	r := &Runtime{
		cfg:       cfg,
		log:       cfg.Logger,
		epoch:     time.Now(),
		booted:    make(chan struct{}),
		runDone:   make(chan struct{}),
		bootDials: make(map[netip.AddrPort]chan error),
		byLoop:    make(map[gnet.EventLoop]*Core, len(cpus)),
	}
	n := len(cpus)
	lanes := make([][]*lane[Message], n) // lanes[src][dst]
	for src := range lanes {
		lanes[src] = make([]*lane[Message], n)
		for dst := range lanes[src] {
			lanes[src][dst] = newLane[Message](cfg.MailboxCap)
		}
	}
	r.cores = make([]*Core, n)
	for i, cpu := range cpus {
		c := &Core{id: CoreID(i), cpu: cpu, rt: r, quiesced: make(chan struct{})}
		c.task.c = c
		c.stall.threshold = cfg.StallThreshold
		c.inbox = make([]*lane[Message], n)
		c.outbox = make([]outLane[Message], n)
		for j := 0; j < n; j++ {
			c.inbox[j] = lanes[j][i]
			c.outbox[j].lane = lanes[i][j]
		}
		r.cores[i] = c
	}
	return r
}

// now is the monotonic time since Start, never 0 (timers use 0 as "unset").
func (r *Runtime) now() time.Duration { return time.Since(r.epoch) + 1 }

// Cores returns every core, indexed by CoreID. The slice is shared: do not
// modify it.
func (r *Runtime) Cores() []*Core { return r.cores }

// Core returns core id, or nil if there is no such core.
func (r *Runtime) Core(id CoreID) *Core {
	if uint(id) >= uint(len(r.cores)) {
		return nil
	}
	return r.cores[id]
}

// Addr returns the address the listener is bound to (with the real port
// when Config.Listen asked for port 0).
func (r *Runtime) Addr() net.Addr { return net.TCPAddrFromAddrPort(r.addr) }

// Post runs fn on core `to`'s thread. Unlike Core.Send it may be called from
// any goroutine (it goes through gnet's multi-producer task queue and
// allocates), so it is the entry point for code that is not on a core:
// start-up, admin, consensus callbacks. Returns ErrStopped once Stop began
// shutting the loops down.
func (r *Runtime) Post(to CoreID, fn Message) error {
	c := r.Core(to)
	if c == nil {
		return fmt.Errorf("%w: %d", ErrNoCore, to)
	}
	r.gate.RLock()
	defer r.gate.RUnlock()
	if r.gateClosed {
		return ErrStopped
	}
	err := c.loop.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		start := time.Now()
		fn(c)
		c.afterCallback(start, stallPost)
		return nil
	}))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrStopped, err)
	}
	return nil
}

// Serve starts handing client connections to the handler when
// Config.HoldClients held them back after boot: the clients held so far
// are handed over on their loops, with what they sent meanwhile. Safe from
// any goroutine.
func (r *Runtime) Serve() {
	r.heldMu.Lock()
	if !r.phase.CompareAndSwap(phaseHeld, phaseRunning) {
		r.heldMu.Unlock()
		return
	}
	held := r.held
	r.held = nil
	r.heldMu.Unlock()
	for c := range held {
		// The wake runs OnTraffic on the client's loop, which hands it
		// over (handler.OnTraffic). A client gone meanwhile is skipped.
		_ = c.Wake(nil)
	}
}

// hold takes client c into the held set if the runtime is still holding
// clients, and reports whether it did. It runs on c's loop.
func (r *Runtime) hold(c gnet.Conn) bool {
	r.heldMu.Lock()
	defer r.heldMu.Unlock()
	if r.phase.Load() != phaseHeld {
		return false
	}
	if r.held == nil {
		r.held = map[gnet.Conn]struct{}{}
	}
	r.held[c] = struct{}{}
	c.SetContext(heldConn{})
	// Closed before Serve (a Stop, or too much sent), it is reset, which
	// clients retry, never closed with a FIN before any answer, which
	// franz-go takes for a TLS mismatch.
	_ = c.SetLinger(0)
	return true
}

// unhold forgets held client c (closed before Serve handed it over).
func (r *Runtime) unhold(c gnet.Conn) {
	r.heldMu.Lock()
	delete(r.held, c)
	r.heldMu.Unlock()
}

// StopAccepting makes the runtime reset every connection opened from now
// on at once, unseen by the protocol, while the connections already open
// are served as usual: the first step of a graceful shutdown. Stop does it
// too. Clients still held stay held until Stop resets them. Safe from any
// goroutine.
func (r *Runtime) StopAccepting() {
	if !r.phase.CompareAndSwap(phaseRunning, phaseStopping) {
		r.heldMu.Lock()
		r.phase.CompareAndSwap(phaseHeld, phaseStopping)
		r.heldMu.Unlock()
	}
}

// Stop shuts the runtime down: it stops accepting (connections opened from
// now on are reset at once, unseen by the protocol), lets each core finish its in-flight I/O,
// queued messages and overflow (bounded by ctx; traffic that keeps coming
// keeps a core busy), stops the reapers, stops the gnet engine (clients get
// OnClose on their core), then closes every ring once the loops have
// exited. Timers still pending never fire. If ctx expires before the loops
// exit, Stop returns ctx's error and leaves the rings open. Later calls
// return the first call's result.
func (r *Runtime) Stop(ctx context.Context) error {
	r.stopOnce.Do(func() { r.stopErr = r.shutdown(ctx, true) })
	return r.stopErr
}

func (r *Runtime) shutdown(ctx context.Context, drain bool) error {
	var errs []error
	r.phase.Store(phaseStopping) // new connections are reset from now on
	bound := r.closeBoot()
	if drain {
		if err := r.quiesce(ctx, bound); err != nil {
			errs = append(errs, fmt.Errorf("draining cores: %w", err))
		}
	}
	if err := r.unpin(ctx, bound); err != nil {
		errs = append(errs, fmt.Errorf("unpinning loop threads: %w", err))
	}
	r.gate.Lock()
	r.gateClosed = true
	r.gate.Unlock()
	for _, c := range bound {
		c.rpr.stop()
	}
	if err := r.stopEngine(ctx); err != nil {
		return errors.Join(append(errs, fmt.Errorf("stopping engine: %w", err))...)
	}
	if r.cfg.KeepPort {
		r.keepPort()
	}
	// Every loop has exited: their state is ours now.
	for _, c := range bound {
		c.stopTimers()
		if c.io != nil {
			if err := c.io.Close(); err != nil {
				errs = append(errs, fmt.Errorf("core %d ring: %w", c.id, err))
			}
			c.io = nil
		}
	}
	unregister(bound)
	r.restoreProcs()
	return errors.Join(errs...)
}

// keepPort binds the listen address again, now that the engine closed its
// listener, with a socket that never accepts (see Config.KeepPort).
func (r *Runtime) keepPort() {
	l, err := net.Listen("tcp", r.addr.String())
	if err != nil {
		// Taken meanwhile: clients get refused, as without KeepPort.
		r.log.Warn("reactor: could not keep the listen address bound after stopping", "addr", r.addr.String(), "err", err)
		return
	}
	r.keptMu.Lock()
	r.kept = l
	r.keptMu.Unlock()
}

// ReleasePort closes what Config.KeepPort kept bound after Stop, resetting
// the clients waiting there. Call it last before the process exits (which
// would release it too). Safe from any goroutine; later calls do nothing.
func (r *Runtime) ReleasePort() {
	r.keptMu.Lock()
	l := r.kept
	r.kept = nil
	r.keptMu.Unlock()
	if l != nil {
		_ = l.Close()
	}
}

// closeBoot stops further loop adoption and returns the cores that were
// bound to a loop (all of them once Start has succeeded).
func (r *Runtime) closeBoot() []*Core {
	r.bootMu.Lock()
	defer r.bootMu.Unlock()
	r.bootClosed = true
	return r.cores[:r.adopted]
}

// quiesce asks every core to report once it has nothing in flight.
func (r *Runtime) quiesce(ctx context.Context, cores []*Core) error {
	for _, c := range cores {
		c.quiesce.Store(true)
		c.wakeForeign()
	}
	for _, c := range cores {
		select {
		case <-c.quiesced:
		case <-r.runDone:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// unpin gives every loop thread back the process's CPU mask. Threads other
// than the main one are terminated when their loop exits anyway (see bind),
// but Go never terminates the main thread (it parks it for good), and a loop
// may have started there.
func (r *Runtime) unpin(ctx context.Context, cores []*Core) error {
	done := make(chan error, len(cores))
	for _, c := range cores {
		err := c.loop.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			done <- unix.SchedSetaffinity(0, &processCPUs)
			return nil
		}))
		if err != nil {
			return nil // the engine is already going down (a handler returned Shutdown)
		}
	}
	var errs []error
	for range cores {
		select {
		case err := <-done:
			errs = append(errs, err)
		case <-r.runDone:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return errors.Join(errs...)
}

// stopEngine stops gnet and waits for Run to return. Engine.Stop polls for
// completion every 500 ms, so it runs in a goroutine that is cancelled as
// soon as Run has returned.
func (r *Runtime) stopEngine(ctx context.Context) error {
	select {
	case <-r.runDone:
		return nil
	default:
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		_ = r.eng.Stop(sctx) // its result is Run's, or sctx's once cancelled
	}()
	var err error
	select {
	case <-r.runDone:
		if r.runErr != nil {
			r.log.Warn("reactor: gnet engine exited with error", "err", r.runErr)
		}
	case <-ctx.Done():
		err = ctx.Err()
	}
	cancel()
	<-stopped
	return err
}

func (r *Runtime) restoreProcs() {
	if r.prevProcs > 0 {
		runtime.GOMAXPROCS(r.prevProcs)
		r.prevProcs = 0
	}
}

// The loop → core table behind CoreOf, shared by every runtime of the
// process. Copy-on-write: lookups are one atomic load and a map read.
var (
	registryMu sync.Mutex
	registry   atomic.Pointer[map[gnet.EventLoop]*Core]
)

func register(cores []*Core) { updateRegistry(cores, true) }

func unregister(cores []*Core) { updateRegistry(cores, false) }

func updateRegistry(cores []*Core, add bool) {
	registryMu.Lock()
	defer registryMu.Unlock()
	next := make(map[gnet.EventLoop]*Core)
	if cur := registry.Load(); cur != nil {
		for k, v := range *cur {
			next[k] = v
		}
	}
	for _, c := range cores {
		if c.loop == nil {
			continue
		}
		if add {
			next[c.loop] = c
		} else if next[c.loop] == c {
			delete(next, c.loop)
		}
	}
	registry.Store(&next)
}

// CoreOf returns the core that owns connection c (the core whose loop runs
// c's callbacks), or nil for a connection of no running Runtime.
func CoreOf(c gnet.Conn) *Core {
	m := registry.Load()
	if m == nil {
		return nil
	}
	return (*m)[c.EventLoop()]
}
