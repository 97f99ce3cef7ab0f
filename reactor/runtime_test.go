package reactor

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/strand-io/strand/dma"
)

func TestStartPinsEachCore(t *testing.T) {
	r, _ := startRuntime(t, Config{}, newEchoHandler())
	cpus, err := resolveCPUs(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Cores()) != len(cpus) {
		t.Fatalf("%d cores, want one per allowed CPU (%d)", len(r.Cores()), len(cpus))
	}
	tids := map[int]bool{}
	for _, core := range r.Cores() {
		var set unix.CPUSet
		var tid int
		post(t, r, core.ID(), func(c *Core) {
			tid = unix.Gettid()
			if err := unix.SchedGetaffinity(0, &set); err != nil {
				t.Error(err)
			}
		})
		if set.Count() != 1 || !set.IsSet(core.CPU()) {
			t.Errorf("core %d: thread affinity has %d cpus, want only cpu %d", core.ID(), set.Count(), core.CPU())
		}
		if tid != core.TID() {
			t.Errorf("core %d: task ran on tid %d, loop tid is %d", core.ID(), tid, core.TID())
		}
		if tids[tid] {
			t.Errorf("core %d shares tid %d with another core", core.ID(), tid)
		}
		tids[tid] = true
		if core.IO() == nil {
			t.Errorf("core %d has no I/O engine", core.ID())
		}
	}
	if got := runtime.GOMAXPROCS(0); got != len(cpus)+1 {
		t.Errorf("GOMAXPROCS = %d, want cores+1 = %d", got, len(cpus)+1)
	}
}

func TestSendRunsOnTargetAndReplies(t *testing.T) {
	r, _ := startRuntime(t, Config{}, newEchoHandler())
	if len(r.Cores()) < 2 {
		t.Skip("needs two CPUs")
	}
	c0, c1 := r.Core(0), r.Core(1)
	type hop struct{ onSend, onTarget, onReply int }
	res := make(chan hop, 1)
	if err := r.Post(0, func(c *Core) {
		h := hop{onSend: unix.Gettid()}
		c.Send(1, func(c *Core) {
			h.onTarget = unix.Gettid()
			c.Send(0, func(c *Core) {
				h.onReply = unix.Gettid()
				res <- h
			})
		})
	}); err != nil {
		t.Fatal(err)
	}
	h := recv(t, res, "reply on core 0")
	if h.onSend != c0.TID() || h.onTarget != c1.TID() || h.onReply != c0.TID() {
		t.Fatalf("tids send/target/reply = %d/%d/%d, want %d/%d/%d",
			h.onSend, h.onTarget, h.onReply, c0.TID(), c1.TID(), c0.TID())
	}
}

