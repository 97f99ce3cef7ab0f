package cluster

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/strand-io/strand/cluster/metadata"
)

// tombstoneSuffix ends the name of a directory being deleted. A partition
// directory's name ends in its partition number, so the two never clash.
const tombstoneSuffix = ".deleted"

var tombstoneSeq atomic.Uint64

// tombstoneName is a fresh name in dataDir for a directory about to be
// deleted: short (a topic name may take 249 of a file name's 255 bytes)
// and unique within this process and across restarts.
func tombstoneName(dataDir string) string {
	return filepath.Join(dataDir, fmt.Sprintf("%d-%d%s", time.Now().UnixNano(), tombstoneSeq.Add(1), tombstoneSuffix))
}

// removeLeftover removes dir, a new partition's directory that should not
// exist: an earlier topic of that name left it behind (its removal failed).
// It runs off the core.
func removeLeftover(dir string, log *slog.Logger) error {
	if _, err := os.Lstat(dir); os.IsNotExist(err) {
		return nil
	}
	log.Warn("a new partition's directory already exists: removing what an earlier topic of that name left", "dir", dir)
	gone := tombstoneName(filepath.Dir(dir))
	if err := os.Rename(dir, gone); err != nil {
		gone = dir
	}
	if err := os.RemoveAll(gone); err != nil {
		return fmt.Errorf("removing the leftover directory %s: %w", dir, err)
	}
	return nil
}

// sweepDataDir removes, before anything is opened, what a deletion
// interrupted by a crash left in dataDir: every tombstone, and, when the
// metadata was read from disk (trusted), every partition directory that s
// does not name. It returns how many it removed.
func sweepDataDir(dataDir string, s *snapshot, trusted bool, log *slog.Logger) (int, error) {
	ents, err := os.ReadDir(dataDir)
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, e := range ents {
		name := e.Name()
		orphan := strings.HasSuffix(name, tombstoneSuffix)
		if !orphan && trusted && e.IsDir() {
			if topic, p, ok := parsePartitionDir(name); ok {
				t := s.topics[topic]
				orphan = t == nil || p >= len(t.Cores)
			}
		}
		if !orphan {
			continue
		}
		log.Info("removing the data of a deleted topic", "dir", name)
		if err := os.RemoveAll(filepath.Join(dataDir, name)); err != nil {
			return removed, fmt.Errorf("cluster: removing %s: %w", name, err)
		}
		removed++
	}
	return removed, nil
}

// parsePartitionDir reads a directory name partitionDir could have made.
func parsePartitionDir(name string) (topic string, p int, ok bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return "", 0, false
	}
	topic, num := name[:i], name[i+1:]
	p, err := strconv.Atoi(num)
	if err != nil || p < 0 || strconv.Itoa(p) != num || !metadata.ValidTopicName(topic) {
		return "", 0, false
	}
	return topic, p, true
}
