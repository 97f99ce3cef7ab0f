package group

import (
	"errors"
	"fmt"
	"testing"
)

// memStore persists instantly, or fails when fail is set; pending holds
// persists to complete later when hold is set.
type memStore struct {
	recs    []Record
	fail    bool
	hold    bool
	pending []func()
}

func (s *memStore) Persist(recs []Record, done func(error)) {
	run := func() {
		if s.fail {
			done(errors.New("disk on fire"))
			return
		}
		s.recs = append(s.recs, recs...)
		done(nil)
	}
	if s.hold {
		s.pending = append(s.pending, run)
		return
	}
	run()
}

type harness struct {
	t     *testing.T
	c     *Coordinator
	store *memStore
	now   int64
	ids   int
}

func newHarness(t *testing.T, delayMs int64) *harness {
	h := &harness{t: t, store: &memStore{}}
	h.c = NewCoordinator(Config{InitialRebalanceDelayMs: delayMs, MemberIDFunc: func(c string) string {
		h.ids++
		return fmt.Sprintf("%s-%d", c, h.ids)
	}}, h.store)
	return h
}

func req(member, client string) JoinRequest {
	return JoinRequest{MemberID: member, ClientID: client, SessionTimeoutMs: 10000, RebalanceTimeoutMs: 30000,
		ProtocolType: "consumer", Protocols: []Protocol{{Name: "range", Metadata: []byte(client)}}, RequireKnownMemberID: true}
}

type joinBox struct {
	res  JoinResult
	done bool
}

func (h *harness) join(r JoinRequest) *joinBox {
	b := &joinBox{}
	h.c.Join("g", r, h.now, func(res JoinResult) { b.res, b.done = res, true })
	return b
}

// newMember does the two-step v4 join and returns the pending join.
func (h *harness) newMember(client string) *joinBox {
	first := h.join(req("", client))
	if !first.done || first.res.ErrCode != ErrMemberIDRequired || first.res.MemberID == "" {
		h.t.Fatalf("first join of %s: %+v", client, first.res)
	}
	return h.join(req(first.res.MemberID, client))
}

func (h *harness) advance(ms int64) {
	h.now += ms
	h.c.Tick(h.now)
}

func (h *harness) sync(member string, gen int32, assign map[string][]byte) *SyncResult {
	var out *SyncResult
	h.c.Sync("g", member, nil, gen, assign, h.now, func(r SyncResult) { out = &r })
	return out
}

func TestThreeMembersShareAndRebalance(t *testing.T) {
	h := newHarness(t, 3000)
	a, b, c := h.newMember("a"), h.newMember("b"), h.newMember("c")
	if a.done || b.done || c.done {
		t.Fatal("join completed before the initial rebalance delay")
	}
	h.advance(3000)
	for _, j := range []*joinBox{a, b, c} {
		if !j.done || j.res.ErrCode != 0 || j.res.Generation != 1 || j.res.Protocol != "range" {
			t.Fatalf("join result %+v", j.res)
		}
	}
	leader := a.res.LeaderID
	var lead *joinBox
	for _, j := range []*joinBox{a, b, c} {
		if j.res.MemberID == leader {
			lead = j
		} else if len(j.res.Members) != 0 {
			t.Fatal("a follower got the member list")
		}
	}
	if lead == nil || len(lead.res.Members) != 3 {
		t.Fatalf("leader %q did not get 3 members", leader)
	}
	// Followers sync first and wait; the leader's sync releases everyone.
	follower := b.res.MemberID
	if follower == leader {
		follower = c.res.MemberID
	}
	var fres *SyncResult
	h.c.Sync("g", follower, nil, 1, nil, h.now, func(r SyncResult) { fres = &r })
	if fres != nil {
		t.Fatal("follower sync answered before the leader's")
	}
	assign := map[string][]byte{a.res.MemberID: []byte("A"), b.res.MemberID: []byte("B"), c.res.MemberID: []byte("C")}
	if r := h.sync(leader, 1, assign); r == nil || r.ErrCode != 0 || string(r.Assignment) != string(assign[leader]) {
		t.Fatalf("leader sync %+v", r)
	}
	if fres == nil || string(fres.Assignment) != string(assign[follower]) {
		t.Fatalf("follower sync %+v", fres)
	}
	if h.c.Group("g").State() != Stable {
		t.Fatalf("state %s", h.c.Group("g").State())
	}
	// c stops heartbeating; a and b keep going. After c's session the
	// others are told to rejoin, and the new generation has two members.
	for i := 0; i < 4; i++ {
		h.advance(3000)
		for _, m := range []string{a.res.MemberID, b.res.MemberID} {
			h.c.Heartbeat("g", m, nil, 1, h.now)
		}
	}
	if code := h.c.Heartbeat("g", a.res.MemberID, nil, 1, h.now); code != ErrRebalanceInProgress {
		t.Fatalf("after c's session expired heartbeat says %d", code)
	}
	ra, rb := h.join(req(a.res.MemberID, "a")), h.join(req(b.res.MemberID, "b"))
	if !ra.done || !rb.done || ra.res.Generation != 2 {
		t.Fatalf("rejoin: %+v %+v", ra.res, rb.res)
	}
	if l := ra.res.Members; ra.res.MemberID == ra.res.LeaderID && len(l) != 2 || rb.res.MemberID == rb.res.LeaderID && len(rb.res.Members) != 2 {
		t.Fatalf("new generation members: %+v / %+v", ra.res.Members, rb.res.Members)
	}
	if code := h.c.Heartbeat("g", c.res.MemberID, nil, 1, h.now); code != ErrUnknownMember {
		t.Fatalf("expired member heartbeat: %d", code)
	}
}

