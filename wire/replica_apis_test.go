package wire

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// setPartition changes the test broker's metadata for one partition.
func setPartition(h *harness, topic string, p int32, fn func(*PartitionInfo)) {
	h.broker.mu.Lock()
	defer h.broker.mu.Unlock()
	fn(&h.broker.topics[topic].info.Partitions[p])
}

func epochReq(topic string, parts ...[3]int32) *kmsg.OffsetForLeaderEpochRequest {
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = topic
	for _, p := range parts {
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = p[0], p[1], p[2]
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

// TestOffsetForLeaderEpochHandler: unknown partitions, KIP-320 fencing of
// the current leader epoch (only from v2, which carries it), and the
// backend's answer passed through, at every version.
func TestOffsetForLeaderEpochHandler(t *testing.T) {
	h := newHarness(Config{})
	h.broker.createTopic("t", 2, nil)
	setPartition(h, "t", 0, func(p *PartitionInfo) { p.LeaderEpoch = 3 })
	for range 2 {
		h.do(t, produceReq("t", 0, 1, makeBatch([]byte("a"), []byte("b"))), 8)
	}
	type want struct {
		code   int16
		epoch  int32
		offset int64
	}
	ok := func(e int32, o int64) want { return want{0, e, o} }
	fail := func(c int16) want { return want{c, -1, -1} }
	for v := int16(0); v <= 4; v++ {
		cases := []struct {
			name string
			part [3]int32 // partition, current leader epoch, leader epoch
			want want
		}{
			{"current epoch", [3]int32{0, -1, 3}, ok(3, 4)},
			{"older epoch", [3]int32{0, -1, 1}, ok(1, 0)},
			{"above the newest", [3]int32{0, -1, 9}, fail(0)},
			{"undefined epoch", [3]int32{0, -1, -1}, fail(0)},
			{"current matches", [3]int32{0, 3, 3}, ok(3, 4)},
			{"fenced", [3]int32{0, 2, 3}, fail(kerr.FencedLeaderEpoch.Code)},
			{"unknown leader epoch", [3]int32{0, 4, 3}, fail(kerr.UnknownLeaderEpoch.Code)},
			{"unknown partition", [3]int32{9, -1, 3}, fail(kerr.UnknownTopicOrPartition.Code)},
		}
		for _, tc := range cases {
			w := tc.want
			if v < 2 && tc.part[1] >= 0 {
				w = ok(3, 4) // no current leader epoch before v2: nothing fenced
			}
			r := h.do(t, epochReq("t", tc.part), v).(*kmsg.OffsetForLeaderEpochResponse)
			p := r.Topics[0].Partitions[0]
			gotEpoch := p.LeaderEpoch
			if v == 0 {
				gotEpoch = w.epoch // v0 carries no epoch
			}
			if p.Partition != tc.part[0] || p.ErrorCode != w.code || gotEpoch != w.epoch || p.EndOffset != w.offset {
				t.Errorf("v%d %s: partition %d code %s epoch %d end %d, want code %s epoch %d end %d", v, tc.name,
					p.Partition, errName(p.ErrorCode), p.LeaderEpoch, p.EndOffset, errName(w.code), w.epoch, w.offset)
			}
		}
		r := h.do(t, epochReq("nope", [3]int32{0, -1, 0}), v).(*kmsg.OffsetForLeaderEpochResponse)
		if c := r.Topics[0].Partitions[0].ErrorCode; c != kerr.UnknownTopicOrPartition.Code {
			t.Errorf("v%d unknown topic: %s", v, errName(c))
		}
	}
}

// TestFollowerFetchHandler: a Fetch with a replica id reads through
// FollowerFetch only for one of the partition's followers; any other
// replica gets Kafka's answer for a replica it does not know
// (UNKNOWN_LEADER_EPOCH when the request names an epoch, else
// NOT_LEADER_OR_FOLLOWER), after the epoch fencing.
func TestFollowerFetchHandler(t *testing.T) {
	h := newHarness(Config{})
	h.broker.createTopic("t", 2, nil)
	h.do(t, produceReq("t", 0, 1, makeBatch([]byte("a"))), 8)
	h.do(t, produceReq("t", 1, 1, makeBatch([]byte("b"))), 8)
	setPartition(h, "t", 1, func(p *PartitionInfo) { p.LeaderEpoch, p.Replicas = 2, []int32{p.Leader, 7} })
	leader := h.broker.nodeID
	for _, tc := range []struct {
		name    string
		v       int16
		replica int32
		part    int32
		current int32
		want    int16
	}{
		{"not a replica, no epoch", 12, 7, 0, -1, kerr.NotLeaderForPartition.Code},
		{"not a replica, old version", 8, 7, 0, 5, kerr.NotLeaderForPartition.Code},
		{"not a replica, epoch named", 12, 7, 0, 0, kerr.UnknownLeaderEpoch.Code},
		{"the leader itself", 12, leader, 1, 2, kerr.UnknownLeaderEpoch.Code},
		{"fenced before the replica check", 12, 7, 1, 1, kerr.FencedLeaderEpoch.Code},
		{"unknown epoch", 12, 7, 1, 3, kerr.UnknownLeaderEpoch.Code},
		{"follower", 12, 7, 1, 2, 0},
		{"follower, no epoch", 12, 7, 1, -1, 0},
		{"follower, v4", 4, 7, 1, 9, 0},
	} {
		before := h.broker.followerFetches
		req := fetchReq(1<<20, 1<<20, tc.part)
		req.ReplicaID, req.MaxWaitMillis = tc.replica, 10_000
		req.Topics[0].Partitions[0].CurrentLeaderEpoch = tc.current
		r := h.do(t, req, tc.v).(*kmsg.FetchResponse)
		p := r.Topics[0].Partitions[0]
		read := h.broker.followerFetches - before
		if p.ErrorCode != tc.want || (tc.want == 0) != (read == 1) {
			t.Errorf("%s: code %s, %d follower reads; want %s", tc.name, errName(p.ErrorCode), read, errName(tc.want))
		}
		if tc.want == 0 && (len(p.RecordBatches) == 0 || p.HighWatermark != 1) {
			t.Errorf("%s: %d bytes, hw %d", tc.name, len(p.RecordBatches), p.HighWatermark)
		}
	}
}
