package metaraft

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lni/dragonboat/v4"
	"github.com/lni/dragonboat/v4/client"
	"github.com/lni/dragonboat/v4/config"
	sm "github.com/lni/dragonboat/v4/statemachine"

	"github.com/strand-io/strand/cluster/metadata"
)

// ShardID is the metadata group's Dragonboat shard; a NodeHost hosts only it.
const ShardID = 1

// Config configures a Host. Zero values take the defaults noted.
type Config struct {
	// Dir holds the Raft log, snapshots and the replica's role. It must be
	// this Host's alone (Dragonboat locks it).
	Dir string
	// ReplicaID is this broker's Raft replica id, non-zero and never reused
	// in the group (Dragonboat refuses a removed id forever).
	ReplicaID uint64
	// RaftAddress is host:port where peers reach this replica. Dragonboat
	// records it in Dir: moving a replica to another address needs a new
	// Dir and a new ReplicaID.
	RaftAddress string
	// ListenAddress, if set, is where the transport listens instead of
	// RaftAddress (a single voter, which no peer dials, listens on any
	// free port, so a restart never fails on its recorded port being
	// taken). Dragonboat refuses port 0.
	ListenAddress string
	// ClusterID keeps clusters apart: hosts only talk to hosts with the
	// same id (Dragonboat's DeploymentID). 0 is allowed but then any two
	// Strand clusters that can reach each other could exchange messages.
	ClusterID uint64

	// RTTMillisecond is the Raft tick (default 50). Elections start after
	// ElectionRTT ticks without a leader (default 20, so 1 s) and leaders
	// heartbeat every HeartbeatRTT ticks (default 2). The metadata group
	// sees little traffic, so it can afford Kafka's 1 s election timeout,
	// which rides out scheduling stalls on a busy machine.
	RTTMillisecond, ElectionRTT, HeartbeatRTT uint64
	// SnapshotEntries: a snapshot every this many entries (default 1000),
	// keeping CompactionOverhead entries behind it (default 200).
	SnapshotEntries, CompactionOverhead uint64
	// InMemLogBytesMax bounds the unapplied log held in memory; proposals
	// past it fail with Dragonboat's ErrSystemBusy and Propose retries
	// them until its context ends (default 16 MiB).
	InMemLogBytesMax uint64
	// QueueBytesMax bounds each of the send and receive queues of the Raft
	// transport (default 16 MiB).
	QueueBytesMax uint64

	// OnApply, if set, gets every new View after it is applied (the same
	// value View returns). It runs on Dragonboat's apply goroutine, in
	// order: it must not block.
	OnApply func(*metadata.View)
	// OnLeaderChange, if set, gets every change of the group's leader seen
	// by this replica, LeaderID 0 meaning none. It runs on Dragonboat's
	// event goroutine: it must not block.
	OnLeaderChange func(LeaderInfo)
}

func (c *Config) setDefaults() {
	def := func(v *uint64, d uint64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.RTTMillisecond, 50)
	def(&c.ElectionRTT, 20)
	def(&c.HeartbeatRTT, 2)
	def(&c.SnapshotEntries, 1000)
	def(&c.CompactionOverhead, 200)
	def(&c.InMemLogBytesMax, 16<<20)
	def(&c.QueueBytesMax, 16<<20)
}

// LeaderInfo is the metadata group's leader as one replica sees it.
type LeaderInfo struct {
	LeaderID uint64 // 0: no leader known
	Term     uint64
}

// Host runs this broker's replica of the metadata group.
type Host struct {
	cfg  Config
	nh   *dragonboat.NodeHost
	sess *client.Session
	view atomic.Pointer[metadata.View]
	lead atomic.Pointer[LeaderInfo]

	mu        sync.Mutex // guards started
	started   bool
	closeOnce sync.Once

	busyLoggedNs atomic.Int64 // when logBusy last logged
	busy         atomic.Int64 // proposals refused by InMemLogBytesMax, for tests
}

// busyLogInterval rate-limits the log line of a full in-memory log.
const busyLogInterval = 10 * time.Second

// logBusy says, at most once per busyLogInterval, that proposals are held
// back by InMemLogBytesMax.
func (h *Host) logBusy() {
	h.busy.Add(1)
	now := time.Now().UnixNano()
	last := h.busyLoggedNs.Load()
	if now-last < int64(busyLogInterval) || !h.busyLoggedNs.CompareAndSwap(last, now) {
		return
	}
	plog.Warningf("metaraft: proposals held back: more than %d bytes of log not yet applied (InMemLogBytesMax); retrying",
		h.cfg.InMemLogBytesMax)
}

