package cluster

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strand-io/strand/dma"
	"github.com/strand-io/strand/reactor"
	"github.com/strand-io/strand/shard"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestCommitsPublishOutOfOrder: admin changes whose partitions finish
// opening in another order than they were made must not publish each
// other's state. "slow" is created first and its open held; "fast" is
// created behind it and finishes first. Later "gone" is created (held) and
// deleted before its open finishes. Published metadata (what Metadata
// answers) must show fast at once, slow only once its logs are open, and
// gone never again. (strand perf creates its topics in one request; the
// topic whose open finished first used to vanish for good.)
func TestCommitsPublishOutOfOrder(t *testing.T) {
	gates := map[string]chan struct{}{"slow": make(chan struct{}), "gone": make(chan struct{})}
	lets := map[string]func(){}
	for name, ch := range gates {
		lets[name] = sync.OnceFunc(func() { close(ch) })
		defer lets[name]() // on a failure, before Close waits for the held opens
	}
	var held atomic.Int32
	openLog := func(cfg shard.Config, fs dma.FS, io dma.Engine) (*shard.Log, error) {
		l, err := shard.Open(cfg, fs, io)
		for name, ch := range gates {
			if strings.Contains(cfg.Dir, name) {
				held.Add(1)
				<-ch
			}
		}
		return l, err
	}
	n, err := Start(Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		hooks: testHooks{openLog: openLog}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	for _, let := range lets {
		defer let()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// One client per request in flight: responses on a connection come
	// back in request order, so fast's answer would queue behind slow's.
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
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, 1
		req.Topics = append(req.Topics, rt)
		req.TimeoutMillis = 60_000
		resp, err := req.RequestWith(ctx, cl)
		if err == nil {
			err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
		}
		return err
	}
	// Every Metadata request on one connection, so one core answers them
	// all from its topic cache.
	meta := client()
	published := func() []string {
		resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, meta)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tp := range resp.Topics {
			if tp.Topic != nil && !tp.IsInternal {
				names = append(names, *tp.Topic)
			}
		}
		slices.Sort(names)
		// Every core answers Metadata from its own topic cache: each
		// must agree with what was just served.
		for _, cs := range n.cores {
			cached := make(chan []string, 1)
			if err := n.rt.Post(cs.core.ID(), func(*reactor.Core) {
				var c []string
				for _, ti := range (&backend{node: n, cs: cs}).Topics() {
					if !ti.Internal {
						c = append(c, ti.Name)
					}
				}
				slices.Sort(c)
				cached <- c
			}); err != nil {
				t.Fatal(err)
			}
			select {
			case c := <-cached:
				if !slices.Equal(c, names) {
					t.Errorf("core %d lists topics %v, Metadata answered %v", cs.core.ID(), c, names)
				}
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			}
		}
		return names
	}
	// createHeld starts creating name and returns once its open is held.
	createHeld := func(name string) chan error {
		done := make(chan error, 1)
		want := held.Load() + 1
		go func() { done <- create(client(), name) }()
		deadline := time.Now().Add(30 * time.Second)
		for held.Load() < want {
			select {
			case err := <-done:
				t.Fatalf("create %s answered before its open was held: %v", name, err)
			case <-time.After(time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("the open of %s was never held", name)
			}
		}
		return done
	}

	slowDone := createHeld("slow")
	if err := create(client(), "fast"); err != nil {
		t.Fatal(err)
	}
	if got := published(); !slices.Equal(got, []string{"fast"}) {
		t.Errorf("with slow still opening, metadata shows %v; want [fast]", got)
	}
	lets["slow"]()
	if err := <-slowDone; err != nil {
		t.Fatal(err)
	}
	if got := published(); !slices.Equal(got, []string{"fast", "slow"}) {
		t.Errorf("with slow open, metadata shows %v; want [fast slow]", got)
	}

	goneDone := createHeld("gone")
	del := kmsg.NewPtrDeleteTopicsRequest()
	dt := kmsg.NewDeleteTopicsRequestTopic()
	dt.Topic = kmsg.StringPtr("gone")
	del.Topics = append(del.Topics, dt)
	del.TopicNames = []string{"gone"}
	del.TimeoutMillis = 60_000
	if resp, err := del.RequestWith(ctx, client()); err != nil || kerr.ErrorForCode(resp.Topics[0].ErrorCode) != nil {
		t.Fatalf("delete gone while it opens: %v %+v", err, resp)
	}
	lets["gone"]()
	if err := <-goneDone; err != nil {
		t.Fatal(err)
	}
	if got := published(); !slices.Equal(got, []string{"fast", "slow"}) {
		t.Errorf("after gone was deleted and its open finished, metadata shows %v; want [fast slow]", got)
	}
}
