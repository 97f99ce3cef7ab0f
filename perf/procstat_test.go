package perf

import (
	"os"
	"testing"
)

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and parentheses must not shift fields.
	stat := "1234 (we (ird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 5 0 100 1000 50\n"
	ticks, err := parseStatCPU([]byte(stat))
	if err != nil || ticks != 325 {
		t.Fatalf("parseStatCPU = %d, %v; want 250+75", ticks, err)
	}
	for _, bad := range []string{"no paren", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 a b"} {
		if _, err := parseStatCPU([]byte(bad)); err == nil {
			t.Errorf("parseStatCPU(%q) accepted", bad)
		}
	}
}

func TestParseRSS(t *testing.T) {
	rss, err := parseRSS([]byte("Name:\tstrand\nVmPeak:\t  9999 kB\nVmRSS:\t  2048 kB\n"))
	if err != nil || rss != 2048*1024 {
		t.Fatalf("parseRSS = %d, %v", rss, err)
	}
	if _, err := parseRSS([]byte("Name:\tkworker\n")); err == nil {
		t.Error("a status without VmRSS parsed")
	}
}

// Reading this process through /proc (the --pid path) and through
// getrusage (the in-process path) both give sane numbers.
func TestProcProbeReadsThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	for _, p := range []*procProbe{newProcProbe(os.Getpid()), newProcProbe(0)} {
		s, err := p.read()
		if err != nil {
			t.Fatalf("%s: %v", p.label, err)
		}
		if s.rssBytes < 1<<20 || s.cpu < 0 {
			t.Errorf("%s: rss %d cpu %v", p.label, s.rssBytes, s.cpu)
		}
	}
	if tick := clockTicks(); tick < 1 || tick > 10000 {
		t.Errorf("clock ticks %d", tick)
	}
	if _, err := newProcProbe(1 << 30).read(); err == nil {
		t.Error("a missing pid read fine")
	}
}
