package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestClientHeldDuringStart: a client connecting to a broker that is still
// starting (here: held before its Raft log opens) connects at once, and
// its request is answered once the broker is ready. Before, the listener
// was bound only after the I/O probe and the Raft log, and then reset
// clients until Serve: a restart refused connections for 0.1 to 1.4 s
// (on a loaded 2-core machine), and franz-go does not retry a coordinator
// lookup that cannot connect, so a group member whose heartbeat hit that
// window ended its session and rejoined (TestRestartKeepsConsumerGroup
// failed in CI).
func TestClientHeldDuringStart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	api := kmsg.NewPtrApiVersionsRequest()
	api.SetVersion(0)
	var conn net.Conn
	var dialErr error
	prev := startHookBeforeRaft
	startHookBeforeRaft = func() {
		// The start is held here: the client connects and asks.
		if conn, dialErr = net.DialTimeout("tcp", addr, 10*time.Second); dialErr == nil {
			_, dialErr = conn.Write(kmsg.NewRequestFormatter().AppendRequest(nil, api, 7))
		}
	}
	t.Cleanup(func() { startHookBeforeRaft = prev })
	n, err := Start(Config{DataDir: t.TempDir(), Listen: addr, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = n.Close(ctx)
	})
	if dialErr != nil {
		t.Fatalf("a client of a starting broker: %v; want it connected and held until the broker is ready", dialErr)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	var pfx [4]byte
	if _, err := io.ReadFull(conn, pfx[:]); err != nil {
		t.Fatalf("the held client's ApiVersions: %v; want an answer once the broker is ready", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(pfx[:]))
	if _, err := io.ReadFull(conn, body); err != nil {
		t.Fatal(err)
	}
	if corr := int32(binary.BigEndian.Uint32(body)); corr != 7 {
		t.Fatalf("correlation id %d, want 7", corr)
	}
	resp := api.ResponseKind().(*kmsg.ApiVersionsResponse)
	if err := resp.ReadFrom(body[4:]); err != nil || resp.ErrorCode != 0 || len(resp.ApiKeys) == 0 {
		t.Fatalf("ApiVersions answer %+v, err %v", resp, err)
	}
}

// TestClientWaitsDuringShutdown: a client connecting to a broker that has
// stopped its reactor but is still cleaning up (closing Raft, writing the
// metadata export) connects, and is reset when the broker is done, which
// clients retry like any network error. Before, the port was unbound from
// the moment the listener closed, which on a loaded machine took 0.2 s
// before the process exited; with the next process's start, connections
// were refused long enough for franz-go's coordinator lookup to give up
// (it does not retry a refused connect), ending a group member's session.
func TestClientWaitsDuringShutdown(t *testing.T) {
	n, err := Start(Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	addr := n.Addr()
	var conn net.Conn
	var dialErr error
	prev := closeHookAfterReactor
	closeHookAfterReactor = func() {
		if conn, dialErr = net.DialTimeout("tcp", addr, 10*time.Second); dialErr == nil {
			_, dialErr = conn.Write([]byte{0, 0, 0, 0})
		}
	}
	t.Cleanup(func() { closeHookAfterReactor = prev })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if dialErr != nil {
		t.Fatalf("a client of a broker shutting down: %v; want it to connect and wait", dialErr)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if k, err := conn.Read(make([]byte, 1)); k > 0 || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the waiting client once Close returned: read %d bytes, err %v; want a reset", k, err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the port after Close: %v; want it free", err)
	}
	l.Close()
}

// TestPortKeptUntilExit: with KeepPortUntilExit (strand serve, which exits
// right after Close) the port is still bound when Close returns, so a
// client connecting then waits instead of being refused; the process's
// exit (here ReleasePort) resets it.
func TestPortKeptUntilExit(t *testing.T) {
	n, err := Start(Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", KeepPortUntilExit: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", n.Addr(), 10*time.Second)
	if err != nil {
		t.Fatalf("a client after Close: %v; want it to wait until the process exits", err)
	}
	defer conn.Close()
	n.rt.ReleasePort() // what the exit does
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if k, err := conn.Read(make([]byte, 1)); k > 0 || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the waiting client at exit: read %d bytes, err %v; want a reset", k, err)
	}
}
