package replication

import (
	"errors"
	"slices"
	"testing"
)

func newTestLeading(isr []BrokerID) *Leading {
	return NewLeading(LeadingConfig{Broker: 1, BrokerEpoch: 7, LagMaxMs: 100, RetryMs: 30},
		PartitionState{Partition: 0, Replicas: []BrokerID{1, 2, 3}, ISR: isr, Leader: 1, LeaderBrokerEpoch: 7,
			LeaderEpoch: 4, PartitionEpoch: 10}, 2, 0, 0)
}

func TestLeadingTargetWaitsForEveryInSyncDurableOffset(t *testing.T) {
	l := newTestLeading([]BrokerID{1, 2, 3})
	if got := l.Target(5); got != 0 {
		t.Fatalf("target %d before any follower fetched", got)
	}
	mustFetch(t, l, 2, 1, 5, 5, 5, 1)
	mustFetch(t, l, 3, 1, 5, 3, 5, 1)
	if got := l.Target(5); got != 3 {
		t.Fatalf("target %d, want 3 (b3 durable to 3)", got)
	}
	if got := l.Target(2); got != 2 {
		t.Fatalf("target %d, want the leader's own durable end 2", got)
	}
	// A late report (numbered before the latest) changes nothing; a
	// later one is the follower's log as it is now, even lower (a replica
	// deleted and created again); a new incarnation (a restarted
	// follower, a new connection) starts over, an older one is refused.
	late := fetchSeq - 1
	if err := l.Fetched(FollowerFetch{Broker: 3, Incarnation: 1, Seq: late, FetchOffset: 1, Durable: 1}, 5, 2); err != nil {
		t.Fatal(err)
	}
	if got := l.Target(5); got != 3 {
		t.Fatalf("late report lowered the target to %d", got)
	}
	mustFetch(t, l, 3, 1, 2, 2, 5, 2)
	if got := l.Target(5); got != 2 {
		t.Fatalf("the latest report says 2: target %d", got)
	}
	mustFetch(t, l, 3, 2, 1, 1, 5, 3)
	if got := l.Target(5); got != 1 {
		t.Fatalf("new incarnation at 1: target %d", got)
	}
	fetchSeq++
	if err := l.Fetched(FollowerFetch{Broker: 3, Incarnation: 1, Seq: fetchSeq, FetchOffset: 4, Durable: 4}, 5, 4); !errors.Is(err, ErrStaleBrokerEpoch) {
		t.Fatalf("fetch from the older incarnation: %v", err)
	}
	if err := l.Fetched(FollowerFetch{Broker: 2, Incarnation: 1, FetchOffset: 6, Durable: 6}, 5, 4); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("fetch past the log end: %v", err)
	}
	if err := l.Fetched(FollowerFetch{Broker: 9, FetchOffset: 0}, 5, 4); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("fetch from a non-replica: %v", err)
	}
}

func mustFetch(t *testing.T, l *Leading, b BrokerID, inc BrokerEpoch, off, durable, leo Offset, now Millis) {
	t.Helper()
	fetchSeq++
	if err := l.Fetched(FollowerFetch{Broker: b, Incarnation: inc, Seq: fetchSeq, FetchOffset: off, Durable: durable}, leo, now); err != nil {
		t.Fatal(err)
	}
}

// A proposed member counts toward the high watermark until the proposal
// is decided: accepted (it stays, and nothing more is proposed until the
// new state arrives) or refused as the newest (it stops counting). A
// refusal of an older proposal, or of another leader epoch's proposal
// with the same number, changes nothing: seed 1036867.
func TestLeadingMaximalISR(t *testing.T) {
	l := newTestLeading([]BrokerID{1, 2})
	mustFetch(t, l, 2, 1, 5, 5, 5, 1)
	mustFetch(t, l, 3, 1, 5, 4, 5, 1)
	if _, ok := l.Propose(5, 5, 1); ok {
		t.Fatal("b3 below the high watermark proposed to join")
	}
	mustFetch(t, l, 3, 1, 5, 5, 5, 2)
	req, ok := l.Propose(5, 5, 2)
	if !ok || !slices.Equal(isrOf(req), []BrokerID{1, 2, 3}) || req.Seq != 1 || req.PartitionEpoch != 10 {
		t.Fatalf("join proposal: %+v %v", req, ok)
	}
	mustFetch(t, l, 2, 1, 9, 9, 9, 3)
	if got := l.Target(9); got != 5 {
		t.Fatalf("target %d: the proposed member must count (durable to 5)", got)
	}
	if _, ok := l.Propose(9, 5, 10); ok {
		t.Fatal("a second proposal while one is open")
	}
	l.Answered(3, 1, false, 10) // another epoch's proposal 1
	if got := l.Target(9); got != 5 {
		t.Fatalf("a stale refusal dropped the proposed member: target %d", got)
	}
	l.Answered(4, 1, false, 10)
	if got := l.Target(9); got != 9 {
		t.Fatalf("after the refusal the target is %d, want the in-sync set's 9", got)
	}
	if req, ok := l.Propose(9, 9, 10); ok { // b3 no longer holds the high watermark
		t.Fatalf("proposed %+v", req)
	}
	mustFetch(t, l, 3, 1, 9, 9, 9, 11)
	if req, ok := l.Propose(9, 9, 20); ok {
		t.Fatalf("proposed again 18 ms after a refused one, RetryMs 30: %+v", req)
	}
	req, ok = l.Propose(9, 9, 32)
	if !ok || req.Seq != 2 {
		t.Fatalf("second join proposal: %+v %v", req, ok)
	}
	l.Answered(4, 2, true, 11)
	if _, ok := l.Propose(9, 9, 500); ok {
		t.Fatal("proposed again before the accepted state arrived")
	}
	l.SetState(PartitionState{Partition: 0, Replicas: []BrokerID{1, 2, 3}, ISR: []BrokerID{1, 2, 3}, Leader: 1,
		LeaderBrokerEpoch: 7, LeaderEpoch: 4, PartitionEpoch: 11}, 2, 501)
	if l.Proposing() {
		t.Fatal("still proposing after the new partition epoch")
	}
}

