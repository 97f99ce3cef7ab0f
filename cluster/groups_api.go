package cluster

import (
	"time"

	"github.com/strand-io/strand/cluster/group"
	"github.com/strand-io/strand/wire"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var _ wire.GroupBackend = (*backend)(nil)

func nowMs() int64 { return time.Now().UnixMilli() }

// GroupRequest translates a consumer-group request into events for the
// coordinator of its group (cluster/group) and builds the response.
func (b *backend) GroupRequest(client wire.ClientInfo, req kmsg.Request, cb func(kmsg.Response)) {
	late := client.Draining
	switch r := req.(type) {
	case *kmsg.FindCoordinatorRequest:
		cb(b.findCoordinator(r))
	case *kmsg.JoinGroupRequest:
		b.joinGroup(client, r, cb)
	case *kmsg.SyncGroupRequest:
		b.syncGroup(r, late, cb)
	case *kmsg.HeartbeatRequest:
		resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
		b.onCoordinator(r.Group, coordCall{opAnswers, late}, func(h *hostedCoord, reply func(func())) {
			code := h.coord.Heartbeat(r.Group, r.MemberID, r.InstanceID, r.Generation, nowMs())
			reply(func() { resp.ErrorCode = code; cb(resp) })
		}, func(code int16) { resp.ErrorCode = code; cb(resp) })
	case *kmsg.LeaveGroupRequest:
		b.leaveGroup(r, late, cb)
	case *kmsg.OffsetCommitRequest:
		b.offsetCommit(r, late, cb)
	case *kmsg.OffsetFetchRequest:
		b.offsetFetch(r, late, cb)
	case *kmsg.DescribeGroupsRequest:
		b.describeGroups(r, late, cb)
	case *kmsg.ListGroupsRequest:
		b.listGroups(r, cb)
	case *kmsg.DeleteGroupsRequest:
		b.deleteGroups(r, late, cb)
	case *kmsg.OffsetDeleteRequest:
		b.offsetDelete(r, late, cb)
	default:
		panic("cluster: GroupRequest given a non-group request")
	}
}

func (b *backend) findCoordinator(r *kmsg.FindCoordinatorRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
	self := b.Brokers()[0]
	if r.Version < 4 {
		resp.NodeID, resp.Host, resp.Port = self.NodeID, self.Host, self.Port
		return resp
	}
	for _, k := range r.CoordinatorKeys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key, c.NodeID, c.Host, c.Port = k, self.NodeID, self.Host, self.Port
		resp.Coordinators = append(resp.Coordinators, c)
	}
	return resp
}

func (b *backend) joinGroup(client wire.ClientInfo, r *kmsg.JoinGroupRequest, cb func(kmsg.Response)) {
	resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
	jr := group.JoinRequest{MemberID: r.MemberID, InstanceID: r.InstanceID, ClientID: client.ID, ClientHost: client.Host,
		SessionTimeoutMs: r.SessionTimeoutMillis, RebalanceTimeoutMs: r.RebalanceTimeoutMillis, ProtocolType: r.ProtocolType,
		RequireKnownMemberID: r.Version >= 4}
	if r.Version == 0 {
		jr.RebalanceTimeoutMs = -1
	}
	for _, p := range r.Protocols {
		jr.Protocols = append(jr.Protocols, group.Protocol{Name: p.Name, Metadata: p.Metadata})
	}
	fill := func(res group.JoinResult) {
		resp.ErrorCode, resp.Generation, resp.LeaderID, resp.MemberID = res.ErrCode, res.Generation, res.LeaderID, res.MemberID
		if res.ErrCode == 0 {
			pt, pn := res.ProtocolType, res.Protocol
			resp.ProtocolType, resp.Protocol = &pt, &pn
		} else if r.Version < 7 {
			empty := ""
			resp.Protocol = &empty
		}
		for _, m := range res.Members {
			jm := kmsg.NewJoinGroupResponseMember()
			jm.MemberID, jm.InstanceID, jm.ProtocolMetadata = m.MemberID, m.InstanceID, m.Metadata
			resp.Members = append(resp.Members, jm)
		}
		cb(resp)
	}
	b.onCoordinator(r.Group, coordCall{opWaits, client.Draining}, func(h *hostedCoord, reply func(func())) {
		h.coord.Join(r.Group, jr, nowMs(), func(res group.JoinResult) { reply(func() { fill(res) }) })
	}, func(code int16) { fill(group.JoinResult{ErrCode: code, Generation: -1, MemberID: r.MemberID}) })
}

