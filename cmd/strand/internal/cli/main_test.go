package cli

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strand-io/strand/cluster"
	"github.com/strand-io/strand/cluster/adminapi"
	"github.com/strand-io/strand/cluster/group"
	"github.com/strand-io/strand/shard"
)

// testBroker is the address of the in-process broker every test runs the
// CLI against. Topics are not auto-created, so unknown-topic paths are
// real errors, as an operator sees them on a default broker.
var testBroker string

// testAdmin is the URL of the test broker's admin API.
var testAdmin string

// brokerLog keeps the broker's warnings; a failing test prints them.
var brokerLog lockedBuffer

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "strand-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	node, err := cluster.Start(cluster.Config{
		DataDir: dir, Listen: "127.0.0.1:0", DefaultPartitions: 1,
		Log:    shard.Config{Preallocate: true},
		Groups: group.Config{InitialRebalanceDelayMs: -1},
		Logger: slog.New(slog.NewTextHandler(&brokerLog, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the test broker:", err)
		os.Exit(1)
	}
	testBroker = node.Addr()
	admin, err := adminapi.Listen(adminapi.Config{Listen: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(&brokerLog, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the admin API:", err)
		os.Exit(1)
	}
	admin.SetBroker(node)
	testAdmin = "http://" + admin.Addr()
	code := m.Run()
	admin.Close(context.Background())
	if code != 0 {
		fmt.Fprintf(os.Stderr, "broker log:\n%s", brokerLog.String())
	}
	node.Close(context.Background())
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is one CLI run.
type result struct {
	stdout, stderr string
	code           int
}

// cli runs the CLI against the test broker with stdin.
func cli(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return cliEnv(t, Env{Stdin: strings.NewReader(stdin)}, nil, append(args, "--brokers", testBroker)...)
}

// cliEnv runs the CLI with env; stderr, if not nil, receives what it
// writes there (for a test that watches it while the command runs).
func cliEnv(t *testing.T, env Env, stderr *lockedBuffer, args ...string) result {
	t.Helper()
	var stdout bytes.Buffer
	if stderr == nil {
		stderr = new(lockedBuffer)
	}
	env.Stdout, env.Stderr = &stdout, stderr
	if env.Stdin == nil {
		env.Stdin = strings.NewReader("")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env.Context = ctx
	code := Main(args, env)
	return result{stdout.String(), stderr.String(), code}
}

// ok runs the CLI and fails the test unless it exits 0.
func ok(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	r := cli(t, stdin, args...)
	if r.code != 0 {
		t.Fatalf("strand %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// fails runs the CLI and checks its exit code and that stderr says want.
func fails(t *testing.T, code int, want, stdin string, args ...string) result {
	t.Helper()
	r := cli(t, stdin, args...)
	if r.code != code || !strings.Contains(r.stderr, want) {
		t.Fatalf("strand %s: exit %d, stderr %q; want exit %d and %q\nstdout:\n%s", strings.Join(args, " "), r.code, r.stderr, code, want, r.stdout)
	}
	return r
}

// closedPort returns an address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

var uniqSeq atomic.Int64

// uniq returns base with a suffix no other call in this process gets, so
// -count=N runs against the one broker do not collide.
func uniq(base string) string {
	return fmt.Sprintf("%s-%d", base, uniqSeq.Add(1))
}