// TestSendStressOverflow has every core send a burst far larger than the
// lane capacity to every core (itself included). Each receiver checks that
// each sender's messages arrive in order, and every message must arrive.
func TestSendStressOverflow(t *testing.T) {
	const perLane = 20_000
	r, _ := startRuntime(t, Config{MailboxCap: 8}, newEchoHandler())
	n := len(r.Cores())
	next := make([][]int, n) // next[dst][src], touched only on dst's thread
	for i := range next {
		next[i] = make([]int, n)
	}
	var delivered, disorder atomic.Int64
	for src := 0; src < n; src++ {
		if err := r.Post(CoreID(src), func(c *Core) {
			for i := 0; i < perLane; i++ {
				for dst := 0; dst < n; dst++ {
					seq, from := i, int(c.ID())
					c.Send(CoreID(dst), func(d *Core) {
						if next[d.ID()][from] != seq {
							disorder.Add(1)
						}
						next[d.ID()][from] = seq + 1
						delivered.Add(1)
					})
				}
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	want := int64(n * n * perLane)
	eventually(t, "every message delivered", func() bool { return delivered.Load() >= want })
	if delivered.Load() != want || disorder.Load() != 0 {
		t.Fatalf("delivered %d (want %d), out of order %d", delivered.Load(), want, disorder.Load())
	}
	var sent, received, overflowed, pending uint64
	eventually(t, "overflow drained", func() bool {
		sent, received, overflowed, pending = 0, 0, 0, 0
		for _, c := range r.Cores() {
			s := c.Stats()
			sent, received, overflowed, pending = sent+s.Sent, received+s.Received, overflowed+s.Overflowed, pending+s.OverflowPending
		}
		return pending == 0 && received == uint64(want)
	})
	if sent != uint64(want) || overflowed == 0 {
		t.Fatalf("stats: sent %d received %d overflowed %d pending %d", sent, received, overflowed, pending)
	}
	if d := r.Core(0).Stats().InboxDepthMax; d == 0 || d > 8 {
		t.Fatalf("InboxDepthMax = %d, want 1..8", d)
	}
}

func TestClientsSpreadAndHandlerSeesOnlyClients(t *testing.T) {
	h := newEchoHandler()
	r, _ := startRuntime(t, Config{}, h)
	n := len(r.Cores())
	const perCore = 4
	conns := make([]net.Conn, 0, perCore*n)
	for i := 0; i < perCore*n; i++ {
		conn, err := net.Dial("tcp", r.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
		msg := []byte("ping " + strconv.Itoa(i))
		if _, err := conn.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if err := conn.SetReadDeadline(time.Now().Add(waitTimeout)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(conn, got); err != nil || string(got) != string(msg) {
			t.Fatalf("echo %d: %q, %v", i, got, err)
		}
	}
	opens, total, _ := h.snapshot()
	if total != perCore*n {
		t.Fatalf("handler saw %d opens, want exactly %d client connections", total, perCore*n)
	}
	for id := CoreID(0); int(id) < n; id++ {
		if opens[id] != perCore {
			t.Errorf("core %d got %d connections, want %d (round-robin)", id, opens[id], perCore)
		}
	}
	for _, conn := range conns {
		conn.Close()
	}
	eventually(t, "OnClose for every client", func() bool {
		_, _, closes := h.snapshot()
		return closes == perCore*n
	})
	if h.internal.Load() != 0 || h.noCore.Load() != 0 || h.offCore.Load() != 0 {
		t.Fatalf("handler saw %d probe callbacks, %d without core, %d off-thread",
			h.internal.Load(), h.noCore.Load(), h.offCore.Load())
	}
}

// TestIOCompletionOnOwningCore writes an aligned 4 KiB block through the
// last core's engine; the completion must be delivered to that core's
// thread (via the reaper, since nothing else wakes the core).
func TestIOCompletionOnOwningCore(t *testing.T) {
	r, _ := startRuntime(t, Config{}, newEchoHandler())
	core := r.Core(CoreID(len(r.Cores()) - 1))
	path := filepath.Join(t.TempDir(), "seg")
	buf := dma.AllocAligned(4096)
	defer dma.FreeAligned(buf)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	type result struct {
		n        int
		writeErr error
		syncErr  error
		writeTid int
		syncTid  int
	}
	res := make(chan result, 1)
	var f dma.File
	if err := r.Post(core.ID(), func(c *Core) {
		var err error
		if f, err = dma.OSFS().OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644, true); err != nil {
			res <- result{writeErr: err}
			return
		}
		t.Logf("engine mode %v, direct %v", c.IO().Mode(), f.Direct())
		c.IO().Write(f, buf, 0, func(n int, err error) {
			out := result{n: n, writeErr: err, writeTid: unix.Gettid()}
			c.IO().Sync(f, func(err error) {
				out.syncErr, out.syncTid = err, unix.Gettid()
				res <- out
			})
		})
	}); err != nil {
		t.Fatal(err)
	}
	got := recv(t, res, "write+sync completion")
	if got.writeErr != nil || got.syncErr != nil || got.n != 4096 {
		t.Fatalf("write n=%d err=%v, sync err=%v", got.n, got.writeErr, got.syncErr)
	}
	if got.writeTid != core.TID() || got.syncTid != core.TID() {
		t.Fatalf("callbacks ran on tids %d/%d, core %d is tid %d", got.writeTid, got.syncTid, core.ID(), core.TID())
	}
	post(t, r, core.ID(), func(*Core) { _ = f.Close() })
	data, err := os.ReadFile(path)
	if err != nil || len(data) != 4096 || string(data) != string(buf) {
		t.Fatalf("file holds %d bytes (err %v), not what was written", len(data), err)
	}
}

func TestAfterRunsOnCoreInDeadlineOrder(t *testing.T) {
	r, _ := startRuntime(t, Config{}, newEchoHandler())
	fired := make(chan string, 4)
	var start time.Time
	var cancelled bool
	post(t, r, 0, func(c *Core) {
		start = time.Now()
		mark := func(name string) func() {
			return func() {
				if !c.OnThread() {
					name += " (off core)"
				}
				fired <- name
			}
		}
		c.After(30*time.Millisecond, mark("30ms"))
		c.After(10*time.Millisecond, mark("10ms"))
		cancel := c.After(15*time.Millisecond, mark("cancelled"))
		c.After(20*time.Millisecond, mark("20ms"))
		cancelled = cancel()
	})
	if !cancelled {
		t.Fatal("cancel of a pending timer returned false")
	}
	for _, want := range []string{"10ms", "20ms", "30ms"} {
		if got := recv(t, fired, want+" timer"); got != want {
			t.Fatalf("fired %q, want %q", got, want)
		}
	}
	if el := time.Since(start); el < 30*time.Millisecond {
		t.Fatalf("30ms timer fired after %v", el)
	}
	post(t, r, 0, func(c *Core) {
		if n := len(c.timers.heap); n != 0 {
			t.Errorf("%d timers left in the heap", n)
		}
	})
	select {
	case got := <-fired:
		t.Fatalf("unexpected timer %q", got)
	default:
	}
}

func TestStallIsLogged(t *testing.T) {
	r, logs := startRuntime(t, Config{StallThreshold: 5 * time.Millisecond}, newEchoHandler())
	post(t, r, 0, func(*Core) {
		for end := time.Now().Add(20 * time.Millisecond); time.Now().Before(end); {
		}
	})
	// The stall is accounted right after the task returns, so wait for it.
	eventually(t, "stall counted", func() bool { return r.Core(0).Stats().Stalls > 0 })
	eventually(t, "stall logged", func() bool {
		out := logs.String()
		return strings.Contains(out, "reactor stall") && strings.Contains(out, "posted task") && strings.Contains(out, "core=0")
	})
}

// TestLongStallIsNeverSuppressed: warnings are rate-limited per core, but
// a stall of stallAlwaysLog or more is logged even right after another.
func TestLongStallIsNeverSuppressed(t *testing.T) {
	r, logs := startRuntime(t, Config{StallThreshold: 5 * time.Millisecond}, newEchoHandler())
	spin := func(d time.Duration) func(*Core) {
		return func(*Core) {
			for end := time.Now().Add(d); time.Now().Before(end); {
			}
		}
	}
	post(t, r, 0, spin(20*time.Millisecond))
	eventually(t, "first stall logged", func() bool { return strings.Count(logs.String(), "reactor stall") == 1 })
	post(t, r, 0, spin(10*time.Millisecond)) // inside the rate limit: counted, not logged
	post(t, r, 0, spin(stallAlwaysLog+50*time.Millisecond))
	eventually(t, "long stall logged", func() bool { return strings.Count(logs.String(), "reactor stall") == 2 })
	if out := logs.String(); !strings.Contains(out, "suppressed_longest") {
		t.Fatalf("the long stall's warning does not report the suppressed one:\n%s", out)
	}
}

// TestExpectedSlowWorkIsNotWarned: work marked ExpectSlow (start-up and
// shutdown) is counted but not warned about; a real stall right after it
// still is.
func TestExpectedSlowWorkIsNotWarned(t *testing.T) {
	r, logs := startRuntime(t, Config{StallThreshold: 5 * time.Millisecond}, newEchoHandler())
	spin := func(d time.Duration, expected bool) func(*Core) {
		return func(c *Core) {
			if expected {
				c.ExpectSlow()
			}
			for end := time.Now().Add(d); time.Now().Before(end); {
			}
		}
	}
	post(t, r, 0, spin(20*time.Millisecond, true))
	eventually(t, "expected stall counted", func() bool { return r.Core(0).Stats().ExpectedStalls == 1 })
	post(t, r, 0, spin(20*time.Millisecond, false))
	eventually(t, "real stall logged", func() bool { return strings.Contains(logs.String(), "reactor stall") })
	out := logs.String()
	if n := strings.Count(out, "reactor stall"); n != 1 || strings.Contains(out, "suppressed") {
		t.Fatalf("want exactly the real stall warned about, got %d warnings:\n%s", n, out)
	}
	if st := r.Core(0).Stats(); st.Stalls != 2 || st.ExpectedStalls != 1 {
		t.Fatalf("stats: %d stalls, %d expected; want 2 and 1", st.Stalls, st.ExpectedStalls)
	}
}

func TestStartRejectsBadConfig(t *testing.T) {
	h := newEchoHandler()
	for name, cfg := range map[string]Config{
		"scheme":    {Listen: "tcp://127.0.0.1:0"},
		"empty":     {},
		"cpu":       {Listen: "127.0.0.1:0", CPUs: []int{1 << 12}},
		"duplicate": {Listen: "127.0.0.1:0", CPUs: []int{0, 0}},
	} {
		if _, err := Start(cfg, h); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err = %v, want ErrConfig", name, err)
		}
	}
}

// TestStopLeavesNothingRunning checks that Stop ends every goroutine the
// runtime started and that no thread stays pinned to a single CPU.
func TestStopLeavesNothingRunning(t *testing.T) {
	before := runtime.NumGoroutine()
	procs := runtime.GOMAXPROCS(0)
	h := newEchoHandler()
	r, err := Start(Config{Listen: "127.0.0.1:0", Logger: quietLogger()}, h)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the client's OnOpen", func() bool { _, total, _ := h.snapshot(); return total == 1 })
	post(t, r, 0, func(c *Core) { c.After(time.Hour, func() {}) }) // pending at Stop
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := r.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if err := r.Post(0, func(*Core) {}); !errors.Is(err, ErrStopped) {
		t.Fatalf("Post after Stop: %v", err)
	}
	if err := r.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if got := runtime.GOMAXPROCS(0); got != procs {
		t.Fatalf("GOMAXPROCS %d after Stop, was %d", got, procs)
	}
	_, _, closes := h.snapshot()
	if closes != 1 {
		t.Fatalf("client got %d OnClose, want 1", closes)
	}
	eventually(t, "runtime goroutines to exit", func() bool { return runtime.NumGoroutine() <= before })
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(unix.Getpid(), &all); err != nil || all.Count() < 2 {
		return // with one CPU every thread is "pinned"; nothing to tell apart
	}
	eventually(t, "pinned loop threads to exit", func() bool { return pinnedThreads(t) == 0 })
}

// pinnedThreads counts this process's threads whose affinity is one CPU.
func pinnedThreads(t *testing.T) int {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range tasks {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var set unix.CPUSet
		if unix.SchedGetaffinity(tid, &set) == nil && set.Count() == 1 {
			n++
		}
	}
	return n
}

func TestAssertOwned(t *testing.T) {
	r, _ := startRuntime(t, Config{}, newEchoHandler())
	post(t, r, 0, func(c *Core) { c.AssertOwned() }) // on its thread: fine
	if !invariants {
		t.Skip("off-thread detection needs -tags invariants or -race")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("AssertOwned off the core's thread did not panic")
		}
	}()
	r.Core(0).AssertOwned()
}

func TestStartListenVariants(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:0", "[::1]:0"} {
		t.Run(listen, func(t *testing.T) {
			if strings.HasPrefix(listen, "[") {
				if ln, err := net.Listen("tcp6", listen); err != nil {
					t.Skip("no IPv6 loopback")
				} else {
					ln.Close()
				}
			}
			h := newEchoHandler()
			r, _ := startRuntime(t, Config{Listen: listen}, h)
			target := dialTarget(r.addr).String()
			conn, err := net.Dial("tcp", target)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			b := make([]byte, 1)
			_ = conn.SetReadDeadline(time.Now().Add(waitTimeout))
			if _, err := io.ReadFull(conn, b); err != nil {
				t.Fatal(err)
			}
			if _, total, _ := h.snapshot(); total != 1 || h.internal.Load() != 0 {
				t.Fatalf("handler saw %d opens and %d probe callbacks, want 1 and 0", total, h.internal.Load())
			}
		})
	}
}

// shutdownOnBoot refuses to boot.
type shutdownOnBoot struct{ gnet.BuiltinEventEngine }

func (shutdownOnBoot) OnBoot(gnet.Engine) gnet.Action { return gnet.Shutdown }

func TestStartFailsCleanly(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	_, err := Start(Config{Listen: "127.0.0.1:0", Logger: quietLogger()}, &shutdownOnBoot{})
	if !errors.Is(err, ErrBoot) {
		t.Fatalf("err = %v, want ErrBoot", err)
	}
	if got := runtime.GOMAXPROCS(0); got != procs {
		t.Fatalf("GOMAXPROCS %d after failed Start, was %d", got, procs)
	}
}

// TestStopRefusesNewClients keeps core 0 busy (a message that re-sends
// itself) so Stop stays in its drain phase, and checks that a client
// connecting meanwhile is reset without the protocol ever seeing it.
func TestStopRefusesNewClients(t *testing.T) {
	h := newEchoHandler()
	r, err := Start(Config{Listen: "127.0.0.1:0", Logger: quietLogger()}, h)
	if err != nil {
		t.Fatal(err)
	}
	var release atomic.Bool
	var spin func(*Core)
	spin = func(c *Core) {
		if !release.Load() {
			c.Send(c.ID(), spin)
		}
	}
	if err := r.Post(0, spin); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		stopped <- r.Stop(ctx)
	}()
	eventually(t, "Stop to begin", func() bool { return r.phase.Load() == phaseStopping })
	// A reset, not a clean close: franz-go takes an EOF before the first
	// answer for a TLS mismatch and does not retry it (a consumer group
	// member then rejoins), but retries a reset like any network error.
	// The reset may already fail the dial on loopback.
	conn, err := net.Dial("tcp", r.Addr().String())
	if err == nil {
		defer conn.Close()
		_ = conn.SetReadDeadline(time.Now().Add(waitTimeout))
		var n int
		if n, err = conn.Read(make([]byte, 1)); n > 0 {
			t.Fatalf("late client read %d bytes", n)
		}
	}
	if !errors.Is(err, unix.ECONNRESET) {
		t.Fatalf("late client: err %v, want the server to reset it", err)
	}
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) while core 0 still had queued work", err)
	default:
	}
	release.Store(true)
	if err := recv(t, stopped, "Stop"); err != nil {
		t.Fatal(err)
	}
	if _, total, _ := h.snapshot(); total != 0 || h.internal.Load() != 0 {
		t.Fatalf("handler saw %d opens, %d internal callbacks; want none", total, h.internal.Load())
	}
}

