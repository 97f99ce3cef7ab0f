package wire

import (
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupSession adds a scripted GroupBackend to the memory backend. It
// records every typed request it gets and answers with the zero result,
// or with what the test scripted.
type groupSession struct {
	*memSession
	clients []ClientInfo
	reqs    []any
	// Scripted answers (nil: success).
	commitErrs  []error
	fetched     []CommitOffset
	deleteErr   error
	leaveErrs   []error
	coordinator error
}

func (g *groupSession) seen(c ClientInfo, r any) {
	g.clients, g.reqs = append(g.clients, c), append(g.reqs, r)
}

func (g *groupSession) FindCoordinator(key string) (BrokerInfo, error) {
	g.reqs = append(g.reqs, key)
	return BrokerInfo{NodeID: 7, Host: "h", Port: 9}, g.coordinator
}

func (g *groupSession) JoinGroup(c ClientInfo, r JoinGroupRequest, cb func(JoinGroupResult)) {
	g.seen(c, r)
	cb(JoinGroupResult{MemberID: "m-1"})
}

func (g *groupSession) SyncGroup(c ClientInfo, r SyncGroupRequest, cb func(SyncGroupResult)) {
	g.seen(c, r)
	cb(SyncGroupResult{})
}

func (g *groupSession) Heartbeat(c ClientInfo, r HeartbeatRequest, cb func(error)) {
	g.seen(c, r)
	cb(nil)
}

func (g *groupSession) LeaveGroup(c ClientInfo, group string, ms []LeaveMember, cb func(error, []error)) {
	g.seen(c, ms)
	errs := g.leaveErrs
	if errs == nil {
		errs = make([]error, len(ms))
	}
	cb(nil, errs)
}

func (g *groupSession) OffsetCommit(c ClientInfo, r OffsetCommitRequest, cb func([]error)) {
	g.seen(c, r)
	errs := g.commitErrs
	if errs == nil {
		errs = make([]error, len(r.Offsets))
	}
	cb(errs)
}

func (g *groupSession) OffsetFetch(c ClientInfo, groups []OffsetFetchGroup, cb func([]OffsetFetchResult)) {
	g.seen(c, groups)
	res := make([]OffsetFetchResult, len(groups))
	for i := range res {
		res[i].Offsets = g.fetched
	}
	cb(res)
}

func (g *groupSession) DescribeGroups(c ClientInfo, groups []string, cb func([]GroupDescription)) {
	g.seen(c, groups)
	cb(make([]GroupDescription, len(groups)))
}

func (g *groupSession) ListGroups(c ClientInfo, cb func([]GroupListing)) {
	g.seen(c, nil)
	cb(nil)
}

func (g *groupSession) DeleteGroups(c ClientInfo, groups []string, cb func([]error)) {
	g.seen(c, groups)
	cb(make([]error, len(groups)))
}

func (g *groupSession) OffsetDelete(c ClientInfo, group string, tps []PartitionRef, cb func(error)) {
	g.seen(c, tps)
	cb(g.deleteErr)
}

func (g *groupSession) InitProducerID(r InitProducerIDRequest, cb func(InitProducerIDResult)) {
	g.reqs = append(g.reqs, r)
	cb(InitProducerIDResult{ProducerID: 42})
}

type addrConn struct{ *fakeConn }

func (addrConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 5555} }

func newGroupHarness() (*harness, *groupSession) {
	h := newHarness(Config{})
	gs := &groupSession{memSession: h.c.be.(*memSession)}
	h.c = newConn(h.srv, addrConn{h.fc}, gs)
	return h, gs
}

