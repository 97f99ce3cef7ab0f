package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/strand-io/strand/cluster"
	"github.com/strand-io/strand/shard"
)

// binDir holds the strand binary built for this test run (see strandBin).
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "strand-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// strandBin builds cmd/strand once per test run and returns its path. The
// binary carries the race detector when the tests do, so the process tests
// check the broker for races too. STRAND_E2E_BIN=path uses a prebuilt
// binary instead (an instrumented build, say).
func strandBin(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("STRAND_E2E_BIN"); p != "" {
			buildPath = p // a prebuilt (e.g. instrumented) binary
			return
		}
		_, self, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(self), "..", "..")
		buildPath = filepath.Join(binDir, "strand")
		args := []string{"build", "-ldflags=-checklinkname=0", "-o", buildPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "./cmd/strand")
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// logBuf collects log output from a broker so that a failing test can show
// it; passing tests stay quiet. STRAND_E2E_LOG=1 echoes it live.
type logBuf struct {
	mu   sync.Mutex
	b    bytes.Buffer
	echo bool
}

func newLogBuf() *logBuf { return &logBuf{echo: os.Getenv("STRAND_E2E_LOG") == "1"} }

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.echo {
		os.Stderr.Write(p)
	}
	// Keep the newest 4 MiB.
	if l.b.Len() > 4<<20 {
		rest := append([]byte(nil), l.b.Bytes()[l.b.Len()-2<<20:]...)
		l.b.Reset()
		l.b.Write(rest)
	}
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// tail returns the last n bytes of the log.
func (l *logBuf) tail(n int) string {
	s := l.String()
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return s
}

// dumpOnFailure prints the log when the test has failed.
//
// STRAND_E2E_LOGS=1 dumps it after a passing test too (for debugging).
func (l *logBuf) dumpOnFailure(t testing.TB, what string) {
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("STRAND_E2E_LOGS") != "" {
			t.Logf("%s log (tail):\n%s", what, l.tail(64<<10))
		}
	})
}

// testDataDir returns a fresh data directory on the real disk (t.TempDir
// is on ext4 on this machine, not tmpfs).
func testDataDir(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "data")
}

// startNode runs a broker in this process on a free port. It is closed at
// cleanup unless the test closed it.
func startNode(t testing.TB, dir string, tweak func(*cluster.Config)) *cluster.Node {
	t.Helper()
	logs := newLogBuf()
	logs.dumpOnFailure(t, "broker")
	cfg := cluster.Config{
		DataDir:          dir,
		Listen:           "127.0.0.1:0",
		AutoCreateTopics: true,
		Log:              shard.Config{Preallocate: true},
		Logger:           slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	n, err := cluster.Start(cfg)
	if err != nil {
		t.Fatalf("cluster.Start: %v\n%s", err, logs.tail(8<<10))
	}
	t.Cleanup(func() { closeNode(t, n) })
	return n
}

func closeNode(t testing.TB, n *cluster.Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Errorf("closing broker: %v", err)
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	// Below the kernel's ephemeral range: a port picked from it (listening
	// on :0 and closing) could be handed out again by the kernel to the
	// next :0 listener or outgoing connection before the broker binds
	// it. CI saw both: one Raft address for two brokers, and a broker's
	// admin listener (on :0) taking its own Raft port.
	lo := ephemeralLow()
	span := lo - 10000
	if handedOut.next == 0 {
		handedOut.next = 10000 + rand.IntN(span)
	}
	for range span {
		port := handedOut.next
		handedOut.next = 10000 + (handedOut.next-10000+1)%span
		if handedOut.ports[port] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // taken
		}
		l.Close()
		handedOut.ports[port] = true
		return port
	}
	t.Fatalf("no free port in 10000-%d", lo-1)
	return 0
}

// ephemeralLow is the bottom of the kernel's range for ports it picks
// itself (32768 by default).
func ephemeralLow() int {
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if lo, err := strconv.Atoi(f[0]); err == nil && lo > 11000 {
				return lo
			}
		}
	}
	return 32768
}

// handedOut is every port freePort has returned, and where it looks next
// (a random start, so that test binaries running side by side seldom
// probe the same ports).
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
	next  int
}{ports: map[int]bool{}}

