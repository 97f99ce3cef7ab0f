package cluster

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/strand-io/strand/cluster/metadata"
	"github.com/strand-io/strand/cluster/metaraft"
	"github.com/strand-io/strand/reactor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Membership. A broker is one of three kinds, recorded in cluster.json at
// its first start so that a restart needs only --data-dir:
//
//   - single: no cluster flags; the only voter of its own group, as every
//     broker was before clusters.
//   - bootstrapped: --initial-cluster names the 1, 3 or 5 initial voters
//     (node id = Raft address, the same list on every one, as etcd's);
//     each restart bootstraps with the recorded list again, which
//     Dragonboat allows.
//   - joined: --join names a running broker's Kafka address; the new
//     broker learns the cluster id from DescribeCluster and asks it with
//     AddRaftVoter to add its replica. A joined broker stays a non-voting
//     member: it receives the log and serves everything a voter does, but
//     the quorum stays the initial voters (promotion is not wired).
//
// Raft replica id = node id + 1 (Dragonboat refuses 0, a valid Kafka id)
// in the low half, a generation in the high half (identity.go): a broker
// that lost its data dir rejoins with --join under a new replica id,
// replacing its old replica (AddRaftVoter).

// clusterWait bounds how long Start waits for the metadata quorum (the
// other initial voters starting, or the broker a join named).
const clusterWait = 2 * time.Minute

// Cluster timing: Kafka's controller defaults (a 1 s election), which
// ride out scheduling stalls on a busy machine.
const (
	clusterRTTMs       = 50
	clusterElectionRTT = 20
)

// clusterFlags checks the cluster flags and fills in what they imply: the
// cluster id derived from --initial-cluster, or learnt from --join on a
// new data dir.
func clusterFlags(cfg *Config) error {
	if cfg.InitialCluster != nil && cfg.Join != "" {
		return fmt.Errorf("cluster: --initial-cluster and --join exclude each other: bootstrap a cluster, or join a running one")
	}
	if (cfg.InitialCluster != nil || cfg.Join != "") && !cfg.NodeIDExplicit {
		return fmt.Errorf("cluster: a cluster member needs --node-id")
	}
	if cfg.InitialCluster != nil {
		addr, ok := cfg.InitialCluster[cfg.NodeID]
		if !ok {
			return fmt.Errorf("cluster: --initial-cluster does not name this broker's node id %d", cfg.NodeID)
		}
		if cfg.RaftListen == "" {
			cfg.RaftListen = addr
		}
		if cfg.ClusterID == 0 {
			cfg.ClusterID = initialClusterID(cfg.InitialCluster)
		}
	}
	if cfg.Join != "" {
		if cfg.RaftListen == "" {
			return fmt.Errorf("cluster: --join needs --raft-listen, the address the other brokers reach this one's Raft replica at")
		}
		if !identityExists(cfg.DataDir) && cfg.ClusterID == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			id, err := describeClusterID(ctx, cfg.Join)
			if err != nil {
				return fmt.Errorf("cluster: --join %s: %w", cfg.Join, err)
			}
			cfg.ClusterID = id
		}
	}
	return nil
}

// initialClusterID derives a cluster id from the initial members, so every
// initial voter computes the same without another flag. Two clusters
// bootstrapped with the same list get the same id: --cluster-id tells them
// apart.
func initialClusterID(m map[int32]string) uint64 {
	ids := make([]int32, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	h := fnv.New64a()
	for _, id := range ids {
		fmt.Fprintf(h, "%d=%s,", id, m[id])
	}
	if v := h.Sum64(); v != 0 {
		return v
	}
	return 1
}

// ParseInitialCluster reads --initial-cluster: "1=host:port,2=host:port".
func ParseInitialCluster(s string) (map[int32]string, error) {
	if s == "" {
		return nil, nil
	}
	m := map[int32]string{}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		id, err := strconv.ParseInt(k, 10, 32)
		if !ok || err != nil || id < 0 || v == "" {
			return nil, fmt.Errorf("--initial-cluster: %q is not node-id=host:port", part)
		}
		if _, _, err := splitHostPort(v); err != nil {
			return nil, fmt.Errorf("--initial-cluster: %q: %w", part, err)
		}
		if _, dup := m[int32(id)]; dup {
			return nil, fmt.Errorf("--initial-cluster: node %d named twice", id)
		}
		m[int32(id)] = v
	}
	if n := len(m); n != 1 && n != 3 && n != 5 {
		return nil, fmt.Errorf("--initial-cluster: %d voters; use 1, 3 or 5", n)
	}
	return m, nil
}

