package cluster

import (
	"errors"
	"fmt"
	"time"

	"github.com/strand-io/strand/cluster/group"
	"github.com/strand-io/strand/reactor"
	"github.com/strand-io/strand/shard"
	"github.com/strand-io/strand/wire"
	"github.com/twmb/franz-go/pkg/kerr"
)

var (
	errCoordinatorLoading  = kerr.CoordinatorLoadInProgress.Code
	errCoordinatorNotAvail = kerr.CoordinatorNotAvailable.Code
)

const groupTickInterval = 100 * time.Millisecond

// purgeWaitInterval is how often a topic deletion looks again whether the
// move of an offsets partition it waits for is over (see offsetsGate).
const purgeWaitInterval = 5 * time.Millisecond

// hostedCoord is the group coordinator for one partition of the offsets
// topic, on the core that owns that partition. It is the group.Store of
// its coordinator: commits become record batches in that partition's log.
type hostedCoord struct {
	cs      *coreState
	part    *partition
	coord   *group.Coordinator
	loading bool
	// stopped: the partition is moving to another core (move.go); this
	// coordinator takes no more writes and its log is closing.
	stopped bool
	// afterLoad runs once loading ends (purges asked for meanwhile).
	afterLoad []func()
}

// errCoordinatorMoved fails a write of a coordinator whose partition is
// moving to another core; nothing answered success is lost (see stop).
var errCoordinatorMoved = errors.New("cluster: the group coordinator is moving to another core")

// Persist appends the records to the offsets partition. Its log is
// compacted by the core's log cleaner like any compacted topic (the
// records are keyed by group and partition, a deletion is a tombstone), so
// the log stays near the size of the live offsets.
func (h *hostedCoord) Persist(recs []group.Record, done func(error)) {
	if h.stopped {
		done(errCoordinatorMoved)
		return
	}
	now := time.Now().UnixMilli()
	if err := h.part.log.Append(encodeBatch(recs, now), now, func(_ shard.AppendResult, err error) { done(err) }); err != nil {
		done(err)
	}
}

// load replays the offsets log into the coordinator.
func (h *hostedCoord) load() {
	h.loading = true
	l := h.part.log
	now := time.Now().UnixMilli()
	var next func(off shard.Offset)
	next = func(off shard.Offset) {
		if h.stopped {
			return // the coordinator on the partition's new core loads it
		}
		if off >= l.HighWatermark() {
			h.loaded()
			return
		}
		l.Read(off, 1<<20, func(r shard.ReadResult, err error) {
			if err == nil && len(r.Data) == 0 {
				err = shard.ErrOffsetOutOfRange
			}
			if h.stopped {
				return
			}
			if err != nil {
				h.cs.node.log.Error("loading committed offsets failed; the coordinator serves what it read so far", "partition", h.part.ref, "offset", off, "err", err)
				h.loaded()
				return
			}
			last := off
			for b := r.Data; len(b) > 0; {
				hd, _ := shard.ParseBatchHeader(b)
				last = hd.LastOffset()
				b = b[hd.Size():]
			}
			if err := decodeBatches(r.Data, func(rec group.Record) { h.coord.Load(rec, now) }); err != nil {
				h.cs.node.log.Error("undecodable record in the offsets log", "partition", h.part.ref, "err", err)
			}
			next(last + 1)
		})
	}
	next(l.LogStartOffset())
}

// loaded ends loading: the coordinator serves from now on.
func (h *hostedCoord) loaded() {
	h.loading = false
	h.purgeUnknownTopics()
	for _, fn := range h.afterLoad {
		fn()
	}
	h.afterLoad = nil
}

// startCoordinators hosts a coordinator for each offsets partition this
// core owns, loads it, and starts the group timer.
func (cs *coreState) startCoordinators() {
	cs.coords = map[int32]*hostedCoord{}
	for ref, part := range cs.parts {
		if ref.Topic != OffsetsTopic {
			continue
		}
		h := &hostedCoord{cs: cs, part: part}
		h.coord = group.NewCoordinator(cs.node.cfg.Groups, h)
		cs.coords[ref.Partition] = h
		h.load()
	}
	cs.tickGroups()
}

// hostCoordinators hosts the coordinators of offsets partitions opened
// here after the start (placed on this broker by a later proposal).
// Before startCoordinators ran, that hosts them all.
func (cs *coreState) hostCoordinators() {
	if cs.coords == nil {
		return
	}
	for ref, part := range cs.parts {
		if ref.Topic != OffsetsTopic || cs.coords[ref.Partition] != nil {
			continue
		}
		h := &hostedCoord{cs: cs, part: part}
		h.coord = group.NewCoordinator(cs.node.cfg.Groups, h)
		cs.coords[ref.Partition] = h
		h.load()
	}
}

