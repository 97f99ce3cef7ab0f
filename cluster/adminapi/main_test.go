package adminapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strand-io/strand/cluster"
	"github.com/strand-io/strand/cluster/group"
	"github.com/strand-io/strand/shard"
)

// One in-process broker for every test, with the admin API in front of
// it; topics and groups are named uniquely so -count=N passes.
var (
	testNode  *cluster.Node
	testAdmin *Server
	brokerLog lockedBuffer
)

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "strand-adminapi-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	logger := slog.New(slog.NewTextHandler(&brokerLog, &slog.HandlerOptions{Level: slog.LevelWarn}))
	testNode, err = cluster.Start(cluster.Config{
		DataDir: dir, Listen: "127.0.0.1:0", DefaultPartitions: 1,
		Log:    shard.Config{Preallocate: true},
		Groups: group.Config{InitialRebalanceDelayMs: -1},
		Logger: logger,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the test broker:", err)
		os.Exit(1)
	}
	testAdmin, err = Listen(Config{Listen: "127.0.0.1:0", Logger: logger})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the admin API:", err)
		os.Exit(1)
	}
	testAdmin.SetBroker(testNode)
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "broker log:\n%s", brokerLog.String())
	}
	testAdmin.Close(context.Background())
	testNode.Close(context.Background())
	os.RemoveAll(dir)
	os.Exit(code)
}

var uniqSeq atomic.Int64

func uniq(base string) string { return fmt.Sprintf("%s-%d", base, uniqSeq.Add(1)) }

// call sends method to the admin server s and returns the status and body.
func call(t testing.TB, s *Server, method, path string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.Addr()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// getJSON GETs path from the test server, wants status, and decodes the
// body into v.
func getJSON(t testing.TB, path string, status int, v any) {
	t.Helper()
	code, body := call(t, testAdmin, http.MethodGet, path)
	if code != status {
		t.Fatalf("GET %s: status %d, want %d; body %s", path, code, status, body)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

func client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(testNode.Addr())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func createTopic(t testing.TB, name string, partitions int32) {
	t.Helper()
	adm := kadm.NewClient(client(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, partitions, 1, nil, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
}

// produce writes n records to each listed partition of topic, acks=all.
func produce(t testing.TB, topic string, n int, partitions ...int32) {
	t.Helper()
	cl := client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic(topic))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for _, p := range partitions {
		for i := range n {
			recs = append(recs, &kgo.Record{Partition: p, Value: fmt.Appendf(nil, "record %d", i)})
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}
