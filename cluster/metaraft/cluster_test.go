package metaraft

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lni/dragonboat/v4"

	"github.com/strand-io/strand/cluster/metadata"
)

// startGroup bootstraps n voters on loopback ports, each in its own dir.
func startGroup(t *testing.T, n int) ([]*testHost, map[uint64]string) {
	t.Helper()
	members := map[uint64]string{}
	for i := 1; i <= n; i++ {
		members[uint64(i)] = freeAddr(t)
	}
	hosts := make([]*testHost, n)
	for i := range hosts {
		id := uint64(i + 1)
		hosts[i] = openHost(t, Config{Dir: t.TempDir(), ReplicaID: id, RaftAddress: members[id]})
		if err := hosts[i].Bootstrap(members); err != nil {
			t.Fatal(err)
		}
	}
	return hosts, members
}

// leaderOf waits until every running host agrees on one leader among them.
func leaderOf(t *testing.T, hosts []*testHost, d time.Duration) *testHost {
	t.Helper()
	var leader *testHost
	waitFor(t, d, "a leader all agree on", func() bool {
		leader = nil
		var id uint64
		for _, h := range hosts {
			li := h.Leader()
			if li.LeaderID == 0 || (id != 0 && li.LeaderID != id) {
				return false
			}
			id = li.LeaderID
		}
		for _, h := range hosts {
			if h.ReplicaID() == id {
				leader = h
			}
		}
		return leader != nil
	})
	return leader
}

func waitSame(t *testing.T, hosts []*testHost, version uint64) {
	t.Helper()
	waitFor(t, 10*time.Second, fmt.Sprint("every replica at version ", version), func() bool {
		for _, h := range hosts {
			if h.View().Version() < version {
				return false
			}
		}
		return true
	})
	want := snapshotOf(hosts[0].View())
	for _, h := range hosts[1:] {
		if snapshotOf(h.View()) != want {
			t.Fatalf("replica %d's view differs from replica %d's", h.ReplicaID(), hosts[0].ReplicaID())
		}
	}
}

// Three voters in one process: a follower's proposals are applied
// everywhere; the leader stops, the other two elect a new leader and
// accept proposals; the old leader restarts and catches up.
func TestThreeVoters(t *testing.T) {
	hosts, _ := startGroup(t, 3)
	leader := leaderOf(t, hosts, 10*time.Second)
	var follower *testHost
	for _, h := range hosts {
		if h != leader {
			follower = h
			break
		}
	}
	for id := metadata.BrokerID(1); id <= 3; id++ {
		mustPropose(t, follower, register(id))
		mustPropose(t, follower, &metadata.UnfenceBroker{ID: id})
	}
	r := mustPropose(t, follower, createTopic("orders", 1))
	waitSame(t, hosts, r.Version)
	for _, h := range hosts {
		v, err := h.LinearizableView(ctx(t))
		if err != nil || v.Version() < r.Version {
			t.Fatalf("replica %d: linearizable view at %v, %v", h.ReplicaID(), v.Version(), err)
		}
	}

	// Stop the leader.
	leader.close(t)
	var rest []*testHost
	for _, h := range hosts {
		if h != leader {
			rest = append(rest, h)
		}
	}
	start := time.Now()
	waitFor(t, 10*time.Second, "a new leader", func() bool {
		for _, h := range rest {
			if li := h.Leader(); li.LeaderID == 0 || li.LeaderID == leader.ReplicaID() {
				return false
			}
		}
		return rest[0].Leader() == rest[1].Leader()
	})
	t.Logf("new leader %d elected %v after the old one stopped", rest[0].Leader().LeaderID, time.Since(start))
	for _, h := range rest {
		mustPropose(t, h, createTopic(fmt.Sprint("after-", h.ReplicaID()), byte(10+h.ReplicaID())))
	}
	r = mustPropose(t, rest[0], &metadata.FenceBroker{ID: 2})
	waitSame(t, rest, r.Version)

	// The old leader comes back from its directory and catches up.
	back := openHost(t, leader.cfg)
	if err := back.Restart(); err != nil {
		t.Fatal(err)
	}
	waitSame(t, []*testHost{rest[0], rest[1], back}, r.Version)
	r = mustPropose(t, back, &metadata.UnfenceBroker{ID: 2})
	waitSame(t, []*testHost{rest[0], rest[1], back}, r.Version)
}

// A fourth broker joins as a non-voting member: it receives the log and
// can propose, and after promotion it votes, and keeps voting across a
// restart.
func TestJoinNonVotingThenPromote(t *testing.T) {
	hosts, _ := startGroup(t, 1)
	h1 := hosts[0]
	mustPropose(t, h1, register(1))
	mustPropose(t, h1, &metadata.UnfenceBroker{ID: 1})
	mustPropose(t, h1, createTopic("before-join", 1))

	cfg := Config{Dir: t.TempDir(), ReplicaID: 4, RaftAddress: freeAddr(t)}
	if err := h1.AddNonVoting(ctx(t), 4, cfg.RaftAddress); err != nil {
		t.Fatal(err)
	}
	j := openHost(t, cfg)
	if err := j.Join(); err != nil {
		t.Fatal(err)
	}
	waitSame(t, []*testHost{h1, j}, h1.View().Version())
	if !isNonVoting(j) {
		t.Fatal("joiner is not non-voting")
	}
	r := mustPropose(t, j, createTopic("from-joiner", 2))
	waitSame(t, []*testHost{h1, j}, r.Version)
	voters, nonVoting, err := h1.Members(ctx(t))
	if err != nil || len(voters) != 1 || nonVoting[4] != cfg.RaftAddress {
		t.Fatalf("members %v / %v, %v", voters, nonVoting, err)
	}

	if err := h1.Promote(ctx(t), 4, cfg.RaftAddress); err != nil {
		t.Fatal(err)
	}
	voters, nonVoting, err = h1.Members(ctx(t))
	if err != nil || len(voters) != 2 || len(nonVoting) != 0 {
		t.Fatalf("members after promotion %v / %v, %v", voters, nonVoting, err)
	}
	waitFor(t, 10*time.Second, "promoted replica votes", func() bool { return !isNonVoting(j) })
	r = mustPropose(t, j, createTopic("promoted", 3))
	waitSame(t, []*testHost{h1, j}, r.Version)
	// With two voters, commits need both: a proposal succeeding proves
	// the promoted replica votes.
	j.close(t)
	j2 := openHost(t, cfg)
	if err := j2.Bootstrap(map[uint64]string{4: cfg.RaftAddress}); err == nil || !strings.Contains(err.Error(), "joined") {
		t.Fatalf("a joined replica bootstrapped: %v", err)
	}
	if err := j2.Restart(); err != nil {
		t.Fatal(err)
	}
	r = mustPropose(t, h1, createTopic("after-promotion", 4))
	waitSame(t, []*testHost{h1, j2}, r.Version)
	waitFor(t, 10*time.Second, "restarted replica votes", func() bool { return !isNonVoting(j2) })
}

// isNonVoting reports whether h's replica runs as a non-voting member, as its
// own Dragonboat node sees it.
func isNonVoting(h *testHost) bool {
	info := h.nh.GetNodeHostInfo(dragonboat.NodeHostInfoOption{SkipLogInfo: true})
	for _, si := range info.ShardInfoList {
		if si.ShardID == ShardID {
			return si.IsNonVoting
		}
	}
	return false
}