// TestHeldClientsWaitForServe: with HoldClients, a client connecting after
// boot but before Serve is held: its connect succeeds, what it sends waits,
// the handler does not see it, and at Serve the handler gets it with those
// bytes. Before, it was reset; on loopback the reset reaches the client
// inside connect(2), and franz-go does not retry a coordinator lookup that
// fails to connect: a group member whose heartbeat hit a restarting broker
// in that window ended its session (a rebalance).
func TestHeldClientsWaitForServe(t *testing.T) {
	h := newEchoHandler()
	r, _ := startRuntime(t, Config{HoldClients: true}, h)
	eventually(t, "the boot probes to close", func() bool { return r.eng.CountConnections() == 0 })
	conn, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatalf("a client connecting before Serve: %v; want it held", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(waitTimeout))
	if _, err := conn.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the server to hold the client", func() bool { return r.eng.CountConnections() == 1 })
	if _, total, _ := h.snapshot(); total != 0 {
		t.Fatalf("handler saw %d opens before Serve; want none", total)
	}
	r.Serve()
	got := make([]byte, 2)
	if _, err := io.ReadFull(conn, got); err != nil || string(got) != "hi" {
		t.Fatalf("held client after Serve: echo %q, err %v; want what it sent before Serve", got, err)
	}
	if _, total, _ := h.snapshot(); total != 1 || h.internal.Load() != 0 || h.noCore.Load() != 0 || h.offCore.Load() != 0 {
		t.Fatalf("handler saw %d opens (%d internal, %d without a core, %d off core); want 1 on its core",
			total, h.internal.Load(), h.noCore.Load(), h.offCore.Load())
	}
	// After Serve, clients are served at once.
	c2, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_ = c2.SetDeadline(time.Now().Add(waitTimeout))
	if _, err := c2.Write([]byte("yo")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c2, got); err != nil || string(got) != "yo" {
		t.Fatalf("client after Serve: echo %q, err %v", got, err)
	}
}

