package cluster

import (
	"time"

	"github.com/strand-io/strand/cluster/group"
	"github.com/strand-io/strand/cluster/metadata"
	"github.com/strand-io/strand/wire"
	"github.com/twmb/franz-go/pkg/kerr"
)

var _ wire.GroupBackend = (*backend)(nil)

func nowMs() int64 { return time.Now().UnixMilli() }

// groupErr turns a code the group coordinator answered with (a kerr code,
// 0 for none) into the error wire.GroupBackend hands back.
func groupErr(code int16) error { return kerr.ErrorForCode(code) }

// FindCoordinator names the broker leading the offsets partition of key
// (a group id, or a transactional id, which would be coordinated the same
// way); COORDINATOR_NOT_AVAILABLE while the partition has no leader.
func (b *backend) FindCoordinator(key string) (wire.BrokerInfo, error) {
	none := wire.BrokerInfo{NodeID: -1, Port: -1}
	t, ok := b.node.meta.Load().topics[OffsetsTopic]
	if !ok {
		return none, kerr.CoordinatorNotAvailable
	}
	if t.Leaders == nil {
		return b.node.self(), nil
	}
	leader := t.Leaders[offsetsPartitionFor(key, t.Partitions())]
	for _, br := range b.Brokers() {
		if br.NodeID == leader {
			return br, nil
		}
	}
	return none, kerr.CoordinatorNotAvailable
}

// JoinGroup runs the join on the core coordinating r.Group.
func (b *backend) JoinGroup(client wire.ClientInfo, r wire.JoinGroupRequest, cb func(wire.JoinGroupResult)) {
	jr := group.JoinRequest{MemberID: r.MemberID, InstanceID: r.InstanceID, ClientID: client.ID, ClientHost: client.Host,
		SessionTimeoutMs: r.SessionTimeoutMs, RebalanceTimeoutMs: r.RebalanceTimeoutMs, ProtocolType: r.ProtocolType,
		RequireKnownMemberID: r.RequireKnownMemberID}
	for _, p := range r.Protocols {
		jr.Protocols = append(jr.Protocols, group.Protocol{Name: p.Name, Metadata: p.Metadata})
	}
	fill := func(res group.JoinResult) {
		out := wire.JoinGroupResult{Err: groupErr(res.ErrCode), Generation: res.Generation, ProtocolType: res.ProtocolType,
			Protocol: res.Protocol, LeaderID: res.LeaderID, MemberID: res.MemberID}
		for _, m := range res.Members {
			out.Members = append(out.Members, wire.JoinGroupMember{MemberID: m.MemberID, InstanceID: m.InstanceID, Metadata: m.Metadata})
		}
		cb(out)
	}
	b.onCoordinator(r.Group, coordCall{opWaits, client.Draining}, func(h *hostedCoord, reply func(func())) {
		h.coord.Join(r.Group, jr, nowMs(), func(res group.JoinResult) { reply(func() { fill(res) }) })
	}, func(code int16) { fill(group.JoinResult{ErrCode: code, Generation: -1, MemberID: r.MemberID}) })
}

// SyncGroup runs the sync on the core coordinating r.Group.
func (b *backend) SyncGroup(client wire.ClientInfo, r wire.SyncGroupRequest, cb func(wire.SyncGroupResult)) {
	assign := make(map[string][]byte, len(r.Assignments))
	for _, a := range r.Assignments {
		assign[a.MemberID] = a.Assignment
	}
	fill := func(res group.SyncResult) {
		cb(wire.SyncGroupResult{Err: groupErr(res.ErrCode), ProtocolType: res.ProtocolType, Protocol: res.Protocol, Assignment: res.Assignment})
	}
	b.onCoordinator(r.Group, coordCall{opWaits, client.Draining}, func(h *hostedCoord, reply func(func())) {
		h.coord.Sync(r.Group, r.MemberID, r.InstanceID, r.Generation, assign, nowMs(), func(res group.SyncResult) { reply(func() { fill(res) }) })
	}, func(code int16) { fill(group.SyncResult{ErrCode: code}) })
}

// Heartbeat runs on the core coordinating r.Group.
func (b *backend) Heartbeat(client wire.ClientInfo, r wire.HeartbeatRequest, cb func(error)) {
	b.onCoordinator(r.Group, coordCall{opAnswers, client.Draining}, func(h *hostedCoord, reply func(func())) {
		code := h.coord.Heartbeat(r.Group, r.MemberID, r.InstanceID, r.Generation, nowMs())
		reply(func() { cb(groupErr(code)) })
	}, func(code int16) { cb(groupErr(code)) })
}

