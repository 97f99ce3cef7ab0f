package replication

import (
	"slices"
	"testing"
)

var testCfg = ReplicaConfig{MinISR: 2, LagMaxMs: 100, RetryMs: 30, ProduceTimeoutMs: 1000, FetchBatchesMax: 8}

func cfgFor(b BrokerID) ReplicaConfig {
	c := testCfg
	c.Broker = b
	return c
}

// newLeader returns broker 1 leading partition 0 in epoch e with ISR isr.
func newLeader(t *testing.T, e Epoch, isr []BrokerID) *Replica {
	t.Helper()
	return newLeaderMinISR(t, e, isr, testCfg.MinISR)
}

func newLeaderMinISR(t *testing.T, e Epoch, isr []BrokerID, minISR int) *Replica {
	t.Helper()
	cfg := cfgFor(1)
	cfg.MinISR = minISR
	r := NewReplica(cfg, 7, nil, PartitionState{}, 0)
	r.ApplyState(PartitionState{Replicas: []BrokerID{1, 2, 3}, ISR: isr, Leader: 1, LeaderBrokerEpoch: 7,
		LeaderEpoch: e, PartitionEpoch: 1}, 0)
	if r.Role() != Leader {
		t.Fatalf("not leader: %v", r)
	}
	r.Ready()
	return r
}

func produce(r *Replica, seq int32, acks int, now Millis) Ready {
	r.Produce(ProduceRequest{ProducerID: 9, BaseSeq: seq, Values: []uint64{uint64(seq)}, Acks: acks}, now)
	return r.Ready()
}

// fetchSeq numbers the test followers' fetches (FetchRequest.Seq): each
// is later than the one before.
var fetchSeq uint64

func fetch(r *Replica, from BrokerID, off, durable Offset, now Millis) FetchResponse {
	fetchSeq++
	r.Step(from, FetchRequest{Replica: from, ReplicaBrokerEpoch: 1, CurrentLeaderEpoch: r.LeaderEpoch(),
		FetchOffset: off, DurableOffset: durable, Seq: fetchSeq}, now)
	rd := r.Ready()
	for _, e := range rd.ToBrokers {
		if resp, ok := e.Body.(FetchResponse); ok && e.To == from {
			return resp
		}
	}
	return FetchResponse{}
}

func TestAcksAllWaitsForEveryInSyncReplicasFsync(t *testing.T) {
	r := newLeader(t, 1, []BrokerID{1, 2, 3})
	rd := produce(r, 0, -1, 0)
	if len(rd.LogOps) != 1 || rd.SyncTo != 1 || len(rd.Produced) != 0 {
		t.Fatalf("append: %+v", rd)
	}
	r.Synced(1, 1)
	fetch(r, 2, 1, 1, 2) // b2 has it durably
	fetch(r, 3, 1, 0, 2) // b3 has it, not yet fsynced
	if got := r.Ready(); len(got.Produced) != 0 || r.HighWatermark() != 0 {
		t.Fatalf("acknowledged before b3's fsync: hw %d, %+v", r.HighWatermark(), got.Produced)
	}
	resp := fetch(r, 3, 1, 1, 3)
	if r.HighWatermark() != 1 || resp.HighWatermark != 1 {
		t.Fatalf("hw %d (sent %d), want 1", r.HighWatermark(), resp.HighWatermark)
	}
}

func TestAcksAllWaitsForLeaderFsync(t *testing.T) {
	r := newLeader(t, 1, []BrokerID{1, 2})
	produce(r, 0, -1, 0)
	fetch(r, 2, 1, 1, 1)
	if r.HighWatermark() != 0 {
		t.Fatalf("hw %d before the leader's own fsync", r.HighWatermark())
	}
	r.Synced(1, 2)
	if rd := r.Ready(); len(rd.Produced) != 1 || rd.Produced[0].Err != nil || r.HighWatermark() != 1 {
		t.Fatalf("after leader fsync: hw %d, %+v", r.HighWatermark(), rd.Produced)
	}
}

func TestAcksOneAfterLeaderFsync(t *testing.T) {
	r := newLeader(t, 1, []BrokerID{1, 2, 3})
	produce(r, 0, 1, 0)
	r.Synced(1, 1)
	if rd := r.Ready(); len(rd.Produced) != 1 || rd.Produced[0].Err != nil {
		t.Fatalf("acks=1 after fsync: %+v", rd.Produced)
	}
	if r.HighWatermark() != 0 {
		t.Fatalf("acks=1 must not move the high watermark: %d", r.HighWatermark())
	}
}

