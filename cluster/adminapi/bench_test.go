package adminapi

import (
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkProduceScraped measures what metrics cost the data path:
// max-rate acks=all produce to a 2-partition topic, with no scraper and
// with a scraper hitting /metrics every second (as Prometheus does, but
// faster than the usual 15 s). Compare records/s of the two:
//
//	make bench-admin   (or: go test -run '^$' -bench ProduceScraped -benchtime 10s -count 3 ./cluster/adminapi/)
func BenchmarkProduceScraped(b *testing.B) {
	for _, bc := range []struct {
		name   string
		scrape time.Duration
	}{{"scrape=off", 0}, {"scrape=1s", time.Second}} {
		b.Run(bc.name, func(b *testing.B) {
			topic := uniq("bench-scrape")
			createTopic(b, topic, 2)
			cl := client(b, kgo.DefaultProduceTopic(topic), kgo.MaxBufferedRecords(1<<14), kgo.ProducerLinger(time.Millisecond))
			stop := make(chan struct{})
			var wg sync.WaitGroup
			scrapes := 0
			if bc.scrape > 0 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					tick := time.NewTicker(bc.scrape)
					defer tick.Stop()
					for {
						select {
						case <-stop:
							return
						case <-tick.C:
						}
						resp, err := http.Get("http://" + testAdmin.Addr() + "/metrics")
						if err != nil {
							b.Error(err)
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						scrapes++
					}
				}()
			}
			value := make([]byte, 100)
			ctx := context.Background()
			var errOnce sync.Once
			b.SetBytes(int64(len(value)))
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
					if err != nil {
						errOnce.Do(func() { b.Error(err) })
					}
				})
			}
			if err := cl.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			close(stop)
			wg.Wait()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
			b.ReportMetric(float64(scrapes), "scrapes")
		})
	}
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
