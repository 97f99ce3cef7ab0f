package cluster

import (
	"context"
	"fmt"
	"maps"
	"net"
	"strconv"
	"time"

	"github.com/strand-io/strand/cluster/metadata"
	"github.com/strand-io/strand/reactor"
	"github.com/strand-io/strand/wire"
)

// The broker's metadata lives in a Raft group (cluster/metaraft) even on
// a single broker, which is a group of one voter (membership.go). What the
// cores read is built from the applied View (snapshotOf) whenever it
// changes (apply.go), so nothing but applied commands ever reaches them.
// persist and diffCommands turn a whole snapshot into commands: only the
// one-time import of a single broker's metadata.json uses them.

// raftDirName is the Raft log and snapshots' directory in the data dir.
const raftDirName = "raft"

// Single-voter timing: no peer can disrupt the group, so a short election
// (10 ticks of 10 ms) only shortens the start; heartbeats go nowhere.
const (
	soloRTTMs       = 10
	soloElectionRTT = 10
)

// leaderWait bounds how long Start waits for the group to elect this
// broker (a single voter elects itself after one election timeout).
const leaderWait = 30 * time.Second

func (n *Node) brokerID() metadata.BrokerID { return metadata.BrokerID(n.id.NodeID) }

// propose replicates c and fails unless it was applied and accepted.
func (n *Node) propose(c metadata.Command) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := n.raft.Propose(ctx, c)
	if err != nil {
		return err
	}
	return res.Err()
}

// persist makes next the replicated metadata by proposing the difference
// between the applied View and it, and returns it as rebuilt from the
// applied View. Only the import of a single broker's metadata.json uses
// it, in Start, before anything is served (a cluster's changes are single
// commands; see apply.go).
func (n *Node) persist(next *snapshot) (*snapshot, error) {
	for _, c := range diffCommands(n.raft.View(), next, n.brokerID()) {
		if err := n.propose(c); err != nil {
			return nil, fmt.Errorf("proposing %v: %w", c.Kind(), err)
		}
		if hook := n.cfg.hooks.afterProposal; hook != nil {
			if err := hook(c); err != nil {
				return nil, err // a crash here proposes nothing more either
			}
		}
	}
	return snapshotOf(n.raft.View(), n.brokerID()), nil
}

// registerSelf registers this broker (again, if its address, rack or
// cores changed) and unfences it. With atLeast, a registration with at least
// cores cores is kept as it is: an import needs the cores its partitions
// were on until rehome moves them.
func (n *Node) registerSelf(cores int, atLeast bool) error {
	b, ok := n.raft.View().Broker(n.brokerID())
	addr := n.kafkaAddr()
	if ok && b.LogDirID != 0 && b.LogDirID != n.id.LogDirID {
		n.log.Warn("this broker's data dir is new: it leaves every in-sync set and leads none of its partitions until it has caught up (or an unclean election picks it)",
			"node_id", n.brokerID(), "log_dir_id", fmt.Sprintf("%016x", n.id.LogDirID), "was", fmt.Sprintf("%016x", b.LogDirID))
	}
	if !ok || b.KafkaAddr != addr || b.RaftAddr != n.id.RaftAddress || b.Rack != n.cfg.Rack || b.LogDirID != n.id.LogDirID ||
		(atLeast && b.Cores < int32(cores)) || (!atLeast && b.Cores != int32(cores)) {
		if err := n.propose(&metadata.RegisterBroker{ID: n.brokerID(), KafkaAddr: addr, RaftAddr: n.id.RaftAddress,
			Rack: n.cfg.Rack, Cores: int32(cores), NowMs: time.Now().UnixMilli(), LogDirID: n.id.LogDirID}); err != nil {
			return fmt.Errorf("cluster: registering broker %d: %w", n.brokerID(), err)
		}
	}
	if b, _ := n.raft.View().Broker(n.brokerID()); !b.Fenced {
		if led := ledReplicated(n.raft.View(), n.brokerID()); led > 0 {
			// A restart within the lease (a crash, SIGKILL): the metadata
			// still has this broker leading, in the epoch its previous
			// process led. That process's unsynced tail is gone here but
			// may be on followers, which would take new records at the
			// same offsets in the same epoch for their own. A new leader
			// epoch makes them truncate to what this log holds (as a
			// restarted broker's re-registration does in KRaft).
			n.log.Warn("restarted while the metadata still has this broker leading: fencing it first, so its partitions get a new leader epoch before it takes produces",
				"node_id", n.brokerID(), "replicated_partitions_led", led)
			if err := n.propose(&metadata.FenceBroker{ID: n.brokerID()}); err != nil {
				return fmt.Errorf("cluster: fencing restarted broker %d: %w", n.brokerID(), err)
			}
		}
	}
	if b, _ := n.raft.View().Broker(n.brokerID()); b.Fenced {
		if err := n.propose(&metadata.UnfenceBroker{ID: n.brokerID()}); err != nil {
			return fmt.Errorf("cluster: unfencing broker %d: %w", n.brokerID(), err)
		}
	}
	return nil
}