func TestGroupsAdvertisedOnlyWithGroupBackend(t *testing.T) {
	plain := newHarness(Config{})
	keys := keysOf(plain.do(t, kmsg.NewPtrApiVersionsRequest(), 3).(*kmsg.ApiVersionsResponse))
	if _, ok := keys[kmsg.JoinGroup.Int16()]; ok {
		t.Fatal("JoinGroup advertised without a GroupBackend")
	}
	h, _ := newGroupHarness()
	keys = keysOf(h.do(t, kmsg.NewPtrApiVersionsRequest(), 3).(*kmsg.ApiVersionsResponse))
	for _, a := range groupAdvertised {
		if r, ok := keys[a.key]; !ok || r != [2]int16{a.min, a.max} {
			t.Fatalf("%s advertised as %v", kmsg.NameForKey(a.key), r)
		}
	}
	// Without a GroupBackend a group key is not served: UNSUPPORTED_VERSION,
	// and the connection stays open.
	if r := plain.do(t, kmsg.NewPtrJoinGroupRequest(), 5).(*kmsg.JoinGroupResponse); r.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("group request without a GroupBackend: %s, want UNSUPPORTED_VERSION", errName(r.ErrorCode))
	}
	if plain.c.closed {
		t.Fatal("group request without a GroupBackend closed the connection")
	}
}

func TestGroupRouting(t *testing.T) {
	h, gs := newGroupHarness()
	jg := kmsg.NewPtrJoinGroupRequest()
	jg.Group, jg.ProtocolType = "g", "consumer"
	jr := h.do(t, jg, 5).(*kmsg.JoinGroupResponse)
	if jr.MemberID != "m-1" || len(gs.clients) != 1 || gs.clients[0] != (ClientInfo{ID: "t", Host: "/10.1.2.3"}) {
		t.Fatalf("join: member %q clients %+v", jr.MemberID, gs.clients)
	}
	if ip := h.do(t, kmsg.NewPtrInitProducerIDRequest(), 4).(*kmsg.InitProducerIDResponse); ip.ProducerID != 42 {
		t.Fatalf("init producer id: %d", ip.ProducerID)
	}
	// Every advertised group version goes through and decodes.
	for _, a := range groupAdvertised {
		for v := a.min; v <= a.max; v++ {
			if resp := h.do(t, kmsg.RequestForKey(a.key), v); resp.GetVersion() != v {
				t.Fatalf("%s v%d answered v%d", kmsg.NameForKey(a.key), v, resp.GetVersion())
			}
		}
	}
	// Above our range but parseable: top-level error 35 where there is one.
	fcReq := kmsg.NewPtrFindCoordinatorRequest()
	fcReq.CoordinatorKeys = []string{"g"}
	if fc := h.do(t, fcReq, 5).(*kmsg.FindCoordinatorResponse); len(fc.Coordinators) != 1 || fc.Coordinators[0].ErrorCode != errUnsupportedVersion {
		t.Fatalf("find coordinator v5: %+v", fc.Coordinators)
	}
	if lg := h.do(t, kmsg.NewPtrListGroupsRequest(), 5).(*kmsg.ListGroupsResponse); lg.ErrorCode != errUnsupportedVersion {
		t.Fatalf("list groups v5: %s", errName(lg.ErrorCode))
	}
	// OffsetCommit v10 has only per-partition codes: it is answered with
	// them (issue 10: an unsupported version never closes the connection).
	if oc := h.do(t, kmsg.NewPtrOffsetCommitRequest(), 10).(*kmsg.OffsetCommitResponse); oc.GetVersion() != 10 {
		t.Fatalf("offset commit v10 answered v%d", oc.GetVersion())
	}
}

// TestGroupRequestBytesDetached: the coordinator keeps JoinGroup protocol
// metadata and SyncGroup assignments, so they must not alias the input
// buffer (the fake poisons consumed input).
func TestGroupRequestBytesDetached(t *testing.T) {
	h, gs := newGroupHarness()
	jg := kmsg.NewPtrJoinGroupRequest()
	jg.Group, jg.ProtocolType = "g", "consumer"
	jg.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte("member metadata")}}
	h.do(t, jg, 5)
	sg := kmsg.NewPtrSyncGroupRequest()
	sg.Group, sg.MemberID = "g", "m-1"
	sg.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: "m-1", MemberAssignment: []byte("assignment")}}
	h.do(t, sg, 3)
	h.do(t, kmsg.NewPtrHeartbeatRequest(), 3) // more input through the same buffer
	if got := string(gs.reqs[0].(JoinGroupRequest).Protocols[0].Metadata); got != "member metadata" {
		t.Fatalf("kept JoinGroup metadata reads %q: it aliases the input buffer", got)
	}
	if got := string(gs.reqs[1].(SyncGroupRequest).Assignments[0].Assignment); got != "assignment" {
		t.Fatalf("kept SyncGroup assignment reads %q: it aliases the input buffer", got)
	}
}

