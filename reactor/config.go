package reactor

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// Defaults applied by Start to zero Config fields.
const (
	DefaultRingEntries = 256
	// DefaultStallThreshold is where a held core starts to show in client
	// latency: 10 ms warned at every start and stop and whenever this
	// shared 2-core machine preempted a loop thread, which clients never
	// noticed.
	DefaultStallThreshold = 50 * time.Millisecond
	DefaultMailboxCap     = 4096
	DefaultBootTimeout    = 10 * time.Second
	// DefaultHeldBytesMax is wire's default request size bound: a client
	// that sends more before its first answer is not a Kafka client.
	DefaultHeldBytesMax = 100 << 20
)

// Config describes a Runtime. The zero value of every field but Listen picks
// a default.
type Config struct {
	// Listen is the TCP address clients connect to, "host:port" without a
	// scheme ("127.0.0.1:9092"; port 0 picks a free port, see Runtime.Addr).
	Listen string
	// CPUs lists the CPU ids to run one core each on. Empty means every CPU in
	// the process's affinity mask (sched_getaffinity). Every id must be in
	// that mask. Core i is pinned to CPUs[i].
	CPUs []int
	// RingEntries is each core's io_uring submission queue size (default 256).
	RingEntries uint32
	// StallThreshold: a loop callback or task running longer than this is
	// logged at Warn with the core id and what it was (default 50ms), unless
	// the work was marked Core.ExpectSlow.
	StallThreshold time.Duration
	// MailboxCap bounds each ordered core pair's message ring (default 4096,
	// rounded up to a power of two). Messages beyond it wait in the sender's
	// overflow list; none is dropped.
	MailboxCap int
	// GOMAXPROCS: 0 sets runtime.GOMAXPROCS(cores+1) for the runtime's life
	// (restored by Stop); a positive value sets exactly that; negative leaves
	// it alone. See doc.go for why cores+1.
	GOMAXPROCS int
	// BootTimeout bounds how long Start waits for every loop to be discovered,
	// pinned and given its ring (default 10s).
	BootTimeout time.Duration
	// HoldClients holds client connections that arrive after boot until
	// Runtime.Serve: for a server that has more to set up on its cores
	// before it can answer anyone. A held client is accepted, and what it
	// sends waits unread by the handler, which first sees the connection
	// at Serve. It is not reset: on loopback a reset reaches the client
	// inside connect(2), and franz-go does not retry a coordinator lookup
	// that fails to connect (a group member whose heartbeat needs one ends
	// its session: a rebalance).
	HoldClients bool
	// KeepPort keeps the listen address bound after Stop closes the
	// listener, until Runtime.ReleasePort: a plain socket listens there
	// and never accepts, so a client connecting while the process finishes
	// its shutdown waits in the backlog and is reset at ReleasePort (or
	// when the process exits) rather than refused. With a restart right
	// behind, that leaves clients only the time from the old process's
	// exit to the new one's bind in which a connect fails: franz-go does
	// not retry a coordinator lookup that fails to connect.
	KeepPort bool
	// HeldBytesMax bounds what a held client may send before Serve (gnet
	// buffers it); past it the client is reset. Default 100 MiB, the
	// protocol's default request size bound.
	HeldBytesMax int
	// Options are extra gnet options (buffer sizes, keep-alive, ...). The
	// reactor's own options (loop count, LockOSThread, ReusePort=false,
	// RoundRobin, logger) are applied after them and win.
	Options []gnet.Option
	// Logger receives stall reports and gnet's own log lines (default
	// slog.Default()).
	Logger *slog.Logger
}

func (cfg Config) withDefaults() Config {
	if cfg.RingEntries == 0 {
		cfg.RingEntries = DefaultRingEntries
	}
	if cfg.StallThreshold <= 0 {
		cfg.StallThreshold = DefaultStallThreshold
	}
	if cfg.MailboxCap <= 0 {
		cfg.MailboxCap = DefaultMailboxCap
	}
	if cfg.HeldBytesMax <= 0 {
		cfg.HeldBytesMax = DefaultHeldBytesMax
	}
	if cfg.BootTimeout <= 0 {
		cfg.BootTimeout = DefaultBootTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}

// maxCores is gnet's cap on event loops (gfd.EventLoopIndexMax).
const maxCores = 256

// processCPUs is the affinity mask the process started with, read during
// package initialisation, when the main goroutine is locked to the main
// thread and nothing has been pinned yet. Linux has no process-wide mask
// (it is per thread), and any thread read later, the main thread included,
// may be some runtime's pinned loop.
var processCPUs, processCPUsErr = func() (s unix.CPUSet, err error) {
	err = unix.SchedGetaffinity(0, &s)
	return s, err
}()

// resolveCPUs returns the CPU ids cores are pinned to, in core order.
func resolveCPUs(want []int) ([]int, error) {
	if processCPUsErr != nil {
		return nil, fmt.Errorf("%w: sched_getaffinity: %v", ErrConfig, processCPUsErr)
	}
	allowed := processCPUs
	if len(want) == 0 {
		for cpu := 0; cpu < len(allowed)*64; cpu++ {
			if allowed.IsSet(cpu) {
				want = append(want, cpu)
			}
		}
	}
	if len(want) == 0 || len(want) > maxCores {
		return nil, fmt.Errorf("%w: %d cpus (want 1..%d)", ErrConfig, len(want), maxCores)
	}
	seen := make(map[int]bool, len(want))
	out := make([]int, len(want))
	for i, cpu := range want {
		if cpu < 0 || cpu >= len(allowed)*64 || !allowed.IsSet(cpu) {
			return nil, fmt.Errorf("%w: cpu %d is not in the process affinity mask", ErrConfig, cpu)
		}
		if seen[cpu] {
			return nil, fmt.Errorf("%w: cpu %d listed twice", ErrConfig, cpu)
		}
		seen[cpu] = true
		out[i] = cpu
	}
	return out, nil
}

// dialTarget turns the bound listener address into the address bootstrap
// connections dial: an unspecified host (0.0.0.0, ::) becomes the loopback
// of the same family.
func dialTarget(bound netip.AddrPort) netip.AddrPort {
	ip := bound.Addr().Unmap()
	if ip.IsUnspecified() {
		if ip.Is4() {
			ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		} else {
			ip = netip.IPv6Loopback()
		}
	}
	return netip.AddrPortFrom(ip, bound.Port())
}

// listenerAddr reads the bound address of the engine's listener (needed when
// Listen asked for port 0).
func listenerAddr(eng gnet.Engine) (netip.AddrPort, error) {
	fd, err := eng.Dup()
	if err != nil {
		return netip.AddrPort{}, err
	}
	defer unix.Close(fd)
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return sockaddrToAddrPort(sa)
}

func sockaddrToAddrPort(sa unix.Sockaddr) (netip.AddrPort, error) {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)), nil
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port)), nil
	}
	return netip.AddrPort{}, fmt.Errorf("%w: listener is not TCP (%T)", ErrConfig, sa)
}

// connKey normalises a gnet remote address for the bootstrap lookup.
func connKey(a net.Addr) netip.AddrPort {
	t, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.AddrPort{}
	}
	ap := t.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
