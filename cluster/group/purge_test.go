package group

import "testing"

// TestPurgeTopic: deleting a topic's offsets writes tombstones for every
// group's offsets of it, forgets them once durable, and catches a commit
// that was persisted before the purge but applied after its snapshot.
func TestPurgeTopic(t *testing.T) {
	h := newHarness(t, 0)
	gone, kept := TopicPartition{"gone", 0}, TopicPartition{"kept", 0}
	commit := func(g string, tp TopicPartition, off int64) {
		h.c.Commit(g, "", nil, -1, map[TopicPartition]CommittedOffset{tp: {Offset: off}}, h.now, func(int16) {})
	}
	commit("g1", gone, 5)
	commit("g1", kept, 6)
	commit("g2", gone, 7)
	// A commit to g3 is persisted but not yet acknowledged when the purge
	// starts: its offset is not in the purge's first snapshot.
	h.store.hold = true
	commit("g3", gone, 8)
	var purged error = errNotYet
	h.c.PurgeTopic("gone", func(err error) { purged = err })
	if !h.c.Purging("gone") || h.c.Purging("kept") {
		t.Fatal("Purging does not report the topic being purged")
	}
	for len(h.store.pending) > 0 { // complete in order, as a log does
		run := h.store.pending[0]
		h.store.pending = h.store.pending[1:]
		run()
	}
	if purged != nil {
		t.Fatalf("purge: %v", purged)
	}
	for _, g := range []string{"g1", "g2", "g3"} {
		if o, ok := h.c.Fetch(g, nil)[gone]; ok {
			t.Fatalf("%s still has offset %d of the purged topic", g, o.Offset)
		}
	}
	if h.c.Fetch("g1", nil)[kept].Offset != 6 {
		t.Fatal("the purge took another topic's offset")
	}
	if g := reload(h, 0); len(g.Fetch("g3", nil)) != 0 || len(g.Fetch("g1", nil)) != 1 {
		t.Fatalf("after a reload: g1 %v g3 %v", g.Fetch("g1", nil), g.Fetch("g3", nil))
	}
	h.c.EndPurge("gone")
	if h.c.Purging("gone") {
		t.Fatal("still purging after EndPurge")
	}
}

var errNotYet = errorString("not called")

type errorString string

func (e errorString) Error() string { return string(e) }