// TestOffsetCommitUnsupportedVersion: an OffsetCommit above the advertised
// range (v10 adds topic ids, which Strand does not serve) is answered with
// UNSUPPORTED_VERSION in every partition, never a closed connection, and
// never reaches the group backend.
func TestOffsetCommitUnsupportedVersion(t *testing.T) {
	h, gs := newGroupHarness()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group = "g"
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "t"
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, 5
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, ok := h.do(t, req, 10).(*kmsg.OffsetCommitResponse)
	if !ok || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("OffsetCommit v10 answered %#v", resp)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.UnsupportedVersion.Code {
		t.Fatalf("OffsetCommit v10: %s, want UNSUPPORTED_VERSION", errName(code))
	}
	if len(gs.reqs) != 0 {
		t.Fatalf("the group backend saw %d requests", len(gs.reqs))
	}
}

// TestEveryAPIAboveItsRangeAnswered: a request one version above what the
// broker advertises, for every key it serves (groups included), gets a
// response, not a closed connection, whenever kmsg can still parse that
// version. (TestOffsetCommitUnsupportedVersion checks the per-partition
// codes of a request that names partitions.)
func TestEveryAPIAboveItsRangeAnswered(t *testing.T) {
	for _, a := range append(append([]apiRange(nil), advertised...), groupAdvertised...) {
		req := kmsg.RequestForKey(a.key)
		v := a.max + 1
		if req == nil || v > req.MaxVersion() {
			continue
		}
		t.Run(kmsg.NameForKey(a.key), func(t *testing.T) {
			h, _ := newGroupHarness()
			h.broker.createTopic("t", 1, nil)
			resp := h.do(t, req, v)
			if resp.GetVersion() != v {
				t.Fatalf("answered at v%d, want v%d", resp.GetVersion(), v)
			}
		})
	}
}

