package cluster

import (
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/strand-io/strand/reactor"
	"github.com/strand-io/strand/shard"
	"github.com/strand-io/strand/wire"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Kafka error codes the backend produces itself, by their kerr names (the
// mapping of domain errors is wire.ErrorCode).
var (
	errUnknownTopic       = kerr.UnknownTopicOrPartition.Code
	errLeaderNotAvailable = kerr.LeaderNotAvailable.Code
	errNotLeader          = kerr.NotLeaderForPartition.Code
	errInvalidTopic       = kerr.InvalidTopicException.Code
	errTopicExists        = kerr.TopicAlreadyExists.Code
	errInvalidPartitions  = kerr.InvalidPartitions.Code
	errInvalidReplication = kerr.InvalidReplicationFactor.Code
	errInvalidConfig      = kerr.InvalidConfig.Code
	errInvalidRequest     = kerr.InvalidRequest.Code
)

// backend is the wire.Backend of one core. Every method runs on that core.
type backend struct {
	node *Node
	cs   *coreState
}

var _ wire.Backend = (*backend)(nil)

// Brokers lists the live brokers of the applied metadata, and this broker
// alone before it has registered (or while it is fenced and the rest are
// unknown to it), so a client always has somewhere to go.
func (b *backend) Brokers() []wire.BrokerInfo {
	if bs := b.node.meta.Load().brokers; len(bs) > 0 {
		return bs
	}
	return []wire.BrokerInfo{b.node.self()}
}

// self is this broker's advertised address.
func (n *Node) self() wire.BrokerInfo {
	host, port := n.cfg.AdvertiseHost, n.cfg.AdvertisePort
	if host == "" || port == 0 {
		h, p, _ := net.SplitHostPort(n.Addr())
		if host == "" {
			host = h
		}
		if port == 0 {
			v, _ := strconv.Atoi(p)
			port = int32(v)
		}
	}
	bi := wire.BrokerInfo{NodeID: n.cfg.NodeID, Host: host, Port: port}
	if n.cfg.Rack != "" {
		bi.Rack = &n.cfg.Rack
	}
	return bi
}

// ControllerID is the broker leading the metadata Raft group, which
// places partitions and tracks liveness (-1 while there is none).
func (b *backend) ControllerID() int32 {
	if b.node.raft == nil {
		return b.node.cfg.NodeID
	}
	return b.node.controllerID()
}

func (b *backend) AutoCreateTopics() bool { return b.node.cfg.AutoCreateTopics }

func (b *backend) Topics() []wire.TopicInfo {
	s := b.node.meta.Load()
	if b.cs.topicsCache != nil && b.cs.topicsSnap == s {
		return b.cs.topicsCache
	}
	out := make([]wire.TopicInfo, 0, len(s.names))
	for _, n := range s.names {
		out = append(out, b.topicInfo(s.topics[n]))
	}
	b.cs.topicsSnap, b.cs.topicsCache = s, out
	return out
}

func (b *backend) Topic(name string) (wire.TopicInfo, bool) {
	t, ok := b.node.meta.Load().topics[name]
	if !ok {
		return wire.TopicInfo{}, false
	}
	return b.topicInfo(t), true
}

func (b *backend) PartitionCount(name string) (int32, bool) {
	t, ok := b.node.meta.Load().topics[name]
	if !ok {
		return 0, false
	}
	return t.Partitions(), true
}

func (b *backend) topicInfo(t *Topic) wire.TopicInfo {
	id := b.node.cfg.NodeID
	ti := wire.TopicInfo{Name: t.Name, ID: t.ID, Internal: t.Internal, Partitions: make([]wire.PartitionInfo, len(t.Cores))}
	for p := range t.Cores {
		ref := wire.PartitionRef{Topic: t.Name, Partition: int32(p)}
		if t.Leaders == nil {
			ti.Partitions[p] = wire.PartitionInfo{ID: int32(p), Leader: id, LeaderEpoch: b.leaderEpoch(ref), Replicas: []int32{id}, ISR: []int32{id}}
			continue
		}
		// Every replica, leader or not, and the in-sync set as the
		// metadata has them: a client learns the followers too.
		ti.Partitions[p] = wire.PartitionInfo{ID: int32(p), Leader: t.Leaders[p], LeaderEpoch: b.leaderEpoch(ref), Replicas: t.Replicas[p], ISR: t.ISR[p]}
	}
	return ti
}

// leaderEpoch is p's leader epoch as Metadata, ListOffsets and the
// follower fetch's fencing see it: the metadata's. A partition with one
// replica reports 0 until its leadership first changes (its batches carry
// epoch 0 until then: the log stamps the epoch it was last given, and an
// unreplicated partition is given none).
func (b *backend) leaderEpoch(p wire.PartitionRef) int32 {
	t, ok := b.node.meta.Load().topics[p.Topic]
	if !ok || t.LeaderEpochs == nil || p.Partition < 0 || int(p.Partition) >= len(t.LeaderEpochs) {
		return 0
	}
	if len(t.Replicas[p.Partition]) <= 1 {
		return 0
	}
	return t.LeaderEpochs[p.Partition]
}

// owner finds the core that owns p, or the error code for why none does:
// UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER when another broker
// leads it, LEADER_NOT_AVAILABLE when no broker does. Every partition
// request enters through it, on the connection's core, which is what
// AssertOwned checks in invariants builds.
func (b *backend) owner(p wire.PartitionRef) (reactor.CoreID, int16) {
	b.cs.core.AssertOwned()
	t, ok := b.node.meta.Load().topics[p.Topic]
	if !ok || p.Partition < 0 || p.Partition >= t.Partitions() {
		return 0, errUnknownTopic
	}
	if t.Leaders != nil && t.Leaders[p.Partition] != b.node.cfg.NodeID {
		if t.Leaders[p.Partition] < 0 {
			return 0, errLeaderNotAvailable
		}
		return 0, errNotLeader
	}
	if !t.local(int(p.Partition)) {
		return 0, errNotLeader
	}
	return t.Cores[p.Partition], 0
}

// onOwner runs fn on the core that owns p, passing it the partition (nil
// if that core has not opened it yet). The reply function fn receives runs
// its argument back on this core.
func (b *backend) onOwner(owner reactor.CoreID, p wire.PartitionRef, fn func(part *partition, reply func(func()))) {
	origin := b.cs.core.ID()
	if owner == origin {
		fn(b.cs.parts[p], func(r func()) { r() })
		return
	}
	b.cs.core.Send(owner, func(oc *reactor.Core) {
		ocs := b.node.cores[owner]
		fn(ocs.parts[p], func(r func()) { oc.Send(origin, func(*reactor.Core) { r() }) })
	})
}

func (b *backend) Append(p wire.PartitionRef, batch []byte, acks int16, cb func(wire.AppendResult)) {
	owner, code := b.owner(p)
	if code != 0 {
		cb(wire.AppendResult{BaseOffset: -1, LogAppendTimeMs: -1, LogStartOffset: -1, ErrCode: code})
		return
	}
	if owner != b.cs.core.ID() {
		// The batch is lent by the wire layer for this call only; the log
		// copies it into its staging buffer at once, so only the trip to
		// another core needs a copy of its own.
		batch = append([]byte(nil), batch...)
	}
	b.onOwner(owner, p, func(part *partition, reply func(func())) {
		fail := func(code int16, msg string) {
			reply(func() {
				cb(wire.AppendResult{BaseOffset: -1, LogAppendTimeMs: -1, LogStartOffset: -1, ErrCode: code, ErrMsg: msg})
			})
		}
		if part == nil {
			fail(errLeaderNotAvailable, "")
			return
		}
		l := part.log
		repl := part.repl
		epoch := int32(-1)
		switch {
		case repl != nil:
			if code, msg := repl.checkProduce(acks); code != 0 {
				fail(code, msg)
				return
			}
			epoch = repl.st.LeaderEpoch
		case l.ExternalHW():
			// Replicated, but its role is not known here yet.
			fail(errLeaderNotAvailable, "")
			return
		}
		err := l.AppendValidated(batch, time.Now().UnixMilli(), func(r shard.AppendResult, err error) {
			res := wire.AppendResult{BaseOffset: int64(r.Base), LogAppendTimeMs: r.LogAppendTime, LogStartOffset: int64(l.LogStartOffset()), ErrCode: wire.ErrorCode(err)}
			if err != nil {
				res.BaseOffset, res.ErrMsg = -1, err.Error()
				reply(func() { cb(res) })
				return
			}
			part.probe.appended(r, len(batch))
			if repl != nil && acks != -1 && !part.owner.leaseValid(time.Now()) {
				// The lease ran out while the batch was being written
				// (the broker was paused, say): it may have been deposed,
				// and a new leader need not have the batch.
				res.BaseOffset, res.ErrCode = -1, errNotLeader
				reply(func() { cb(res) })
				return
			}
			if repl == nil || acks != -1 {
				reply(func() { cb(res) })
				return
			}
			// acks=all: once every in-sync replica has it fsynced, which
			// the high watermark passing it says. The replica may have
			// stepped down meanwhile, even come back under a later epoch
			// whose log need not hold this batch at these offsets.
			if part.repl != repl || !repl.leading || repl.st.LeaderEpoch != epoch {
				res.BaseOffset, res.ErrCode = -1, errNotLeader
				reply(func() { cb(res) })
				return
			}
			repl.waitCommit(int64(r.Last), func(code int16) {
				if code != 0 {
					res.ErrCode = code
					if code != kerr.NotEnoughReplicasAfterAppend.Code {
						res.BaseOffset = -1
					}
				}
				reply(func() { cb(res) })
			})
		})
		if err != nil {
			fail(wire.ErrorCode(err), err.Error())
			return
		}
		if repl != nil {
			repl.appended()
		}
	})
}

func (b *backend) Fetch(p wire.PartitionRef, offset int64, maxBytes int32, cb func(wire.FetchResult)) {
	owner, code := b.owner(p)
	if code != 0 {
		cb(wire.FetchResult{HighWatermark: -1, LastStable: -1, LogStartOffset: -1, ErrCode: code})
		return
	}
	b.onOwner(owner, p, func(part *partition, reply func(func())) {
		if part == nil {
			reply(func() {
				cb(wire.FetchResult{HighWatermark: -1, LastStable: -1, LogStartOffset: -1, ErrCode: errLeaderNotAvailable})
			})
			return
		}
		part.log.Read(shard.Offset(offset), int(maxBytes), func(r shard.ReadResult, err error) {
			res := wire.FetchResult{Records: r.Data, HighWatermark: int64(r.HighWatermark), LastStable: int64(r.HighWatermark),
				LogStartOffset: int64(r.LogStartOffset), ErrCode: wire.ErrorCode(err)}
			part.probe.read(r.Data)
			reply(func() { cb(res) })
		})
	})
}

func (b *backend) WatchAppend(p wire.PartitionRef, offset int64, cb func()) (cancel func()) {
	return b.watchOn(p, offset, cb, func(part *partition) *[]*watch {
		if int64(part.log.HighWatermark()) > offset {
			return nil
		}
		return &part.watchers
	})
}

// watchOn registers a long-poll watch on p's owning core: list returns
// the partition's list to wait in, or nil when the watch should fire at
// once. A partition with an error (another leader, none) gets no watch;
// the fetch's max-wait ends it.
func (b *backend) watchOn(p wire.PartitionRef, offset int64, cb func(), list func(part *partition) *[]*watch) (cancel func()) {
	w := &watch{offset: offset, origin: b.cs.core.ID(), cb: cb}
	owner, code := b.owner(p)
	if code != 0 {
		return func() { w.cancelled = true }
	}
	var in *[]*watch // owner core only
	b.onOwner(owner, p, func(part *partition, _ func(func())) {
		if part == nil {
			return
		}
		if in = list(part); in == nil {
			part.fire(w)
			return
		}
		*in = append(*in, w)
	})
	return func() {
		if w.cancelled {
			return
		}
		w.cancelled = true
		b.onOwner(owner, p, func(*partition, func(func())) {
			if in != nil {
				*in = slices.DeleteFunc(*in, func(x *watch) bool { return x == w })
			}
		})
	}
}

func (b *backend) ListOffset(p wire.PartitionRef, ts int64, cb func(wire.ListOffsetResult)) {
	owner, code := b.owner(p)
	if code != 0 {
		cb(wire.ListOffsetResult{Offset: -1, TimestampMs: -1, ErrCode: code})
		return
	}
	epoch := b.leaderEpoch(p)
	b.onOwner(owner, p, func(part *partition, reply func(func())) {
		send := func(r wire.ListOffsetResult) { r.LeaderEpoch = epoch; reply(func() { cb(r) }) }
		switch {
		case part == nil:
			send(wire.ListOffsetResult{Offset: -1, TimestampMs: -1, ErrCode: errLeaderNotAvailable})
		case ts == -1:
			send(wire.ListOffsetResult{Offset: int64(part.log.HighWatermark()), TimestampMs: -1})
		case ts == -2:
			send(wire.ListOffsetResult{Offset: int64(part.log.LogStartOffset()), TimestampMs: -1})
		case ts < 0:
			send(wire.ListOffsetResult{Offset: -1, TimestampMs: -1, ErrCode: errInvalidRequest})
		default:
			part.log.OffsetForTime(ts, func(off shard.Offset, at int64, err error) {
				send(wire.ListOffsetResult{Offset: int64(off), TimestampMs: at, ErrCode: wire.ErrorCode(err)})
			})
		}
	})
}

func (b *backend) After(d time.Duration, fn func()) (cancel func()) {
	c := b.cs.core.After(d, fn)
	return func() { c() }
}