// Open starts the Host's NodeHost in cfg.Dir. The replica itself starts
// with Bootstrap, Join or Restart.
func Open(cfg Config) (*Host, error) {
	cfg.setDefaults()
	if cfg.Dir == "" || cfg.ReplicaID == 0 || cfg.RaftAddress == "" {
		return nil, errors.New("metaraft: Dir, ReplicaID and RaftAddress are required")
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	quietDragonboat()
	h := &Host{cfg: cfg}
	h.view.Store(metadata.New().View())
	h.lead.Store(&LeaderInfo{})
	nh, err := dragonboat.NewNodeHost(config.NodeHostConfig{
		NodeHostDir:         filepath.Join(cfg.Dir, "nodehost"),
		RTTMillisecond:      cfg.RTTMillisecond,
		RaftAddress:         cfg.RaftAddress,
		ListenAddress:       cfg.ListenAddress,
		DeploymentID:        cfg.ClusterID,
		MaxSendQueueSize:    cfg.QueueBytesMax,
		MaxReceiveQueueSize: cfg.QueueBytesMax,
		RaftEventListener:   leaderListener{h},
		Expert:              expertConfig(),
	})
	if err != nil {
		return nil, fmt.Errorf("metaraft: start NodeHost in %s: %w", cfg.Dir, err)
	}
	h.nh = nh
	h.sess = nh.GetNoOPSession(ShardID)
	return h, nil
}

// expertConfig keeps Dragonboat small. Its defaults are sized for
// thousands of busy shards: a Pebble LogDB of 16 shards with 128 MiB write
// buffers (up to 8 GB) and about 280 goroutines. One metadata shard needs
// one LogDB shard with the tiny 4 MiB buffers and one worker per stage.
func expertConfig() config.ExpertConfig {
	logdb := config.GetTinyMemLogDBConfig()
	logdb.Shards = 1
	return config.ExpertConfig{
		LogDB:  logdb,
		Engine: config.EngineConfig{ExecShards: 1, CommitShards: 1, ApplyShards: 1, SnapshotShards: 1, CloseShards: 1},
	}
}

func (h *Host) replicaConfig(nonVoting bool) config.Config {
	return config.Config{
		ShardID:            ShardID,
		ReplicaID:          h.cfg.ReplicaID,
		ElectionRTT:        h.cfg.ElectionRTT,
		HeartbeatRTT:       h.cfg.HeartbeatRTT,
		CheckQuorum:        true, // a leader cut off from the quorum steps down
		PreVote:            true, // a returning replica cannot disrupt a healthy leader
		SnapshotEntries:    h.cfg.SnapshotEntries,
		CompactionOverhead: h.cfg.CompactionOverhead,
		MaxInMemLogSize:    h.cfg.InMemLogBytesMax,
		IsNonVoting:        nonVoting,
	}
}

// Bootstrap starts the replica as one of the group's initial voters:
// members maps every initial replica id (this one included) to its Raft
// address, and every initial member must be given the same map. Calling it
// again after a restart with the same map is allowed (like etcd's
// --initial-cluster); a different map is refused.
func (h *Host) Bootstrap(members map[uint64]string) error {
	if _, ok := members[h.cfg.ReplicaID]; !ok {
		return fmt.Errorf("metaraft: replica %d is not among the initial members", h.cfg.ReplicaID)
	}
	if n := len(members); n != 1 && n != 3 && n != 5 {
		return fmt.Errorf("metaraft: %d initial voters; use 1, 3 or 5", n)
	}
	targets := make(map[uint64]dragonboat.Target, len(members))
	for id, a := range members {
		targets[id] = a
	}
	if h.joined() {
		return errors.New("metaraft: this replica joined a running group; use Restart")
	}
	return h.start(targets, false, false)
}

// Join starts the replica as a new non-voting member. A member of the
// group must first have added it with AddNonVoting; it then receives the
// log (or a snapshot) and, once promoted with Promote, votes. Calling Join
// again after a restart is the same as Restart.
func (h *Host) Join() error {
	if !h.joined() {
		if err := h.markJoined(); err != nil {
			return err
		}
	}
	return h.start(nil, true, true)
}

// Restart starts a replica that has run in Dir before, whether it was
// bootstrapped or joined: Dragonboat recorded the members, and a joined
// replica restarts non-voting until its replay promotes it (role.go).
func (h *Host) Restart() error {
	return h.start(nil, false, h.joined())
}

func (h *Host) start(members map[uint64]dragonboat.Target, join, nonVoting bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started {
		return errors.New("metaraft: replica already started")
	}
	create := func(shardID, replicaID uint64) sm.IConcurrentStateMachine {
		return &stateMachine{st: metadata.New(), publish: h.publish, current: h.View}
	}
	if err := h.nh.StartConcurrentReplica(members, join, create, h.replicaConfig(nonVoting)); err != nil {
		return fmt.Errorf("metaraft: start replica %d: %w", h.cfg.ReplicaID, err)
	}
	h.started = true
	return nil
}

func (h *Host) publish(v *metadata.View) {
	h.view.Store(v)
	if h.cfg.OnApply != nil {
		h.cfg.OnApply(v)
	}
}

// View returns the newest applied metadata. It is local (no Raft round
// trip): it may lag the leader, but never goes back.
func (h *Host) View() *metadata.View { return h.view.Load() }

// LinearizableView returns a View that includes every command committed
// before the call, at the cost of a round trip to the leader (ReadIndex).
func (h *Host) LinearizableView(ctx context.Context) (*metadata.View, error) {
	ctx, cancel := withDefaultDeadline(ctx)
	defer cancel()
	for {
		v, err := h.nh.SyncRead(ctx, ShardID, nil)
		if err == nil {
			return v.(*metadata.View), nil
		}
		if err := retryWait(ctx, err); err != nil {
			return nil, err
		}
	}
}

// Leader returns the group's leader as this replica last heard.
func (h *Host) Leader() LeaderInfo { return *h.lead.Load() }

// IsLeader reports whether this replica leads the group.
func (h *Host) IsLeader() bool { return h.Leader().LeaderID == h.cfg.ReplicaID }

// ReplicaID is this replica's id.
func (h *Host) ReplicaID() uint64 { return h.cfg.ReplicaID }

// proposeTimeout bounds a Propose whose context has no deadline.
const proposeTimeout = 10 * time.Second

// Propose replicates c and returns the state machine's Result once this
// replica has applied it, so View already includes an accepted command
// when Propose returns. Any member may propose. A rejected command is a
// Result with a non-OK Code, not an error; an error means the outcome is
// unknown (a timeout, which wraps context.DeadlineExceeded: the command
// may still be applied) or the proposal never entered the log.
func (h *Host) Propose(ctx context.Context, c metadata.Command) (metadata.Result, error) {
	ctx, cancel := withDefaultDeadline(ctx)
	defer cancel()
	cmd := metadata.Encode(c)
	for {
		res, err := h.nh.SyncPropose(ctx, h.sess, cmd)
		if err == nil {
			return metadata.DecodeResult(res.Data)
		}
		if errors.Is(err, dragonboat.ErrSystemBusy) {
			h.logBusy()
		}
		if errors.Is(err, dragonboat.ErrTimeout) {
			// Dragonboat's own timeout: callers test for the context's.
			err = fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
		}
		if err := retryWait(ctx, err); err != nil {
			return metadata.Result{}, fmt.Errorf("metaraft: propose %v: %w", c.Kind(), err)
		}
	}
}

func withDefaultDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, proposeTimeout)
}

