package wire

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKgoProduceConsume produces 50k records over 8 partitions with
// acks=all and reads them back byte for byte, in order per partition.
func TestKgoProduceConsume(t *testing.T) {
	ts := startServer(t, nil)
	const topic, parts, total = "orders", 8, 50_000
	admin := ts.client(t)
	createTopic(t, admin, topic, parts, nil)

	rng := rand.New(rand.NewSource(1))
	want := make([][]*kgo.Record, parts)
	recs := make([]*kgo.Record, total)
	for i := range recs {
		val := make([]byte, 16+rng.Intn(200))
		rng.Read(val)
		r := &kgo.Record{
			Topic:     topic,
			Partition: int32(i % parts),
			Key:       []byte(fmt.Sprintf("k-%06d", i)),
			Value:     val,
			Headers:   []kgo.RecordHeader{{Key: "i", Value: []byte(fmt.Sprint(i))}},
		}
		recs[i] = r
		want[r.Partition] = append(want[r.Partition], r)
	}
	prod := ts.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	for p := range parts {
		for i, r := range want[p] {
			if r.Offset != int64(i) {
				t.Fatalf("partition %d record %d got offset %d", p, i, r.Offset)
			}
		}
	}

	offsets := map[string]map[int32]kgo.Offset{topic: {}}
	for p := range int32(parts) {
		offsets[topic][p] = kgo.NewOffset().AtStart()
	}
	cons := ts.client(t, kgo.ConsumePartitions(offsets), kgo.FetchMaxWait(time.Second))
	got := make([][]*kgo.Record, parts)
	n := 0
	for n < total {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", n, total, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			got[r.Partition] = append(got[r.Partition], r)
			n++
		})
	}
	for p := range parts {
		if len(got[p]) != len(want[p]) {
			t.Fatalf("partition %d: got %d records, want %d", p, len(got[p]), len(want[p]))
		}
		for i := range got[p] {
			g, w := got[p][i], want[p][i]
			if g.Offset != int64(i) || !bytes.Equal(g.Key, w.Key) || !bytes.Equal(g.Value, w.Value) ||
				len(g.Headers) != 1 || !bytes.Equal(g.Headers[0].Value, w.Headers[0].Value) {
				t.Fatalf("partition %d record %d differs (offset %d, key %q want %q)", p, i, g.Offset, g.Key, w.Key)
			}
		}
	}
}

// TestKgoFetchLongPoll checks that a consumer long-polling with a 5 s max
// wait gets a record produced while it waits long before the 5 s pass.
func TestKgoFetchLongPoll(t *testing.T) {
	ts := startServer(t, func(_ *Config, b *memBroker) { b.watchAdded = make(chan PartitionRef, 16) })
	const topic = "poll"
	admin := ts.client(t)
	createTopic(t, admin, topic, 1, nil)

	cons := ts.client(t,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(5*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := make(chan time.Time, 1)
	pollStart := time.Now()
	go func() {
		for ctx.Err() == nil {
			fs := cons.PollFetches(ctx)
			if fs.NumRecords() > 0 {
				got <- time.Now()
				return
			}
		}
	}()
	// The consumer's fetch is parked on the partition once a watch exists.
	select {
	case <-ts.broker.watchAdded:
	case <-ctx.Done():
		t.Fatal("consumer never long-polled")
	}
	prod := ts.client(t, kgo.DefaultProduceTopic(topic))
	produced := time.Now()
	if err := prod.ProduceSync(ctx, kgo.StringRecord("wake up")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-got:
		lat := at.Sub(produced)
		t.Logf("record delivered %v after produce (%v after the poll started)", lat, at.Sub(pollStart))
		if lat >= 4*time.Second {
			t.Fatalf("long-poll returned after %v; want well under the 5 s max wait", lat)
		}
	case <-ctx.Done():
		t.Fatal("consumer never got the record")
	}
}

// TestKgoAutoCreate produces to a missing topic with auto-creation on.
func TestKgoAutoCreate(t *testing.T) {
	ts := startServer(t, func(_ *Config, b *memBroker) { b.autoCreate = true })
	cl := ts.client(t, kgo.DefaultProduceTopic("auto"), kgo.AllowAutoTopicCreation())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, kgo.StringRecord("a"), kgo.StringRecord("b")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if ti, ok := (&memSession{b: ts.broker}).Topic("auto"); !ok || len(ti.Partitions) != 3 {
		t.Fatalf("auto topic: %+v %v", ti, ok)
	}
}
