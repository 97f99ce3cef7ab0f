package wire

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Limits bound what clients can make the broker hold: descriptors,
// memory and time. A zero field takes the default named in its comment;
// docs/RELIABILITY.md says why each default is what it is.
type Limits struct {
	// MaxConnections caps open client connections; past it new ones are
	// closed at once. 0: DefaultMaxConnections() (the whole descriptor
	// limit but some headroom; the broker passes ConnectionsFor its
	// reserve); negative: no cap.
	MaxConnections int
	// MaxConnectionsPerIP caps open connections from one remote address.
	// 0 or negative: no cap (Kafka's max.connections.per.ip default).
	MaxConnectionsPerIP int
	// IdleTimeout closes a connection that has nothing in flight and has
	// neither sent nor received a byte for this long (Kafka's
	// connections.max.idle.ms). 0: 10 minutes; negative: never.
	IdleTimeout time.Duration
	// RequestTimeout closes a connection whose request frame has started
	// but not completed for this long (slowloris). 0: 30 s; negative: never.
	RequestTimeout time.Duration
	// FetchMaxBytes caps one fetch response's record bytes, whatever the
	// request asks (Kafka's broker fetch.max.bytes). 0: 55 MiB.
	FetchMaxBytes int
	// MaxPartitionFetchBytes caps the record bytes of one partition in a
	// fetch response, below the request's own partition maximum: one
	// partition read is one disk read, and a core's loop waits while a
	// large one is submitted. 0: 1 MiB, the clients' own default.
	MaxPartitionFetchBytes int
	// FetchMemoryBytes is the broker-wide budget for fetched record bytes
	// held in memory (read, being encoded, or buffered unsent). A fetch
	// reserves its share before reading; when the budget is spent it reads
	// less, or waits. 0: 256 MiB.
	FetchMemoryBytes int64
	// MaxConnectionBufferedBytes caps the response bytes one connection may
	// hold unsent (fetched records reserved plus gnet's outbound buffer).
	// Past it the server stops parsing the connection's requests and stops
	// handing responses to gnet until the client reads. 0: 64 MiB.
	MaxConnectionBufferedBytes int
}

// Defaults for Limits.
const (
	DefaultIdleTimeout                = 10 * time.Minute
	DefaultRequestTimeout             = 30 * time.Second
	DefaultFetchMaxBytes              = 57671680 // Kafka's fetch.max.bytes, 55 MiB
	DefaultMaxPartitionFetchBytes     = 1 << 20
	DefaultFetchMemoryBytes           = 256 << 20
	DefaultMaxConnectionBufferedBytes = 64 << 20
)

const (
	// acceptBacklog is set on the listener at boot: gnet's acceptor takes
	// every queued connection before any loop can refuse one, so the
	// backlog bounds the descriptors a burst holds above the cap. (Kafka's
	// socket.listen.backlog.size is 50.)
	acceptBacklog = 256
	// fdGuard: a new connection whose descriptor is this close to the
	// limit is refused whatever the counts say (see admit); at most an
	// eighth of the limit, so it never bites inside the descriptors the
	// broker keeps for connections.
	fdGuard = 2 * acceptBacklog
	// acceptHeadroom is what ConnectionsFor keeps back from connections:
	// the guard, and the listener, rings and the broker's own files.
	acceptHeadroom = fdGuard + 64
	// fetchMinGrant is the least a fetch takes from a nearly spent budget
	// rather than wait for it.
	fetchMinGrant = 64 << 10
	// logEvery rate-limits the log line of each limit.
	logEvery = time.Second
)

// ConnectionsFor is the connection cap that fits in fds descriptors kept
// for connections: what is left after acceptHeadroom (gnet's accept
// burst, the listener, the rings and the broker's own files), and never
// less than half of them.
func ConnectionsFor(fds int) int {
	return max(fds-acceptHeadroom, fds/2)
}

// DefaultMaxConnections is the cap for a server that has the whole
// descriptor limit (RLIMIT_NOFILE, soft) for its connections. A broker
// with partitions passes its own, from the descriptors it keeps back from
// them (cluster: --reserved-fds).
func DefaultMaxConnections() int {
	limit := fdLimit()
	if limit <= 0 {
		return 10000
	}
	return ConnectionsFor(limit)
}

// fdLimit returns the soft descriptor limit, or 0 if unknown.
func fdLimit() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 0
	}
	return int(rl.Cur)
}