// LeaveGroup runs on the core coordinating groupID.
func (b *backend) LeaveGroup(client wire.ClientInfo, groupID string, members []wire.LeaveMember, cb func(error, []error)) {
	ms := make([]group.LeaveMember, len(members))
	for i, m := range members {
		ms[i] = group.LeaveMember{MemberID: m.MemberID, InstanceID: m.InstanceID}
	}
	b.onCoordinator(groupID, coordCall{opAnswers, client.Draining}, func(h *hostedCoord, reply func(func())) {
		top, codes := h.coord.Leave(groupID, ms, nowMs())
		reply(func() {
			errs := make([]error, len(codes))
			for i, c := range codes {
				errs[i] = groupErr(c)
			}
			cb(groupErr(top), errs)
		})
	}, func(code int16) { cb(groupErr(code), nil) })
}

// OffsetCommit commits on the core coordinating r.Group. As in Kafka,
// only partitions that exist take commits; the others are answered
// UNKNOWN_TOPIC_OR_PARTITION.
func (b *backend) OffsetCommit(client wire.ClientInfo, r wire.OffsetCommitRequest, cb func([]error)) {
	offsets := make(map[group.TopicPartition]group.CommittedOffset, len(r.Offsets))
	for _, o := range r.Offsets {
		offsets[group.TopicPartition{Topic: o.Topic, Partition: o.Partition}] = group.CommittedOffset{Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata}
	}
	// refused holds the partitions answered UNKNOWN_TOPIC_OR_PARTITION;
	// the others get code.
	var refused map[group.TopicPartition]bool
	fillEach := func(code int16) {
		errs := make([]error, len(r.Offsets))
		for i, o := range r.Offsets {
			errs[i] = groupErr(code)
			if refused[group.TopicPartition{Topic: o.Topic, Partition: o.Partition}] {
				errs[i] = kerr.UnknownTopicOrPartition
			}
		}
		cb(errs)
	}
	b.onCoordinator(r.Group, coordCall{opWrites, client.Draining}, func(h *hostedCoord, reply func(func())) {
		// Checked here, on the coordinator's core, so that a commit cannot
		// slip in behind a topic deletion's purge (see purgeOffsets).
		meta := b.node.meta.Load()
		for tp := range offsets {
			t := meta.topics[tp.Topic]
			if t == nil || tp.Partition < 0 || tp.Partition >= t.Partitions() || h.coord.Purging(tp.Topic) {
				if refused == nil {
					refused = map[group.TopicPartition]bool{}
				}
				refused[tp] = true
				delete(offsets, tp)
			}
		}
		if len(offsets) == 0 {
			reply(func() { fillEach(0) })
			return
		}
		h.coord.Commit(r.Group, r.MemberID, r.InstanceID, r.Generation, offsets, nowMs(), func(code int16) { reply(func() { fillEach(code) }) })
	}, fillEach)
}

// OffsetFetch reads each group's committed offsets on its coordinator's
// core.
func (b *backend) OffsetFetch(client wire.ClientInfo, groups []wire.OffsetFetchGroup, cb func([]wire.OffsetFetchResult)) {
	keys := make([]string, len(groups))
	for i, g := range groups {
		keys[i] = g.Group
	}
	fanOut(b, coordCall{opAnswers, client.Draining}, keys, func(h *hostedCoord, i int, ret func(wire.OffsetFetchResult)) {
		var tps []group.TopicPartition // nil: all
		if groups[i].Partitions != nil {
			tps = make([]group.TopicPartition, len(groups[i].Partitions))
			for j, p := range groups[i].Partitions {
				tps[j] = group.TopicPartition{Topic: p.Topic, Partition: p.Partition}
			}
		}
		got := h.coord.Fetch(groups[i].Group, tps)
		res := wire.OffsetFetchResult{Offsets: make([]wire.CommitOffset, 0, len(got))}
		for tp, o := range got {
			res.Offsets = append(res.Offsets, wire.CommitOffset{PartitionRef: wire.PartitionRef{Topic: tp.Topic, Partition: tp.Partition},
				Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata})
		}
		ret(res)
	}, func(_ string, code int16) wire.OffsetFetchResult { return wire.OffsetFetchResult{Err: groupErr(code)} }, cb)
}

