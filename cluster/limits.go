package cluster

import (
	"fmt"
	"log/slog"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/strand-io/strand/shard"
)

// fdsPerPartition is how many file descriptors one open partition holds
// (its active segment; sealed segments' files are in the per-core cache,
// counted apart, and index files are open only while written). The
// partition budget is derived from it; when the storage layer opens more
// or fewer files per partition, change shard.DescriptorsPerLog.
const fdsPerPartition = shard.DescriptorsPerLog

// Defaults of the limits (see docs/RELIABILITY.md for why).
const (
	defaultMaxPartitions           = 10000
	defaultAutoCreateMaxPerRequest = 16
	defaultAutoCreatePerSecond     = 32
	// The descriptors kept back from partitions for connections, the
	// listener, metadata and directory syncs: a fifth of the limit, and
	// at least this many.
	minReservedFDs = 256
)

// raiseFDLimit raises the soft RLIMIT_NOFILE to the hard limit and returns
// the soft limit before and after, and the hard limit.
func raiseFDLimit() (before, soft, hard uint64, err error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, 0, 0, err
	}
	before = r.Cur
	if r.Cur < r.Max {
		r.Cur = r.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
			return before, before, r.Max, err
		}
	}
	return before, r.Cur, r.Max, nil
}

// fdPartitions is how many partitions fit in a descriptor limit of soft
// with reserved descriptors kept back (reserved 0: the default reserve)
// and cached more held by the cores' caches of sealed segment files.
func fdPartitions(soft uint64, reserved, cached int) int {
	if reserved <= 0 {
		reserved = max(minReservedFDs, int(min(soft, 1<<40)/5))
	}
	keep := uint64(reserved) + uint64(cached)
	if soft <= keep {
		return 0
	}
	return int(min(soft-keep, 1<<40)) / fdsPerPartition
}

// overBudget says why adding more partitions to s would pass the broker's
// partition limit or its file descriptor budget, or "" if it would not.
func (n *Node) overBudget(s *snapshot, more int32) string {
	total := partitionCount(s) + n.inflightParts
	want := total + int(more)
	switch {
	case n.cfg.MaxPartitions > 0 && want > n.cfg.MaxPartitions:
		return fmt.Sprintf("partition limit reached: the broker has %d partitions and allows %d (--max-partitions); %d more were asked for",
			total, n.cfg.MaxPartitions, more)
	case want > n.fdPartitions:
		return fmt.Sprintf("file descriptor budget reached: the broker has %d partitions and its descriptor limit of %d (%d kept for connections, %d per partition) allows %d; %d more were asked for",
			total, n.fdLimit, n.fdReserved, fdsPerPartition, n.fdPartitions, more)
	}
	return ""
}

// takeAutoCreate takes one topic from the auto-create token bucket
// (controller core), or says why not.
func (n *Node) takeAutoCreate() (bool, string) {
	rate := n.cfg.AutoCreatePerSecond
	if rate < 0 {
		return true, ""
	}
	now := time.Now()
	if n.autoLast.IsZero() {
		n.autoTokens = float64(rate)
	} else {
		n.autoTokens = min(float64(rate), n.autoTokens+now.Sub(n.autoLast).Seconds()*float64(rate))
	}
	n.autoLast = now
	if n.autoTokens >= 1 {
		n.autoTokens--
		return true, ""
	}
	n.autoThrottled.Add(1)
	n.autoLog.Warn(n.log, "auto-create rate limit reached: topics named by Metadata or Produce are not created", "per_second", rate, "flag", "--auto-create-per-second")
	return false, fmt.Sprintf("auto-creation is limited to %d topics per second (--auto-create-per-second)", rate)
}

// rateLog logs a warning at most once per rateLogInterval and counts what
// it held back. Safe from any goroutine.
type rateLog struct {
	last       atomic.Int64
	suppressed atomic.Int64
}

const rateLogInterval = 10 * time.Second

// Warn logs msg unless a line went out less than rateLogInterval ago.
func (r *rateLog) Warn(l *slog.Logger, msg string, args ...any) {
	now := time.Now().UnixNano()
	last := r.last.Load()
	if (last != 0 && now-last < int64(rateLogInterval)) || !r.last.CompareAndSwap(last, now) {
		r.suppressed.Add(1)
		return
	}
	if s := r.suppressed.Swap(0); s > 0 {
		args = append(args, "suppressed_since_last", s)
	}
	l.Warn(msg, args...)
}
