package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestFetchFromDiskAfterRestart hunts a symptom seen once: after a SIGTERM
// and restart of bin/strand on a data dir with 100,000 records in a
// 1-partition topic, `kcat -C -e` sent Fetch v11 and got no response at
// all. Right after a restart nothing is in the logs' staging buffers, so
// every fetch is served from disk; a connection on the core that does not
// own the partition goes Core.Send -> shard.Log.Read -> io_uring read ->
// reaper eventfd -> Poll -> reply Send back. Many connections at once
// (spread over both cores) read both a 1-partition and an 8-partition
// topic from the start, several restarts in a row; every Fetch must be
// answered within 5 s (its max wait is 500 ms). kcat itself reads t1 in
// each round too. On a hang the broker gets SIGQUIT, so the failure shows
// every goroutine's stack (where the loops and reapers are waiting).
//
// What it found so far (see the e2e report of issue #3): the restart
// failed outright (an unaligned O_DIRECT read while rebuilding producer
// state, fixed in shard/recovery.go); fetches went unanswered with
// messages stranded in a core's inbox and no wake-up pending, while the
// reactor's wake-up code was being changed (not seen since); and on a
// loaded machine one io_uring Poll can drain completions for seconds
// while the core's connections wait.
func TestFetchFromDiskAfterRestart(t *testing.T) {
	const (
		t1N   = 100_000 // records in t1 (1 partition)
		t8N   = 10_000  // records per partition of t8
		conns = 8
	)
	// replay bounds one Fetch's answer. A race-built broker on a loaded
	// 2-core machine (CI runs the other packages' tests beside this one)
	// spent 0.8-1.8 s per completion batch parsing thousands of small
	// batches; that is slowness, not a hang, so it gets room. A true hang
	// still fails, with every goroutine's stack.
	replay := 5 * time.Second
	rounds := 6
	switch {
	case testing.Short():
		rounds = 2
	case raceEnabled:
		rounds = 4 // the race-built broker is several times slower
		replay = 30 * time.Second
	}
	dir := testDataDir(t)
	p := startProc(t, dir)
	cl := produceClient(t, p.addr)
	createTopic(t, cl, "t1", 1)
	createTopic(t, cl, "t8", 8)
	produceSeq(t, cl, "t1", 1, t1N, 1)
	produceSeq(t, cl, "t8", 8, t8N, 4)
	cl.Close()

	kcat := ""
	if path, err := exec.LookPath("kcat"); err == nil {
		kcat = path
	}
	for round := range rounds {
		if code := p.term(60 * time.Second); code != 0 {
			t.Fatalf("round %d: SIGTERM exit code %d, want 0", round, code)
		}
		p.start()
		var wg sync.WaitGroup
		errs := make(chan error, conns+1)
		var slowMu sync.Mutex
		var slowest time.Duration
		for c := range conns {
			topic, want := "t1", counts(1, t1N)
			if c%2 == 1 {
				topic, want = "t8", counts(8, t8N)
			}
			r := dialRaw(t, p.addr)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer r.nc.Close()
				st, err := rawReadAll(r, topic, want, replay)
				slowMu.Lock()
				slowest = max(slowest, st.slowest)
				slowMu.Unlock()
				if err != nil {
					errs <- fmt.Errorf("round %d conn %d (%s, local %s): %w (after %d fetches, %d bytes)", round, c, topic, r.nc.LocalAddr(), err, st.fetches, st.bytes)
				}
			}()
		}
		if kcat != "" {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- kcatReadLines(kcat, p.addr, "t1", t1N, 60*time.Second)
			}()
		}
		go func() { wg.Wait(); close(errs) }()
		quit := false
		for err := range errs {
			if err != nil {
				t.Error(err)
				if !quit {
					quit = true
					p.quit() // dump the broker's goroutines while it is stuck
				}
			}
		}
		if t.Failed() {
			t.FailNow()
		}
		t.Logf("round %d: %d connections read everything; slowest fetch response %v", round, conns, slowest.Round(time.Millisecond))
	}
}

// kcatReadLines runs `kcat -C -t topic -o beginning -e` and checks it
// printed n records.
func kcatReadLines(kcat, addr, topic string, n int, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat, "-b", addr, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%o\n")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kcat -C %s: %v (ctx %v)\n%s", topic, err, ctx.Err(), stderr.String())
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != n {
		return fmt.Errorf("kcat -C %s printed %d records, want %d", topic, len(lines), n)
	}
	for i, l := range lines {
		if l != fmt.Sprint(i) {
			return fmt.Errorf("kcat -C %s: record %d has offset %s", topic, i, l)
		}
	}
	return nil
}
