package cluster

import (
	"io"
	"log/slog"
	"testing"

	"github.com/strand-io/strand/cluster/replhost"
	"github.com/strand-io/strand/cluster/replication"
	"github.com/strand-io/strand/dma"
	"github.com/strand-io/strand/shard"
)

// TestDivergenceRoundsOnLogs runs the fetcher's truncation rounds
// (divergenceRound, then the next question for the epoch it names) on two
// real partition logs in KIP-279's case. The follower led epoch 3 without
// the epoch-2 batch the new leader wrote at the same offsets; asked for
// epoch 3, the leader names epoch 2, which the follower lacks. Cutting at
// the leader's end of epoch 2, as the fetcher once did, kept the
// follower's own epoch-1 records where the leader has epoch 2 ones.
func TestDivergenceRoundsOnLogs(t *testing.T) {
	mem := dma.NewMemFS(4096, 1)
	eng := mem.NewEngine()
	open := func(dir string, batches ...replication.Batch) *shard.Log {
		t.Helper()
		l, err := shard.Open(shard.Config{Dir: dir, SegmentBytes: 8 << 10, IndexIntervalBytes: 512,
			BufferBytes: 256 << 10, BufferBytesMin: 16 << 10, MaxBatchBytes: 16 << 10, ExternalHW: true,
			ProducerSnapshotBytes: 4 << 10, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, mem, eng)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range batches {
			var aerr error
			if err := l.AppendReplicated(replhost.EncodeBatch(b), func(_ shard.AppendResult, err error) { aerr = err }); err != nil {
				t.Fatal(err)
			}
			if err := dma.Drain(eng); err != nil || aerr != nil {
				t.Fatalf("append at %d: %v %v", b.Base, err, aerr)
			}
		}
		return l
	}
	batch := func(base replication.Offset, epoch replication.Epoch, n int) replication.Batch {
		return replication.Batch{Base: base, Epoch: epoch, Values: make([]uint64, n)}
	}
	follower := open("/f/p-0", batch(0, 1, 3), batch(3, 1, 1), batch(4, 1, 2), batch(6, 3, 1))
	leader := open("/l/p-0", batch(0, 1, 3), batch(3, 2, 2))
	if err := leader.SetLeaderEpoch(4); err != nil {
		t.Fatal(err)
	}

	ask := follower.LeaderEpoch()
	for round := 1; ; round++ {
		if round > 4 {
			t.Fatal("no agreement after 4 rounds")
		}
		le, lend := leader.EndOffsetForEpoch(ask)
		cut, agreed, next := divergenceRound(follower, int32(le), int64(lend))
		t.Logf("round %d: asked %d, leader answered (%d, %d): cut %d, agreed %v", round, ask, le, lend, cut, agreed)
		var terr error
		follower.TruncateTo(shard.Offset(cut), func(_ shard.Offset, err error) { terr = err })
		if err := dma.Drain(eng); err != nil || terr != nil {
			t.Fatalf("truncate to %d: %v %v", cut, err, terr)
		}
		if agreed {
			break
		}
		ask = min(follower.LeaderEpoch(), next)
	}
	if end := follower.NextOffset(); end != 3 {
		t.Fatalf("follower's log ends at %d after truncation, want 3: its records at 3.. are epoch 1, the leader's epoch 2", end)
	}
	if e := follower.LeaderEpoch(); e != 1 {
		t.Fatalf("follower's newest epoch after truncation is %d, want 1", e)
	}
}