func (b *backend) syncGroup(r *kmsg.SyncGroupRequest, late bool, cb func(kmsg.Response)) {
	resp := r.ResponseKind().(*kmsg.SyncGroupResponse)
	assign := make(map[string][]byte, len(r.GroupAssignment))
	for _, a := range r.GroupAssignment {
		assign[a.MemberID] = a.MemberAssignment
	}
	fill := func(res group.SyncResult) {
		resp.ErrorCode, resp.MemberAssignment = res.ErrCode, res.Assignment
		if res.ErrCode == 0 {
			pt, pn := res.ProtocolType, res.Protocol
			resp.ProtocolType, resp.Protocol = &pt, &pn
		}
		cb(resp)
	}
	b.onCoordinator(r.Group, coordCall{opWaits, late}, func(h *hostedCoord, reply func(func())) {
		h.coord.Sync(r.Group, r.MemberID, r.InstanceID, r.Generation, assign, nowMs(), func(res group.SyncResult) { reply(func() { fill(res) }) })
	}, func(code int16) { fill(group.SyncResult{ErrCode: code}) })
}

func (b *backend) leaveGroup(r *kmsg.LeaveGroupRequest, late bool, cb func(kmsg.Response)) {
	resp := r.ResponseKind().(*kmsg.LeaveGroupResponse)
	var ms []group.LeaveMember
	if r.Version < 3 {
		ms = []group.LeaveMember{{MemberID: r.MemberID}}
	} else {
		for _, m := range r.Members {
			ms = append(ms, group.LeaveMember{MemberID: m.MemberID, InstanceID: m.InstanceID})
		}
	}
	fill := func(top int16, codes []int16) {
		resp.ErrorCode = top
		if r.Version < 3 {
			if top == 0 && len(codes) == 1 {
				resp.ErrorCode = codes[0]
			}
		} else {
			for i, m := range r.Members {
				rm := kmsg.NewLeaveGroupResponseMember()
				rm.MemberID, rm.InstanceID = m.MemberID, m.InstanceID
				if i < len(codes) {
					rm.ErrorCode = codes[i]
				}
				resp.Members = append(resp.Members, rm)
			}
		}
		cb(resp)
	}
	b.onCoordinator(r.Group, coordCall{opAnswers, late}, func(h *hostedCoord, reply func(func())) {
		top, codes := h.coord.Leave(r.Group, ms, nowMs())
		reply(func() { fill(top, codes) })
	}, func(code int16) { fill(code, nil) })
}

