package wire

import (
	"log/slog"
	"sync/atomic"
	"time"
)

const defaultAutoCreateMaxPerRequest = 16

// autoCreateMax is how many topics one Metadata request may create
// (negative: no bound).
func (s *Server) autoCreateMax() int {
	if s.cfg.AutoCreateMaxPerRequest == 0 {
		return defaultAutoCreateMaxPerRequest
	}
	return s.cfg.AutoCreateMaxPerRequest
}

// autoCreateLog says, at most every 10 s per process, that a Metadata
// request named more new topics than it may create.
var autoCreateLog rateLimitedLog

// autoCreateFailLog reports failed implicit creates (a budget refusal, say,
// which a client retrying Metadata would repeat endlessly).
var autoCreateFailLog rateLimitedLog

// rateLimitedLog logs a warning at most once per 10 s and counts the lines
// it held back. Safe from any loop.
type rateLimitedLog struct {
	last       atomic.Int64
	suppressed atomic.Int64
}

func (r *rateLimitedLog) warn(l *slog.Logger, msg string, args ...any) {
	now := time.Now().UnixNano()
	last := r.last.Load()
	if (last != 0 && now-last < int64(10*time.Second)) || !r.last.CompareAndSwap(last, now) {
		r.suppressed.Add(1)
		return
	}
	if n := r.suppressed.Swap(0); n > 0 {
		args = append(args, "suppressed_since_last", n)
	}
	l.Warn(msg, args...)
}