func TestMinISR(t *testing.T) {
	r := newLeader(t, 1, []BrokerID{1})
	if rd := produce(r, 0, -1, 0); len(rd.Produced) != 1 || rd.Produced[0].Err != ErrNotEnoughReplicas || len(rd.LogOps) != 0 {
		t.Fatalf("ISR 1 < min 2 should refuse before appending: %+v", rd)
	}

	r = newLeader(t, 1, []BrokerID{1, 2})
	produce(r, 0, -1, 0)
	// The controller takes b2 out (fenced) while the append waits.
	r.ApplyState(PartitionState{Replicas: []BrokerID{1, 2, 3}, ISR: []BrokerID{1}, Leader: 1, LeaderBrokerEpoch: 7,
		LeaderEpoch: 1, PartitionEpoch: 2}, 1)
	r.Synced(1, 2)
	if rd := r.Ready(); len(rd.Produced) != 1 || rd.Produced[0].Err != ErrNotEnoughReplicasAfter {
		t.Fatalf("ISR shrank below min while waiting: %+v", rd.Produced)
	}
}

func TestDeposedLeaderFailsPendingAndStopsAcknowledging(t *testing.T) {
	r := newLeader(t, 3, []BrokerID{1, 2, 3})
	produce(r, 0, -1, 0)
	// A follower already knows epoch 4: we were replaced.
	r.Step(2, FetchRequest{Replica: 2, ReplicaBrokerEpoch: 1, CurrentLeaderEpoch: 4, FetchOffset: 1, DurableOffset: 1}, 1)
	rd := r.Ready()
	if r.Role() != Deposed || len(rd.Produced) != 1 || rd.Produced[0].Err != ErrNotLeader {
		t.Fatalf("role %v, produced %+v", r.Role(), rd.Produced)
	}
	r.Synced(1, 2)
	if rd := produce(r, 1, -1, 3); len(rd.Produced) != 1 || rd.Produced[0].Err != ErrNotLeader || len(rd.LogOps) != 0 {
		t.Fatalf("deposed leader appended: %+v", rd)
	}
}

func TestRetriedBatchAnsweredWithOriginalOffset(t *testing.T) {
	r := newLeaderMinISR(t, 1, []BrokerID{1}, 1)
	produce(r, 0, -1, 0)
	rd := produce(r, 0, -1, 1) // the retry
	if len(rd.LogOps) != 0 {
		t.Fatalf("retry appended again: %+v", rd.LogOps)
	}
	r.Synced(1, 2)
	rd = r.Ready()
	if len(rd.Produced) != 2 || rd.Produced[0].Base != 0 || rd.Produced[1].Base != 0 {
		t.Fatalf("both attempts should get offset 0: %+v", rd.Produced)
	}
	if rd := produce(r, 5, -1, 3); len(rd.Produced) != 1 || rd.Produced[0].Err != ErrOutOfOrderSequence {
		t.Fatalf("gap: %+v", rd.Produced)
	}
}

func TestISRShrinkIsProposedAndAppliedOnlyWhenAccepted(t *testing.T) {
	r := newLeader(t, 1, []BrokerID{1, 2, 3})
	produce(r, 0, 1, 0)
	fetch(r, 2, 1, 1, 50)
	r.Tick(150) // b2 caught up at 50; b3 never fetched the record: it lags
	rd := r.Ready()
	if len(rd.ToController) != 1 {
		t.Fatalf("no proposal: %+v", rd)
	}
	req := rd.ToController[0]
	var got []BrokerID
	for _, m := range req.NewISR {
		got = append(got, m.Broker)
	}
	if !slices.Equal(got, []BrokerID{1, 2}) || req.LeaderEpoch != 1 || req.PartitionEpoch != 1 {
		t.Fatalf("proposal %+v", req)
	}
	if !slices.Equal(r.State().ISR, []BrokerID{1, 2, 3}) {
		t.Fatalf("ISR changed before the controller accepted: %v", r.State().ISR)
	}
	st := r.State()
	st.ISR, st.PartitionEpoch = []BrokerID{1, 2}, 2
	r.Ready()
	r.Step(0, AlterPartitionResponse{State: st}, 151)
	if !slices.Equal(r.State().ISR, []BrokerID{1, 2}) {
		t.Fatalf("accepted ISR not applied: %v", r.State().ISR)
	}
}

