package cluster

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/strand-io/strand/reactor"
	"github.com/strand-io/strand/wire"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestFollowerFetchBackend calls the backend's follower read and epoch
// lookup on an unreplicated partition's owning core: the follower read is
// refused (the replicated path runs in cluster/e2e's replication tests),
// and the epoch answers come from the log.
func TestFollowerFetchBackend(t *testing.T) {
	n, err := Start(Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()), kgo.DefaultProduceTopic("rf"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "rf"); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	ref := wire.PartitionRef{Topic: "rf", Partition: 0}
	var cs *coreState
	for _, c := range n.cores {
		if onCore(t, n, c, func() any { _, ok := c.parts[ref]; return ok }).(bool) {
			cs = c
		}
	}
	if cs == nil {
		t.Fatal("no core owns the partition")
	}
	b := &backend{node: n, cs: cs}
	// A partition without followers has no replica state to count a
	// follower's fetch in: it refuses, rather than serve a fetch whose
	// offset nothing would track.
	fetched := make(chan wire.FetchResult, 1)
	onCore(t, n, cs, func() any {
		b.FollowerFetch(ref, 2, wire.FetchSession{Conn: 1, Request: 1}, 0, 1<<20, func(r wire.FetchResult) { fetched <- r })
		return nil
	})
	if r := <-fetched; r.ErrCode != kerr.LeaderNotAvailable.Code || len(r.Records) != 0 {
		t.Fatalf("follower fetch of an unreplicated partition: code %d, %d bytes", r.ErrCode, len(r.Records))
	}
	epochs := make(chan wire.EpochEndOffset, 2)
	onCore(t, n, cs, func() any {
		b.EndOffsetForEpoch(ref, 0, func(r wire.EpochEndOffset) { epochs <- r })
		b.EndOffsetForEpoch(wire.PartitionRef{Topic: "rf", Partition: 9}, 0, func(r wire.EpochEndOffset) { epochs <- r })
		return nil
	})
	if e := <-epochs; e != (wire.EpochEndOffset{LeaderEpoch: 0, EndOffset: 5}) {
		t.Fatalf("epoch 0: %+v", e)
	}
	if e := <-epochs; e.ErrCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown partition: %+v", e)
	}
}

// onCore runs fn on core cs and returns its result.
func onCore(t *testing.T, n *Node, cs *coreState, fn func() any) any {
	t.Helper()
	got := make(chan any, 1)
	if err := n.rt.Post(cs.core.ID(), func(*reactor.Core) { got <- fn() }); err != nil {
		t.Fatal(err)
	}
	return <-got
}
