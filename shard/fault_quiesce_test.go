package shard

import (
	"testing"

	"github.com/strand-io/strand/dma"
)

// TestQuiesceReleasedByFailure: an owner waiting to close a log is not left
// hanging when the log fails instead of draining.
func TestQuiesceReleasedByFailure(t *testing.T) {
	fs := dma.NewMemFS(4096, 3)
	l, eng := memLog(t, fs, Config{})
	quiet := 0
	l.Quiesce(func() { quiet++ })
	if quiet != 1 {
		t.Fatalf("idle log: quiesce ran %d times", quiet)
	}
	var appendErr error
	l.Append(makeBatch(1, 1, []byte("x")), 1, func(_ AppendResult, err error) { appendErr = err })
	l.Quiesce(func() { quiet++ })
	fs.Faults.FailSyncs = 1
	dma.Drain(eng)
	if appendErr == nil || l.Err() == nil {
		t.Fatal("failed fsync did not fail the append and the log")
	}
	if quiet != 2 {
		t.Fatalf("quiesce after failure ran %d times in total, want 2", quiet)
	}
	l.Quiesce(func() { quiet++ })
	if quiet != 3 {
		t.Fatal("quiesce on a failed log did not run at once")
	}
}