// clustered reports whether the broker is a member of a cluster (not a
// single broker).
func (id identity) clustered() bool { return id.Members != nil || id.Joined }

// openRaft starts this broker's replica of the metadata group and waits
// until its View is up to date: a single voter until it leads, a cluster
// member until a linearizable read succeeds (the quorum is up).
func (n *Node) openRaft(cfg Config) (*metaraft.Host, error) {
	id := n.id
	mc := metaraft.Config{
		Dir:         filepath.Join(cfg.DataDir, raftDirName),
		ReplicaID:   id.replicaID(),
		RaftAddress: id.RaftAddress,
		ClusterID:   id.ClusterID,
		OnApply:     func(*metadata.View) { n.kickViews() },
	}
	if id.clustered() {
		mc.ListenAddress = cfg.RaftListen
		mc.RTTMillisecond, mc.ElectionRTT, mc.HeartbeatRTT = clusterRTTMs, clusterElectionRTT, 2
	} else {
		// No peer dials a single voter: it listens wherever is free now, so
		// a restart never fails because its recorded port was taken
		// meanwhile (Dragonboat refuses port 0).
		listen, err := freeLoopbackAddr()
		if err != nil {
			return nil, err
		}
		mc.ListenAddress = listen
		mc.RTTMillisecond, mc.ElectionRTT, mc.HeartbeatRTT = soloRTTMs, soloElectionRTT, 1
	}
	h, err := metaraft.Open(mc)
	if err != nil {
		return nil, fmt.Errorf("cluster: metadata raft: %w", err)
	}
	fail := func(err error) (*metaraft.Host, error) {
		h.Close()
		return nil, fmt.Errorf("cluster: metadata raft: %w", err)
	}
	switch {
	case id.Joined:
		if cfg.Join != "" {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := addRaftVoter(ctx, cfg.Join, id)
			cancel()
			if err != nil {
				return fail(fmt.Errorf("asking %s to add this broker: %w", cfg.Join, err))
			}
		}
		if err := h.Join(); err != nil {
			return fail(err)
		}
	case id.Members != nil:
		members := map[uint64]string{}
		for nid, a := range id.Members {
			members[uint64(nid)+1] = a
		}
		if err := h.Bootstrap(members); err != nil {
			return fail(err)
		}
	default:
		// Bootstrapping again with the same single member is how a
		// restart goes too (metaraft allows it).
		if err := h.Bootstrap(map[uint64]string{id.replicaID(): id.RaftAddress}); err != nil {
			return fail(err)
		}
		deadline := time.Now().Add(leaderWait)
		for !h.IsLeader() {
			if time.Now().After(deadline) {
				return fail(fmt.Errorf("replica %d not leader after %v", id.replicaID(), leaderWait))
			}
			time.Sleep(5 * time.Millisecond) // Dragonboat signals leadership only by callback
		}
		return h, nil
	}
	deadline := time.Now().Add(clusterWait)
	lastLog := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := h.LinearizableView(ctx)
		cancel()
		if err == nil {
			return h, nil
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("no metadata quorum after %v: %w", clusterWait, err))
		}
		if time.Since(lastLog) > 5*time.Second {
			n.log.Info("waiting for the metadata quorum", "node_id", id.NodeID, "err", err)
			lastLog = time.Now()
		}
	}
}

