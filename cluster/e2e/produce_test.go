package e2e

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestProduceConsumeMillion produces 1,000,000 records with acks=all from
// four goroutines into an 8-partition topic (its partitions spread over
// every core), checks each ack's offset, then consumes everything back and
// checks every record byte for byte and in order per partition. Payloads
// are derived from (partition, offset), so nothing is kept in memory.
func TestProduceConsumeMillion(t *testing.T) {
	const parts = 8
	total := int64(1_000_000)
	if testing.Short() {
		total = 100_000
	}
	perPart := total / parts
	n := startNode(t, testDataDir(t), nil)
	cl := produceClient(t, n.Addr())
	createTopic(t, cl, "million", parts)

	start := time.Now()
	produceSeq(t, cl, "million", parts, perPart, 4)
	t.Logf("produced %d records (acks=all) in %v", total, time.Since(start).Round(time.Millisecond))

	if got := endOffsets(t, cl, "million", parts); !equalInts(got, counts(parts, perPart)) {
		t.Fatalf("end offsets %v, want %d each", got, perPart)
	}
	start = time.Now()
	verifyTopic(t, n.Addr(), "million", counts(parts, perPart), 5*time.Minute)
	t.Logf("consumed and verified %d records in %v", total, time.Since(start).Round(time.Millisecond))
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestFetchLongPollWakesOnProduce: a consumer long-polling with a 10 s max
// wait receives a record produced while it waits, well before the max wait
// (< 5 s). Rounds alternate partitions so that the partition is sometimes
// on the consumer connection's core and sometimes on another one. Rounds
// begin once the consumer fetches every partition (see the warm-up).
func TestFetchLongPollWakesOnProduce(t *testing.T) {
	const parts = 8
	n := startNode(t, testDataDir(t), nil)
	prod := produceClient(t, n.Addr())
	createTopic(t, prod, "poll", parts)

	// Count the consumer's Fetch requests and responses, so that a round
	// produces only while a fetch is in flight (most likely parked at the
	// broker): no sleeping. kgo has at most one fetch in flight per broker.
	hook := &fetchHook{signal: make(chan struct{}, 1)}
	offsets := map[string]map[int32]kgo.Offset{"poll": {}}
	for p := range int32(parts) {
		offsets["poll"][p] = kgo.NewOffset().AtStart()
	}
	cons := newClient(t, n.Addr(), kgo.ConsumePartitions(offsets), kgo.FetchMaxWait(10*time.Second), kgo.WithHooks(hook))
	ctx := ctxFor(t, 2*time.Minute)

	got := make(chan *kgo.Record, 16)
	go func() {
		for ctx.Err() == nil {
			fs := cons.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) { got <- r })
		}
	}()
	// Warm up: one record in every partition, all consumed, before any
	// round. The consumer lists its start offsets first and may send its
	// first fetch (long-polling 10 s) naming only the partitions resolved
	// so far; a round producing to another one then waits for that fetch
	// to expire, whatever the broker does. Once every partition has been
	// consumed from, every fetch names all of them.
	seq := make([]int64, parts)
	for p := range int32(parts) {
		rec := &kgo.Record{Topic: "poll", Partition: p, Key: recKey(p, 0), Value: recValue(p, 0)}
		if err := prod.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatalf("warm-up produce: %v", err)
		}
	}
	for range parts {
		select {
		case r := <-got:
			if r.Offset != seq[r.Partition] {
				t.Fatalf("warm-up: got %d/%d, want offset %d", r.Partition, r.Offset, seq[r.Partition])
			}
			seq[r.Partition]++
		case <-ctx.Done():
			t.Fatalf("warm-up: records of partitions %v not consumed", seq)
		}
	}
	for round := range 6 {
		p := int32(round*3) % parts
		for hook.writes.Load() <= hook.reads.Load() {
			select {
			case <-hook.signal:
			case <-ctx.Done():
				t.Fatalf("round %d: the consumer sent no fetch", round)
			}
		}
		produced := time.Now()
		rec := &kgo.Record{Topic: "poll", Partition: p, Key: recKey(p, seq[p]), Value: recValue(p, seq[p])}
		if err := prod.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatalf("round %d: produce: %v", round, err)
		}
		acked := time.Since(produced)
		select {
		case r := <-got:
			lat := time.Since(produced)
			if r.Partition != p || r.Offset != seq[p] {
				t.Fatalf("round %d: got %d/%d, want %d/%d", round, r.Partition, r.Offset, p, seq[p])
			}
			t.Logf("round %d: partition %d record acked after %v, delivered to the long-polling consumer after %v", round, p, acked.Round(time.Microsecond), lat.Round(time.Microsecond))
			if lat >= 5*time.Second {
				t.Fatalf("round %d: long-poll answered after %v; want well under the 10 s max wait", round, lat)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("round %d: record not delivered within 15 s (fetches sent %d, answered %d)", round, hook.writes.Load(), hook.reads.Load())
		}
		seq[p]++
	}
}

// fetchHook counts Fetch requests written and responses read, and signals
// after each write.
type fetchHook struct {
	writes, reads atomic.Int64
	signal        chan struct{}
}

func (h *fetchHook) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == kmsg.Fetch.Int16() && err == nil {
		h.writes.Add(1)
		select {
		case h.signal <- struct{}{}:
		default:
		}
	}
}

func (h *fetchHook) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == kmsg.Fetch.Int16() {
		h.reads.Add(1)
	}
}

var (
	_ kgo.HookBrokerWrite = (*fetchHook)(nil)
	_ kgo.HookBrokerRead  = (*fetchHook)(nil)
)
