package cluster

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/strand-io/strand/wire"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkProduceWhileCleaning measures what the log cleaner costs a
// producer on the cleaning core: a broker on one core holds a topic with
// STRAND_BENCH_DIRTY_MIB (default 32) of rewritten keys and a second topic
// a producer writes to at a fixed rate (acks=all, no linger), timing each
// record from its scheduled send. In the "cleaning" rounds the dirty
// topic is switched to cleanup.policy=compact as the window opens, so the
// cleaner works through it (at the default budget) for the whole window;
// in the "idle" rounds it stays cleanup.policy=delete and nothing cleans.
// Rounds alternate, idle first, so drift on a shared machine hits both;
// the reported figures are the medians over rounds and their ratio. The
// window (STRAND_BENCH_WINDOW_S, default 8) must outlast the pass's map
// building at the default budget, or the round fails.
//
//	GOWORK=off go test -ldflags=-checklinkname=0 -run '^$' -bench ProduceWhileCleaning -benchtime 1x ./cluster/
func BenchmarkProduceWhileCleaning(b *testing.B) {
	dirtyMiB := envInt(b, "STRAND_BENCH_DIRTY_MIB", 32)
	rounds := envInt(b, "STRAND_BENCH_ROUNDS", 3)
	rate := envInt(b, "STRAND_BENCH_RATE", 1000)
	window := time.Duration(envInt(b, "STRAND_BENCH_WINDOW_S", 8)) * time.Second
	for range b.N {
		var p99 [2][]float64 // idle, cleaning
		var p50 [2][]float64
		for r := range 2 * rounds {
			cleaning := r%2 == 1
			lat, cleaned := produceWhileCleaningRound(b, dirtyMiB, rate, window, cleaning)
			slices.Sort(lat)
			i := 0
			if cleaning {
				i = 1
			}
			q50, q99 := quantile(lat, 0.50), quantile(lat, 0.99)
			p50[i], p99[i] = append(p50[i], q50), append(p99[i], q99)
			b.Logf("round %d cleaning=%v: %d records, p50 %.2f ms, p99 %.2f ms, max %.2f ms, log cleaned in the window %.1f MiB",
				r, cleaning, len(lat), q50, q99, lat[len(lat)-1], float64(cleaned)/(1<<20))
		}
		med := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
		b.ReportMetric(med(p50[0]), "idle-p50-ms")
		b.ReportMetric(med(p99[0]), "idle-p99-ms")
		b.ReportMetric(med(p50[1]), "cleaning-p50-ms")
		b.ReportMetric(med(p99[1]), "cleaning-p99-ms")
		b.ReportMetric(med(p99[1])/med(p99[0]), "p99-ratio")
	}
}

// produceWhileCleaningRound runs one round on a fresh broker and returns
// the producer's latencies in milliseconds and how much the dirty topic's
// log shrank during the window.
func produceWhileCleaningRound(b *testing.B, dirtyMiB, rate int, window time.Duration, cleaning bool) ([]float64, int64) {
	b.Helper()
	n, err := Start(Config{DataDir: b.TempDir(), Listen: "127.0.0.1:0", CPUs: []int{0},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()), kgo.ProducerLinger(0), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DisableIdempotentWrite(), kgo.MaxBufferedRecords(1<<20), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	createTopic := func(name string, configs map[string]string) {
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, 1
		for k, v := range configs {
			c := kmsg.NewCreateTopicsRequestTopicConfig()
			c.Name, c.Value = k, kmsg.StringPtr(v)
			rt.Configs = append(rt.Configs, c)
		}
		req.Topics = append(req.Topics, rt)
		req.TimeoutMillis = 30_000
		resp, err := req.RequestWith(ctx, cl)
		if err == nil {
			err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
		}
		if err != nil {
			b.Fatalf("create %s: %v", name, err)
		}
	}
	// 4 MiB segments: the dirty log is many sealed segments, as a
	// compacted topic's backlog is.
	createTopic("dirty", map[string]string{"cleanup.policy": "delete", "retention.ms": "-1", "segment.bytes": "4194304"})
	createTopic("hot", nil)

	// 1,000 keys, 1 KiB values: each key is rewritten about dirtyMiB
	// times, so cleaning drops almost all of the log.
	value := make([]byte, 1024)
	rand.Read(value)
	total := dirtyMiB << 10
	for i := 0; i < total; {
		var recs []*kgo.Record
		for j := 0; j < 1000 && i < total; j, i = j+1, i+1 {
			recs = append(recs, &kgo.Record{Topic: "dirty", Key: fmt.Appendf(nil, "key-%d", i%1000), Value: value})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			b.Fatal(err)
		}
	}
	// A record in each topic rolls nothing but makes the first timed
	// records find their partitions' metadata cached.
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "hot", Value: value}).FirstErr(); err != nil {
		b.Fatal(err)
	}
	ref := wire.PartitionRef{Topic: "dirty", Partition: 0}
	before, _ := partitionLogState(b, n, ref)

	if cleaning {
		// AlterConfigs replaces the topic's configs: the others again,
		// with compact.
		req := kmsg.NewPtrAlterConfigsRequest()
		res := kmsg.NewAlterConfigsRequestResource()
		res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, "dirty"
		for k, v := range map[string]string{"cleanup.policy": "compact", "retention.ms": "-1", "segment.bytes": "4194304"} {
			c := kmsg.NewAlterConfigsRequestResourceConfig()
			c.Name, c.Value = k, kmsg.StringPtr(v)
			res.Configs = append(res.Configs, c)
		}
		req.Resources = append(req.Resources, res)
		resp, err := req.RequestWith(ctx, cl)
		if err == nil {
			err = kerr.ErrorForCode(resp.Resources[0].ErrorCode)
		}
		if err != nil {
			b.Fatal(err)
		}
	}

	// Fixed rate, latency from each record's scheduled send, so a stall
	// delays every record scheduled behind it (no coordinated omission).
	count := int(window.Seconds() * float64(rate))
	lat := make([]float64, count)
	errs := make(chan error, 1)
	done := make(chan struct{}, count)
	start := time.Now()
	for i := range count {
		due := start.Add(time.Duration(i) * time.Second / time.Duration(rate))
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		cl.Produce(ctx, &kgo.Record{Topic: "hot", Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errs <- err:
				default:
				}
			}
			lat[i] = float64(time.Since(due)) / float64(time.Millisecond)
			done <- struct{}{}
		})
	}
	for range count {
		select {
		case <-done:
		case err := <-errs:
			b.Fatal(err)
		case <-ctx.Done():
			b.Fatal(ctx.Err())
		}
	}
	after, _ := partitionLogState(b, n, ref)
	cleaned := before.sizeBytes - after.sizeBytes
	// The window must hold cleaning's every phase, the reads that build
	// the key map and the writes and swaps that shrink the log.
	if cleaning && cleaned <= 0 {
		b.Fatalf("the cleaner shrank nothing in the window: before %+v, after %+v", before, after)
	}
	if !cleaning && cleaned != 0 {
		b.Fatalf("the idle round's dirty log changed size: before %+v, after %+v", before, after)
	}
	return lat, cleaned
}

func quantile(sorted []float64, q float64) float64 {
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

func envInt(tb testing.TB, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		tb.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}