// controllerID is the broker leading the metadata group, -1 if none.
func (n *Node) controllerID() int32 {
	l := n.raft.Leader().LeaderID
	if l == 0 {
		return -1
	}
	return raftNodeID(l)
}

// ClusterID is the cluster id as clients see it (DescribeCluster).
func (b *backend) ClusterID() string { return fmt.Sprintf("%016x", b.node.id.ClusterID) }

// AddRaftVoter adds broker nodeID as a non-voting member of the metadata
// group (the other side of --join). Adding a member already there at the
// same address succeeds, so a join interrupted after this step can be
// repeated.
//
// A broker that lost its data dir rejoins under its node id with a new
// dir id, so a new replica id (identity.RaftGeneration): its old replica
// is removed once the metadata has fenced it (a live broker of that id is
// never replaced), and the new one takes its place, as a voter if the old
// one was (a new id never voted, so an empty log is safe to vote with).
func (b *backend) AddRaftVoter(clusterID string, nodeID int32, dirID [16]byte, raftAddr string, cb func(int16, string)) {
	n := b.node
	origin := b.cs.core.ID()
	if want := b.ClusterID(); clusterID != want {
		cb(kerr.InconsistentClusterID.Code, fmt.Sprintf("this is cluster %s, not %s", want, clusterID))
		return
	}
	if nodeID < 0 {
		cb(errInvalidRequest, "negative node id")
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.MetadataTimeout)
		defer cancel()
		code, msg := n.addRaftMember(ctx, nodeID, binary.BigEndian.Uint64(dirID[:8]), raftAddr)
		_ = n.rt.Post(origin, func(*reactor.Core) { cb(code, msg) })
	}()
}

func (n *Node) addRaftMember(ctx context.Context, nodeID int32, dir uint64, raftAddr string) (int16, string) {
	rid := raftReplicaID(nodeID, raftGeneration(dir))
	voters, nonVoting, err := n.raft.Members(ctx)
	if err != nil {
		return kerr.RequestTimedOut.Code, err.Error()
	}
	switch {
	case voters[rid] == raftAddr || nonVoting[rid] == raftAddr:
		return 0, ""
	case voters[rid] != "" || nonVoting[rid] != "":
		return kerr.DuplicateVoter.Code, fmt.Sprintf("node %d is a member at another Raft address", nodeID)
	}
	var old []uint64
	wasVoter := false
	for _, m := range []map[uint64]string{voters, nonVoting} {
		for id := range m {
			if raftNodeID(id) == nodeID {
				old = append(old, id)
				wasVoter = wasVoter || voters[id] != ""
			}
		}
	}
	if members := len(voters) + len(nonVoting) - len(old); members >= n.cfg.MaxBrokers {
		n.metaLog.Warn(n.log, "broker join refused: --max-brokers reached", "node_id", nodeID, "raft_address", raftAddr, "members", members, "max_brokers", n.cfg.MaxBrokers)
		return kerr.PolicyViolation.Code, fmt.Sprintf("the cluster has %d members, --max-brokers allows %d; unregister one first", members, n.cfg.MaxBrokers)
	}
	if len(old) > 0 {
		// The old replica's broker must be gone: only a fenced broker
		// (dead for a lease) is replaced, never a live one.
		for {
			b, ok := n.raft.View().Broker(metadata.BrokerID(nodeID))
			if !ok || b.Fenced {
				break
			}
			if ctx.Err() != nil {
				return kerr.DuplicateVoter.Code, fmt.Sprintf("node %d is a live member with another data dir; stop it (or wait until the controller fences it) first", nodeID)
			}
			time.Sleep(50 * time.Millisecond) // fencing arrives as an applied command
		}
		for _, id := range old {
			if err := n.raft.RemoveReplica(ctx, id); err != nil {
				return kerr.RequestTimedOut.Code, fmt.Sprintf("removing node %d's old replica: %v", nodeID, err)
			}
		}
		n.log.Warn("a broker rejoins with a new data dir: its old metadata replica is replaced by a new one",
			"node_id", nodeID, "old_replicas", old, "replica", rid, "voter", wasVoter)
	}
	if err := n.raft.AddNonVoting(ctx, rid, raftAddr); err != nil {
		return kerr.RequestTimedOut.Code, err.Error()
	}
	if wasVoter {
		if err := n.raft.Promote(ctx, rid, raftAddr); err != nil {
			return kerr.RequestTimedOut.Code, fmt.Sprintf("promoting node %d's new replica: %v", nodeID, err)
		}
	}
	n.log.Info("added a broker to the metadata group", "node_id", nodeID, "raft_address", raftAddr, "voter", wasVoter)
	return 0, ""
}

