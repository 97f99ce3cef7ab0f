package metaraft

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strand-io/strand/cluster/metadata"
)

// One voter bootstraps, applies, is closed and restarts from its directory
// with the identical View; snapshots are taken every few entries so the
// restart goes through a snapshot and a log tail.
func TestOneVoterRestart(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	var applied, leaders atomic.Int64
	cfg := Config{Dir: dir, ReplicaID: 1, RaftAddress: addr, SnapshotEntries: 4, CompactionOverhead: 2,
		OnApply:        func(*metadata.View) { applied.Add(1) },
		OnLeaderChange: func(li LeaderInfo) { leaders.Add(1) }}
	h := openHost(t, cfg)
	if err := h.Bootstrap(map[uint64]string{1: addr}); err != nil {
		t.Fatal(err)
	}
	mustPropose(t, h, register(1))
	mustPropose(t, h, &metadata.UnfenceBroker{ID: 1})
	for i := range 10 {
		mustPropose(t, h, createTopic(fmt.Sprint("topic-", i), byte(i+1)))
	}
	// A rejection is a result, not an error, and changes nothing.
	v0 := h.View().Version()
	r, err := h.Propose(ctx(t), createTopic("topic-3", 99))
	if err != nil || r.Code != metadata.ErrTopicExists || r.Version != v0 || h.View().Version() != v0 {
		t.Fatalf("duplicate create: %+v, %v", r, err)
	}
	if !h.IsLeader() || leaders.Load() == 0 || applied.Load() == 0 {
		t.Fatalf("leader %v, %d leader events, %d applies", h.Leader(), leaders.Load(), applied.Load())
	}
	if err := h.View().Invariants(); err != nil {
		t.Fatal(err)
	}
	want := h.View()
	h.close(t)
	if err := h.Host.Close(); err != nil {
		t.Fatal(err)
	}

	h2 := openHost(t, cfg)
	if err := h2.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "restarted view catches up", func() bool { return h2.View().Version() >= want.Version() })
	if snapshotOf(h2.View()) != snapshotOf(want) {
		t.Fatal("restarted view differs")
	}
	r = mustPropose(t, h2, &metadata.DeleteTopic{Name: "topic-0"})
	if r.Version != want.Version()+1 {
		t.Fatalf("version %d after restart, want %d", r.Version, want.Version()+1)
	}
}

// Bootstrap on a directory bootstrapped with other members is refused, so
// a misconfigured restart cannot fork the group.
func TestBootstrapRefusesOtherMembers(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	cfg := Config{Dir: dir, ReplicaID: 1, RaftAddress: addr}
	h := openHost(t, cfg)
	if err := h.Bootstrap(map[uint64]string{1: addr}); err != nil {
		t.Fatal(err)
	}
	mustPropose(t, h, register(1))
	h.close(t)
	h2 := openHost(t, cfg)
	if err := h2.Bootstrap(map[uint64]string{1: addr, 2: freeAddr(t), 3: freeAddr(t)}); err == nil {
		t.Fatal("bootstrap with other members accepted")
	}
	h2.close(t)
	h3 := openHost(t, cfg)
	if err := h3.Bootstrap(map[uint64]string{1: addr}); err != nil {
		t.Fatalf("same members again: %v", err)
	}
	waitFor(t, 10*time.Second, "log replayed", func() bool { return h3.View().Version() == 1 })
}

func TestBootstrapChecksMembers(t *testing.T) {
	h := openHost(t, Config{Dir: t.TempDir(), ReplicaID: 1, RaftAddress: freeAddr(t)})
	if err := h.Bootstrap(map[uint64]string{2: "127.0.0.1:1"}); err == nil {
		t.Fatal("bootstrap without this replica accepted")
	}
	if err := h.Bootstrap(map[uint64]string{1: h.cfg.RaftAddress, 2: "127.0.0.1:1"}); err == nil {
		t.Fatal("two voters accepted")
	}
}

func TestStateMachineUpdate(t *testing.T) {
	var published *metadata.View
	m := &stateMachine{st: metadata.New(), publish: func(v *metadata.View) { published = v }}
	good := metadata.Encode(register(1))
	es, err := m.Update(sm3(good, []byte{byte(metadata.KindFenceBroker), 0}, good))
	if err != nil {
		t.Fatal(err)
	}
	want := []metadata.Code{metadata.OK, metadata.ErrMalformed, metadata.OK}
	for i, e := range es {
		r, err := metadata.DecodeResult(e.Result.Data)
		if err != nil || r.Code != want[i] || e.Result.Value != uint64(want[i]) {
			t.Fatalf("entry %d: %+v %v, want %v", i, r, err, want[i])
		}
	}
	if published == nil || published.Version() != 2 {
		t.Fatalf("published %+v", published)
	}
	// A command from a newer broker stops the replica instead of being
	// skipped.
	if _, err := m.Update(sm3([]byte{byte(metadata.KindFenceBroker), 9, 1})); !errors.Is(err, metadata.ErrUnsupported) {
		t.Fatalf("newer command version: %v", err)
	}
}
