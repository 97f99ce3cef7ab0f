package reactor

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// waitTimeout bounds every wait in these tests. Nothing sleeps: tests block
// on a channel or poll a condition until this deadline.
const waitTimeout = 10 * time.Second

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// recv waits for one value from ch.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// quietLogger drops everything below Warn.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// startRuntime starts a runtime on a free loopback port and stops it when
// the test ends.
func startRuntime(t *testing.T, cfg Config, h gnet.EventHandler) (*Runtime, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	r, err := Start(cfg, h)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := r.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return r, logs
}

// post runs fn on core id and waits for it to finish.
func post(t *testing.T, r *Runtime, id CoreID, fn func(*Core)) {
	t.Helper()
	done := make(chan struct{})
	if err := r.Post(id, func(c *Core) { fn(c); close(done) }); err != nil {
		t.Fatalf("Post: %v", err)
	}
	recv(t, done, "posted task")
}

// echoHandler echoes bytes back and records which core saw each callback
// and whether it ran on that core's thread.
type echoHandler struct {
	gnet.BuiltinEventEngine
	mu       sync.Mutex
	opens    map[CoreID]int
	closes   int
	offCore  atomic.Int32 // callbacks not on their connection's core thread
	noCore   atomic.Int32 // callbacks on a connection with no core
	internal atomic.Int32 // callbacks on the reactor's own probe connections
}

func newEchoHandler() *echoHandler { return &echoHandler{opens: make(map[CoreID]int)} }

func (h *echoHandler) check(c gnet.Conn) *Core {
	if isInternal(c) {
		h.internal.Add(1)
	}
	core := CoreOf(c)
	if core == nil {
		h.noCore.Add(1)
		return nil
	}
	if !core.OnThread() {
		h.offCore.Add(1)
	}
	return core
}

func (h *echoHandler) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	if core := h.check(c); core != nil {
		h.mu.Lock()
		h.opens[core.ID()]++
		h.mu.Unlock()
	}
	return nil, gnet.None
}

func (h *echoHandler) OnTraffic(c gnet.Conn) gnet.Action {
	h.check(c)
	b, _ := c.Next(-1)
	_, _ = c.Write(b)
	return gnet.None
}

func (h *echoHandler) OnClose(c gnet.Conn, _ error) gnet.Action {
	h.check(c)
	h.mu.Lock()
	h.closes++
	h.mu.Unlock()
	return gnet.None
}

func (h *echoHandler) snapshot() (opens map[CoreID]int, total, closes int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	opens = make(map[CoreID]int, len(h.opens))
	for k, v := range h.opens {
		opens[k] = v
		total += v
	}
	return opens, total, h.closes
}