// UnregisterBroker removes broker nodeID from the cluster: its
// registration (refused while it holds any replica) and then its Raft
// replica, if it is a member. A broker cannot remove itself.
func (b *backend) UnregisterBroker(nodeID int32, cb func(int16, string)) {
	n := b.node
	origin := b.cs.core.ID()
	if nodeID == n.cfg.NodeID {
		cb(errInvalidRequest, "a broker cannot unregister itself; ask another one")
		return
	}
	go func() {
		code, msg := int16(0), ""
		res, err := n.proposeWait(&metadata.RemoveBroker{ID: metadata.BrokerID(nodeID)})
		switch {
		case err != nil:
			code, msg = kerr.RequestTimedOut.Code, err.Error()
		case res.Code == metadata.ErrUnknownBroker:
			code, msg = kerr.BrokerIDNotRegistered.Code, res.Message
		case !res.Accepted():
			code, msg = errInvalidRequest, res.Message
		default:
			ctx, cancel := context.WithTimeout(context.Background(), n.cfg.MetadataTimeout)
			defer cancel()
			voters, nonVoting, err := n.raft.Members(ctx)
			for _, m := range []map[uint64]string{voters, nonVoting} {
				for rid := range m {
					if err == nil && raftNodeID(rid) == nodeID {
						err = n.raft.RemoveReplica(ctx, rid)
					}
				}
			}
			if err != nil {
				code, msg = kerr.RequestTimedOut.Code, fmt.Sprintf("unregistered, but removing its Raft replica: %v", err)
			} else {
				n.log.Info("removed a broker from the cluster", "node_id", nodeID)
			}
		}
		_ = n.rt.Post(origin, func(*reactor.Core) { cb(code, msg) })
	}()
}

// describeClusterID asks the broker at addr for its cluster id.
func describeClusterID(ctx context.Context, addr string) (uint64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	resp, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(ctx, cl)
	if err != nil {
		return 0, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return 0, err
	}
	id, err := strconv.ParseUint(resp.ClusterID, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("cluster id %q: %w", resp.ClusterID, err)
	}
	return id, nil
}

// addRaftVoter asks the broker at addr to add this broker's replica.
func addRaftVoter(ctx context.Context, addr string, id identity) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	h, p, err := splitHostPort(id.RaftAddress)
	if err != nil {
		return err
	}
	req := kmsg.NewPtrAddRaftVoterRequest()
	req.ClusterID = kmsg.StringPtr(fmt.Sprintf("%016x", id.ClusterID))
	req.VoterID = id.NodeID
	req.VoterDirectoryID = dirUUID(id.LogDirID)
	req.TimeoutMillis = int32(defaultMetadataTimeout / time.Millisecond)
	l := kmsg.NewAddRaftVoterRequestListener()
	l.Name, l.Host, l.Port = "RAFT", h, uint16(p)
	req.Listeners = append(req.Listeners, l)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		if resp.ErrorMessage != nil {
			return fmt.Errorf("%w: %s", err, *resp.ErrorMessage)
		}
		return err
	}
	return nil
}
