package adminapi

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkProduceScraped measures what metrics cost the data path: one
// producer sends max-rate acks=all records to a 2-partition topic while the
// run alternates 1 s windows with a scrape of /metrics at the start (a 1 s
// scrape loop, far more often than Prometheus's usual 15 s) and 1 s windows
// without. Alternating cancels the drift of whatever else shares the
// machine, which on a shared 2-CPU VM is larger than the effect measured.
// The windows go off, on, on, off, so a linear trend cancels as well.
// It reports records/s in each mode and cost_% = 100 x (1 - on/off).
//
//	go test -run '^$' -bench ProduceScraped -benchtime 20x ./cluster/adminapi/
//
// (-benchtime Nx: N pairs of windows; use an even N.)
func BenchmarkProduceScraped(b *testing.B) {
	topic := uniq("bench-scrape")
	createTopic(b, topic, 2)
	cl := client(b, kgo.DefaultProduceTopic(topic), kgo.MaxBufferedRecords(1<<14), kgo.ProducerLinger(time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	var acked atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		value := make([]byte, 100)
		for ctx.Err() == nil {
			cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
				if err == nil {
					acked.Add(1)
				}
			})
		}
	}()
	defer func() {
		cancel()
		wg.Wait()
	}()
	scrape := func() {
		resp, err := http.Get("http://" + testAdmin.Addr() + "/metrics")
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("scrape: %s", resp.Status)
		}
	}
	const window = time.Second
	time.Sleep(window) // warm up: connections, buffers, the first segment
	var on, off time.Duration
	var recOn, recOff int64
	b.ResetTimer()
	for i := range 2 * b.N {
		// off, on, on, off: a steady trend (warm-up, a neighbour
		// starting) cancels too, not only noise.
		scraped := i%4 == 1 || i%4 == 2
		start, before := time.Now(), acked.Load()
		if scraped {
			scrape()
		}
		time.Sleep(window - time.Since(start))
		took, n := time.Since(start), acked.Load()-before
		if scraped {
			on, recOn = on+took, recOn+n
		} else {
			off, recOff = off+took, recOff+n
		}
	}
	b.StopTimer()
	rateOn, rateOff := float64(recOn)/on.Seconds(), float64(recOff)/off.Seconds()
	b.ReportMetric(rateOff, "records/s_off")
	b.ReportMetric(rateOn, "records/s_scraped")
	b.ReportMetric(100*(1-rateOn/rateOff), "cost_%")
}

// BenchmarkScrape is the cost of one /metrics scrape of this broker (its
// cores' share is one snapshot message each).
func BenchmarkScrape(b *testing.B) {
	for range b.N {
		resp, err := http.Get("http://" + testAdmin.Addr() + "/metrics")
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// BenchmarkSnapshot is the cost of asking every core for its state.
func BenchmarkSnapshot(b *testing.B) {
	ctx := context.Background()
	for range b.N {
		if _, err := testNode.Snapshot(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSnapshotPartitions is Snapshot's cost with many partitions: each
// core copies every partition it owns while the snapshot message runs, so
// this bounds how long a scrape holds a core.
func BenchmarkSnapshotPartitions(b *testing.B) {
	manyOnce.Do(func() { createTopic(b, uniq("bench-many"), 2000) })
	b.ResetTimer()
	BenchmarkSnapshot(b)
}

// manyOnce: the benchmark function runs once per b.N tried.
var manyOnce sync.Once

// BenchmarkScrapePartitions is one scrape with 2,000 more partitions.
func BenchmarkScrapePartitions(b *testing.B) {
	manyOnce.Do(func() { createTopic(b, uniq("bench-many"), 2000) })
	b.ResetTimer()
	BenchmarkScrape(b)
}