// A refusal decided at a partition epoch newer than the leader holds may
// be the refusal of a retry whose first attempt was accepted (its answer
// lost) and moved the epoch: the proposed member may be in the in-sync
// set already, so it must count until that state arrives. Brokers hear a
// refusal before the view that holds the change as often as not, and
// the simulator, answering refusals as brokers learn them, lost
// acknowledged records (seed 153) when the refusal ended the proposal.
func TestLeadingRefusalAtNewerPartitionEpochKeepsCounting(t *testing.T) {
	l := newTestLeading([]BrokerID{1, 2})
	mustFetch(t, l, 2, 1, 5, 5, 5, 1)
	mustFetch(t, l, 3, 1, 5, 5, 5, 1)
	if _, ok := l.Propose(5, 5, 2); !ok {
		t.Fatal("no join proposal")
	}
	// The answer is lost; the retry, against the same partition epoch,
	// is refused at epoch 11, which the accepted first attempt made.
	retry, ok := l.Propose(5, 5, 40)
	if !ok || retry.Seq != 2 || retry.PartitionEpoch != 10 {
		t.Fatalf("retry: %+v %v", retry, ok)
	}
	mustFetch(t, l, 2, 1, 9, 9, 9, 41)
	if !l.Answered(4, 2, false, 11) {
		t.Fatal("the newest proposal's answer was taken as stale")
	}
	if got := l.Target(9); got != 5 {
		t.Fatalf("target %d after a refusal decided at a newer partition epoch: b3 (durable to 5) may be in sync", got)
	}
	if _, ok := l.Propose(9, 5, 500); ok {
		t.Fatal("proposed again before the newer partition state arrived")
	}
	l.SetState(PartitionState{Partition: 0, Replicas: []BrokerID{1, 2, 3}, ISR: []BrokerID{1, 2, 3}, Leader: 1,
		LeaderBrokerEpoch: 7, LeaderEpoch: 4, PartitionEpoch: 11}, 2, 501)
	if got := l.Target(9); got != 5 {
		t.Fatalf("target %d with b3 in sync", got)
	}
}

func isrOf(req AlterPartitionRequest) []BrokerID {
	var out []BrokerID
	for _, m := range req.NewISR {
		out = append(out, m.Broker)
	}
	return out
}

func TestLeadingShrinksLaggingFollower(t *testing.T) {
	l := newTestLeading([]BrokerID{1, 2, 3})
	mustFetch(t, l, 2, 1, 0, 0, 0, 0)
	mustFetch(t, l, 3, 1, 0, 0, 0, 0)
	mustFetch(t, l, 2, 1, 0, 0, 5, 50) // behind from now on
	mustFetch(t, l, 3, 1, 5, 5, 5, 50)
	if _, ok := l.Propose(5, 0, 100); ok {
		t.Fatal("shrank within the lag bound")
	}
	mustFetch(t, l, 3, 1, 5, 5, 5, 150)
	req, ok := l.Propose(5, 0, 151)
	if !ok || !slices.Equal(isrOf(req), []BrokerID{1, 3}) {
		t.Fatalf("lagging b2 not proposed out: %+v %v", req, ok)
	}
	// Unanswered, it is sent again after RetryMs.
	if _, ok := l.Propose(5, 0, 170); ok {
		t.Fatal("resent before RetryMs")
	}
	if req2, ok := l.Propose(5, 0, 181); !ok || req2.Seq != 2 {
		t.Fatalf("not resent after RetryMs: %+v %v", req2, ok)
	}
}

