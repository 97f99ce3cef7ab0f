package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sys/unix"
)

// BenchmarkProduce measures produce throughput of the real broker binary:
// 1 KiB records of random bytes, acks=all, idempotence off, several kgo
// clients each with several producer goroutines, into an 8-partition topic
// on a data directory on the machine's disk (STRAND_BENCH_DIR, default
// /var/tmp; tmpfs is refused). Each iteration produces STRAND_BENCH_RECORDS
// records (default 1,000,000: 1.02 GB of payload) into a fresh topic and
// reports:
//
//	MB/s, records/s          acked payload bytes (10^6) and records per second
//	p50/p99/p99.9_us         per-record latency from Produce to its ack
//	cpu_s/GB                 broker CPU seconds (utime+stime from
//	                         /proc/PID/stat) per 10^9 payload bytes
//	fio_MB/s, strand/fio     fio's direct sequential write bandwidth on the
//	                         same directory (1 MiB writes, fdatasync after
//	                         each) and the ratio of Strand's MB/s to it
//
// Run it with
//
//	go test -ldflags=-checklinkname=0 -run '^$' -bench BenchmarkProduce -benchtime 1x ./cluster/e2e/
//
// Client and broker share the machine's cores: on a small machine the
// client's CPU is part of what limits the result.
func BenchmarkProduce(b *testing.B) {
	records := envInt("STRAND_BENCH_RECORDS", 1_000_000)
	clients := envInt("STRAND_BENCH_CLIENTS", 4)
	perClient := envInt("STRAND_BENCH_GOROUTINES", 2)
	const size, parts = 1024, 8

	base := os.Getenv("STRAND_BENCH_DIR")
	if base == "" {
		base = "/var/tmp"
	}
	var st unix.Statfs_t
	if err := unix.Statfs(base, &st); err != nil {
		b.Fatal(err)
	}
	if st.Type == unix.TMPFS_MAGIC {
		b.Fatalf("%s is tmpfs: set STRAND_BENCH_DIR to a directory on a disk", base)
	}
	dir, err := os.MkdirTemp(base, "strand-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })

	fioMBs := fioWriteMBs(b, dir)

	p := startProc(b, filepath.Join(dir, "data"))
	b.Logf("broker pid %d on %s (fs type %#x), %d records x %d B per iteration, %d clients x %d goroutines, %d partitions",
		p.cmd.Process.Pid, dir, st.Type, records, size, clients, perClient, parts)

	// Random payloads from a pool (no two records alike, nothing compresses).
	pool := make([]byte, 4<<20)
	rand.New(rand.NewSource(1)).Read(pool)

	var sum struct {
		mbs, rps, cpuPerGB float64
		hist               *hdrhistogram.Histogram
	}
	sum.hist = hdrhistogram.New(1, 60_000_000, 3)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		topic := fmt.Sprintf("bench-%d", i)
		admin := newClient(b, p.addr)
		createTopic(b, admin, topic, parts)
		admin.Close()

		cls := make([]*kgo.Client, clients)
		for c := range cls {
			cls[c] = newClient(b, p.addr,
				kgo.RecordPartitioner(kgo.ManualPartitioner()),
				kgo.ProducerBatchCompression(kgo.NoCompression()),
				kgo.ProducerLinger(5*time.Millisecond),
				kgo.MaxBufferedRecords(4096*perClient),
			)
		}
		load := loadAvg()
		cpu0, err := p.cpuSeconds()
		if err != nil {
			b.Fatal(err)
		}
		hist := hdrhistogram.New(1, 60_000_000, 3)
		var histMu sync.Mutex
		var failed error
		var wg sync.WaitGroup
		workers := clients * perClient
		start := time.Now()
		for w := range workers {
			cl := cls[w%clients]
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := w; k < records; k += workers {
					off := (k * 977 * size) % (len(pool) - size)
					rec := &kgo.Record{Topic: topic, Partition: int32(k % parts), Value: pool[off : off+size]}
					sent := time.Now()
					wg.Add(1)
					cl.Produce(context.Background(), rec, func(_ *kgo.Record, err error) {
						defer wg.Done()
						us := time.Since(sent).Microseconds()
						histMu.Lock()
						if err != nil && failed == nil {
							failed = err
						}
						_ = hist.RecordValue(max(us, 1))
						histMu.Unlock()
					})
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		cpu1, err := p.cpuSeconds()
		if err != nil {
			b.Fatal(err)
		}
		for _, cl := range cls {
			cl.Close()
		}
		if failed != nil {
			b.Fatalf("produce: %v", failed)
		}
		bytes := float64(records) * size
		mbs := bytes / 1e6 / elapsed.Seconds()
		rps := float64(records) / elapsed.Seconds()
		cpuPerGB := (cpu1 - cpu0) / (bytes / 1e9)
		b.Logf("iteration %d (load average before: %s): %.0f MB/s, %.0f records/s, p50 %d us, p99 %d us, p99.9 %d us, max %d us, broker CPU %.2f s (%.2f s/GB) in %v",
			i, load, mbs, rps, hist.ValueAtQuantile(50), hist.ValueAtQuantile(99), hist.ValueAtQuantile(99.9), hist.Max(),
			cpu1-cpu0, cpuPerGB, elapsed.Round(time.Millisecond))
		sum.mbs += mbs
		sum.rps += rps
		sum.cpuPerGB += cpuPerGB
		sum.hist.Merge(hist)
	}
	b.StopTimer()
	if n, longest, line := stallSummary(p.logs.String()); n > 0 {
		b.Logf("broker logged %d reactor stall warnings; longest %v: %s", n, longest, line)
	}
	n := float64(b.N)
	b.ReportMetric(sum.mbs/n, "MB/s")
	b.ReportMetric(sum.rps/n, "records/s")
	b.ReportMetric(float64(sum.hist.ValueAtQuantile(50)), "p50_us")
	b.ReportMetric(float64(sum.hist.ValueAtQuantile(99)), "p99_us")
	b.ReportMetric(float64(sum.hist.ValueAtQuantile(99.9)), "p99.9_us")
	b.ReportMetric(sum.cpuPerGB/n, "cpu_s/GB")
	if fioMBs > 0 {
		b.ReportMetric(fioMBs, "fio_MB/s")
		b.ReportMetric(sum.mbs/n/fioMBs, "strand/fio")
	}
	b.ReportMetric(0, "ns/op") // wall time per iteration says nothing here
	if code := p.term(60 * time.Second); code != 0 {
		b.Fatalf("broker exited with code %d after SIGTERM", code)
	}
}

// fioWriteMBs runs fio's 1 GiB direct sequential write (1 MiB blocks, an
// fdatasync after each) in dir and returns its bandwidth in MB/s (10^6
// bytes), or 0 with a log line when fio is not installed.
func fioWriteMBs(b *testing.B, dir string) float64 {
	fio, err := exec.LookPath("fio")
	if err != nil {
		b.Log("fio not installed: skipping the disk baseline (apt-get install -y fio)")
		return 0
	}
	file := filepath.Join(dir, "fio.dat")
	defer os.Remove(file)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, fio, "--name=w", "--filename="+file, "--rw=write", "--bs=1M", "--size=1G",
		"--direct=1", "--ioengine=io_uring", "--fdatasync=1", "--output-format=json").Output()
	if err != nil {
		b.Fatalf("fio: %v\n%s", err, out)
	}
	var res struct {
		Jobs []struct {
			Write struct {
				BwBytes float64 `json:"bw_bytes"`
			} `json:"write"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.Jobs) == 0 {
		b.Fatalf("fio output: %v\n%s", err, out)
	}
	mbs := res.Jobs[0].Write.BwBytes / 1e6
	b.Logf("fio direct write (1 MiB blocks, fdatasync each) on %s: %.0f MB/s", dir, mbs)
	return mbs
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
