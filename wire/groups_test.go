package wire

import (
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupSession adds a scripted GroupBackend to the memory backend.
type groupSession struct {
	*memSession
	clients []ClientInfo
	reqs    []kmsg.Request
	wrongV  bool // answer with a mismatched version
}

func (g *groupSession) GroupRequest(ci ClientInfo, req kmsg.Request, cb func(kmsg.Response)) {
	g.clients, g.reqs = append(g.clients, ci), append(g.reqs, req)
	resp := req.ResponseKind()
	if g.wrongV {
		resp.SetVersion(req.GetVersion() + 1)
	}
	if jr, ok := resp.(*kmsg.JoinGroupResponse); ok {
		jr.MemberID = "m-1"
	}
	cb(resp)
}

func (g *groupSession) InitProducerID(req *kmsg.InitProducerIDRequest, cb func(*kmsg.InitProducerIDResponse)) {
	g.reqs = append(g.reqs, req)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = 42, 0
	cb(resp)
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

func TestGroupMismatchedResponseCloses(t *testing.T) {
	h, gs := newGroupHarness()
	gs.wrongV = true
	if !h.traffic(encodeRequest(versioned(kmsg.NewPtrHeartbeatRequest(), 2), 1, "c"), 10) {
		t.Fatal("mismatched response version did not close the connection")
	}
	if len(h.fc.out) != 0 {
		t.Fatal("a mismatched response was written")
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
	if got := string(gs.reqs[0].(*kmsg.JoinGroupRequest).Protocols[0].Metadata); got != "member metadata" {
		t.Fatalf("kept JoinGroup metadata reads %q: it aliases the input buffer", got)
	}
	if got := string(gs.reqs[1].(*kmsg.SyncGroupRequest).GroupAssignment[0].MemberAssignment); got != "assignment" {
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
