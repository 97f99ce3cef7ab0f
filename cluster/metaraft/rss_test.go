package metaraft

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strand-io/strand/cluster/metadata"
)

// BenchmarkIdleHostRSS measures the memory of an idle one-voter group
// holding 10 topics: the process's resident set before Open and after the
// group has sat idle for a few seconds, and the Go heap in use. Run it
// without -race (which multiplies memory):
//
//	go test -ldflags=-checklinkname=0 -run '^$' -bench IdleHostRSS -benchtime 1x ./cluster/metaraft/
func BenchmarkIdleHostRSS(b *testing.B) {
	for range b.N {
		runtime.GC()
		before := rssKB(b)
		dir, addr := b.TempDir(), freeAddr(b)
		h, err := Open(Config{Dir: dir, ReplicaID: 1, RaftAddress: addr})
		if err != nil {
			b.Fatal(err)
		}
		if err := h.Bootstrap(map[uint64]string{1: addr}); err != nil {
			b.Fatal(err)
		}
		propose := func(c metadata.Command) {
			if r, err := h.Propose(b.Context(), c); err != nil || !r.Accepted() {
				b.Fatalf("%T: %v %v", c, r, err)
			}
		}
		propose(&metadata.RegisterBroker{ID: 1, KafkaAddr: "127.0.0.1:9092", RaftAddr: addr, Cores: 2})
		propose(&metadata.UnfenceBroker{ID: 1})
		for i := range 10 {
			as, err := metadata.Place(h.View(), metadata.PlaceRequest{Partitions: 3, ReplicationFactor: 1})
			if err != nil {
				b.Fatal(err)
			}
			propose(&metadata.CreateTopic{Name: fmt.Sprint("topic-", i), ID: metadata.TopicID{0: 1, 15: byte(i + 1)}, Partitions: as})
		}
		// Idle: heartbeats and ticks only.
		time.Sleep(5 * time.Second)
		runtime.GC()
		after, hwm := rssKB(b), hwmKB(b)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(before)/1024, "rss-before-MB")
		b.ReportMetric(float64(after)/1024, "rss-idle-MB")
		b.ReportMetric(float64(after-before)/1024, "host-MB")
		b.ReportMetric(float64(hwm)/1024, "rss-peak-MB")
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-inuse-MB")
		b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
		h.Close()
	}
}

func rssKB(tb testing.TB) int64 { return procStatusKB(tb, "VmRSS:") }
func hwmKB(tb testing.TB) int64 { return procStatusKB(tb, "VmHWM:") }

func procStatusKB(tb testing.TB, key string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return n
		}
	}
	tb.Fatalf("%s not in /proc/self/status", key)
	return 0
}