func TestLeaveAndEmpty(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newMember("a")
	if !a.done || a.res.Generation != 1 {
		t.Fatalf("single member join: %+v", a.res)
	}
	h.sync(a.res.MemberID, 1, map[string][]byte{a.res.MemberID: []byte("x")})
	b := h.newMember("b")
	if b.done {
		t.Fatal("b joined without a waiting for a rebalance")
	}
	if code := h.c.Heartbeat("g", a.res.MemberID, nil, 1, h.now); code != ErrRebalanceInProgress {
		t.Fatalf("heartbeat during rebalance: %d", code)
	}
	ra := h.join(req(a.res.MemberID, "a"))
	if !ra.done || !b.done || ra.res.Generation != 2 {
		t.Fatal("rebalance did not complete when both joined")
	}
	_, codes := h.c.Leave("g", []LeaveMember{{MemberID: a.res.MemberID}, {MemberID: "nobody"}}, h.now)
	if codes[0] != 0 || codes[1] != ErrUnknownMember {
		t.Fatalf("leave codes %v", codes)
	}
	rb := h.join(req(b.res.MemberID, "b"))
	if !rb.done || rb.res.Generation != 3 || rb.res.LeaderID != b.res.MemberID {
		t.Fatalf("after leave: %+v", rb.res)
	}
	h.c.Leave("g", []LeaveMember{{MemberID: b.res.MemberID}}, h.now)
	if g := h.c.Group("g"); g.State() != Empty {
		t.Fatalf("state %s after everyone left", g.State())
	}
}

func TestRebalanceTimeoutDropsSilentMembers(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newMember("a")
	h.sync(a.res.MemberID, 1, nil)
	b := h.newMember("b")
	// a keeps heartbeating (so its session stays alive) but never rejoins.
	for i := 0; i < 9; i++ {
		h.advance(3000)
		if code := h.c.Heartbeat("g", a.res.MemberID, nil, 1, h.now); code != ErrRebalanceInProgress {
			t.Fatalf("heartbeat during the join phase: %d", code)
		}
	}
	h.advance(2999)
	if b.done {
		t.Fatal("join phase ended before the rebalance timeout")
	}
	h.advance(1)
	if !b.done || b.res.ErrCode != 0 || len(b.res.Members) != 1 || b.res.LeaderID != b.res.MemberID {
		t.Fatalf("after timeout: %+v", b.res)
	}
}

func TestStaticMemberRestartKeepsAssignment(t *testing.T) {
	h := newHarness(t, 0)
	inst := "pod-1"
	r := req("", "a")
	r.InstanceID = &inst
	a := h.join(r) // static members skip MEMBER_ID_REQUIRED
	if !a.done || a.res.ErrCode != 0 {
		t.Fatalf("static join %+v", a.res)
	}
	h.sync(a.res.MemberID, 1, map[string][]byte{a.res.MemberID: []byte("mine")})
	again := h.join(r) // restarted: no member id, same instance id
	if !again.done || again.res.ErrCode != 0 || again.res.Generation != 1 || again.res.MemberID == a.res.MemberID {
		t.Fatalf("static rejoin %+v", again.res)
	}
	if s := h.sync(again.res.MemberID, 1, nil); s == nil || string(s.Assignment) != "mine" {
		t.Fatalf("static member lost its assignment: %+v", s)
	}
	if code := h.c.Heartbeat("g", a.res.MemberID, nil, 1, h.now); code != ErrUnknownMember {
		t.Fatalf("old member id still accepted: %d", code)
	}
	if h.c.Group("g").State() != Stable {
		t.Fatal("static rejoin triggered a rebalance")
	}
}

