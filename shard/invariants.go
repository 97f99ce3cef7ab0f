package shard

import "fmt"

// checkInvariants asserts what the log's fields promise each other, at the
// log's entry points and after each completion, in invariants builds
// (invariants_on.go); in normal builds it compiles to nothing. A violation
// is a bug, never an I/O condition, so it panics with the log's state.
//
//   - the write pipeline's order: synced <= written <= end, and a write or
//     fdatasync in flight covers no more than what was staged;
//   - offsets: logStart <= hw <= durableNext <= next (only durable
//     records are readable, and nothing below the log start is), and no
//     leader epoch starts past next;
//   - ownership: the caller runs on the core that owns the log, when the
//     owner gave a check (Config.AssertOwner).
func (l *Log) checkInvariants(where string) {
	if !invariants {
		return
	}
	if l.cfg.AssertOwner != nil {
		l.cfg.AssertOwner()
	}
	bad := ""
	switch {
	case l.synced > l.written || l.written > l.end:
		bad = "write pipeline out of order"
	case l.writing && (l.writeEnd > l.end || l.writeEnd < l.written):
		bad = "write in flight outside [written, end]"
	case l.syncing && l.syncEnd > l.end:
		bad = "fdatasync in flight past end"
	case l.hw > l.next:
		bad = "high watermark above the next offset"
	case l.hw > l.durableNext || l.durableNext > l.next:
		bad = "high watermark above the durable end, or that above the next offset"
	case len(l.epochs.entries) > 0 && l.epochs.entries[len(l.epochs.entries)-1].start > l.next:
		bad = "leader epoch starting past the next offset"
	case l.logStart > l.next:
		bad = "log start above the next offset"
	}
	if bad != "" {
		panic(fmt.Sprintf("shard: invariant broken in %s (%s): %s: synced=%d written=%d end=%d writing=%v writeEnd=%d syncing=%v syncEnd=%d logStart=%d hw=%d durable=%d next=%d",
			where, l.cfg.Dir, bad, l.synced, l.written, l.end, l.writing, l.writeEnd, l.syncing, l.syncEnd, l.logStart, l.hw, l.durableNext, l.next))
	}
}

// advanceHW moves the high watermark to hw, which must not be below it: an
// acknowledged record never becomes invisible again except by an explicit
// truncation (TruncateTo), which does not come through here.
func (l *Log) advanceHW(hw Offset) {
	if invariants && hw < l.hw {
		panic(fmt.Sprintf("shard: high watermark of %s would go back from %d to %d", l.cfg.Dir, l.hw, hw))
	}
	l.hw = hw
}
