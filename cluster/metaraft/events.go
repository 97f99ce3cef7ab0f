package metaraft

import (
	"sync"

	"github.com/lni/dragonboat/v4"
	"github.com/lni/dragonboat/v4/logger"
	"github.com/lni/dragonboat/v4/raftio"
)

// leaderListener receives Dragonboat's leader updates, all on one
// Dragonboat goroutine.
type leaderListener struct{ h *Host }

func (l leaderListener) LeaderUpdated(info raftio.LeaderInfo) {
	if info.ShardID != ShardID {
		return
	}
	li := LeaderInfo{LeaderID: info.LeaderID, Term: info.Term}
	l.h.lead.Store(&li)
	if l.h.cfg.OnLeaderChange != nil {
		l.h.cfg.OnLeaderChange(li)
	}
}

// systemListener wakes the role watcher on membership changes; it must not
// block Dragonboat's event goroutine, so it only signals.
type systemListener struct{ h *Host }

func (l systemListener) MembershipChanged(info raftio.NodeInfo) {
	if info.ShardID == ShardID {
		select {
		case l.h.roles <- struct{}{}:
		default:
		}
	}
}

func (systemListener) NodeHostShuttingDown()                       {}
func (systemListener) NodeUnloaded(raftio.NodeInfo)                {}
func (systemListener) NodeDeleted(raftio.NodeInfo)                 {}
func (systemListener) NodeReady(raftio.NodeInfo)                   {}
func (systemListener) ConnectionEstablished(raftio.ConnectionInfo) {}
func (systemListener) ConnectionFailed(raftio.ConnectionInfo)      {}
func (systemListener) SendSnapshotStarted(raftio.SnapshotInfo)     {}
func (systemListener) SendSnapshotCompleted(raftio.SnapshotInfo)   {}
func (systemListener) SendSnapshotAborted(raftio.SnapshotInfo)     {}
func (systemListener) SnapshotReceived(raftio.SnapshotInfo)        {}
func (systemListener) SnapshotRecovered(raftio.SnapshotInfo)       {}
func (systemListener) SnapshotCreated(raftio.SnapshotInfo)         {}
func (systemListener) SnapshotCompacted(raftio.SnapshotInfo)       {}
func (systemListener) LogCompacted(raftio.EntryInfo)               {}
func (systemListener) LogDBCompacted(raftio.EntryInfo)             {}

// watchRole records this replica's promotion from non-voting to voter in
// the role file, so that Restart starts it with the right role.
func (h *Host) watchRole() {
	defer h.wg.Done()
	for {
		select {
		case <-h.stop:
			return
		case <-h.roles:
		}
		if h.role() != roleNonVoting {
			continue
		}
		info := h.nh.GetNodeHostInfo(dragonboat.NodeHostInfoOption{SkipLogInfo: true})
		if info == nil {
			continue
		}
		for _, si := range info.ShardInfoList {
			if si.ShardID != ShardID || si.IsNonVoting {
				continue
			}
			if _, member := si.Replicas[h.cfg.ReplicaID]; member {
				if err := h.setRole(roleVoter); err != nil {
					plog.Errorf("metaraft: record promotion: %v", err)
				}
			}
		}
	}
}

var (
	quietOnce sync.Once
	plog      = logger.GetLogger("metaraft")
)

// quietDragonboat turns Dragonboat's per-package loggers down to warnings:
// at INFO it logs dozens of lines per start and per election.
func quietDragonboat() {
	quietOnce.Do(func() {
		for _, name := range []string{"dragonboat", "raft", "rsm", "transport", "logdb", "config",
			"settings", "registry", "raftpb", "server", "tan", "gossip", "LogDB", "pebblekv", "metaraft"} {
			logger.GetLogger(name).SetLevel(logger.WARNING)
		}
	})
}