// ledReplicated counts the partitions with more than one replica that v
// has broker b leading.
func ledReplicated(v *metadata.View, b metadata.BrokerID) int {
	n := 0
	for _, name := range v.TopicNames() {
		t, _ := v.Topic(name)
		for i := range t.Partitions {
			if p := &t.Partitions[i]; p.Leader == b && len(p.Replicas) > 1 {
				n++
			}
		}
	}
	return n
}

// kafkaAddr is the address clients are told to use.
func (n *Node) kafkaAddr() string {
	host, port := n.cfg.AdvertiseHost, n.cfg.AdvertisePort
	a := n.rt.Addr().String()
	if h, p, err := splitHostPort(a); err == nil {
		if host == "" {
			host = h
		}
		if port == 0 {
			port = p
		}
	}
	return joinHostPort(host, port)
}

// coresUsed is one more than the highest core any partition of s is on.
func coresUsed(s *snapshot) int {
	used := 0
	for _, t := range s.topics {
		for _, c := range t.Cores {
			used = max(used, int(c)+1)
		}
	}
	return used
}

// snapshotOf is the broker's view of v: every topic with the core each
// partition's replica on broker b lives on (notLocal where b holds none),
// each partition's leader and replicas, and the live brokers.
func snapshotOf(v *metadata.View, b metadata.BrokerID) *snapshot {
	topics := make(map[string]*Topic, v.NumTopics())
	for _, name := range v.TopicNames() {
		mt, _ := v.Topic(name)
		np := len(mt.Partitions)
		t := &Topic{Name: name, ID: mt.ID, Internal: mt.Internal, Configs: maps.Clone(mt.Configs),
			Cores: make([]reactor.CoreID, np), Leaders: make([]int32, np), Replicas: make([][]int32, np), ISR: make([][]int32, np),
			LeaderEpochs: make([]int32, np)}
		if t.Configs == nil {
			t.Configs = map[string]string{}
		}
		for p := range mt.Partitions {
			mp := &mt.Partitions[p]
			t.Cores[p] = notLocal
			if c, ok := mp.CoreOf(b); ok {
				t.Cores[p] = reactor.CoreID(c)
			}
			t.Leaders[p] = int32(mp.Leader)
			t.LeaderEpochs[p] = int32(mp.LeaderEpoch)
			t.Replicas[p] = brokerIDs(mp.Replicas)
			t.ISR[p] = brokerIDs(mp.ISR)
		}
		topics[name] = t
	}
	s := newSnapshot(v.Version(), topics)
	s.pidLimit = v.NextProducerID()
	s.brokerConfigs = brokerConfigsOf(v)
	for _, id := range v.BrokerIDs() {
		br, _ := v.Broker(id)
		if br.Fenced {
			continue
		}
		if h, port, err := splitHostPort(br.KafkaAddr); err == nil {
			bi := wire.BrokerInfo{NodeID: int32(id), Host: h, Port: port}
			if br.Rack != "" {
				bi.Rack = &br.Rack
			}
			s.brokers = append(s.brokers, bi)
		}
	}
	return s
}

