package wire

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDrainAnswersRetriably drives a real server through Drain: a long-poll
// fetch waiting on an empty partition answers at once, normally (no error,
// no records), Drain returns once nothing is in flight, and afterwards a
// produce gets NOT_LEADER_OR_FOLLOWER, admin writes NOT_CONTROLLER, while
// Metadata is answered as usual. Before draining
// existed the fetch waited out its max wait, and a shutdown then answered
// it with LEADER_NOT_AVAILABLE.
func TestDrainAnswersRetriably(t *testing.T) {
	ts := startServer(t, nil)
	ts.broker.createTopic("t", 1, nil)
	r := dialRaw(t, ts.addr)

	fetch := func(maxWait int32) *kmsg.FetchRequest {
		f := kmsg.NewPtrFetchRequest()
		f.MaxWaitMillis, f.MinBytes, f.MaxBytes = maxWait, 1, 1<<20
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = "t"
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition, fp.PartitionMaxBytes = 0, 1<<20
		ft.Partitions = append(ft.Partitions, fp)
		f.Topics = append(f.Topics, ft)
		return f
	}
	// The long-poll would wait a minute; the test's read deadline is 10 s.
	long := fetch(60_000)
	r.send(long, 11, 1)
	waitFor(t, "the fetch to be waiting", 10*time.Second, func() bool { return ts.broker.watcherCount(PartitionRef{Topic: "t", Partition: 0}) == 1 })
	if n := ts.Inflight(); n != 1 {
		t.Fatalf("in flight before draining: %d, want 1", n)
	}
	drained := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		drained <- ts.Drain(ctx)
	}()
	resp := r.recv(long, 1).(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("drained long-poll: %+v", resp)
	}
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || len(p.RecordBatches) != 0 {
		t.Fatalf("drained long-poll partition: code %d, %d bytes", p.ErrorCode, len(p.RecordBatches))
	}
	if err := <-drained; err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if !ts.Draining() || ts.Inflight() != 0 {
		t.Fatalf("after Drain: draining %v, in flight %d", ts.Draining(), ts.Inflight())
	}

	notLeader := kerr.NotLeaderForPartition.Code
	prod := kmsg.NewPtrProduceRequest()
	prod.Acks, prod.TimeoutMillis = -1, 5000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "t"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = makeBatch([]byte("v"))
	pt.Partitions = append(pt.Partitions, pp)
	prod.Topics = append(prod.Topics, pt)
	r.send(prod, 7, 3)
	if p := r.recv(prod, 3).(*kmsg.ProduceResponse).Topics[0].Partitions[0]; p.ErrorCode != notLeader {
		t.Fatalf("produce while draining: code %d, want %d", p.ErrorCode, notLeader)
	}
	if n := ts.broker.watcherCount(PartitionRef{Topic: "t", Partition: 0}); n != 0 {
		t.Fatalf("%d watches left", n)
	}

	ct := kmsg.NewPtrCreateTopicsRequest()
	nt := kmsg.NewCreateTopicsRequestTopic()
	nt.Topic, nt.NumPartitions, nt.ReplicationFactor = "new", 1, 1
	ct.Topics = append(ct.Topics, nt)
	r.send(ct, 4, 4)
	if got := r.recv(ct, 4).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode; got != kerr.NotController.Code {
		t.Fatalf("create topics while draining: code %d, want %d", got, kerr.NotController.Code)
	}

	md := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("t")
	md.Topics = append(md.Topics, mt)
	r.send(md, 7, 5)
	mr := r.recv(md, 5).(*kmsg.MetadataResponse)
	if len(mr.Topics) != 1 || mr.Topics[0].ErrorCode != 0 || len(mr.Brokers) != 1 {
		t.Fatalf("metadata while draining: %+v", mr)
	}
}

// TestDrainParksFetches: a Fetch or ListOffsets arriving while the server
// drains is never answered (an error would make KafkaJS rejoin its group);
// it does not hold the drain, and it ends with the connection.
func TestDrainParksFetches(t *testing.T) {
	h := newHarness(Config{})
	h.broker.createTopic("t", 1, nil)
	h.srv.drain.idle = make(chan struct{}, 1)
	h.srv.drain.on.Store(true)
	f := kmsg.NewPtrFetchRequest()
	f.SetVersion(11)
	f.MaxWaitMillis, f.MinBytes, f.MaxBytes = 0, 0, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "t"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	f.Topics = append(f.Topics, ft)
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.SetVersion(4)
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "t"
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Timestamp = -1
	lt.Partitions = append(lt.Partitions, lp)
	lo.Topics = append(lo.Topics, lt)
	if h.traffic(append(encodeRequest(f, 1, "c"), encodeRequest(lo, 2, "c")...), 100) {
		t.Fatal("connection closed")
	}
	if len(h.fc.out) != 0 || len(h.c.queue) != 2 || h.c.queue[0].done || h.c.queue[1].done {
		t.Fatalf("while draining: %d bytes answered, %d requests queued", len(h.fc.out), len(h.c.queue))
	}
	if n := h.srv.Inflight(); n != 0 {
		t.Fatalf("parked requests hold the drain: %d in flight", n)
	}
	h.close()
	if len(h.c.queue) != 0 || len(h.fc.out) != 0 {
		t.Fatalf("after close: %d queued, %d bytes written", len(h.c.queue), len(h.fc.out))
	}
}
