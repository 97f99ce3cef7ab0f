package metaraft

import (
	"sync"

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

var (
	quietOnce sync.Once
	plog      = logger.GetLogger("metaraft")
)

// quietDragonboat turns Dragonboat's per-package loggers down to warnings:
// at INFO it logs dozens of lines per start and per election. Its raft
// package logs every election step, and config an insecure-transport
// notice, as warnings, so a one-voter broker printed five of them at every
// start: those two only log errors.
func quietDragonboat() {
	quietOnce.Do(func() {
		for _, name := range []string{"dragonboat", "rsm", "transport", "logdb",
			"settings", "registry", "raftpb", "server", "tan", "gossip", "LogDB", "pebblekv", "metaraft"} {
			logger.GetLogger(name).SetLevel(logger.WARNING)
		}
		logger.GetLogger("raft").SetLevel(logger.ERROR)
		logger.GetLogger("config").SetLevel(logger.ERROR)
	})
}
