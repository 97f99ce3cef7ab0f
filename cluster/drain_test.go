package cluster

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strand-io/strand/dma"
	"github.com/strand-io/strand/shard"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDrainTimeoutBites: a request that cannot finish (a CreateTopics whose
// log open is held) keeps the drain of a shutdown waiting only for
// DrainTimeout; then Close says so in the log and closes the logs anyway,
// cleanly, once the open is let go.
func TestDrainTimeoutBites(t *testing.T) {
	release := make(chan struct{})
	let := sync.OnceFunc(func() { close(release) })
	defer let()
	held := make(chan struct{}, 1)
	openLog := func(cfg shard.Config, fs dma.FS, io dma.Engine) (*shard.Log, error) {
		l, err := shard.Open(cfg, fs, io)
		if strings.Contains(cfg.Dir, "stuck") {
			held <- struct{}{}
			<-release
		}
		return l, err
	}
	logs := &syncBuf{}
	const drain = 300 * time.Millisecond
	n, err := Start(Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", DrainTimeout: drain,
		Logger: slog.New(slog.NewTextHandler(logs, nil)), hooks: testHooks{openLog: openLog}})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	go func() {
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "stuck", 1, 1
		req.Topics = append(req.Topics, rt)
		req.TimeoutMillis = 60_000
		_, _ = req.RequestWith(context.Background(), cl)
	}()
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("the create never reached the log open")
	}
	closed := make(chan error, 1)
	go func() { closed <- n.Close(context.Background()) }()
	deadline := time.After(30 * time.Second)
	for !strings.Contains(logs.String(), "draining did not finish") {
		select {
		case err := <-closed:
			t.Fatalf("Close returned (%v) before the drain timed out, with a request in flight", err)
		case <-deadline:
			t.Fatalf("no drain timeout logged:\n%s", logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	let()
	if err := <-closed; err != nil {
		t.Fatalf("Close after the drain timed out: %v", err)
	}
	if !strings.Contains(logs.String(), "drain_timeout="+drain.String()) {
		t.Fatalf("the log line does not name the timeout:\n%s", logs.String())
	}
}
