package perf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procSample is one reading of a process's resource use.
type procSample struct {
	cpu      time.Duration // user + system, since the process started
	rssBytes int64
}

// procProbe reads the broker's CPU and RSS. For an external broker (--pid)
// it reads /proc/PID/stat and /proc/PID/status. For an in-process broker
// the broker is this process, so it reads this process (getrusage for CPU),
// which also counts the benchmark client; label says so in every report.
type procProbe struct {
	pid   int // 0: this process
	label string
	tick  int64 // clock ticks per second for /proc/PID/stat
}

func newProcProbe(pid int) *procProbe {
	if pid == 0 {
		return &procProbe{label: "this process (in-process broker + benchmark client)"}
	}
	return &procProbe{pid: pid, label: fmt.Sprintf("pid %d", pid), tick: clockTicks()}
}

func (p *procProbe) read() (procSample, error) {
	if p.pid == 0 {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			return procSample{}, err
		}
		rss, err := readRSS("/proc/self/status")
		return procSample{cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), rssBytes: rss}, err
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
	if err != nil {
		return procSample{}, err
	}
	ticks, err := parseStatCPU(stat)
	if err != nil {
		return procSample{}, fmt.Errorf("/proc/%d/stat: %w", p.pid, err)
	}
	rss, err := readRSS(fmt.Sprintf("/proc/%d/status", p.pid))
	return procSample{cpu: time.Duration(ticks * int64(time.Second) / p.tick), rssBytes: rss}, err
}

// parseStatCPU returns utime+stime in clock ticks from /proc/PID/stat.
// The command name (field 2) is in parentheses and may itself contain
// spaces and ')', so fields are counted from the last ')'.
func parseStatCPU(stat []byte) (int64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("no ')' in %q", stat)
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("only %d fields after the command name", len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("utime %q stime %q are not numbers", f[11], f[12])
	}
	return ut + st, nil
}

// readRSS returns VmRSS from a /proc/PID/status file, in bytes.
func readRSS(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return parseRSS(b)
}

func parseRSS(status []byte) (int64, error) {
	for line := range strings.SplitSeq(string(status), "\n") {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("unexpected VmRSS line %q", line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		return kb * 1024, err
	}
	return 0, fmt.Errorf("no VmRSS line (a kernel thread or a zombie?)")
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat times.
// Go has no sysconf without cgo; the kernel passes the value to every
// process as AT_CLKTCK in the auxiliary vector. It is 100 on every
// mainstream Linux, the fallback.
func clockTicks() int64 {
	const atClkTck = 17
	b, err := os.ReadFile("/proc/self/auxv")
	if err == nil && len(b)%16 == 0 {
		for i := 0; i+16 <= len(b); i += 16 {
			if binary.NativeEndian.Uint64(b[i:]) == atClkTck {
				if v := int64(binary.NativeEndian.Uint64(b[i+8:])); v > 0 {
					return v
				}
			}
		}
	}
	return 100
}