// TestHeldClientResetByStop: a runtime stopped before Serve resets the
// clients it holds (which clients retry) rather than closing them with a
// FIN before any answer (which franz-go takes for a TLS mismatch and does
// not retry); the handler never sees them.
func TestHeldClientResetByStop(t *testing.T) {
	h := newEchoHandler()
	r, _ := startRuntime(t, Config{HoldClients: true}, h)
	conn, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the server to hold the client", func() bool {
		r.heldMu.Lock()
		defer r.heldMu.Unlock()
		return len(r.held) == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := r.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(waitTimeout))
	n, err := conn.Read(make([]byte, 1))
	if n > 0 || !errors.Is(err, unix.ECONNRESET) {
		t.Fatalf("held client at Stop: read %d bytes, err %v; want a reset", n, err)
	}
	if _, total, closes := h.snapshot(); total != 0 || closes != 0 {
		t.Fatalf("handler saw %d opens, %d closes; want none", total, closes)
	}
}

// TestHeldClientSendingTooMuchIsReset drives a held client past
// Config.HeldBytesMax: it is reset, with a warning, and the handler never
// sees it.
func TestHeldClientSendingTooMuchIsReset(t *testing.T) {
	h := newEchoHandler()
	r, logs := startRuntime(t, Config{HoldClients: true, HeldBytesMax: 1000}, h)
	conn, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(waitTimeout))
	_, _ = conn.Write(make([]byte, 4000)) // may fail once the reset is in
	n, err := conn.Read(make([]byte, 1))
	if n > 0 || !errors.Is(err, unix.ECONNRESET) {
		t.Fatalf("held client past HeldBytesMax: read %d bytes, err %v; want a reset", n, err)
	}
	eventually(t, "the warning", func() bool {
		return strings.Contains(logs.String(), "sent more than it may before the server is ready")
	})
	r.Serve()
	if _, total, _ := h.snapshot(); total != 0 {
		t.Fatalf("handler saw %d opens; want none", total)
	}
}