func (l Limits) withDefaults() Limits {
	if l.MaxConnections == 0 {
		l.MaxConnections = DefaultMaxConnections()
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	if l.RequestTimeout == 0 {
		l.RequestTimeout = DefaultRequestTimeout
	}
	if l.FetchMaxBytes <= 0 {
		l.FetchMaxBytes = DefaultFetchMaxBytes
	}
	if l.MaxPartitionFetchBytes <= 0 {
		l.MaxPartitionFetchBytes = DefaultMaxPartitionFetchBytes
	}
	if l.FetchMemoryBytes <= 0 {
		l.FetchMemoryBytes = DefaultFetchMemoryBytes
	}
	if l.MaxConnectionBufferedBytes <= 0 {
		l.MaxConnectionBufferedBytes = DefaultMaxConnectionBufferedBytes
	}
	return l
}

// rateLog lets one line through per logEvery and counts the rest, so a
// flood of refused connections costs a line a second, not a line each.
type rateLog struct {
	next    atomic.Int64 // unix nanos before which lines are dropped
	dropped atomic.Int64
}

func (r *rateLog) log(l *slog.Logger, level slog.Level, msg string, args ...any) {
	now := time.Now().UnixNano()
	next := r.next.Load()
	if now < next || !r.next.CompareAndSwap(next, now+int64(logEvery)) {
		r.dropped.Add(1)
		return
	}
	if d := r.dropped.Swap(0); d > 0 {
		args = append(args, "suppressed_since_last", d)
	}
	l.Log(context.Background(), level, msg, args...)
}

// admission counts connections in total and per remote address. It is
// shared by every loop, so it is the one place in the package that locks
// on the accept path (once per connection, never per request).
type admission struct {
	total atomic.Int64
	mu    sync.Mutex
	perIP map[netip.Addr]int
}

// admit decides whether a new connection may stay. fd is its descriptor:
// Linux hands out the lowest free number, so an fd near the limit means
// the table is nearly full whatever filled it (partition files too), and
// refusing then keeps gnet's accept from ever seeing EMFILE, which would
// stop its engine for good. It returns "" to admit, or why not; an
// admitted connection must be released with leave.
func (s *Server) admit(fd int, ip netip.Addr) string {
	lim := &s.cfg.Limits
	if s.fdLimit > 0 && fd >= s.fdLimit-min(fdGuard, s.fdLimit/8) {
		return "descriptor table nearly full"
	}
	if n := s.adm.total.Add(1); lim.MaxConnections > 0 && n > int64(lim.MaxConnections) {
		s.adm.total.Add(-1)
		return "connection limit reached"
	}
	if lim.MaxConnectionsPerIP > 0 {
		s.adm.mu.Lock()
		n := s.adm.perIP[ip]
		if n >= lim.MaxConnectionsPerIP {
			s.adm.mu.Unlock()
			s.adm.total.Add(-1)
			return "per-ip connection limit reached"
		}
		s.adm.perIP[ip] = n + 1
		s.adm.mu.Unlock()
	}
	return ""
}

func (s *Server) leave(ip netip.Addr) {
	s.adm.total.Add(-1)
	if s.cfg.Limits.MaxConnectionsPerIP > 0 {
		s.adm.mu.Lock()
		if n := s.adm.perIP[ip]; n <= 1 {
			delete(s.adm.perIP, ip)
		} else {
			s.adm.perIP[ip] = n - 1
		}
		s.adm.mu.Unlock()
	}
}

func remoteIP(a net.Addr) netip.Addr {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// fetchBudget is the broker-wide fetch memory budget. Every loop reserves
// from it with atomics; a connection that finds it spent queues itself and
// is woken (gnet's Wake is safe from any goroutine) when memory comes back.
type fetchBudget struct {
	max  int64
	used atomic.Int64

	nwait   atomic.Int32
	mu      sync.Mutex
	waiters []*conn
}

// reserve takes want bytes, or what is left if that is at least
// min(want, fetchMinGrant); it returns what it took (0: spent, wait).
func (b *fetchBudget) reserve(want int) int {
	if want <= 0 {
		return 0
	}
	floor := int64(min(want, fetchMinGrant))
	for {
		used := b.used.Load()
		got := min(int64(want), b.max-used)
		if got < floor {
			return 0
		}
		if b.used.CompareAndSwap(used, used+got) {
			return int(got)
		}
	}
}

// force takes n bytes whatever is left: a read returned more than its
// share (a first batch larger than the limit is served whole, KIP-74).
func (b *fetchBudget) force(n int) { b.used.Add(int64(n)) }

// release gives n bytes back and wakes the oldest waiting connection.
func (b *fetchBudget) release(n int) {
	if n <= 0 {
		return
	}
	b.used.Add(-int64(n))
	b.wakeOne()
}

func (b *fetchBudget) wakeOne() {
	if b.nwait.Load() == 0 {
		return
	}
	for {
		b.mu.Lock()
		var c *conn
		if len(b.waiters) > 0 {
			c = b.waiters[0]
			b.waiters[0] = nil
			b.waiters = b.waiters[1:]
			c.budgetQueued = false
			b.nwait.Add(-1)
		}
		b.mu.Unlock()
		// Only nc is touched from this goroutine: it never changes, and
		// Wake is gnet's goroutine-safe way into the connection's loop.
		// A connection closed meanwhile refuses; wake the next one.
		if c == nil || c.nc.Wake(nil) == nil {
			return
		}
	}
}

// wait queues c to be woken when memory is released. The caller tries
// to reserve once more after this, so a release in between is not lost.
func (b *fetchBudget) wait(c *conn) {
	b.mu.Lock()
	if !c.budgetQueued {
		c.budgetQueued = true
		b.waiters = append(b.waiters, c)
		b.nwait.Add(1)
	}
	b.mu.Unlock()
}

// forget drops c from the wait queue (it is closing).
func (b *fetchBudget) forget(c *conn) {
	if b.nwait.Load() == 0 {
		return
	}
	b.mu.Lock()
	if c.budgetQueued {
		for i, w := range b.waiters {
			if w == c {
				b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
				break
			}
		}
		c.budgetQueued = false
		b.nwait.Add(-1)
	}
	b.mu.Unlock()
}