func (b *backend) offsetCommit(r *kmsg.OffsetCommitRequest, late bool, cb func(kmsg.Response)) {
	resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
	offsets := map[group.TopicPartition]group.CommittedOffset{}
	for _, t := range r.Topics {
		for _, p := range t.Partitions {
			epoch := p.LeaderEpoch
			if r.Version < 6 {
				epoch = -1
			}
			offsets[group.TopicPartition{Topic: t.Topic, Partition: p.Partition}] = group.CommittedOffset{Offset: p.Offset, LeaderEpoch: epoch, Metadata: p.Metadata}
		}
	}
	// refused holds the partitions answered UNKNOWN_TOPIC_OR_PARTITION;
	// the others get code.
	var refused map[group.TopicPartition]bool
	fillEach := func(code int16) {
		for _, t := range r.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, code
				if refused[group.TopicPartition{Topic: t.Topic, Partition: p.Partition}] {
					rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		cb(resp)
	}
	generation, member := r.Generation, r.MemberID
	if r.Version == 0 {
		generation, member = -1, ""
	}
	b.onCoordinator(r.Group, coordCall{opWrites, late}, func(h *hostedCoord, reply func(func())) {
		// As in Kafka, only partitions that exist take commits; checked
		// here, on the coordinator's core, so that a commit cannot slip
		// in behind a topic deletion's purge (see purgeOffsets).
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
		h.coord.Commit(r.Group, member, r.InstanceID, generation, offsets, nowMs(), func(code int16) { reply(func() { fillEach(code) }) })
	}, fillEach)
}

// offsetFetchGroup is one group's part of an OffsetFetch.
type offsetFetchGroup struct {
	code    int16
	offsets map[group.TopicPartition]group.CommittedOffset
}

func (b *backend) offsetFetch(r *kmsg.OffsetFetchRequest, late bool, cb func(kmsg.Response)) {
	resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
	type want struct {
		group string
		tps   []group.TopicPartition // nil: all
	}
	// v0-v7 ask for one group, v8+ for several: both become wants. A nil
	// topic list asks for every committed offset of the group.
	newWant := func(name string, all bool) want {
		if all {
			return want{group: name}
		}
		return want{group: name, tps: []group.TopicPartition{}}
	}
	addTopic := func(w *want, topic string, parts []int32) {
		for _, p := range parts {
			w.tps = append(w.tps, group.TopicPartition{Topic: topic, Partition: p})
		}
	}
	var wants []want
	if r.Version < 8 {
		w := newWant(r.Group, r.Topics == nil)
		for _, t := range r.Topics {
			addTopic(&w, t.Topic, t.Partitions)
		}
		wants = append(wants, w)
	} else {
		for _, g := range r.Groups {
			w := newWant(g.Group, g.Topics == nil)
			for _, t := range g.Topics {
				addTopic(&w, t.Topic, t.Partitions)
			}
			wants = append(wants, w)
		}
	}
	keys := make([]string, len(wants))
	for i, w := range wants {
		keys[i] = w.group
	}
	fanOut(b, coordCall{opAnswers, late}, keys, func(h *hostedCoord, i int, ret func(offsetFetchGroup)) {
		ret(offsetFetchGroup{offsets: h.coord.Fetch(wants[i].group, wants[i].tps)})
	}, func(_ string, code int16) offsetFetchGroup { return offsetFetchGroup{code: code} }, func(res []offsetFetchGroup) {
		for i, w := range wants {
			topics := fetchTopics(w.tps, res[i].offsets)
			if r.Version < 8 {
				resp.ErrorCode = res[i].code
				for _, t := range topics {
					rt := kmsg.NewOffsetFetchResponseTopic()
					rt.Topic = t.name
					for _, p := range t.parts {
						rp := kmsg.NewOffsetFetchResponseTopicPartition()
						rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata, rp.ErrorCode = p.p, p.o.Offset, p.o.LeaderEpoch, p.o.Metadata, res[i].code
						rt.Partitions = append(rt.Partitions, rp)
					}
					resp.Topics = append(resp.Topics, rt)
				}
				continue
			}
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group, rg.ErrorCode = w.group, res[i].code
			for _, t := range topics {
				rt := kmsg.NewOffsetFetchResponseGroupTopic()
				rt.Topic = t.name
				for _, p := range t.parts {
					rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = p.p, p.o.Offset, p.o.LeaderEpoch, p.o.Metadata
					rt.Partitions = append(rt.Partitions, rp)
				}
				rg.Topics = append(rg.Topics, rt)
			}
			resp.Groups = append(resp.Groups, rg)
		}
		cb(resp)
	})
}

type fetchTopic struct {
	name  string
	parts []fetchPart
}

type fetchPart struct {
	p int32
	o group.CommittedOffset
}

// fetchTopics lays out an OffsetFetch answer: the asked partitions (offset
// -1 where nothing is committed), or every committed one when tps is nil.
func fetchTopics(tps []group.TopicPartition, got map[group.TopicPartition]group.CommittedOffset) []fetchTopic {
	if tps == nil {
		for tp := range got {
			tps = append(tps, tp)
		}
		sortTPs(tps)
	}
	var out []fetchTopic
	for _, tp := range tps {
		o, ok := got[tp]
		if !ok {
			o = group.CommittedOffset{Offset: -1, LeaderEpoch: -1}
		}
		if n := len(out); n == 0 || out[n-1].name != tp.Topic {
			out = append(out, fetchTopic{name: tp.Topic})
		}
		out[len(out)-1].parts = append(out[len(out)-1].parts, fetchPart{tp.Partition, o})
	}
	return out
}

func (b *backend) describeGroups(r *kmsg.DescribeGroupsRequest, late bool, cb func(kmsg.Response)) {
	resp := r.ResponseKind().(*kmsg.DescribeGroupsResponse)
	type result struct {
		code int16
		d    group.Description
	}
	fanOut(b, coordCall{opAnswers, late}, r.Groups, func(h *hostedCoord, i int, ret func(result)) {
		g := h.coord.Group(r.Groups[i])
		if g == nil {
			ret(result{d: group.Description{ID: r.Groups[i], State: "Dead"}})
			return
		}
		ret(result{d: g.Describe()})
	}, func(key string, code int16) result { return result{code: code, d: group.Description{ID: key}} }, func(res []result) {
		for i, x := range res {
			rg := kmsg.NewDescribeGroupsResponseGroup()
			rg.Group, rg.ErrorCode = r.Groups[i], x.code
			rg.State, rg.ProtocolType, rg.Protocol = x.d.State, x.d.ProtocolType, x.d.Protocol
			for _, m := range x.d.Members {
				rm := kmsg.NewDescribeGroupsResponseGroupMember()
				rm.MemberID, rm.InstanceID, rm.ClientID, rm.ClientHost = m.MemberID, m.InstanceID, m.ClientID, m.ClientHost
				rm.ProtocolMetadata, rm.MemberAssignment = m.Metadata, m.Assignment
				rg.Members = append(rg.Members, rm)
			}
			resp.Groups = append(resp.Groups, rg)
		}
		cb(resp)
	})
}

func (b *backend) listGroups(r *kmsg.ListGroupsRequest, cb func(kmsg.Response)) {
	resp := r.ResponseKind().(*kmsg.ListGroupsResponse)
	states := map[string]bool{}
	for _, s := range r.StatesFilter {
		states[s] = true
	}
	onEveryCore(b, func(cs *coreState) []group.Listing {
		var out []group.Listing
		for _, h := range cs.coords {
			out = append(out, h.coord.List()...)
		}
		return out
	}, func(res [][]group.Listing) {
		for _, ls := range res {
			for _, l := range ls {
				if len(states) > 0 && !states[l.State] {
					continue
				}
				rg := kmsg.NewListGroupsResponseGroup()
				rg.Group, rg.ProtocolType, rg.GroupState, rg.GroupType = l.ID, l.ProtocolType, l.State, "classic"
				resp.Groups = append(resp.Groups, rg)
			}
		}
		cb(resp)
	})
}

func (b *backend) deleteGroups(r *kmsg.DeleteGroupsRequest, late bool, cb func(kmsg.Response)) {
	resp := r.ResponseKind().(*kmsg.DeleteGroupsResponse)
	fanOut(b, coordCall{opWrites, late}, r.Groups, func(h *hostedCoord, i int, ret func(int16)) {
		h.coord.DeleteGroup(r.Groups[i], ret)
	}, func(_ string, code int16) int16 { return code }, func(codes []int16) {
		for i, g := range r.Groups {
			rg := kmsg.NewDeleteGroupsResponseGroup()
			rg.Group, rg.ErrorCode = g, codes[i]
			resp.Groups = append(resp.Groups, rg)
		}
		cb(resp)
	})
}

func (b *backend) offsetDelete(r *kmsg.OffsetDeleteRequest, late bool, cb func(kmsg.Response)) {
	resp := r.ResponseKind().(*kmsg.OffsetDeleteResponse)
	var tps []group.TopicPartition
	for _, t := range r.Topics {
		for _, p := range t.Partitions {
			tps = append(tps, group.TopicPartition{Topic: t.Topic, Partition: p.Partition})
		}
	}
	fill := func(code int16) {
		if code == 86 || code == 0 {
			for _, t := range r.Topics {
				rt := kmsg.NewOffsetDeleteResponseTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewOffsetDeleteResponseTopicPartition()
					rp.Partition, rp.ErrorCode = p.Partition, code
					rt.Partitions = append(rt.Partitions, rp)
				}
				resp.Topics = append(resp.Topics, rt)
			}
		} else {
			resp.ErrorCode = code
		}
		cb(resp)
	}
	b.onCoordinator(r.Group, coordCall{opWrites, late}, func(h *hostedCoord, reply func(func())) {
		h.coord.DeleteOffsets(r.Group, tps, func(code int16) { reply(func() { fill(code) }) })
	}, fill)
}

