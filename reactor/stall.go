package reactor

import (
	"context"
	"log/slog"
	"reflect"
	"runtime"
	"time"
)

// stallKind says what a timed piece of loop work was.
type stallKind uint8

const (
	stallOnOpen stallKind = iota + 1
	stallOnTraffic
	stallOnClose
	stallMessage
	stallTimer
	stallIO
	stallPost
)

var stallNames = [...]string{
	stallOnOpen:    "OnOpen",
	stallOnTraffic: "OnTraffic",
	stallOnClose:   "OnClose",
	stallMessage:   "message",
	stallTimer:     "timer",
	stallIO:        "io completions",
	stallPost:      "posted task",
}

// stallLogInterval rate-limits stall warnings per core; suppressed ones are
// counted in Stats.Stalls and in the next warning, which also names the
// longest of them. A stall of stallAlwaysLog or more is always logged: a
// core that stops for a second must never go unreported.
const (
	stallLogInterval = time.Second
	stallAlwaysLog   = 500 * time.Millisecond
)

// stallState is owned by the core's thread.
type stallState struct {
	threshold time.Duration
	// expected is set by ExpectSlow for the work item now running and
	// cleared when that item is timed.
	expected       bool
	lastLog        time.Time
	suppressed     int
	suppressedMax  time.Duration
	suppressedWhat stallKind
	// busy sums the time of every timed piece of work: the numerator of
	// the core's busy fraction (see Core.Busy).
	busy time.Duration
}

// checkStall reports work that began at start and ran past the threshold,
// and returns the current time so consecutive items need one clock read
// each. fn, when set, names the function that ran (resolved only on a stall).
func (c *Core) checkStall(start time.Time, what stallKind, fn any) time.Time {
	now := time.Now()
	took := now.Sub(start)
	expected := c.stall.expected
	c.stall.expected = false
	c.stall.busy += took
	if took <= c.stall.threshold {
		return now
	}
	bump(&c.stats.stalls, 1)
	if expected {
		// Start-up and shutdown work (opening, recovering and closing
		// logs) is long by nature and no client waits on it; a warning
		// for it would teach operators to ignore the real ones.
		bump(&c.stats.expectedStalls, 1)
		if c.rt.log.Enabled(context.Background(), slog.LevelDebug) {
			c.rt.log.Debug("reactor: expected slow work", "core", int(c.id), "what", stallNames[what], "took", took)
		}
		return now
	}
	if now.Sub(c.stall.lastLog) < stallLogInterval && took < stallAlwaysLog {
		c.stall.suppressed++
		if took > c.stall.suppressedMax {
			c.stall.suppressedMax, c.stall.suppressedWhat = took, what
		}
		return now
	}
	attrs := []any{"core", int(c.id), "cpu", c.cpu, "what", stallNames[what],
		"took", took, "threshold", c.stall.threshold}
	if fn != nil {
		attrs = append(attrs, "func", funcName(fn))
	}
	if c.stall.suppressed > 0 {
		attrs = append(attrs, "suppressed", c.stall.suppressed,
			"suppressed_longest", c.stall.suppressedMax, "suppressed_longest_what", stallNames[c.stall.suppressedWhat])
	}
	c.rt.log.Warn("reactor stall", attrs...)
	c.stall.lastLog = now
	c.stall.suppressed, c.stall.suppressedMax = 0, 0
	return now
}

func funcName(fn any) string {
	v := reflect.ValueOf(fn)
	if v.Kind() != reflect.Func || v.IsNil() {
		return "?"
	}
	if f := runtime.FuncForPC(v.Pointer()); f != nil {
		return f.Name()
	}
	return "?"
}

// ExpectSlow marks the work item running now on c (the callback, message,
// task or completion batch that calls it) as known to be long: routine
// start-up and shutdown work such as opening, recovering or closing logs.
// If it runs past the stall threshold it is counted in Stats.Stalls and
// Stats.ExpectedStalls but logged only at Debug. Call it on c's thread.
func (c *Core) ExpectSlow() {
	c.AssertOwned()
	c.stall.expected = true
}
