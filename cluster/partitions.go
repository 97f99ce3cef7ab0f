package cluster

import (
	"fmt"
	"os"
	"time"

	"github.com/strand-io/strand/dma"
	"github.com/strand-io/strand/reactor"
	"github.com/strand-io/strand/shard"
	"github.com/strand-io/strand/wire"
)

// coreState is one core's partition manager: the partitions it owns and
// the per-core caches the protocol layer reads. Only its core touches it.
type coreState struct {
	node    *Node
	core    *reactor.Core
	parts   map[wire.PartitionRef]*partition
	closing bool

	topicsVer   uint64
	topicsCache []wire.TopicInfo
	// coords are the group coordinators of the offsets partitions here.
	coords map[int32]*hostedCoord
}

// partition is one partition owned by this core.
type partition struct {
	ref      wire.PartitionRef
	log      *shard.Log
	owner    *coreState
	watchers []*watch
}

// watch is a fetch long-poll waiting for a partition's high watermark to
// pass offset. cb and cancelled belong to the origin core.
type watch struct {
	offset    int64
	origin    reactor.CoreID
	cb        func()
	cancelled bool
}

func (cs *coreState) open(t *Topic, p int32) error {
	ref := wire.PartitionRef{Topic: t.Name, Partition: p}
	if _, ok := cs.parts[ref]; ok {
		return nil
	}
	dir := cs.node.partitionDir(t.Name, p)
	cfg := logConfig(cs.node.cfg.Log, dir, t.Configs)
	cfg.Logger = cs.node.log.With("partition", fmt.Sprintf("%s-%d", t.Name, p), "core", cs.core.ID())
	l, err := shard.Open(cfg, dma.OSFS(), cs.core.IO())
	if err != nil {
		return fmt.Errorf("cluster: open %s-%d: %w", t.Name, p, err)
	}
	part := &partition{ref: ref, log: l, owner: cs}
	l.OnCommit = part.onCommit
	cs.parts[ref] = part
	return nil
}

// onCommit wakes the long-polls the new high watermark satisfies.
func (p *partition) onCommit(hw shard.Offset) {
	kept := p.watchers[:0]
	for _, w := range p.watchers {
		if int64(hw) > w.offset {
			p.fire(w)
		} else {
			kept = append(kept, w)
		}
	}
	clear(p.watchers[len(kept):])
	p.watchers = kept
}

// fire runs w's callback on its origin core, always from the task queue
// (never inline inside the log's completion), and only if not cancelled.
func (p *partition) fire(w *watch) {
	p.owner.core.Send(w.origin, func(*reactor.Core) {
		if !w.cancelled {
			w.cancelled = true
			w.cb()
		}
	})
}

func (p *partition) removeWatch(w *watch) {
	for i, x := range p.watchers {
		if x == w {
			p.watchers = append(p.watchers[:i], p.watchers[i+1:]...)
			return
		}
	}
}

// drop detaches a partition (deleted topic or shutdown): long-polls on it
// are released, and the log is closed once its in-flight I/O completes.
func (cs *coreState) drop(ref wire.PartitionRef, then func(*shard.Log)) {
	part, ok := cs.parts[ref]
	if !ok {
		then(nil)
		return
	}
	delete(cs.parts, ref)
	for _, w := range part.watchers {
		part.fire(w)
	}
	part.watchers = nil
	part.log.Quiesce(func() {
		if err := part.log.Close(); err != nil {
			cs.node.log.Error("closing partition log", "partition", ref, "err", err)
			cs.node.closeFailures.Add(1)
		}
		then(part.log)
	})
}

// closeAll closes every log on this core, then calls done.
func (cs *coreState) closeAll(done func()) {
	cs.closing = true
	pending := len(cs.parts)
	if pending == 0 {
		done()
		return
	}
	for ref := range cs.parts {
		cs.drop(ref, func(*shard.Log) {
			if pending--; pending == 0 {
				done()
			}
		})
	}
}

// removeDir deletes a dropped partition's directory. The rename is on this
// core so that a topic re-created with the same name (whose open is queued
// behind this message) starts empty; the slow recursive delete is not.
func (cs *coreState) removeDir(ref wire.PartitionRef) {
	dir := cs.node.partitionDir(ref.Topic, ref.Partition)
	gone := fmt.Sprintf("%s.%d.deleted", dir, time.Now().UnixNano())
	if err := os.Rename(dir, gone); err != nil {
		if !os.IsNotExist(err) {
			cs.node.log.Error("deleting partition directory", "dir", dir, "err", err)
		}
		return
	}
	go os.RemoveAll(gone)
}

func (cs *coreState) startTicking() {
	if cs.closing {
		return
	}
	now := time.Now().UnixMilli()
	for _, p := range cs.parts {
		p.log.Tick(now)
	}
	cs.core.After(cs.node.cfg.TickInterval, cs.startTicking)
}
