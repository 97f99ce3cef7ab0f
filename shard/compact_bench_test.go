package shard

import (
	"fmt"
	"math/rand"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/strand-io/strand/dma"
)

// BenchmarkCompactPass measures the cleaner on the real file system: a log
// of STRAND_BENCH_COMPACT_MIB (default 64) MiB of 100-byte values (half
// random, so about 2:1 compressible) over
// STRAND_BENCH_COMPACT_KEYS (default 10,000) keys in 100-record batches
// (codec STRAND_BENCH_COMPACT_CODEC, default 0: none), in segments of
// STRAND_BENCH_COMPACT_SEGMENT_MIB (default 8) MiB, cleaned in rounds of the default budget (1 MiB, as
// cluster uses). It reports the dirty log cleaned per second of round
// time, and the time one round holds the core (p50, p99, max), which is
// what a producer on the cleaning core waits at worst.
func BenchmarkCompactPass(b *testing.B) {
	mib := envInt("STRAND_BENCH_COMPACT_MIB", 64)
	codec := int16(envInt("STRAND_BENCH_COMPACT_CODEC", 0))
	keys := envInt("STRAND_BENCH_COMPACT_KEYS", 10000)
	segMiB := envInt("STRAND_BENCH_COMPACT_SEGMENT_MIB", 8)
	for it := 0; it < b.N; it++ {
		dir := benchDir(b)
		eng := benchEngine(b)
		cfg := Config{Dir: dir, SegmentBytes: int64(segMiB) << 20, Cleanup: PolicyCompact, CleanBytesPerTick: 1 << 20,
			Logger: quietLogger(), MinCleanableDirtyRatio: 0.5}
		l, err := Open(cfg, dma.OSFS(), eng)
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now().UnixMilli()
		// Values half random: they compress about 2:1, like typical data.
		value := make([]byte, 100)
		rand.New(rand.NewSource(1)).Read(value[:50])
		i := 0
		for l.SizeBytes() < int64(mib)<<20 {
			recs := make([]kv, 100)
			for j := range recs {
				recs[j] = kv{[]byte(fmt.Sprintf("key-%08d", (i*100+j)%keys)), value}
			}
			for {
				err := l.Append(keyedBatch(b, recs, now, codec, -1, 0), now, func(AppendResult, error) {})
				if err == nil {
					break
				}
				if err != ErrBacklogFull {
					b.Fatal(err)
				}
				if err := dma.Drain(eng); err != nil {
					b.Fatal(err)
				}
			}
			i++
			if i%64 == 0 {
				if err := dma.Drain(eng); err != nil {
					b.Fatal(err)
				}
			}
		}
		drainLog(b, l, eng)
		// Seal the last segment too, so the whole log is cleanable.
		l.whenIdle(l.roll)
		l.kick()
		drainLog(b, l, eng)
		dirty := l.SizeBytes()
		var rounds []time.Duration
		b.ResetTimer()
		for r := int64(0); l.CleanerPasses() == 0; r++ {
			t0 := time.Now()
			l.Clean(now + r)
			rounds = append(rounds, time.Since(t0))
			if l.Err() != nil {
				b.Fatal(l.Err())
			}
		}
		b.StopTimer()
		var total time.Duration
		for _, d := range rounds {
			total += d
		}
		sort.Slice(rounds, func(i, j int) bool { return rounds[i] < rounds[j] })
		pct := func(p float64) time.Duration { return rounds[min(len(rounds)-1, int(p*float64(len(rounds))))] }
		b.ReportMetric(float64(dirty)/(1<<20)/total.Seconds(), "MiB/s")
		b.ReportMetric(float64(pct(0.5).Microseconds()), "round-p50-µs")
		b.ReportMetric(float64(pct(0.99).Microseconds()), "round-p99-µs")
		b.ReportMetric(float64(rounds[len(rounds)-1].Microseconds()), "round-max-µs")
		b.Logf("dirty %d MiB -> %d KiB in %d rounds, %v", dirty>>20, l.SizeBytes()>>10, len(rounds), total)
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
		eng.Close()
		os.RemoveAll(dir)
	}
}