// stopCoordinator retires the coordinator of offsets partition p, which is
// leaving this core (move.go). Requests reaching this core for its groups
// find no coordinator and get COORDINATOR_LOAD_IN_PROGRESS (onCoordinator);
// joins and syncs waiting for the rest of their group get it now. Writes
// already handed to the log stay staged, so the log's Quiesce makes every
// commit answered success durable before the log closes; the coordinator
// the new core hosts loads them from the log, with each group's
// membership from its group metadata records, as a restart does.
func (cs *coreState) stopCoordinator(p int32) {
	h := cs.coords[p]
	if h == nil {
		return
	}
	delete(cs.coords, p)
	h.stopped = true
	h.coord.FailWaiting(errCoordinatorLoading)
}

func (cs *coreState) tickGroups() {
	if cs.closing {
		return
	}
	now := time.Now().UnixMilli()
	for _, h := range cs.coords {
		if !h.loading {
			h.coord.Tick(now)
		}
	}
	cs.core.After(groupTickInterval, cs.tickGroups)
}

// coordOp says how a group request behaves while the broker shuts down.
type coordOp uint8

const (
	// opAnswers completes at once from memory (Heartbeat, OffsetFetch,
	// DescribeGroups, LeaveGroup): served until the connections close.
	opAnswers coordOp = iota
	// opWaits may wait for the rest of its group (JoinGroup, SyncGroup):
	// refused from the start of the drain, which it could hold.
	opWaits
	// opWrites appends to the offsets log (OffsetCommit, DeleteGroups,
	// OffsetDelete): served until the logs start closing.
	opWrites
)

// coordCall is how one group request behaves during a shutdown: its kind,
// and whether it arrived after the drain began (wire.ClientInfo.Draining),
// which the drain does not wait for.
type coordCall struct {
	op   coordOp
	late bool
}

// onCoordinator runs fn on the core coordinating groupID. fail and the
// reply given to fn both run back on this core.
//
// During shutdown, requests that would not finish in time (see coordOp)
// and arrived after the drain began are parked: never answered, they end
// with the connection, which clients retry as a network error once the
// broker is back (one the drain waits for gets NOT_COORDINATOR instead, so
// as not to hold it). Requests that complete at once keep their normal
// answers. NOT_COORDINATOR is avoided on purpose: a client told NOT_COORDINATOR (or REBALANCE_IN_PROGRESS) looks
// the coordinator up again and rejoins right away, and a lookup cut by the
// closing connection or landing in the moment the broker is down is the one
// failure neither franz-go (the member drops its partitions and rejoins: a
// rebalance) nor KafkaJS ("Failed to find group coordinator", the consumer
// stops for good) retries.
func (b *backend) onCoordinator(groupID string, call coordCall, fn func(h *hostedCoord, reply func(func())), fail func(code int16)) {
	t, ok := b.node.meta.Load().topics[OffsetsTopic]
	if !ok {
		fail(errCoordinatorNotAvail)
		return
	}
	p := offsetsPartitionFor(groupID, t.Partitions())
	ref := wire.PartitionRef{Topic: OffsetsTopic, Partition: p}
	if !t.local(int(p)) {
		fail(kerr.NotCoordinator.Code) // FindCoordinator names its leader
		return
	}
	b.onOwner(t.Cores[p], ref, func(part *partition, reply func(func())) {
		var h *hostedCoord
		if part != nil {
			h = part.owner.coords[p]
		}
		switch {
		case call.op == opWaits && b.node.draining.Load() || call.op == opWrites && b.node.closingLogs.Load():
			if !call.late {
				reply(func() { fail(kerr.NotCoordinator.Code) })
			}
			// else parked (see above): the drain does not wait for it.
		case h == nil || h.loading:
			// The partition is placed here but its coordinator is not
			// serving yet: still opening, loading, or moving between
			// cores. Clients retry LOAD_IN_PROGRESS in place (franz-go
			// after a FindCoordinator that names this broker again),
			// whereas KafkaJS treats NOT_COORDINATOR as a rebalance and
			// rejoins its group.
			reply(func() { fail(errCoordinatorLoading) })
		default:
			fn(h, reply)
		}
	})
}

