//go:build invariants || race

package shard

import (
	"strings"
	"testing"

	"github.com/strand-io/strand/dma"
)

// mustPanic runs fn and returns its panic message, failing if it returns.
func mustPanic(t *testing.T, what string, fn func()) string {
	t.Helper()
	var msg string
	func() {
		defer func() {
			if r := recover(); r != nil {
				msg, _ = r.(string)
			}
		}()
		fn()
		t.Fatalf("%s: no panic", what)
	}()
	return msg
}

// TestInvariantsCatchBrokenState shows the checks that `make test` turns on
// (-race implies them) can fail: each broken relation, planted in a working
// log, panics at the next entry point.
func TestInvariantsCatchBrokenState(t *testing.T) {
	cases := []struct {
		name  string
		plant func(l *Log)
		want  string
	}{
		{"synced past written", func(l *Log) { l.synced = l.written + 1 }, "write pipeline out of order"},
		{"written past end", func(l *Log) { l.written, l.end = l.end+4096, l.end }, "write pipeline out of order"},
		{"hw above next", func(l *Log) { l.hw = l.next + 1 }, "high watermark above the next offset"},
		{"log start above next", func(l *Log) { l.logStart = l.next + 1 }, "log start above the next offset"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, eng := memLog(t, dma.NewMemFS(4096, 1), Config{})
			defer abandon(l)
			if o := appendSync(t, l, eng, makeBatch(3, 1, []byte("x"))); o.err != nil {
				t.Fatal(o.err)
			}
			saved := *l
			c.plant(l)
			msg := mustPanic(t, c.name, func() { l.Read(0, 1<<20, func(ReadResult, error) {}) })
			if !strings.Contains(msg, c.want) {
				t.Fatalf("panic %q, want %q", msg, c.want)
			}
			l.synced, l.written, l.end, l.hw, l.next, l.logStart = saved.synced, saved.written, saved.end, saved.hw, saved.next, saved.logStart
		})
	}
	t.Run("high watermark going back", func(t *testing.T) {
		l, eng := memLog(t, dma.NewMemFS(4096, 1), Config{})
		defer abandon(l)
		if o := appendSync(t, l, eng, makeBatch(3, 1, []byte("x"))); o.err != nil {
			t.Fatal(o.err)
		}
		if msg := mustPanic(t, "advanceHW", func() { l.advanceHW(l.hw - 1) }); !strings.Contains(msg, "would go back") {
			t.Fatalf("panic %q", msg)
		}
	})
	t.Run("owner", func(t *testing.T) {
		owned := true
		l, eng := memLog(t, dma.NewMemFS(4096, 1), Config{AssertOwner: func() {
			if !owned {
				panic("not the owner")
			}
		}})
		defer abandon(l)
		if o := appendSync(t, l, eng, makeBatch(1, 1, []byte("x"))); o.err != nil {
			t.Fatal(o.err)
		}
		owned = false
		if msg := mustPanic(t, "foreign Append", func() { _ = l.Append(makeBatch(1, 1, []byte("y")), 1, nil) }); msg != "not the owner" {
			t.Fatalf("panic %q", msg)
		}
		owned = true
	})
}
