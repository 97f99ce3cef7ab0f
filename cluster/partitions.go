package cluster

import (
	"fmt"
	"os"
	"time"

	"github.com/strand-io/strand/cluster/topicconfig"
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
	// readPool holds the disk-read buffers of every log on this core.
	readPool *dma.Pool
	// files holds the open files of the sealed segments of every log on
	// this core, at most Config.SegmentFilesPerCore.
	files *shard.FileCache
	// clean is the cleaning budget of the compacted partitions here.
	clean *shard.CleanBudget
	// queues serialises the slow lifecycle steps of each partition (open
	// off the core, quiesce and close, remove the directory): a step
	// starts when the one before it has called next. See serially.
	queues map[wire.PartitionRef][]func(next func())

	// topicsCache is Topics' answer for the snapshot topicsSnap, matched
	// by identity: published snapshots can share a version (see publish).
	topicsSnap  *snapshot
	topicsCache []wire.TopicInfo
	// coords are the group coordinators of the offsets partitions here.
	coords map[int32]*hostedCoord
	// probe counts this core's requests (see Node.Snapshot).
	probe coreProbe
	// replStates are the metadata's states of this core's replicated
	// partitions, applied to a partition when its log is open
	// (replicas.go); fetchers fetch for the ones this broker follows, one
	// per leader broker (fetcher.go).
	replStates map[wire.PartitionRef]*replicaState
	fetchers   map[int32]*fetcher
	// appliedVersion is the newest metadata version whose replica states
	// this core has applied (the leadership lease needs it, lease.go).
	appliedVersion uint64
}

// partition is one partition owned by this core.
type partition struct {
	ref      wire.PartitionRef
	log      *shard.Log
	owner    *coreState
	watchers []*watch
	probe    partProbe
	repl     *replica // nil unless the partition has followers
}

// watch is a fetch long-poll waiting for a partition's high watermark to
// pass offset. cb and cancelled belong to the origin core.
type watch struct {
	offset    int64
	origin    reactor.CoreID
	cb        func()
	cancelled bool
}

func (cs *coreState) logConfigFor(t *Topic, p int32) shard.Config {
	eff := topicconfig.Merge(cs.node.inherited(cs.node.meta.Load()), t.Configs)
	cfg := topicconfig.LogConfig(cs.node.cfg.Log, cs.node.partitionDir(t.Name, p), eff)
	cfg.Logger = cs.node.log.With("partition", fmt.Sprintf("%s-%d", t.Name, p), "core", cs.core.ID())
	cfg.ReadPool = cs.readPool
	cfg.FileCache = cs.files
	cfg.AssertOwner = cs.core.AssertOwned
	cfg.CleanBudget = cs.clean
	cfg.CleanBytesPerTick = cs.node.cfg.CleanerBytesPerRound
	// A replicated partition's high watermark is replication's: the
	// smallest durable end over the in-sync set, not this log's own.
	// A log keeps it once it has had followers (a reassignment that
	// shrinks a partition to one replica leaves its role running).
	cfg.ExternalHW = int(p) < len(t.Replicas) && len(t.Replicas[p]) > 1
	if st := cs.replStates[wire.PartitionRef{Topic: t.Name, Partition: p}]; st != nil && len(st.Replicas) > 1 {
		cfg.ExternalHW = true
	}
	return cfg
}

// readPoolPerClass bounds the read buffers a core keeps per size class,
// however many partitions it owns (a pool per log kept up to four each).
const readPoolPerClass = 16

// open opens a partition's log on the core, blocking it: for start-up,
// before the broker serves anyone. At run time use openAsync.
func (cs *coreState) open(t *Topic, p int32) error {
	ref := wire.PartitionRef{Topic: t.Name, Partition: p}
	if _, ok := cs.parts[ref]; ok {
		return nil
	}
	l, err := cs.node.openLog(cs.logConfigFor(t, p), dma.OSFS(), cs.core.IO())
	if err != nil {
		return fmt.Errorf("cluster: open %s-%d: %w", t.Name, p, err)
	}
	cs.install(ref, l)
	return nil
}

func (cs *coreState) install(ref wire.PartitionRef, l *shard.Log) {
	part := &partition{ref: ref, log: l, owner: cs}
	l.OnCommit = part.onCommit
	cs.parts[ref] = part
	if st := cs.replStates[ref]; st != nil {
		part.applyState(st)
	}
}

// serially runs step for ref once every earlier step for it has called
// next: a delete right behind a create waits for the open, and a create
// right behind a delete waits for the directory to be gone.
func (cs *coreState) serially(ref wire.PartitionRef, step func(next func())) {
	q := append(cs.queues[ref], step)
	cs.queues[ref] = q
	if len(q) == 1 {
		cs.runQueued(ref)
	}
}

func (cs *coreState) runQueued(ref wire.PartitionRef) {
	q := cs.queues[ref]
	q[0](func() {
		q := cs.queues[ref][1:]
		if len(q) == 0 {
			delete(cs.queues, ref)
			return
		}
		cs.queues[ref] = q
		cs.runQueued(ref)
	})
}

