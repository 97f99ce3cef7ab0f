package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkClusterMetadata measures metadata operations on three loopback
// brokers (separate processes, one core each): the time from CreateTopics
// (sent to a broker that is not the controller) to the first acknowledged
// produce of a 1-partition topic, topics created per second one request
// at a time, and Metadata latency (all topics) once the cluster holds
// 10,000 partitions. Run with -benchtime 1x; docs/PERFORMANCE.md has the
// figures.
func BenchmarkClusterMetadata(b *testing.B) {
	c := startCluster(b, 3)
	ctx := ctxFor(b, 20*time.Minute)
	dc, err := describeCluster(ctx, c.client())
	if err != nil {
		b.Fatal(err)
	}
	via := dc.ControllerID%3 + 1 // a broker that must forward its proposals
	admin := c.clientOf(via)
	// franz-go waits MetadataMinAge (5 s) between metadata refreshes; a
	// client that keeps it short measures the brokers, not that wait.
	prod := c.client(kgo.RecordRetries(1000), kgo.RetryBackoffFn(func(int) time.Duration { return time.Millisecond }),
		kgo.MetadataMinAge(10*time.Millisecond))
	create := func(name string, parts int32) {
		code, err := createTopicReq(ctx, admin, name, parts, nil)
		if err != nil || code != 0 {
			b.Fatalf("create %s: %v %v", name, err, kerr.ErrorForCode(code))
		}
	}
	for i := 0; i < b.N; i++ {
		// 1. CreateTopics to the first acknowledged produce.
		const rounds = 20
		var firsts []time.Duration
		for r := range rounds {
			name := fmt.Sprintf("first-%d-%d", i, r)
			start := time.Now()
			create(name, 1)
			if err := prod.ProduceSync(ctx, &kgo.Record{Topic: name, Value: []byte("x")}).FirstErr(); err != nil {
				b.Fatal(err)
			}
			firsts = append(firsts, time.Since(start))
		}
		slices.Sort(firsts)
		b.ReportMetric(float64(firsts[rounds/2].Microseconds())/1000, "create-to-produce-p50-ms")
		b.ReportMetric(float64(firsts[rounds-1].Microseconds())/1000, "create-to-produce-max-ms")

		// 2. Topics per second, one CreateTopics request each.
		const topics = 100
		start := time.Now()
		for r := range topics {
			create(fmt.Sprintf("rate-%d-%d", i, r), 1)
		}
		b.ReportMetric(topics/time.Since(start).Seconds(), "topics/s")

		// 3. Metadata latency with 10,000 partitions in the cluster.
		have := int32(8 + rounds + topics) // the offsets topic and the above
		for r := 0; have < 10000; r++ {
			parts := min(100, 10000-have)
			create(fmt.Sprintf("big-%d-%d", i, r), parts)
			have += parts
		}
		// Every broker applies and opens on its own: wait until each lists
		// them all, then time Metadata on one connection to one broker.
		count := func(resp *kmsg.MetadataResponse) int {
			total := 0
			for _, t := range resp.Topics {
				total += len(t.Partitions)
			}
			return total
		}
		for id := int32(1); id <= 3; id++ {
			waitUntil(b, 2*time.Minute, "10,000 partitions listed", func() error {
				m, err := c.metadataOf(ctx, id)
				if err != nil {
					return err
				}
				if n := count(m); n != 10000 {
					return fmt.Errorf("broker %d lists %d", id, n)
				}
				return nil
			})
		}
		rc := dialRaw(b, c.procs[via].addr)
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 12
		var lat []time.Duration
		for range 50 {
			start := time.Now()
			resp, err := rc.roundTrip(req, 30*time.Second)
			if err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
			if n := count(resp.(*kmsg.MetadataResponse)); n != 10000 {
				b.Fatalf("Metadata lists %d partitions, want 10,000", n)
			}
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "metadata-10k-p50-ms")
		b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds())/1000, "metadata-10k-p90-ms")
	}
}