// retryWait returns nil after a short pause when err means the request
// never entered the log and may be sent again (the replica is still
// starting, or the in-memory log is full), otherwise err.
func retryWait(ctx context.Context, err error) error {
	if !errors.Is(err, dragonboat.ErrShardNotReady) && !errors.Is(err, dragonboat.ErrSystemBusy) {
		return err
	}
	t := time.NewTimer(20 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
	case <-t.C:
		return nil
	}
}

// AddNonVoting adds replica id at addr as a non-voting member; the new
// broker then calls Join. Any member may call it.
func (h *Host) AddNonVoting(ctx context.Context, id uint64, addr string) error {
	return h.membership(ctx, func(ctx context.Context) error {
		return h.nh.SyncRequestAddNonVoting(ctx, ShardID, id, addr, 0)
	})
}

// Promote turns non-voting member id (at addr) into a voter.
func (h *Host) Promote(ctx context.Context, id uint64, addr string) error {
	return h.membership(ctx, func(ctx context.Context) error {
		return h.nh.SyncRequestAddReplica(ctx, ShardID, id, addr, 0)
	})
}

// RemoveReplica removes member id from the group for good.
func (h *Host) RemoveReplica(ctx context.Context, id uint64) error {
	return h.membership(ctx, func(ctx context.Context) error {
		return h.nh.SyncRequestDeleteReplica(ctx, ShardID, id, 0)
	})
}

// Members returns the group's voters and non-voting members (id to Raft
// address), read through the leader.
func (h *Host) Members(ctx context.Context) (voters, nonVoting map[uint64]string, err error) {
	ctx, cancel := withDefaultDeadline(ctx)
	defer cancel()
	for {
		m, err := h.nh.SyncGetShardMembership(ctx, ShardID)
		if err == nil {
			return m.Nodes, m.NonVotings, nil
		}
		if err := retryWait(ctx, err); err != nil {
			return nil, nil, err
		}
	}
}

func (h *Host) membership(ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := withDefaultDeadline(ctx)
	defer cancel()
	for {
		err := f(ctx)
		if err == nil {
			return nil
		}
		if err := retryWait(ctx, err); err != nil {
			return fmt.Errorf("metaraft: membership change: %w", err)
		}
	}
}

// Close stops the replica and the NodeHost. The log and snapshots stay in
// Dir for Restart.
// Calling it again does nothing.
func (h *Host) Close() error {
	h.closeOnce.Do(h.nh.Close)
	return nil
}
