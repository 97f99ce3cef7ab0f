package cluster

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strand-io/strand/cluster/metadata"
	"github.com/strand-io/strand/dma"
	"github.com/strand-io/strand/reactor"
	"github.com/strand-io/strand/shard"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestCrashDuringPartitionUndoKeepsRecords: a CreatePartitions whose new
// partition fails to open is undone, and the broker stops ("crashes")
// right after the first entry of that undo is applied. After a restart
// the topic is still there with its records. It failed while the undo was
// a DeleteTopic and then a CreateTopic: the crash left the topic out of
// the metadata, and the restart's sweep removed its partitions' data.
func TestCrashDuringPartitionUndoKeepsRecords(t *testing.T) {
	var failing atomic.Bool // grow-3 fails to open
	openLog := func(cfg shard.Config, fs dma.FS, io dma.Engine) (*shard.Log, error) {
		if failing.Load() && filepath.Base(cfg.Dir) == "grow-3" {
			return nil, errors.New("injected: too many open files")
		}
		return shard.Open(cfg, fs, io)
	}
	// After the CreatePartitions entry, the next entry (the undo's first)
	// is the last one this broker ever applies.
	var grown, crashed atomic.Bool
	var undoFirst atomic.Pointer[string]
	afterProposal := func(c metadata.Command) error {
		switch {
		case crashed.Load():
			return errors.New("injected: crashed")
		case grown.Load():
			k := c.Kind().String()
			undoFirst.Store(&k)
			crashed.Store(true)
			return errors.New("injected: crash after the undo's first entry")
		case c.Kind() == metadata.KindCreatePartitions:
			grown.Store(true)
		}
		return nil
	}

	dataDir := t.TempDir()
	cfg := Config{DataDir: dataDir, Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		hooks: testHooks{openLog: openLog, afterProposal: afterProposal}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "grow", 2, 1
	req.Topics = append(req.Topics, rt)
	if resp, err := req.RequestWith(ctx, cl); err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %v %v", err, resp)
	}
	for p := int32(0); p < 2; p++ {
		for i := range 3 {
			r := &kgo.Record{Topic: "grow", Partition: p, Value: []byte{byte('a' + i)}}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("produce to grow-%d: %v", p, err)
			}
		}
	}
	failing.Store(true)
	greq := kmsg.NewPtrCreatePartitionsRequest()
	gt := kmsg.NewCreatePartitionsRequestTopic()
	gt.Topic, gt.Count = "grow", 4
	greq.Topics = append(greq.Topics, gt)
	gresp, err := greq.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := gresp.Topics[0].ErrorCode; code != kerr.KafkaStorageError.Code {
		t.Fatalf("create partitions with grow-3 failing: %v, want KAFKA_STORAGE_ERROR", kerr.ErrorForCode(code))
	}
	cl.Close()
	if !crashed.Load() {
		t.Fatal("the undo proposed nothing: the crash was never injected")
	}
	t.Logf("stopped after the undo's first entry, %s", *undoFirst.Load())
	n.Close(context.Background())

	cfg.hooks.afterProposal = nil
	failing.Store(false)
	n, err = Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	top, ok := n.meta.Load().topics["grow"]
	if !ok {
		t.Fatal("after the restart topic grow is gone, and with it its acknowledged records")
	}
	if got := top.Partitions(); got != 2 {
		t.Fatalf("after the restart grow has %d partitions, want 2 (the failed growth undone)", got)
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		"grow": {0: kgo.NewOffset().AtStart(), 1: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	got := map[int32]string{}
	for len(got[0]) < 3 || len(got[1]) < 3 {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("records read back: %q; want abc in each partition", got)
		}
		fs.EachRecord(func(r *kgo.Record) { got[r.Partition] += string(r.Value) })
	}
	if got[0] != "abc" || got[1] != "abc" {
		t.Fatalf("records read back: %q; want abc in each partition", got)
	}
}

// TestDiffUndoIsOneEntry: the snapshot a failed CreatePartitions goes back
// to differs from the applied View by a single command, so no crash can
// land inside the undo.
func TestDiffUndoIsOneEntry(t *testing.T) {
	s := metadata.New()
	id := metadata.TopicID{1}
	for _, c := range []metadata.Command{
		&metadata.RegisterBroker{ID: 0, KafkaAddr: "k:1", RaftAddr: "r:1", Cores: 2},
		&metadata.CreateTopic{Name: "grow", ID: id, Partitions: assignments([]reactor.CoreID{0, 1, 0, 1}, 0)},
	} {
		if err := s.Apply(c).Err(); err != nil {
			t.Fatal(err)
		}
	}
	cur := snapshotOf(s.View(), 0)
	old := *cur.topics["grow"]
	old.Cores = old.Cores[:2:2]
	cmds := diffCommands(s.View(), cur.with("grow", &old), 0)
	want := &metadata.ShrinkPartitions{Topic: "grow", ID: id, Count: 2}
	if len(cmds) != 1 || !reflect.DeepEqual(cmds[0], want) {
		var kinds []string
		for _, c := range cmds {
			kinds = append(kinds, c.Kind().String())
		}
		t.Fatalf("undo proposes %v %+v, want just %+v", kinds, cmds, want)
	}
	if err := s.Apply(cmds[0]).Err(); err != nil {
		t.Fatal(err)
	}
	if got := diffCommands(s.View(), cur.with("grow", &old), 0); len(got) != 0 {
		t.Fatalf("after the shrink, still to propose: %+v", got)
	}
}
