package cluster

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strand-io/strand/dma"
	"github.com/strand-io/strand/shard"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestCreateTopicDoesNotBlockCores: while a new topic's logs are being
// opened (held here until released), every core keeps serving produce
// requests and the CreateTopics answer waits for the opens; a delete and a
// re-create right behind a create are applied in order, so the re-created
// topic starts empty.
func TestCreateTopicDoesNotBlockCores(t *testing.T) {
	release := make(chan struct{})
	var gate atomic.Pointer[chan struct{}] // opens of "slow" topics wait on it
	gate.Store(&release)
	var held atomic.Int32
	openLog := func(cfg shard.Config, fs dma.FS, io dma.Engine) (*shard.Log, error) {
		// Held after the files exist, so a delete that did not wait for
		// the open would rename them away under it.
		l, err := shard.Open(cfg, fs, io)
		if strings.Contains(cfg.Dir, "slow") {
			held.Add(1)
			<-*gate.Load()
		}
		return l, err
	}
	dataDir := t.TempDir()
	n, err := Start(Config{DataDir: dataDir, Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		hooks: testHooks{openLog: openLog}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	// On any failure, let the held opens go before Close waits for them.
	let := sync.OnceFunc(func() { close(release) })
	defer let()
	cores := len(n.cores)
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// A second client: responses on one connection come back in request
	// order, so a delete sent on the first would queue behind the held create.
	cl2, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	createWith := func(cl *kgo.Client, name string, parts int32) error {
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, parts, 1
		req.Topics = append(req.Topics, rt)
		req.TimeoutMillis = 60_000
		resp, err := req.RequestWith(ctx, cl)
		if err == nil {
			err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
		}
		return err
	}
	create := func(name string, parts int32) error { return createWith(cl, name, parts) }
	// A probe topic with a partition on every core (placement spreads them).
	if err := create("probe", int32(cores)); err != nil {
		t.Fatal(err)
	}
	created := make(chan error, 1)
	go func() { created <- create("slow", int32(2*cores)) }()
	for held.Load() == 0 {
		select {
		case err := <-created:
			t.Fatalf("create answered before any open was held: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	// Every core, the controller included, serves while the opens are held.
	for p := 0; p < cores; p++ {
		pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
		defer pcancel()
		if err := cl.ProduceSync(pctx, &kgo.Record{Topic: "probe", Partition: int32(p), Value: []byte("while opening")}).FirstErr(); err != nil {
			t.Fatalf("produce to probe-%d while the slow topic opens: %v", p, err)
		}
	}
	select {
	case err := <-created:
		t.Fatalf("create answered while its logs were still opening: %v", err)
	default:
	}
	let()
	if err := <-created; err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "slow", Partition: int32(2*cores - 1), Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatalf("produce to the new topic: %v", err)
	}

	// Delete right behind the create, while its opens are held, then
	// create it again: the delete waits for the opens and removes the
	// directories before the second create's opens start, so the new
	// topic starts empty.
	release2 := make(chan struct{})
	let2 := sync.OnceFunc(func() { close(release2) })
	defer let2()
	held.Store(0)
	gate.Store(&release2)
	go func() { created <- create("slow2", 2) }()
	for held.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	del := kmsg.NewPtrDeleteTopicsRequest()
	dt := kmsg.NewDeleteTopicsRequestTopic()
	dt.Topic = kmsg.StringPtr("slow2")
	del.Topics = append(del.Topics, dt)
	del.TopicNames = []string{"slow2"}
	del.TimeoutMillis = 60_000
	if resp, err := del.RequestWith(ctx, cl2); err != nil || kerr.ErrorForCode(resp.Topics[0].ErrorCode) != nil {
		t.Fatalf("delete behind the create: %v %+v", err, resp)
	}
	recreated := make(chan error, 1)
	go func() { recreated <- createWith(cl2, "slow2", 2) }()
	let2()
	if err := <-created; err != nil {
		t.Fatalf("first create: %v", err)
	}
	if err := <-recreated; err != nil {
		t.Fatalf("second create: %v", err)
	}
	for p := int32(0); p < 2; p++ {
		r, err := cl.ProduceSync(ctx, &kgo.Record{Topic: "slow2", Partition: p, Value: []byte("fresh")}).First()
		if err != nil || r.Offset != 0 {
			t.Fatalf("first record of the re-created slow2-%d: offset %d, %v (want 0: it must start empty)", p, r.Offset, err)
		}
		// And it went to the live directory: had the delete not waited
		// for the first open, that open's log (whose directory the delete
		// renamed away) would have been installed and taken the record.
		dir := n.partitionDir("slow2", p)
		segs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
		if len(segs) != 1 {
			t.Fatalf("%s holds segments %v", dir, segs)
		}
		if fi, err := os.Stat(segs[0]); err != nil || fi.Size() == 0 {
			t.Fatalf("the record is not in %s: %v", segs[0], err)
		}
	}
}

// TestFailedOpenFailsCreate: when a partition of a new topic, or a new
// partition of a topic, fails to open, CreateTopics (CreatePartitions)
// answers an error with the cause, the topic (the new partitions) is never
// listed, what did open is removed, and the same request succeeds once the
// cause is gone. It failed when the failure was only logged and the create
// answered success with the partition missing.
func TestFailedOpenFailsCreate(t *testing.T) {
	var failing atomic.Pointer[string] // the partition directory whose open fails
	openLog := func(cfg shard.Config, fs dma.FS, io dma.Engine) (*shard.Log, error) {
		if f := failing.Load(); f != nil && filepath.Base(cfg.Dir) == *f {
			return nil, errors.New("injected: too many open files")
		}
		return shard.Open(cfg, fs, io)
	}
	dataDir := t.TempDir()
	n, err := Start(Config{DataDir: dataDir, Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		hooks: testHooks{openLog: openLog}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	create := func(name string, parts int32) (int16, string) {
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, parts, 1
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].ErrorCode, strOr(resp.Topics[0].ErrorMessage)
	}
	grow := func(name string, total int32) (int16, string) {
		req := kmsg.NewPtrCreatePartitionsRequest()
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = name, total
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].ErrorCode, strOr(resp.Topics[0].ErrorMessage)
	}
	partitions := func(name string) int {
		t.Helper()
		req := kmsg.NewPtrMetadataRequest()
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, mt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Topics[0].ErrorCode != 0 {
			return -1
		}
		return len(resp.Topics[0].Partitions)
	}
	// Directories named, waited for with a deadline: removal is in the
	// background.
	waitGone := func(glob string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			m, _ := filepath.Glob(filepath.Join(dataDir, glob))
			if len(m) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("left on disk: %v", m)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	produce := func(name string, p int32, want int64) {
		t.Helper()
		r, err := cl.ProduceSync(ctx, &kgo.Record{Topic: name, Partition: p, Value: []byte("v")}).First()
		if err != nil || r.Offset != want {
			t.Fatalf("produce to %s-%d: offset %d, %v; want offset %d", name, p, r.Offset, err, want)
		}
	}

	bad := "broken-2"
	failing.Store(&bad)
	code, msg := create("broken", 4)
	if code != kerr.KafkaStorageError.Code || !strings.Contains(msg, "injected") {
		t.Fatalf("create with a partition failing to open: %v %q; want KAFKA_STORAGE_ERROR naming the cause", kerr.ErrorForCode(code), msg)
	}
	if p := partitions("broken"); p != -1 {
		t.Fatalf("the failed topic is listed with %d partitions", p)
	}
	waitGone("broken-*")
	failing.Store(nil)
	if code, msg := create("broken", 4); code != 0 {
		t.Fatalf("create once opens work: %v %s", kerr.ErrorForCode(code), msg)
	}
	for p := int32(0); p < 4; p++ {
		produce("broken", p, 0)
	}

	if code, msg := create("grow", 2); code != 0 {
		t.Fatalf("create grow: %v %s", kerr.ErrorForCode(code), msg)
	}
	produce("grow", 1, 0)
	bad = "grow-3"
	failing.Store(&bad)
	code, msg = grow("grow", 4)
	if code != kerr.KafkaStorageError.Code || !strings.Contains(msg, "injected") {
		t.Fatalf("create partitions with one failing to open: %v %q; want KAFKA_STORAGE_ERROR naming the cause", kerr.ErrorForCode(code), msg)
	}
	if p := partitions("grow"); p != 2 {
		t.Fatalf("after the failed growth the topic has %d partitions, want 2", p)
	}
	waitGone("grow-[23]")
	produce("grow", 1, 1)
	failing.Store(nil)
	if code, msg := grow("grow", 4); code != 0 {
		t.Fatalf("grow once opens work: %v %s", kerr.ErrorForCode(code), msg)
	}
	if p := partitions("grow"); p != 4 {
		t.Fatalf("after the growth the topic has %d partitions, want 4", p)
	}
	// A new client: this one's metadata says 2 partitions.
	cl2, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	cl = cl2
	produce("grow", 3, 0)
}

func strOr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// TestLateOpenDoesNotResurrect: a topic deleted while its create still
// waits for its partitions to open stays deleted when the opens finish,
// and a topic created meanwhile stays listed. It failed while each change
// stored its whole snapshot when its opens finished: the create's older
// snapshot replaced the delete's, listing the deleted topic again (with
// no logs behind it) and dropping the topic created in between.
func TestLateOpenDoesNotResurrect(t *testing.T) {
	release := make(chan struct{})
	let := sync.OnceFunc(func() { close(release) })
	defer let()
	var held atomic.Int32
	openLog := func(cfg shard.Config, fs dma.FS, io dma.Engine) (*shard.Log, error) {
		if strings.Contains(cfg.Dir, "held") {
			held.Add(1)
			<-release
		}
		return shard.Open(cfg, fs, io)
	}
	n, err := Start(Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		hooks: testHooks{openLog: openLog}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	defer let()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := func() *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	create := func(cl *kgo.Client, name string) error {
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 2, 1
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err == nil {
			err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
		}
		return err
	}
	listed := func(name string) bool {
		req := kmsg.NewPtrMetadataRequest()
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, mt)
		resp, err := req.RequestWith(ctx, client())
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].ErrorCode == 0
	}
	created := make(chan error, 1)
	go func() { created <- create(client(), "held") }()
	for held.Load() == 0 {
		time.Sleep(time.Millisecond) // until an open is held
	}
	del := kmsg.NewPtrDeleteTopicsRequest()
	dt := kmsg.NewDeleteTopicsRequestTopic()
	dt.Topic = kmsg.StringPtr("held")
	del.Topics = append(del.Topics, dt)
	del.TopicNames = []string{"held"}
	if resp, err := del.RequestWith(ctx, client()); err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("delete while opening: %v %+v", err, resp)
	}
	if err := create(client(), "between"); err != nil {
		t.Fatalf("create between: %v", err)
	}
	let()
	if err := <-created; err != nil {
		t.Fatalf("the held create: %v", err)
	}
	if listed("held") {
		t.Fatal("the deleted topic is listed again once its opens finished")
	}
	if !listed("between") {
		t.Fatal("the topic created while another opened is no longer listed")
	}
}