func brokerIDs(ids []metadata.BrokerID) []int32 {
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}

// diffCommands are the commands that take v to next for broker b, the
// only broker holding replicas. Each is applied on its own, so a crash can
// stop after any of them: no change that must not be seen half done may
// take two. A topic that lost partitions (the undo of a failed
// CreatePartitions) is one ShrinkPartitions: as a delete and a create, a
// crash between them left the topic unnamed, and the next start's sweep
// removed its data. A name whose id changed is a delete and a create, as
// the controller decided it (the old incarnation's data goes either way).
func diffCommands(v *metadata.View, next *snapshot, b metadata.BrokerID) []metadata.Command {
	var cmds []metadata.Command
	recreate := map[string]bool{}
	for _, name := range v.TopicNames() {
		t, _ := v.Topic(name)
		nt := next.topics[name]
		if nt == nil || metadata.TopicID(nt.ID) != t.ID {
			cmds = append(cmds, &metadata.DeleteTopic{Name: name, ID: t.ID})
			recreate[name] = nt != nil
		}
	}
	for _, name := range next.names {
		nt := next.topics[name]
		t, ok := v.Topic(name)
		if !ok || recreate[name] {
			cmds = append(cmds, &metadata.CreateTopic{Name: name, ID: nt.ID, Internal: nt.Internal,
				Configs: nonEmpty(nt.Configs), Partitions: assignments(nt.Cores, b)})
			continue
		}
		parts := t.Partitions // t is the View's: never write to it
		if len(nt.Cores) < len(parts) {
			cmds = append(cmds, &metadata.ShrinkPartitions{Topic: name, ID: t.ID, Count: int32(len(nt.Cores))})
			parts = parts[:len(nt.Cores)]
		}
		if !maps.Equal(t.Configs, nt.Configs) {
			cmds = append(cmds, &metadata.AlterTopicConfigs{Name: name, Replace: true, Set: nonEmpty(nt.Configs)})
		}
		for p := range parts {
			if c, ok := parts[p].CoreOf(b); ok && c != metadata.CoreID(nt.Cores[p]) {
				cmds = append(cmds, &metadata.MoveReplicaCore{Topic: name, Partition: int32(p), Broker: b, Core: metadata.CoreID(nt.Cores[p])})
			}
		}
		if len(nt.Cores) > len(parts) {
			cmds = append(cmds, &metadata.CreatePartitions{Name: name, ID: t.ID, Partitions: assignments(nt.Cores[len(parts):], b)})
		}
	}
	cmds = append(cmds, brokerConfigCommands(v, next)...)
	for pid := v.NextProducerID(); pid < next.pidLimit; {
		count := min(next.pidLimit-pid, 1<<20)
		cmds = append(cmds, &metadata.AllocateProducerIDs{Broker: b, Count: int32(count)})
		pid += count
	}
	return cmds
}

func nonEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

func assignments(cores []reactor.CoreID, b metadata.BrokerID) []metadata.Assignment {
	as := make([]metadata.Assignment, len(cores))
	for i, c := range cores {
		as[i] = metadata.Assignment{Replicas: []metadata.BrokerID{b}, Cores: []metadata.CoreID{metadata.CoreID(c)}}
	}
	return as
}

func splitHostPort(a string) (string, int32, error) {
	h, p, err := net.SplitHostPort(a)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.ParseInt(p, 10, 32)
	return h, int32(port), err
}

func joinHostPort(h string, p int32) string { return net.JoinHostPort(h, strconv.Itoa(int(p))) }
