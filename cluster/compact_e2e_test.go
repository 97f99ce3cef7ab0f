package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/strand-io/strand/reactor"
	"github.com/strand-io/strand/shard"
	"github.com/strand-io/strand/wire"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// logState is what the compaction test needs of a partition log, read on
// its core.
type logState struct {
	passes           int
	cleaning         bool
	activeBase, next shard.Offset
	hw, start        shard.Offset
	sizeBytes        int64
}

func partitionLogState(t testing.TB, n *Node, ref wire.PartitionRef) (logState, bool) {
	t.Helper()
	for _, cs := range n.cores {
		got := make(chan logState, 1)
		found := make(chan bool, 1)
		if err := n.rt.Post(cs.core.ID(), func(*reactor.Core) {
			p, ok := cs.parts[ref]
			found <- ok
			if ok {
				l := p.log
				got <- logState{l.CleanerPasses(), l.Cleaning(), l.ActiveBase(), l.NextOffset(), l.HighWatermark(), l.LogStartOffset(), l.SizeBytes()}
			}
		}); err != nil {
			t.Fatal(err)
		}
		if <-found {
			return <-got, true
		}
	}
	return logState{}, false
}

// TestCompactedTopicE2E: 10 keys rewritten many times on a topic with
// cleanup.policy=compact and a short segment.ms end, after cleaning, with
// one record per key below the active segment at the offsets they were
// produced at, and a group consumer from the start sees the latest value
// of every key. STRAND_COMPACT_E2E_RECORDS sets the record count (default
// 100,000, as the issue asks).
func TestCompactedTopicE2E(t *testing.T) {
	total := 100_000
	if v := os.Getenv("STRAND_COMPACT_E2E_RECORDS"); v != "" {
		total, _ = strconv.Atoi(v)
	}
	n, err := Start(Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		TickInterval: 20 * time.Millisecond, CleanerInterval: 5 * time.Millisecond, CleanerBytesPerRound: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()), kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const topic = "compacted"
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 1, 1
	for k, v := range map[string]string{"cleanup.policy": "compact", "segment.ms": "300", "segment.bytes": "16384", "retention.ms": "1000"} {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 30_000
	resp, err := req.RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
	}
	if err != nil {
		t.Fatal(err)
	}

	latest := map[string]int64{}  // key -> offset of its last write
	values := map[string]string{} // key -> its last value
	written := map[int64]string{} // offset -> value
	start := time.Now()
	for i := 0; i < total; {
		var recs []*kgo.Record
		for j := 0; j < 500 && i < total; j, i = j+1, i+1 {
			recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint("key", i%10)), Value: []byte(fmt.Sprint("value-", i))})
		}
		res := cl.ProduceSync(ctx, recs...)
		if err := res.FirstErr(); err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			k := string(r.Record.Key)
			if r.Record.Offset > latest[k] || values[k] == "" {
				latest[k], values[k] = r.Record.Offset, string(r.Record.Value)
			}
			written[r.Record.Offset] = string(r.Record.Value)
		}
	}
	t.Logf("produced %d records in %v", total, time.Since(start))

	// Wait until the last write is in a sealed segment and a pass has
	// cleaned everything sealed.
	ref := wire.PartitionRef{Topic: topic, Partition: 0}
	var st logState
	for {
		var ok bool
		st, ok = partitionLogState(t, n, ref)
		if ok && st.activeBase == st.next && st.passes > 0 && !st.cleaning && st.sizeBytes < 64<<10 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("cleaning did not finish: %+v", st)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Logf("cleaned in %v: %+v", time.Since(start), st)
	if st.start != 0 {
		t.Fatalf("log start offset moved to %d on a compacted topic", st.start)
	}

	// A direct consumer from offset 0: one record per key, at its
	// original offset, with its latest value.
	cons, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := map[string]int64{}
	for len(seen) < 10 {
		fs := cons.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			k := string(r.Key)
			if _, dup := seen[k]; dup {
				t.Errorf("key %s twice: offsets %d and %d", k, seen[k], r.Offset)
			}
			seen[k] = r.Offset
			if r.Offset != latest[k] || string(r.Value) != values[k] || written[r.Offset] != string(r.Value) {
				t.Errorf("key %s at %d = %q, want offset %d value %q", k, r.Offset, r.Value, latest[k], values[k])
			}
		})
	}

	// A group consumer from the start sees the latest value of every key.
	grp, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()), kgo.ConsumerGroup("compact-readers"), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer grp.Close()
	got := map[string]string{}
	for len(got) < 10 {
		fs := grp.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) { got[string(r.Key)] = string(r.Value) })
	}
	for k, v := range values {
		if got[k] != v {
			t.Errorf("group consumer: key %s = %q, want %q", k, got[k], v)
		}
	}
}
