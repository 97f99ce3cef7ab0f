package e2e

import (
	"bytes"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// consumeGroup joins group as a franz-go member, consumes topic until it
// has n records, commits them, leaves, and returns their offsets in order.
func consumeGroup(t testing.TB, addr, group, topic string, n int) []int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.SessionTimeout(groupSession), kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := ctxFor(t, 60*time.Second)
	var offs []int64
	for len(offs) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("group %s consumed %d of %d records of %s: %v", group, len(offs), n, topic, ctx.Err())
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", tp, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if !bytes.Equal(r.Value, recValue(r.Partition, r.Offset)) {
				t.Fatalf("%s/%d offset %d: not the record produced there", topic, r.Partition, r.Offset)
			}
			offs = append(offs, r.Offset)
		})
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	return offs
}

// TestDeletedTopicTakesItsOffsets: a group consumes and commits 10
// records; the topic is deleted, re-created, and given 15 records; the
// group must start the new topic from its beginning (auto.offset.reset),
// not at the old topic's committed offset 10, which skipped ten records.
// The commits stay gone across a restart (their tombstones are in the
// offsets log), and a commit naming the deleted topic is refused.
func TestDeletedTopicTakesItsOffsets(t *testing.T) {
	const topic, group = "reborn", "reborn-group"
	dir := testDataDir(t)
	n := startNode(t, dir, nil)
	admin := newClient(t, n.Addr())
	createTopic(t, admin, topic, 1)
	prod := produceClient(t, n.Addr())
	produceSeq(t, prod, topic, 1, 10, 1)
	if got := consumeGroup(t, n.Addr(), group, topic, 10); got[0] != 0 || got[9] != 9 {
		t.Fatalf("first life consumed offsets %v", got)
	}
	if c := committedOffsets(t, admin, group, topic, 1); c[0] != 10 {
		t.Fatalf("committed %v, want [10]", c)
	}

	if code := deleteTopic(t, admin, topic); code != 0 {
		t.Fatalf("delete: %s", codeName(code))
	}
	if c := committedOffsets(t, admin, group, topic, 1); c[0] != -1 {
		t.Fatalf("after the delete the group still has offset %d committed for %s", c[0], topic)
	}
	// A consumer that had not noticed the delete commits: refused, as by
	// Kafka, so its offset cannot come back either.
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Group, oc.Generation = group, -1
	ot := kmsg.NewOffsetCommitRequestTopic()
	ot.Topic = topic
	op := kmsg.NewOffsetCommitRequestTopicPartition()
	op.Offset = 10
	ot.Partitions = append(ot.Partitions, op)
	oc.Topics = append(oc.Topics, ot)
	resp, err := oc.RequestWith(ctxFor(t, 20*time.Second), admin)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("a commit to the deleted topic answered %s", codeName(code))
	}

	createTopic(t, admin, topic, 1)
	produceSeq(t, prod, topic, 1, 15, 1)
	closeNode(t, n)
	n2 := startNode(t, dir, nil)
	admin2 := newClient(t, n2.Addr())
	if c := committedOffsets(t, admin2, group, topic, 1); c[0] != -1 {
		t.Fatalf("after a restart the re-created topic has offset %d committed", c[0])
	}
	got := consumeGroup(t, n2.Addr(), group, topic, 15)
	for i, o := range got {
		if o != int64(i) {
			t.Fatalf("the group consumed the re-created topic as %v: record %d skipped", got, i)
		}
	}
}

// TestDeletedTopicOffsetsSurviveSIGKILL: the offsets' tombstones are
// durable by the time DeleteTopics answers, so a broker SIGKILLed right
// after it does not bring the commits back for a re-created topic.
func TestDeletedTopicOffsetsSurviveSIGKILL(t *testing.T) {
	const topic, group = "reborn-k", "reborn-k-group"
	bp := startProc(t, testDataDir(t))
	admin := newClient(t, bp.addr)
	createTopic(t, admin, topic, 2)
	produceSeq(t, produceClient(t, bp.addr), topic, 2, 10, 1)
	consumeGroup(t, bp.addr, group, topic, 20)
	if c := committedOffsets(t, admin, group, topic, 2); c[0] != 10 || c[1] != 10 {
		t.Fatalf("committed %v, want [10 10]", c)
	}
	if code := deleteTopic(t, admin, topic); code != 0 {
		t.Fatalf("delete: %s", codeName(code))
	}
	bp.kill()
	bp.start()
	admin2 := newClient(t, bp.addr)
	createTopic(t, admin2, topic, 2)
	if c := committedOffsets(t, admin2, group, topic, 2); c[0] != -1 || c[1] != -1 {
		t.Fatalf("after a SIGKILL right after the delete, the re-created topic has offsets %v committed", c)
	}
}