// openAsync opens a partition's log without blocking the core. Creating
// or recovering a log is file work (directories, fsyncs, reading the
// tail) that took 0.3-0.7 s for a new topic's partitions; it runs on a
// goroutine, which touches nothing of the core's (shard.Open only stores
// the engine for later), and the log is installed here when it is ready.
// fresh says the partition is new: a directory already there belongs to
// an earlier topic of that name that a failure left behind, and is removed
// rather than served. done runs on this core with the outcome.
func (cs *coreState) openAsync(t *Topic, p int32, fresh bool, done func(error)) {
	ref := wire.PartitionRef{Topic: t.Name, Partition: p}
	cs.serially(ref, func(next func()) {
		if _, ok := cs.parts[ref]; ok || cs.closing {
			done(nil)
			next()
			return
		}
		cfg, io, id := cs.logConfigFor(t, p), cs.core.IO(), cs.core.ID()
		log := cs.node.log
		go func() {
			var l *shard.Log
			var err error
			if fresh {
				err = removeLeftover(cfg.Dir, log)
			}
			if err == nil {
				l, err = cs.node.openLog(cfg, dma.OSFS(), io)
			}
			if err != nil {
				err = fmt.Errorf("cluster: open %s-%d: %w", t.Name, p, err)
			}
			posted := cs.node.rt.Post(id, func(*reactor.Core) {
				if err == nil {
					cs.install(ref, l)
				}
				done(err)
				next()
			})
			if posted != nil && l != nil {
				l.Close() // the reactors are gone; nothing else will
			}
		}()
	})
}

// onCommit wakes the long-polls the new high watermark satisfies.
func (p *partition) onCommit(hw shard.Offset) {
	if p.repl != nil {
		p.repl.completeAcks()
	}
	p.watchers = p.firePast(p.watchers, int64(hw))
}

// firePast fires the watches of ws that end has passed and returns the
// rest, in ws's backing array.
func (p *partition) firePast(ws []*watch, end int64) []*watch {
	kept := ws[:0]
	for _, w := range ws {
		if end > w.offset {
			p.fire(w)
		} else {
			kept = append(kept, w)
		}
	}
	clear(ws[len(kept):])
	return kept
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

// drop detaches a partition (deleted topic or shutdown): long-polls on it
// are released, and the log is closed once its in-flight I/O completes.
//
// It runs after any open of ref still in progress, and then (which may
// remove the directory) runs before any later open of ref starts.
func (cs *coreState) drop(ref wire.PartitionRef, then func(*shard.Log)) {
	cs.serially(ref, func(next func()) {
		part, ok := cs.parts[ref]
		if !ok {
			then(nil)
			next()
			return
		}
		delete(cs.parts, ref)
		if part.repl != nil {
			part.repl.stop(errNotLeader)
		}
		for _, w := range part.watchers {
			part.fire(w)
		}
		part.watchers = nil
		part.log.Quiesce(func() {
			if cs.closing {
				cs.core.ExpectSlow() // shutdown: syncing and closing every log
			}
			if err := part.log.Close(); err != nil {
				cs.node.log.Error("closing partition log", "partition", ref, "err", err)
				cs.node.closeFailures.Add(1)
			}
			then(part.log)
			next()
		})
	})
}

// closeAll closes every log on this core, then calls done.
func (cs *coreState) closeAll(done func()) {
	cs.closing = true
	for _, f := range cs.fetchers {
		f.stop()
	}
	refs := map[wire.PartitionRef]bool{}
	for ref := range cs.parts {
		refs[ref] = true
	}
	for ref := range cs.queues { // opening now: closed once open
		refs[ref] = true
	}
	pending := len(refs)
	if pending == 0 {
		done()
		return
	}
	for ref := range refs {
		cs.drop(ref, func(*shard.Log) {
			if pending--; pending == 0 {
				done()
			}
		})
	}
}

// removeDir renames a dropped partition's directory to a tombstone and
// removes that in the background. The rename is on this core so that a
// topic re-created with the same name starts empty; the slow recursive
// delete is not. The tombstone's name is short whatever the topic's (a
// 249-byte topic name plus a suffix would not fit in a file name).
func (cs *coreState) removeDir(ref wire.PartitionRef) error {
	dir := cs.node.partitionDir(ref.Topic, ref.Partition)
	gone := tombstoneName(cs.node.cfg.DataDir)
	err := os.Rename(dir, gone)
	switch {
	case err == nil:
		go os.RemoveAll(gone)
		return nil
	case os.IsNotExist(err):
		return nil
	}
	// Renaming failed; removing in place (on the core, but this is the
	// rare path) still keeps the data from being served again.
	if rerr := os.RemoveAll(dir); rerr != nil {
		return fmt.Errorf("removing %s: %w (renaming it: %v)", dir, rerr, err)
	}
	return nil
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

// startCleaning runs a cleaning round of the core's compacted partitions
// every CleanerInterval: small rounds (CleanerBytesPerRound for the whole
// core) keep the core's other work waiting at most one round.
func (cs *coreState) startCleaning() {
	if cs.closing {
		return
	}
	now := time.Now().UnixMilli()
	for _, p := range cs.parts {
		p.log.Clean(now)
	}
	cs.core.After(cs.node.cfg.CleanerInterval, cs.startCleaning)
}
