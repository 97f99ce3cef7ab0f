package cluster

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strand-io/strand/cluster/metadata"
	"github.com/strand-io/strand/dma"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestProposalDoesNotBlockController: while a CreateTopics proposal is
// held after it is applied (as a slow Raft round trip to another broker
// would hold it), the controller core (core 0; the only core here) keeps
// serving produce requests, and the CreateTopics answer comes once the
// proposal completes. It failed while persist proposed on the controller
// core itself: the produce waited for the proposal.
func TestProposalDoesNotBlockController(t *testing.T) {
	release := make(chan struct{})
	let := sync.OnceFunc(func() { close(release) })
	held := make(chan struct{}, 1)
	cfg := Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", CPUs: []int{0},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cfg.hooks.afterProposal = func(c metadata.Command) error {
		if ct, ok := c.(*metadata.CreateTopic); ok && ct.Name == "held" {
			held <- struct{}{}
			<-release
		}
		return nil
	}
	n, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	defer let() // before Close, which waits for the held proposal
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	newClient := func() *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	create := func(cl *kgo.Client, name string) error {
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, 1
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err == nil {
			err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
		}
		return err
	}
	cl := newClient()
	if err := create(cl, "probe"); err != nil {
		t.Fatal(err)
	}
	created := make(chan error, 1)
	go func() { created <- create(newClient(), "held") }()
	select {
	case <-held:
	case err := <-created:
		t.Fatalf("create answered before its proposal completed: %v", err)
	case <-ctx.Done():
		t.Fatal("the proposal never reached the hook")
	}
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	defer pcancel()
	if err := cl.ProduceSync(pctx, &kgo.Record{Topic: "probe", Partition: 0, Value: []byte("while proposing")}).FirstErr(); err != nil {
		t.Fatalf("produce on the controller core while a proposal is held: %v", err)
	}
	select {
	case err := <-created:
		t.Fatalf("create answered while its proposal was held: %v", err)
	default:
	}
	let()
	if err := <-created; err != nil {
		t.Fatal(err)
	}
}

// TestMetadataFreeBytes: with less free space than --metadata-free-bytes
// on the data dir's disk, a metadata change is refused with
// KAFKA_STORAGE_ERROR naming the cause and changes nothing; once space
// returns it works.
func TestMetadataFreeBytes(t *testing.T) {
	var full atomic.Bool
	cfg := Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", CPUs: []int{0},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cfg.hooks.freeBytes = func(dir string) (int64, error) {
		if full.Load() {
			return 4096, nil
		}
		return dma.OSFS().FreeBytes(dir)
	}
	n, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	create := func() (int16, string) {
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "roomy", 1, 1
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		msg := ""
		if m := resp.Topics[0].ErrorMessage; m != nil {
			msg = *m
		}
		return resp.Topics[0].ErrorCode, msg
	}
	full.Store(true)
	if code, msg := create(); code != kerr.KafkaStorageError.Code || !strings.Contains(msg, "disk full") {
		t.Fatalf("create with 4 KiB free: %v %q, want KAFKA_STORAGE_ERROR naming the full disk", kerr.ErrorForCode(code), msg)
	}
	if _, ok := n.meta.Load().topics["roomy"]; ok {
		t.Fatal("the refused topic is listed")
	}
	full.Store(false)
	if code, msg := create(); code != 0 {
		t.Fatalf("create once space returned: %v %q", kerr.ErrorForCode(code), msg)
	}
}