// TestGroupTranslation: the version rules that wire applies on the way to
// the typed GroupBackend and back (they lived in cluster before).
func TestGroupTranslation(t *testing.T) {
	h, gs := newGroupHarness()
	last := func() any { return gs.reqs[len(gs.reqs)-1] }

	jg := kmsg.NewPtrJoinGroupRequest()
	jg.Group, jg.RebalanceTimeoutMillis, jg.SessionTimeoutMillis = "g", 9000, 6000
	h.do(t, jg, 0)
	if r := last().(JoinGroupRequest); r.RebalanceTimeoutMs != -1 || r.RequireKnownMemberID {
		t.Fatalf("join v0: %+v", r)
	}
	h.do(t, jg, 4)
	if r := last().(JoinGroupRequest); r.RebalanceTimeoutMs != 9000 || !r.RequireKnownMemberID {
		t.Fatalf("join v4: %+v", r)
	}

	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Group, oc.Generation, oc.MemberID = "g", 3, "m"
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "t"
	for p := int32(0); p < 2; p++ {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch = p, 10+int64(p), 4
		rt.Partitions = append(rt.Partitions, rp)
	}
	oc.Topics = append(oc.Topics, rt)
	gs.commitErrs = []error{nil, kerr.UnknownTopicOrPartition}
	resp := h.do(t, oc, 0).(*kmsg.OffsetCommitResponse)
	if r := last().(OffsetCommitRequest); r.Generation != -1 || r.MemberID != "" || r.Offsets[1].LeaderEpoch != -1 || r.Offsets[1].Offset != 11 {
		t.Fatalf("commit v0: %+v", r)
	}
	if ps := resp.Topics[0].Partitions; ps[0].ErrorCode != 0 || ps[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("commit v0 answered %+v", ps)
	}
	h.do(t, oc, 6)
	if r := last().(OffsetCommitRequest); r.Generation != 3 || r.MemberID != "m" || r.Offsets[0].LeaderEpoch != 4 {
		t.Fatalf("commit v6: %+v", r)
	}

	// OffsetFetch: asked partitions in order, -1 where nothing is
	// committed; a nil topic list gets every committed offset, sorted.
	gs.fetched = []CommitOffset{
		{PartitionRef: PartitionRef{Topic: "b", Partition: 0}, Offset: 7, LeaderEpoch: 1},
		{PartitionRef: PartitionRef{Topic: "a", Partition: 1}, Offset: 5, LeaderEpoch: 1},
	}
	of := kmsg.NewPtrOffsetFetchRequest()
	of.Group = "g"
	of.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "b", Partitions: []int32{1, 0}}}
	fr := h.do(t, of, 1).(*kmsg.OffsetFetchResponse)
	if ps := fr.Topics[0].Partitions; len(fr.Topics) != 1 || len(ps) != 2 || ps[0].Offset != -1 || ps[0].LeaderEpoch != -1 || ps[1].Offset != 7 {
		t.Fatalf("fetch asked: %+v", fr.Topics)
	}
	of.Topics = nil
	fr = h.do(t, of, 7).(*kmsg.OffsetFetchResponse)
	if len(fr.Topics) != 2 || fr.Topics[0].Topic != "a" || fr.Topics[1].Topic != "b" {
		t.Fatalf("fetch all: %+v", fr.Topics)
	}
	if r := last().([]OffsetFetchGroup); r[0].Partitions != nil {
		t.Fatalf("fetch all asked for %v", r[0].Partitions)
	}

	// OffsetDelete: GROUP_SUBSCRIBED_TO_TOPIC per partition, anything
	// else for the whole request.
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "g"
	od.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
	gs.deleteErr = kerr.GroupSubscribedToTopic
	if r := h.do(t, od, 0).(*kmsg.OffsetDeleteResponse); r.ErrorCode != 0 || r.Topics[0].Partitions[0].ErrorCode != kerr.GroupSubscribedToTopic.Code {
		t.Fatalf("offset delete, subscribed: %+v", r)
	}
	gs.deleteErr = kerr.GroupIDNotFound
	if r := h.do(t, od, 0).(*kmsg.OffsetDeleteResponse); r.ErrorCode != kerr.GroupIDNotFound.Code || len(r.Topics) != 0 {
		t.Fatalf("offset delete, no group: %+v", r)
	}

	// LeaveGroup before v3 answers its one member's error at the top.
	lg := kmsg.NewPtrLeaveGroupRequest()
	lg.Group, lg.MemberID = "g", "m"
	gs.leaveErrs = []error{kerr.UnknownMemberID}
	if r := h.do(t, lg, 2).(*kmsg.LeaveGroupResponse); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("leave v2: %s", errName(r.ErrorCode))
	}
	if ms := last().([]LeaveMember); len(ms) != 1 || ms[0].MemberID != "m" {
		t.Fatalf("leave v2 members %+v", ms)
	}

	// InitProducerID carries the id to bump only from v3.
	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.ProducerID, ip.ProducerEpoch = 5, 2
	h.do(t, ip, 3)
	if r := last().(InitProducerIDRequest); r.ProducerID != 5 || r.ProducerEpoch != 2 {
		t.Fatalf("init producer id v3: %+v", r)
	}
	h.do(t, ip, 2)
	if r := last().(InitProducerIDRequest); r.ProducerID != -1 || r.ProducerEpoch != -1 {
		t.Fatalf("init producer id v2: %+v", r)
	}

	// FindCoordinator: one key before v4, a batch after; an error
	// answers node -1.
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey, fc.CoordinatorKeys = "g", []string{"g", "h"}
	if r := h.do(t, fc, 3).(*kmsg.FindCoordinatorResponse); r.NodeID != 7 || r.Host != "h" || r.Port != 9 {
		t.Fatalf("find coordinator v3: %+v", r)
	}
	if r := h.do(t, fc, 4).(*kmsg.FindCoordinatorResponse); len(r.Coordinators) != 2 || r.Coordinators[1].Key != "h" || r.Coordinators[1].NodeID != 7 {
		t.Fatalf("find coordinator v4: %+v", r.Coordinators)
	}
	gs.coordinator = kerr.CoordinatorNotAvailable
	if r := h.do(t, fc, 3).(*kmsg.FindCoordinatorResponse); r.ErrorCode != kerr.CoordinatorNotAvailable.Code || r.NodeID != -1 {
		t.Fatalf("find coordinator failing: %+v", r)
	}
}