func TestLeadingAcks(t *testing.T) {
	l := newTestLeading([]BrokerID{1})
	if err := l.Admit(true); !errors.Is(err, ErrNotEnoughReplicas) {
		t.Fatalf("acks=all with 1 in-sync replica of min 2: %v", err)
	}
	if err := l.Admit(false); err != nil {
		t.Fatalf("acks=1: %v", err)
	}
	if done, _ := l.Acked(5, 4); done {
		t.Fatal("acked below the high watermark")
	}
	if done, err := l.Acked(5, 5); !done || !errors.Is(err, ErrNotEnoughReplicasAfter) {
		t.Fatalf("acked with the in-sync set below min: %v %v", done, err)
	}
	l.SetState(PartitionState{Partition: 0, Replicas: []BrokerID{1, 2, 3}, ISR: []BrokerID{1, 2}, Leader: 1,
		LeaderBrokerEpoch: 7, LeaderEpoch: 4, PartitionEpoch: 11}, 2, 1)
	if done, err := l.Acked(5, 5); !done || err != nil {
		t.Fatalf("acked: %v %v", done, err)
	}
}

// epochLog is a follower's leader-epoch cache for Divergence: entries
// (epoch, start) in order, ending at end.
type epochLog struct {
	epochs []Epoch
	starts []Offset
	end    Offset
}

func (e epochLog) lookup(want Epoch) (Epoch, Offset) {
	for i := len(e.epochs) - 1; i >= 0; i-- {
		if e.epochs[i] <= want {
			if i+1 < len(e.epochs) {
				return e.epochs[i], e.starts[i+1]
			}
			return e.epochs[i], e.end
		}
	}
	return NoEpoch, 0
}

func TestDivergence(t *testing.T) {
	// Follower: epoch 1 at 0..10, epoch 3 at 10..20 (it led epoch 3
	// without replicating). Leader: epoch 1 at 0..10, epoch 2 at 10..15,
	// epoch 4 after. KIP-279's case: the leader answers (2, 15) for our
	// epoch 3; cutting at 15 would keep our epoch-3 records 10..15 that
	// the leader has as epoch 2.
	f := epochLog{epochs: []Epoch{1, 3}, starts: []Offset{0, 10}, end: 20}
	cut, agreed, next := Divergence(2, 15, f.lookup, 0)
	if cut != 10 || agreed || next != 1 {
		t.Fatalf("round 1: cut %d agreed %v next %d, want 10 false 1", cut, agreed, next)
	}
	// Round 2 asks for epoch 1: the leader answers (1, 10).
	f.end = 10
	if cut, agreed, _ := Divergence(1, 10, f.lookup, 0); cut != 10 || !agreed {
		t.Fatalf("round 2: cut %d agreed %v", cut, agreed)
	}
	// An epoch this broker led without writing is in its cache with no
	// batch: the next round asks below it, not for it again.
	g := epochLog{epochs: []Epoch{1, 3}, starts: []Offset{0, 10}, end: 10}
	cut, agreed, next = Divergence(2, 15, g.lookup, 0)
	if cut != 10 || agreed || next != 1 {
		t.Fatalf("phantom epoch: cut %d agreed %v next %d", cut, agreed, next)
	}
	// Lacking the leader's epoch, the cut is where our own largest epoch
	// below it ends, even past the leader's end: there our batches are
	// another epoch's, and the leader's end may fall inside one. Follower:
	// epoch 1 at 0..6 (batches 0..3, 3..4, 4..6), epoch 3 at 6..7; the
	// leader has epoch 2 at 3..5 (seed 1865773).
	m := epochLog{epochs: []Epoch{1, 3}, starts: []Offset{0, 6}, end: 7}
	if cut, agreed, next := Divergence(2, 5, m.lookup, 0); cut != 6 || agreed || next != 1 {
		t.Fatalf("leader's end inside our batch: cut %d agreed %v next %d, want 6 false 1", cut, agreed, next)
	}
	// Same epoch: agree up to the earlier end.
	h := epochLog{epochs: []Epoch{1, 2}, starts: []Offset{0, 10}, end: 30}
	if cut, agreed, _ := Divergence(2, 15, h.lookup, 0); cut != 15 || !agreed {
		t.Fatalf("same epoch: cut %d agreed %v", cut, agreed)
	}
	// The leader knows none of our epochs, or we none at or below its.
	if cut, agreed, _ := Divergence(NoEpoch, 0, h.lookup, 3); cut != 3 || !agreed {
		t.Fatalf("leader without our epochs: cut %d agreed %v", cut, agreed)
	}
	k := epochLog{epochs: []Epoch{5}, starts: []Offset{0}, end: 8}
	if cut, agreed, _ := Divergence(2, 15, k.lookup, 0); cut != 0 || !agreed {
		t.Fatalf("our epochs all newer: cut %d agreed %v", cut, agreed)
	}
}
