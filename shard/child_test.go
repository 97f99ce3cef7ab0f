package shard

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// crashChild is the parent's side of a SIGKILL crash test: it re-runs this
// test binary as the child half (a test that does nothing unless its
// environment says so), reads what the child prints, SIGKILLs it at the
// crash point the caller arms from those lines, and reaps it. TestCrashSIGKILL,
// TestCompactSIGKILL and TestReplicatedCrashSIGKILL share it so that their
// children are started, killed and checked the same way.
type crashChild struct {
	// test is the child test, run as -test.run=^test$.
	test string
	// env is added to this process's environment for the child.
	env []string
	// role names the child in failure messages ("writer", "child").
	role string
	// line gets the fields of each whole, non-empty line the child
	// printed, except a "fail" line, which fails the test. A line cut by
	// the kill never arrives: the parent never saw what it reports.
	line func(f []string)
	// onKill, if set, runs when the parent sends its SIGKILL.
	onKill func()
	// timeout says what the parent was still waiting for when the child
	// had not died 60s after it started.
	timeout func() string

	stderr bytes.Buffer
	kill   <-chan time.Time
	armed  bool
	killed bool
}

// killAfter arms the crash point d from now. Only the first call counts.
func (c *crashChild) killAfter(d time.Duration) {
	if !c.armed {
		c.armed = true
		c.kill = time.After(d) // the crash point, not a wait for a condition
	}
}

// selfKilled records that the child SIGKILLed itself, which run accepts as
// if the parent had.
func (c *crashChild) selfKilled() { c.killed = true }

// run starts the child, hands its lines to c.line until its stdout closes,
// and fails t unless it died of a SIGKILL without a data race.
func (c *crashChild) run(t *testing.T) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+c.test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Stderr = &c.stderr
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	lines := make(chan string, 4096)
	go func() {
		defer close(lines)
		defer pr.Close()
		r := bufio.NewReader(pr)
		for {
			s, err := r.ReadString('\n')
			if err != nil {
				return // a fragment cut by the kill was never seen whole
			}
			lines <- strings.TrimSuffix(s, "\n")
		}
	}()
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	for done := false; !done; {
		select {
		case <-deadline.C:
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("%s; stderr:\n%s", c.timeout(), c.stderr.String())
		case <-c.kill:
			c.kill = nil
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			c.killed = true
			if c.onKill != nil {
				c.onKill()
			}
		case l, ok := <-lines:
			if !ok {
				done = true
				break
			}
			f := strings.Fields(l)
			switch {
			case len(f) == 0:
			case f[0] == "fail":
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("%s failed: %s\nstderr:\n%s", c.role, l, c.stderr.String())
			default:
				c.line(f)
			}
		}
	}
	err = cmd.Wait()
	if strings.Contains(c.stderr.String(), "DATA RACE") {
		t.Fatalf("the race detector fired in the %s:\n%s", c.role, c.stderr.String())
	}
	var ee *exec.ExitError
	if !c.killed || !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("%s ended without our SIGKILL (killed=%v): %v\nstderr:\n%s", c.role, c.killed, err, c.stderr.String())
	}
}