func TestCommitAdmissionAndPersistence(t *testing.T) {
	h := newHarness(t, 0)
	tp := TopicPartition{"t", 0}
	commit := func(member string, gen int32, off int64) int16 {
		code := int16(-1)
		h.c.Commit("g", member, nil, gen, map[TopicPartition]CommittedOffset{tp: {Offset: off}}, h.now, func(c int16) { code = c })
		return code
	}
	if code := commit("", -1, 5); code != 0 {
		t.Fatalf("simple commit to a new group: %d", code)
	}
	a := h.newMember("a")
	if code := commit("", -1, 6); code != ErrUnknownMember && code != ErrRebalanceInProgress {
		t.Fatalf("simple commit to a group with members: %d", code)
	}
	if code := commit(a.res.MemberID, 1, 7); code != ErrRebalanceInProgress {
		t.Fatalf("commit while completing rebalance: %d", code)
	}
	h.sync(a.res.MemberID, 1, nil)
	if code := commit(a.res.MemberID, 0, 7); code != ErrIllegalGeneration {
		t.Fatalf("stale generation: %d", code)
	}
	if code := commit(a.res.MemberID, 1, 8); code != 0 {
		t.Fatalf("member commit: %d", code)
	}
	if got := h.c.Fetch("g", []TopicPartition{tp, {"t", 1}}); got[tp].Offset != 8 || len(got) != 1 {
		t.Fatalf("fetch %+v", got)
	}
	// A commit is visible only once persisted, and a failed persist changes nothing.
	h.store.hold = true
	if code := commit(a.res.MemberID, 1, 9); code != -1 || h.c.Fetch("g", nil)[tp].Offset != 8 {
		t.Fatal("commit visible before it was persisted")
	}
	h.store.pending[0]()
	if h.c.Fetch("g", nil)[tp].Offset != 9 {
		t.Fatal("persisted commit not applied")
	}
	h.store.hold, h.store.fail = false, true
	if code := commit(a.res.MemberID, 1, 10); code != ErrCoordinatorNotAvailable || h.c.Fetch("g", nil)[tp].Offset != 9 {
		t.Fatalf("failed persist: code %d offset %d", code, h.c.Fetch("g", nil)[tp].Offset)
	}
	// Replaying the store into a fresh coordinator restores the offsets.
	c2 := NewCoordinator(Config{}, &memStore{})
	for _, r := range h.store.recs {
		c2.Load(r, 0)
	}
	if c2.Fetch("g", nil)[tp].Offset != 9 {
		t.Fatalf("reloaded offsets %+v", c2.Fetch("g", nil))
	}
}

func TestDeleteGroupAndRetention(t *testing.T) {
	h := newHarness(t, 0)
	h.c.cfg.OffsetsRetentionMs = 1000
	h.c.cfg.OffsetsRetentionCheckMs = 100
	tp := TopicPartition{"t", 0}
	h.c.Commit("g", "", nil, -1, map[TopicPartition]CommittedOffset{tp: {Offset: 1}}, h.now, func(int16) {})
	a := h.newMember("a")
	var code int16 = -1
	h.c.DeleteGroup("g", func(c int16) { code = c })
	if code != ErrNonEmptyGroup {
		t.Fatalf("delete of a group with members: %d", code)
	}
	h.c.Leave("g", []LeaveMember{{MemberID: a.res.MemberID}}, h.now)
	h.advance(500)
	if len(h.c.Fetch("g", nil)) != 1 {
		t.Fatal("offsets expired early")
	}
	h.advance(600)
	if len(h.c.Fetch("g", nil)) != 0 || h.c.Group("g") != nil {
		t.Fatal("offsets of an empty group outlived the retention")
	}
	if r := h.store.recs[len(h.store.recs)-1]; r.Offset != nil {
		t.Fatal("expiry was not persisted as a tombstone")
	}
}
