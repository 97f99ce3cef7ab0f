package e2e

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/strand-io/strand/cluster"
	"github.com/strand-io/strand/shard"
	"github.com/twmb/franz-go/pkg/kgo"
)

// diskUsage sums the blocks the files under dir take, as du does.
func diskUsage(t *testing.T, dir string) int64 {
	t.Helper()
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			total += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

// TestNearEmptyPartitionsCost is the regression test for issue 9's "each
// partition holds about 3 file descriptors" and "6,000 near-empty
// partitions take 5.9 GB": 300 partitions with one record each, on the
// real disk. They took 3 descriptors and 1 MiB of disk apiece; now one
// descriptor (shard.DescriptorsPerLog) and a few blocks.
func TestNearEmptyPartitionsCost(t *testing.T) {
	fds := func() int {
		e, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc/self/fd:", err)
		}
		return len(e)
	}
	dir := testDataDir(t)
	n := startNode(t, dir, func(c *cluster.Config) { c.OffsetsPartitions = 1 })
	cl := newClient(t, n.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	const topics, parts = 3, 100
	diskBefore := diskUsage(t, dir)
	before := fds()
	for i := 0; i < topics; i++ {
		createTopic(t, cl, fmt.Sprintf("near-empty-%d", i), parts)
	}
	ctx := ctxFor(t, 60*time.Second)
	for i := 0; i < topics; i++ {
		for p := int32(0); p < parts; p++ {
			cl.Produce(ctx, &kgo.Record{Topic: fmt.Sprintf("near-empty-%d", i), Partition: p, Value: []byte("hello")}, nil)
		}
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	held := fds() - before
	perPartition := (diskUsage(t, dir) - diskBefore) / (topics * parts)
	t.Logf("%d partitions with one record: %d descriptors, %d bytes of disk each", topics*parts, held, perPartition)
	// Slack for the connections and the broker's own files.
	if held > topics*parts*shard.DescriptorsPerLog+20 {
		t.Fatalf("%d partitions hold %d descriptors, want about %d", topics*parts, held, topics*parts*shard.DescriptorsPerLog)
	}
	if perPartition > 64<<10 {
		t.Fatalf("a partition with one record takes %d bytes of disk, want at most 64 KiB", perPartition)
	}
}