// fanOut runs work for each key on the key's coordinator and calls finish
// on this core with the results in key order. work gets the key's index, so
// a request naming the same group twice keeps both parts apart.
func fanOut[T any](b *backend, call coordCall, keys []string, work func(h *hostedCoord, i int, ret func(T)), failed func(key string, code int16) T, finish func([]T)) {
	out := make([]T, len(keys))
	remaining := len(keys)
	if remaining == 0 {
		finish(out)
		return
	}
	for i, k := range keys {
		i, k := i, k
		put := func(v T) {
			out[i] = v
			if remaining--; remaining == 0 {
				finish(out)
			}
		}
		b.onCoordinator(k, call, func(h *hostedCoord, reply func(func())) {
			work(h, i, func(v T) { reply(func() { put(v) }) })
		}, func(code int16) { put(failed(k, code)) })
	}
}

// onEveryCore runs work on every core and calls finish here with the
// results by core.
func onEveryCore[T any](b *backend, work func(cs *coreState) T, finish func([]T)) {
	cores := b.node.cores
	out := make([]T, len(cores))
	remaining := len(cores)
	origin := b.cs.core.ID()
	for i, cs := range cores {
		i, cs := i, cs
		b.cs.core.Send(cs.core.ID(), func(c *reactor.Core) {
			v := work(cs)
			c.Send(origin, func(*reactor.Core) {
				out[i] = v
				if remaining--; remaining == 0 {
					finish(out)
				}
			})
		})
	}
}

// DeleteTopic deletes a topic and, first, every group's committed offsets
// of it, as Kafka does: a topic re-created with the name starts with no
// commits, instead of consumers resuming at offsets from its previous life
// and skipping its first records. The tombstones are durable before the
// metadata changes, so a crash in between can lose only the offsets of a
// topic whose deletion was asked for, never bring them back; commits to the
// topic are refused from the purge until the topic is gone.
//
// The purge does not look at the metadata: the topic may exist only in the
// controller's pending snapshot (a delete right behind its create), and
// purging a name no topic has finds nothing to delete.
func (b *backend) DeleteTopic(name string, cb func(int16, string)) {
	if !b.node.offsetsGate.beginPurge() {
		// An offsets partition is moving between cores; its coordinator
		// must be in place to purge.
		b.cs.core.After(purgeWaitInterval, func() { b.DeleteTopic(name, cb) })
		return
	}
	b.purgeOffsets(name, func(err error) {
		if err != nil {
			b.node.log.Error("deleting the committed offsets of a topic failed; the topic is kept", "topic", name, "err", err)
			b.endPurge(name)
			cb(kerr.KafkaStorageError.Code, fmt.Sprintf("deleting the committed offsets of %q failed, so the topic is kept: %v", name, err))
			return
		}
		b.deleteTopic(name, func(code int16, msg string) {
			b.endPurge(name)
			cb(code, msg)
		})
	})
}

// purgeOffsets has every coordinator delete, durably, the committed
// offsets of topic and refuse commits to it until endPurge. done runs on
// this core.
func (b *backend) purgeOffsets(topic string, done func(error)) {
	origin := b.cs.core.ID()
	remaining := len(b.node.cores)
	var errs error
	for _, cs := range b.node.cores {
		cs := cs
		b.cs.core.Send(cs.core.ID(), func(c *reactor.Core) {
			var coreErr error
			pending := 1
			finish := func() {
				if pending--; pending > 0 {
					return
				}
				c.Send(origin, func(*reactor.Core) {
					errs = errors.Join(errs, coreErr)
					if remaining--; remaining == 0 {
						done(errs)
					}
				})
			}
			for _, h := range cs.coords {
				h := h
				pending++
				purge := func() {
					h.coord.PurgeTopic(topic, func(err error) {
						coreErr = errors.Join(coreErr, err)
						finish()
					})
				}
				if h.loading {
					// Only a loaded coordinator knows every offset to
					// delete; it takes no commits until then anyway.
					h.afterLoad = append(h.afterLoad, purge)
					continue
				}
				purge()
			}
			finish()
		})
	}
}

// endPurge lets every coordinator take commits to topic again (a commit
// is still refused while no topic of that name exists).
func (b *backend) endPurge(topic string) {
	b.node.offsetsGate.endPurge()
	for _, cs := range b.node.cores {
		cs := cs
		b.cs.core.Send(cs.core.ID(), func(*reactor.Core) {
			for _, h := range cs.coords {
				h.coord.EndPurge(topic)
			}
		})
	}
}

// purgeUnknownTopics deletes, once the log is loaded, the offsets of topics
// that no longer exist: left by a broker that deleted topics without
// deleting their offsets.
func (h *hostedCoord) purgeUnknownTopics() {
	meta := h.cs.node.meta.Load()
	h.coord.PurgeTopics(func(topic string) bool { return meta.topics[topic] == nil }, func(err error) {
		if err != nil {
			h.cs.node.log.Error("deleting the committed offsets of deleted topics", "partition", h.part.ref, "err", err)
		}
	})
}