// proc is bin/strand running as a child process. Restarting it keeps the
// data directory and the port.
type proc struct {
	t      testing.TB
	bin    string
	dir    string
	addr   string
	extra  []string
	wrap   []string // a command line the binary runs under (prlimit, say)
	logs   *logBuf
	starts int

	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

const readyLine = "strand broker ready"

// startProc builds (once) and starts bin/strand on dir and a free port.
func startProc(t testing.TB, dir string, extra ...string) *proc {
	t.Helper()
	return startProcWrapped(t, dir, nil, extra...)
}

// stopAndCheckRaces is every process's cleanup: it kills the broker if it
// still runs, then fails the test if the broker (race-built, which
// reports races on stderr and keeps going) reported a data race.
func (p *proc) stopAndCheckRaces() {
	if p.running() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	if log := p.logs.String(); strings.Contains(log, "WARNING: DATA RACE") {
		i := strings.Index(log, "WARNING: DATA RACE")
		p.t.Errorf("a broker process reported a data race:\n%s", log[i:min(len(log), i+16<<10)])
	}
}

// startProcWrapped is startProc with the binary run under the command
// line wrap (e.g. prlimit and its options).
func startProcWrapped(t testing.TB, dir string, wrap []string, extra ...string) *proc {
	t.Helper()
	p := &proc{t: t, bin: strandBin(t), dir: dir, extra: extra, wrap: wrap, logs: newLogBuf()}
	p.logs.dumpOnFailure(t, "strand process")
	t.Cleanup(p.stopAndCheckRaces)
	// The free port may be taken by someone else before the broker binds
	// it (other tests run on this machine): then try another one.
	for attempt := 1; ; attempt++ {
		p.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
		err := p.tryStart()
		if err == nil {
			return p
		}
		if attempt == 5 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
	}
}

func (p *proc) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// start (re)starts the process on the same data dir and port and waits
// until it logs that it is ready.
func (p *proc) start() {
	p.t.Helper()
	if err := p.tryStart(); err != nil {
		p.t.Fatal(err)
	}
}

func (p *proc) tryStart() error {
	if p.running() {
		return errors.New("proc.start: already running")
	}
	p.starts++
	// A free admin port: brokers of parallel tests (and of other test
	// runs on the machine) would all want the default 9644.
	args := append([]string{"serve", "--data-dir", p.dir, "--listen", p.addr, "--admin-listen", "127.0.0.1:0"}, p.extra...)
	cmd := exec.Command(p.bin, args...)
	if len(p.wrap) > 0 {
		cmd = exec.Command(p.wrap[0], append(append(p.wrap[1:len(p.wrap):len(p.wrap)], p.bin), args...)...)
	}
	if raceEnabled && os.Getenv("GORACE") == "" {
		// The race runtime sleeps a second before exiting (atexit_sleep_ms),
		// which no real build does: a restart would leave clients a second
		// of refused connections instead of milliseconds.
		cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	cmd.Stdout = p.logs
	fmt.Fprintf(p.logs, "=== start #%d: %s %s\n", p.starts, p.bin, strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		return err
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	ready := make(chan struct{})
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(p.logs, line)
			if strings.Contains(line, readyLine) {
				once.Do(func() { close(ready) })
			}
		}
		_, _ = io.Copy(p.logs, stderr)
	}()
	exited := p.exited
	go func() {
		<-scanned // Wait must not run before the pipe is drained
		p.waitErr = cmd.Wait()
		fmt.Fprintf(p.logs, "=== exit #%d: %v\n", p.starts, p.waitErr)
		close(exited)
	}()
	select {
	case <-ready:
		return nil
	case <-exited:
		return fmt.Errorf("strand exited before it was ready: %v\n%s", p.waitErr, p.logs.tail(8<<10))
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("strand not ready after 60s\n%s", p.logs.tail(8<<10))
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatalf("SIGKILL: %v", err)
	}
	p.wait(30 * time.Second)
}

// term sends SIGTERM, waits for the process to exit and returns its exit
// code.
func (p *proc) term(d time.Duration) int {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatalf("SIGTERM: %v", err)
	}
	p.wait(d)
	var ee *exec.ExitError
	switch {
	case p.waitErr == nil:
		return 0
	case errors.As(p.waitErr, &ee):
		return ee.ExitCode()
	}
	p.t.Fatalf("wait: %v", p.waitErr)
	return -1
}

func (p *proc) wait(d time.Duration) {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(d):
		_ = p.cmd.Process.Kill()
		<-p.exited
		p.t.Fatalf("strand did not exit within %v\n%s", d, p.logs.tail(8<<10))
	}
}

// cpuSeconds is the process's user+system CPU time so far, from
// /proc/PID/stat (fields 14 and 15, in clock ticks of 1/100 s).
func (p *proc) cpuSeconds() (float64, error) {
	return procCPUSeconds(p.cmd.Process.Pid)
}

func procCPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields restart after ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("unparseable /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	// f[0] is field 3 (state), so utime (14) is f[11] and stime (15) f[12].
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unparseable /proc/%d/stat times", pid)
	}
	const clkTck = 100 // USER_HZ, fixed at 100 for /proc on Linux
	return float64(ut+st) / clkTck, nil
}

// quit sends SIGQUIT, which makes the Go runtime print every goroutine's
// stack to stderr (captured in the log) and exit: the way to see where a
// hung broker is stuck.
func (p *proc) quit() {
	p.t.Helper()
	if !p.running() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGQUIT)
	p.wait(30 * time.Second)
}

// stallSummary counts the reactor stall warnings in a broker log and finds
// the longest (the stall detector logs any loop callback or task that runs
// past its threshold; it rate-limits to one line per core per second, so
// the count is a lower bound).
func stallSummary(log string) (n int, longest time.Duration, line string) {
	for _, l := range strings.Split(log, "\n") {
		if !strings.Contains(l, `msg="reactor stall"`) {
			continue
		}
		n++
		i := strings.Index(l, " took=")
		if i < 0 {
			continue
		}
		f := strings.Fields(l[i+6:])
		if len(f) == 0 {
			continue
		}
		if d, err := time.ParseDuration(f[0]); err == nil && d > longest {
			longest, line = d, l
		}
	}
	return n, longest, line
}

// loadAvg returns /proc/loadavg's first three fields.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
