package e2e

import (
	"testing"
	"time"

	"github.com/strand-io/strand/cluster"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestOffsetForLeaderEpoch asks a real broker with franz-go's kmsg types,
// before and after a restart: a partition's only leader epoch so far is 0,
// from the log start to the log end (Kafka's answer for a partition whose
// first leader never changed); a higher epoch is unknown (-1/-1); naming a
// current leader epoch above the partition's is UNKNOWN_LEADER_EPOCH.
// A Fetch with a replica id gets Kafka's answer for a replica the leader
// does not know, since no partition has a follower yet.
func TestOffsetForLeaderEpoch(t *testing.T) {
	dir := testDataDir(t)
	n := startNode(t, dir, nil)
	const topic = "ofle"
	createTopic(t, newClient(t, n.Addr()), topic, 2)
	cl := manualClient(t, n.Addr())
	produceN(t, cl, topic, 0, 10, nil)

	check := func(stage string, cl *kgo.Client) {
		t.Helper()
		type want struct {
			code   int16
			epoch  int32
			offset int64
		}
		for _, tc := range []struct {
			name                  string
			part, current, leader int32
			want                  want
		}{
			{"epoch 0", 0, -1, 0, want{0, 0, 10}},
			{"epoch 0, current named", 0, 0, 0, want{0, 0, 10}},
			{"empty partition", 1, 0, 0, want{0, 0, 0}},
			{"epoch above the newest", 0, -1, 4, want{0, -1, -1}},
			{"undefined epoch", 0, -1, -1, want{0, -1, -1}},
			{"current epoch unknown here", 0, 1, 0, want{kerr.UnknownLeaderEpoch.Code, -1, -1}},
			{"unknown partition", 7, -1, 0, want{kerr.UnknownTopicOrPartition.Code, -1, -1}},
		} {
			req := kmsg.NewPtrOffsetForLeaderEpochRequest()
			req.ReplicaID = -1
			rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
			rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = tc.part, tc.current, tc.leader
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			// Straight to the broker: kgo's sharding would answer an
			// unknown partition itself.
			resp, err := req.RequestWith(ctxFor(t, 20*time.Second), cl.Broker(0))
			if err != nil {
				t.Fatalf("%s %s: %v", stage, tc.name, err)
			}
			p := resp.Topics[0].Partitions[0]
			if got := (want{p.ErrorCode, p.LeaderEpoch, p.EndOffset}); got != tc.want {
				t.Errorf("%s %s: got %+v, want %+v", stage, tc.name, got, tc.want)
			}
		}
		for _, tc := range []struct {
			current int32
			want    int16
		}{{-1, kerr.NotLeaderForPartition.Code}, {0, kerr.UnknownLeaderEpoch.Code}, {3, kerr.UnknownLeaderEpoch.Code}} {
			req := kmsg.NewPtrFetchRequest()
			req.Version = 12
			req.ReplicaID, req.MaxWaitMillis, req.MaxBytes, req.SessionEpoch = 2, 5000, 1<<20, -1
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.CurrentLeaderEpoch, rp.PartitionMaxBytes = 0, tc.current, 1<<20
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(ctxFor(t, 20*time.Second), cl.Broker(0))
			if err != nil {
				t.Fatalf("%s follower fetch: %v", stage, err)
			}
			if p := resp.Topics[0].Partitions[0]; p.ErrorCode != tc.want || len(p.RecordBatches) != 0 {
				t.Errorf("%s follower fetch from an unknown replica, current epoch %d: %s, %d bytes; want %s",
					stage, tc.current, kerr.ErrorForCode(p.ErrorCode), len(p.RecordBatches), kerr.ErrorForCode(tc.want))
			}
		}
	}
	check("running", cl)

	// KIP-320: franz-go validates an offset that comes with a leader epoch
	// through OffsetForLeaderEpoch before it consumes from there.
	cons := newClient(t, n.Addr(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		topic: {0: kgo.NewOffset().At(4).WithEpoch(0)},
	}))
	var got []int64
	for len(got) < 6 {
		fs := cons.PollFetches(ctxFor(t, 20*time.Second))
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, r.Offset) })
	}
	if got[0] != 4 || got[len(got)-1] != 9 {
		t.Fatalf("consumed offsets %v after validating offset 4 in epoch 0", got)
	}
	if asked := requestsNamed(t, n, "OffsetForLeaderEpoch"); asked == 0 {
		t.Fatal("franz-go consumed without validating its epoch: OffsetForLeaderEpoch was never asked")
	}
	cons.Close()

	closeNode(t, n)
	n = startNode(t, dir, nil)
	check("restarted", manualClient(t, n.Addr()))
}

// requestsNamed sums a broker's request counters for one API over its cores.
func requestsNamed(t testing.TB, n *cluster.Node, api string) uint64 {
	t.Helper()
	snap, err := n.Snapshot(ctxFor(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var sum uint64
	for _, c := range snap {
		sum += c.Requests[api]
	}
	return sum
}