// DescribeGroups describes each group on its coordinator's core.
func (b *backend) DescribeGroups(client wire.ClientInfo, groups []string, cb func([]wire.GroupDescription)) {
	fanOut(b, coordCall{opAnswers, client.Draining}, groups, func(h *hostedCoord, i int, ret func(wire.GroupDescription)) {
		g := h.coord.Group(groups[i])
		if g == nil {
			ret(wire.GroupDescription{Group: groups[i], State: "Dead"})
			return
		}
		d := g.Describe()
		out := wire.GroupDescription{Group: d.ID, State: d.State, ProtocolType: d.ProtocolType, Protocol: d.Protocol}
		for _, m := range d.Members {
			out.Members = append(out.Members, wire.GroupMemberDescription{MemberID: m.MemberID, InstanceID: m.InstanceID,
				ClientID: m.ClientID, ClientHost: m.ClientHost, Metadata: m.Metadata, Assignment: m.Assignment})
		}
		ret(out)
	}, func(key string, code int16) wire.GroupDescription {
		return wire.GroupDescription{Group: key, Err: groupErr(code)}
	}, cb)
}

// ListGroups collects the groups of every core's coordinators.
func (b *backend) ListGroups(_ wire.ClientInfo, cb func([]wire.GroupListing)) {
	onEveryCore(b, func(cs *coreState) []group.Listing {
		var out []group.Listing
		for _, h := range cs.coords {
			out = append(out, h.coord.List()...)
		}
		return out
	}, func(res [][]group.Listing) {
		var out []wire.GroupListing
		for _, ls := range res {
			for _, l := range ls {
				out = append(out, wire.GroupListing{Group: l.ID, ProtocolType: l.ProtocolType, State: l.State})
			}
		}
		cb(out)
	})
}

// DeleteGroups deletes each group on its coordinator's core.
func (b *backend) DeleteGroups(client wire.ClientInfo, groups []string, cb func([]error)) {
	fanOut(b, coordCall{opWrites, client.Draining}, groups, func(h *hostedCoord, i int, ret func(error)) {
		h.coord.DeleteGroup(groups[i], func(code int16) { ret(groupErr(code)) })
	}, func(_ string, code int16) error { return groupErr(code) }, cb)
}

// OffsetDelete deletes committed offsets on the core coordinating groupID.
func (b *backend) OffsetDelete(client wire.ClientInfo, groupID string, partitions []wire.PartitionRef, cb func(error)) {
	tps := make([]group.TopicPartition, len(partitions))
	for i, p := range partitions {
		tps[i] = group.TopicPartition{Topic: p.Topic, Partition: p.Partition}
	}
	b.onCoordinator(groupID, coordCall{opWrites, client.Draining}, func(h *hostedCoord, reply func(func())) {
		h.coord.DeleteOffsets(groupID, tps, func(code int16) { reply(func() { cb(groupErr(code)) }) })
	}, func(code int16) { cb(groupErr(code)) })
}

// InitProducerID hands out producer ids. Ids come from blocks reserved in
// the metadata (persisted before use), so no id is ever handed out twice,
// even across restarts. Transactions are not supported.
func (b *backend) InitProducerID(r wire.InitProducerIDRequest, cb func(wire.InitProducerIDResult)) {
	if r.TransactionalID != nil {
		cb(wire.InitProducerIDResult{Err: kerr.InvalidRequest, ProducerID: -1, ProducerEpoch: -1})
		return
	}
	if r.ProducerID >= 0 && r.ProducerEpoch >= 0 {
		// KIP-360: an idempotent producer bumps its epoch to reset
		// sequences; one whose epoch would wrap starts over with a new id.
		if epoch := r.ProducerEpoch + 1; epoch >= 0 {
			cb(wire.InitProducerIDResult{ProducerID: r.ProducerID, ProducerEpoch: epoch})
			return
		}
	}
	b.onController(func(ctl *coreState, reply func(func())) {
		b.node.nextProducerID(func(id int64, err error) {
			reply(func() {
				if err != nil {
					cb(wire.InitProducerIDResult{Err: kerr.CoordinatorNotAvailable, ProducerID: -1, ProducerEpoch: -1})
					return
				}
				cb(wire.InitProducerIDResult{ProducerID: id})
			})
		})
	})
}

const producerIDBlock = 1000

// nextProducerID hands cb (on the controller core) the next producer id
// of this broker's block, proposing a new block off the core when it is
// used up. Requests racing a proposal each get a block of their own.
func (n *Node) nextProducerID(cb func(int64, error)) {
	if n.pidNext < n.pidLimit {
		id := n.pidNext
		n.pidNext++
		cb(id, nil)
		return
	}
	n.proposeAsync(&metadata.AllocateProducerIDs{Broker: n.brokerID(), Count: producerIDBlock}, func(res metadata.Result, err error) {
		if err == nil {
			err = res.Err()
		}
		if err != nil {
			n.log.Warn("allocating producer ids", "err", err)
			cb(-1, err)
			return
		}
		n.pidNext, n.pidLimit = res.Value+1, res.Value+producerIDBlock
		cb(res.Value, nil)
	})
}
