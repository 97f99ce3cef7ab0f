package metaraft

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	sm "github.com/lni/dragonboat/v4/statemachine"

	"github.com/strand-io/strand/cluster/metadata"
)

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// testHost is a Host that the test's cleanup closes unless the test did.
type testHost struct {
	*Host
	cfg    Config
	closed bool
}

func (h *testHost) close(t *testing.T) {
	t.Helper()
	if !h.closed {
		h.closed = true
		if err := h.Host.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func openHost(t *testing.T, cfg Config) *testHost {
	t.Helper()
	h, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	th := &testHost{Host: h, cfg: cfg}
	t.Cleanup(func() { th.close(t) })
	return th
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		<-tick.C
	}
	return time.Since(start)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func mustPropose(t *testing.T, h *testHost, c metadata.Command) metadata.Result {
	t.Helper()
	r, err := h.Propose(ctx(t), c)
	if err != nil {
		t.Fatalf("propose %T: %v", c, err)
	}
	if !r.Accepted() {
		t.Fatalf("propose %T: %v", c, r.Err())
	}
	// Propose returns once this replica applied the command.
	if v := h.View().Version(); v < r.Version {
		t.Fatalf("view at %d after propose returned version %d", v, r.Version)
	}
	return r
}

func register(id metadata.BrokerID) *metadata.RegisterBroker {
	return &metadata.RegisterBroker{ID: id, KafkaAddr: fmt.Sprintf("127.0.0.1:%d", 9092+id),
		RaftAddr: fmt.Sprintf("127.0.0.1:%d", 7000+id), Cores: 2}
}

func createTopic(name string, n byte) *metadata.CreateTopic {
	return &metadata.CreateTopic{Name: name, ID: metadata.TopicID{0: 1, 15: n},
		Partitions: []metadata.Assignment{{Replicas: []metadata.BrokerID{1}, Cores: []metadata.CoreID{0}}}}
}

func snapshotOf(v *metadata.View) string { return string(v.AppendSnapshot(nil)) }

func sm3(cmds ...[]byte) []sm.Entry {
	es := make([]sm.Entry, len(cmds))
	for i, c := range cmds {
		es[i] = sm.Entry{Index: uint64(i + 1), Cmd: c}
	}
	return es
}
