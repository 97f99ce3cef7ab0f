package group

import "testing"

// stableGroup builds group "g" with members a and b, assigned, at
// generation 2 (b joined after a had settled alone).
func stableGroup(t *testing.T) (h *harness, a, b string) {
	h = newHarness(t, 0)
	ja := h.newMember("a")
	if !ja.done || ja.res.ErrCode != 0 {
		t.Fatalf("join a: %+v", ja.res)
	}
	a = ja.res.MemberID
	h.sync(a, ja.res.Generation, map[string][]byte{a: []byte("A")})
	jb := h.newMember("b")
	ja = h.join(req(a, "a")) // told to rejoin by its heartbeat
	if !ja.done || !jb.done || ja.res.Generation != 2 {
		t.Fatalf("second generation: a %+v b %+v", ja.res, jb.res)
	}
	b = jb.res.MemberID
	h.sync(b, 2, nil)
	if r := h.sync(a, 2, map[string][]byte{a: []byte("A"), b: []byte("B")}); r == nil || r.ErrCode != 0 {
		t.Fatalf("leader sync %+v", r)
	}
	return h, a, b
}

// reload replays everything h's store holds into a fresh coordinator, as a
// broker does at start.
func reload(h *harness, nowMs int64) *Coordinator {
	c2 := NewCoordinator(Config{}, &memStore{})
	for _, r := range h.store.recs {
		c2.Load(r, nowMs)
	}
	return c2
}

// TestMembershipSurvivesReload: a restart replays the group's membership
// from the log; the members' next heartbeats are accepted at the same
// generation, they keep their assignments, and a follower that rejoins
// with the same subscription gets the same generation back.
func TestMembershipSurvivesReload(t *testing.T) {
	h, a, b := stableGroup(t)
	const restartMs = 600_000
	c2 := reload(h, restartMs)
	g := c2.Group("g")
	if g == nil || g.State() != Stable || g.Generation() != 2 {
		t.Fatalf("reloaded group: %v", g)
	}
	for _, m := range []string{a, b} {
		if code := c2.Heartbeat("g", m, nil, 2, restartMs+1000); code != 0 {
			t.Fatalf("heartbeat of %s after reload: %d", m, code)
		}
	}
	d := g.Describe()
	if len(d.Members) != 2 || d.Protocol != "range" {
		t.Fatalf("reloaded description %+v", d)
	}
	for _, m := range d.Members {
		want := map[string]string{a: "A", b: "B"}[m.MemberID]
		if string(m.Assignment) != want || string(m.Metadata) != m.ClientID {
			t.Fatalf("member %s: assignment %q metadata %q", m.MemberID, m.Assignment, m.Metadata)
		}
	}
	// Sessions restart at the load: nothing expires a session later.
	c2.Tick(restartMs + 9000)
	if c2.Group("g").State() != Stable {
		t.Fatal("sessions expired counting from before the restart")
	}
	var got JoinResult
	c2.Join("g", req(b, "b"), restartMs+2000, func(r JoinResult) { got = r })
	if got.ErrCode != 0 || got.Generation != 2 || g.State() != Stable {
		t.Fatalf("follower rejoin after reload: %+v, state %s", got, g.State())
	}
}

// TestEmptyGroupGenerationSurvivesReload: a group whose members all left
// keeps its generation, so a member of the old generation still cannot
// commit after a restart.
func TestEmptyGroupGenerationSurvivesReload(t *testing.T) {
	h, a, b := stableGroup(t)
	h.c.Leave("g", []LeaveMember{{MemberID: a}, {MemberID: b}}, h.now)
	gen := h.c.Group("g").Generation()
	c2 := reload(h, 1000)
	if g := c2.Group("g"); g == nil || g.State() != Empty || g.Generation() != gen {
		t.Fatalf("reloaded %v, want empty at generation %d", g, gen)
	}
}

// TestDeletedGroupStaysDeleted: DeleteGroups writes a tombstone for the
// membership too.
func TestDeletedGroupStaysDeleted(t *testing.T) {
	h, a, b := stableGroup(t)
	h.c.Leave("g", []LeaveMember{{MemberID: a}, {MemberID: b}}, h.now)
	code := int16(-1)
	h.c.DeleteGroup("g", func(c int16) { code = c })
	if code != 0 {
		t.Fatalf("delete: %d", code)
	}
	if g := reload(h, 1000).Group("g"); g != nil {
		t.Fatalf("deleted group came back: %v", g)
	}
}

// TestFailWaiting: a broker shutting down answers joins and syncs that
// wait for the rest of the group.
func TestFailWaiting(t *testing.T) {
	h, a, _ := stableGroup(t)
	j := h.join(req(a, "a")) // the leader rejoins: waits for b
	if j.done {
		t.Fatal("leader rejoin answered before b rejoined")
	}
	h.c.FailWaiting(16)
	if !j.done || j.res.ErrCode != 16 {
		t.Fatalf("waiting join after FailWaiting: %+v", j.res)
	}
}
