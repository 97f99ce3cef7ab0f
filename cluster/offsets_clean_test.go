package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strand-io/strand/wire"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestOffsetsLogCleaned: the offsets topic is compacted by the log
// cleaner like any compacted topic. Ten groups commit ten partitions
// again and again, with Kafka's largest default metadata, writing several
// times the offsets topic's 16 MiB segments; the cleaner must bring the
// sealed part down to the live offsets, and a restart, which replays the
// cleaned log with its gaps, must serve every group's latest offsets.
func TestOffsetsLogCleaned(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{DataDir: dir, Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OffsetsPartitions: 1, TickInterval: 20 * time.Millisecond, CleanerInterval: 5 * time.Millisecond, CleanerBytesPerRound: 8 << 20}
	n, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { n.Close(context.Background()) }()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const topic, parts, groups = "t", 10, 10
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, parts, 1
	req.Topics = append(req.Topics, rt)
	if resp, err := req.RequestWith(ctx, cl); err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %v %+v", err, resp)
	}

	// Each group's commits come from one goroutine, in order, so the
	// last one answered is the one that must survive.
	ref := wire.PartitionRef{Topic: OffsetsTopic, Partition: 0}
	meta := strings.Repeat("m", 4000) // offset.metadata.max.bytes is 4096
	const rounds = 300                // 120 MB of commits; 16 MiB segments
	latest := make([]int64, groups)
	var wg sync.WaitGroup
	var failed sync.Once
	for g := range groups {
		wg.Go(func() {
			for off := int64(1); off <= rounds; off++ {
				c := kmsg.NewPtrOffsetCommitRequest()
				c.Group, c.Generation = fmt.Sprint("group-", g), -1
				ct := kmsg.NewOffsetCommitRequestTopic()
				ct.Topic = topic
				for p := range int32(parts) {
					cp := kmsg.NewOffsetCommitRequestTopicPartition()
					cp.Partition, cp.Offset, cp.Metadata = p, off*100+int64(p), kmsg.StringPtr(meta)
					ct.Partitions = append(ct.Partitions, cp)
				}
				c.Topics = append(c.Topics, ct)
				resp, err := c.RequestWith(ctx, cl)
				if err == nil {
					for _, rp := range resp.Topics[0].Partitions {
						err = kerr.ErrorForCode(rp.ErrorCode)
					}
				}
				if err != nil {
					failed.Do(func() { t.Errorf("group-%d commit %d: %v", g, off, err) })
					return
				}
				latest[g] = off
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	before, _ := partitionLogState(t, n, ref)
	t.Logf("offsets log before cleaning: %+v", before)

	// The active segment (up to 16 MiB) is never cleaned; the sealed
	// part must come down to about the live offsets (100 of 4 KiB).
	var st logState
	for {
		st, _ = partitionLogState(t, n, ref)
		if st.passes > 0 && !st.cleaning && st.sizeBytes < 17<<20 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("offsets log not cleaned: %+v", st)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Logf("offsets log after cleaning: %+v", st)
	if st.start != before.start {
		t.Errorf("log start offset moved from %d to %d: cleaning must keep offsets", before.start, st.start)
	}

	cl.Close()
	if err := n.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	n, err = Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cl2, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	for g := range groups {
		f := kmsg.NewPtrOffsetFetchRequest()
		f.Group = fmt.Sprint("group-", g)
		ft := kmsg.NewOffsetFetchRequestTopic()
		ft.Topic = topic
		for p := range int32(parts) {
			ft.Partitions = append(ft.Partitions, p)
		}
		f.Topics = append(f.Topics, ft)
		var resp *kmsg.OffsetFetchResponse
		for {
			resp, err = f.RequestWith(ctx, cl2)
			if err != nil {
				t.Fatal(err)
			}
			// The coordinator answers COORDINATOR_LOAD_IN_PROGRESS while
			// it replays the log.
			if kerr.ErrorForCode(resp.ErrorCode) != kerr.CoordinatorLoadInProgress {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			t.Fatalf("group-%d: %v", g, err)
		}
		for _, rp := range resp.Topics[0].Partitions {
			if want := latest[g]*100 + int64(rp.Partition); rp.Offset != want || rp.Metadata == nil || *rp.Metadata != meta {
				t.Errorf("group-%d partition %d: offset %d, want %d (error %d)", g, rp.Partition, rp.Offset, want, rp.ErrorCode)
			}
		}
	}
}
