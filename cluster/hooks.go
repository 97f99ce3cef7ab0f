package cluster

import (
	"github.com/strand-io/strand/cluster/metadata"
	"github.com/strand-io/strand/dma"
	"github.com/strand-io/strand/shard"
)

// testHooks are the points where this package's tests slow a node down or
// stop it short. They are part of the node's Config, not package
// variables, so that tests running side by side (or a test and the node
// another test left closing) cannot reach into each other's nodes. The
// zero value is the normal path; only tests in this package can set them.
type testHooks struct {
	// openLog replaces shard.Open, to make opening a log slow or fail.
	// It runs on the log opener's goroutine (partitions.go), so it may
	// block.
	openLog func(shard.Config, dma.FS, dma.Engine) (*shard.Log, error)
	// afterProposal runs after each proposed command is applied (on the
	// proposing goroutine, so it may block); an error fails that proposal
	// and stops persist right there, as a crash between two entries would.
	afterProposal func(metadata.Command) error
	// freeBytes replaces the data dir's free-space reading that metadata
	// changes check (apply.go), to make the disk look full.
	freeBytes func(dir string) (int64, error)
}

// openLog opens a partition's log: shard.Open, unless a test hooked it.
func (n *Node) openLog(cfg shard.Config, fs dma.FS, io dma.Engine) (*shard.Log, error) {
	if h := n.cfg.hooks.openLog; h != nil {
		return h(cfg, fs, io)
	}
	return shard.Open(cfg, fs, io)
}