// InitProducerID hands out producer ids. Ids come from blocks reserved in
// the metadata (persisted before use), so no id is ever handed out twice,
// even across restarts. Transactions are not supported.
func (b *backend) InitProducerID(r *kmsg.InitProducerIDRequest, cb func(*kmsg.InitProducerIDResponse)) {
	resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
	if r.TransactionalID != nil {
		resp.ErrorCode, resp.ProducerID, resp.ProducerEpoch = errInvalidRequest, -1, -1
		cb(resp)
		return
	}
	if r.Version >= 3 && r.ProducerID >= 0 && r.ProducerEpoch >= 0 {
		// KIP-360: an idempotent producer bumps its epoch to reset sequences.
		resp.ProducerID, resp.ProducerEpoch = r.ProducerID, r.ProducerEpoch+1
		if resp.ProducerEpoch < 0 { // wrapped: start over with a new id
			r.ProducerID = -1
		} else {
			cb(resp)
			return
		}
	}
	b.onController(func(ctl *coreState, reply func(func())) {
		id, err := b.node.nextProducerID()
		reply(func() {
			if err != nil {
				resp.ErrorCode, resp.ProducerID, resp.ProducerEpoch = errCoordinatorNotAvail, -1, -1
			} else {
				resp.ProducerID, resp.ProducerEpoch = id, 0
			}
			cb(resp)
		})
	})
}

const producerIDBlock = 1000

// nextProducerID runs on the controller core.
func (n *Node) nextProducerID() (int64, error) {
	if n.pidNext >= n.pidLimit {
		s := n.pending()
		next, err := n.persist(s.withProducerLimit(max(s.pidLimit, n.pidLimit) + producerIDBlock))
		if err != nil {
			return -1, err
		}
		n.ctlSnap = next
		n.publish()
		n.pidNext = next.pidLimit - producerIDBlock
		n.pidLimit = next.pidLimit
	}
	id := n.pidNext
	n.pidNext++
	return id, nil
}