// shutdownOnTraffic stops the engine from inside a callback.
type shutdownOnTraffic struct{ gnet.BuiltinEventEngine }

func (shutdownOnTraffic) OnTraffic(gnet.Conn) gnet.Action { return gnet.Shutdown }

func TestStopAfterHandlerShutdown(t *testing.T) {
	r, err := Start(Config{Listen: "127.0.0.1:0", Logger: quietLogger()}, &shutdownOnTraffic{})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	recv(t, r.runDone, "the engine to stop itself")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := r.Stop(ctx); err != nil {
		t.Fatalf("Stop after the engine stopped itself: %v", err)
	}
}

// TestKeepPortAfterStop: with KeepPort, a client connecting after Stop
// closed the listener connects (it waits in a backlog nobody accepts) and
// is reset at ReleasePort, not refused; after ReleasePort the address is
// free. Before, a broker stopping for a restart refused connections from
// the moment its listener closed, through its last clean-up, until the new
// process bound the port.
func TestKeepPortAfterStop(t *testing.T) {
	h := newEchoHandler()
	r, _ := startRuntime(t, Config{KeepPort: true}, h)
	addr := r.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := r.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("a client connecting after Stop: %v; want it to wait", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	r.ReleasePort()
	_ = conn.SetReadDeadline(time.Now().Add(waitTimeout))
	n, err := conn.Read(make([]byte, 1))
	if n > 0 || !errors.Is(err, unix.ECONNRESET) {
		t.Fatalf("waiting client at ReleasePort: read %d bytes, err %v; want a reset", n, err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the address after ReleasePort: %v; want it free", err)
	}
	l.Close()
	r.ReleasePort() // again: nothing
	if _, total, _ := h.snapshot(); total != 0 {
		t.Fatalf("handler saw %d opens; want none", total)
	}
}