// TestFollowerTruncatesInRounds is KIP-279's case: the follower's last
// epoch (3) is unknown to the leader, whose answer names epoch 2, which
// the follower does not have either; it cuts to the end of its epoch 1 and
// asks again before fetching.
func TestFollowerTruncatesInRounds(t *testing.T) {
	log := []Batch{
		{Base: 0, Epoch: 1, Values: []uint64{1, 2, 3}},
		{Base: 3, Epoch: 3, Values: []uint64{4, 5, 6}},
	}
	f := NewReplica(cfgFor(2), 5, log, PartitionState{}, 0)
	f.ApplyState(PartitionState{Replicas: []BrokerID{1, 2, 3}, ISR: []BrokerID{1, 2}, Leader: 1,
		LeaderBrokerEpoch: 7, LeaderEpoch: 4, PartitionEpoch: 9}, 0)
	rd := f.Ready()
	if len(rd.ToBrokers) != 1 || rd.ToBrokers[0].Body.(EpochRequest).LeaderEpoch != 3 {
		t.Fatalf("first request: %+v", rd.ToBrokers)
	}
	f.Step(1, EpochResponse{CurrentLeaderEpoch: 4, Requested: 3, Epoch: 2, EndOffset: 5}, 1)
	rd = f.Ready()
	if f.LogEnd() != 3 || len(rd.LogOps) != 1 || rd.LogOps[0].Kind != OpTruncate || rd.LogOps[0].Offset != 3 {
		t.Fatalf("round 1: leo %d ops %+v", f.LogEnd(), rd.LogOps)
	}
	if req, ok := rd.ToBrokers[0].Body.(EpochRequest); !ok || req.LeaderEpoch != 1 {
		t.Fatalf("round 2 request: %+v", rd.ToBrokers)
	}
	f.Step(1, EpochResponse{CurrentLeaderEpoch: 4, Requested: 1, Epoch: 1, EndOffset: 3}, 2)
	rd = f.Ready()
	req, ok := rd.ToBrokers[0].Body.(FetchRequest)
	if !ok || req.FetchOffset != 3 || f.LogEnd() != 3 {
		t.Fatalf("after round 2: leo %d, %+v", f.LogEnd(), rd.ToBrokers)
	}
	// The fetch brings records and a high watermark past them: the
	// follower's high watermark stops at its own log end.
	f.Step(1, FetchResponse{Leader: 1, LeaderEpoch: 4, FetchOffset: 3, HighWatermark: 9,
		Batches: []Batch{{Base: 3, Epoch: 2, Values: []uint64{7, 8}}}}, 3)
	if f.LogEnd() != 5 || f.HighWatermark() != 5 {
		t.Fatalf("after fetch: %v", f)
	}
	// A duplicate of that answer is ignored.
	f.Ready()
	f.Step(1, FetchResponse{Leader: 1, LeaderEpoch: 4, FetchOffset: 3, HighWatermark: 9,
		Batches: []Batch{{Base: 3, Epoch: 2, Values: []uint64{7, 8}}}}, 3)
	if f.LogEnd() != 5 {
		t.Fatalf("duplicate applied: %v", f)
	}
}

func TestRestartedBrokerDoesNotTakeLeadershipGrantedToItsPreviousIncarnation(t *testing.T) {
	st := PartitionState{Replicas: []BrokerID{1, 2, 3}, ISR: []BrokerID{1, 2}, Leader: 1,
		LeaderBrokerEpoch: 7, LeaderEpoch: 4, PartitionEpoch: 9}
	r := NewReplica(cfgFor(1), 8, nil, st, 0)
	if r.Role() != Idle {
		t.Fatalf("incarnation 8 took leadership granted to 7: %v", r)
	}
}

// A leader deposed by a follower's newer epoch must not lead again when a
// delayed metadata update of its old epoch (an ISR change) arrives.
func TestDeposedLeaderIgnoresDelayedUpdateOfItsOldEpoch(t *testing.T) {
	r := newLeader(t, 3, []BrokerID{1, 2, 3})
	r.Step(2, FetchRequest{Replica: 2, ReplicaBrokerEpoch: 1, CurrentLeaderEpoch: 4}, 1)
	r.ApplyState(PartitionState{Replicas: []BrokerID{1, 2, 3}, ISR: []BrokerID{1, 2}, Leader: 1,
		LeaderBrokerEpoch: 7, LeaderEpoch: 3, PartitionEpoch: 2}, 2)
	if r.Role() == Leader {
		t.Fatalf("leads epoch 3 again after seeing epoch 4: %v", r)
	}
	if rd := produce(r, 0, -1, 3); len(rd.LogOps) != 0 || rd.Produced[0].Err != ErrNotLeader {
		t.Fatalf("appended: %+v", rd)
	}
}

// Kafka's isCaughtUp: a follower holding the whole log stays in sync
// however long ago it last fetched; one behind it leaves after the lag.
func TestCaughtUpFollowerStaysInSync(t *testing.T) {
	r := newLeaderMinISR(t, 1, []BrokerID{1, 2, 3}, 1)
	produce(r, 0, 1, 0)
	fetch(r, 2, 1, 1, 10)
	fetch(r, 3, 1, 1, 10)
	r.Tick(500)
	if rd := r.Ready(); len(rd.ToController) != 0 {
		t.Fatalf("caught-up followers proposed out: %+v", rd.ToController)
	}
	produce(r, 1, 1, 600)
	fetch(r, 2, 2, 2, 610)
	r.Tick(720)
	rd := r.Ready()
	if len(rd.ToController) != 1 || len(rd.ToController[0].NewISR) != 2 || rd.ToController[0].NewISR[1].Broker != 2 {
		t.Fatalf("b3 behind for over the lag should be proposed out: %+v", rd.ToController)
	}
}
