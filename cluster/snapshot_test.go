package cluster

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/strand-io/strand/reactor"
)

// A core that does not answer fails Snapshot at the deadline instead of
// hanging the caller, and a late answer does not block the core.
func TestSnapshotTimesOutOnABlockedCore(t *testing.T) {
	n, err := Start(Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	snap, err := n.Snapshot(ctx)
	if err != nil || len(snap) != len(n.cores) {
		t.Fatalf("snapshot of an idle broker: %d cores, %v", len(snap), err)
	}
	offsets := 0
	for i, s := range snap {
		if s.Core != reactor.CoreID(i) || s.CPU != n.cores[i].core.CPU() {
			t.Fatalf("core %d reported as %d on CPU %d", i, s.Core, s.CPU)
		}
		offsets += len(s.Partitions)
	}
	if offsets != int(n.cfg.OffsetsPartitions) {
		t.Fatalf("cores report %d partitions, the offsets topic has %d", offsets, n.cfg.OffsetsPartitions)
	}

	release := make(chan struct{})
	last := reactor.CoreID(len(n.cores) - 1)
	if err := n.rt.Post(last, func(*reactor.Core) { <-release }); err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelShort()
	if _, err := n.Snapshot(short); !errors.Is(err, ErrSnapshotTimeout) {
		close(release)
		t.Fatalf("snapshot with core %d blocked: %v, want ErrSnapshotTimeout", last, err)
	}
	close(release)
	if _, err := n.Snapshot(ctx); err != nil {
		t.Fatalf("snapshot once the core is free again: %v", err)
	}
}
