package e2e

import (
	"testing"
	"time"
)

// TestStartStopLogsNoStall: starting, lightly using and stopping the broker
// (three times, on a data dir with a few topics and the offsets topic) must
// not log a reactor stall warning. Opening and recovering logs at start and
// syncing them at shutdown are long by nature, and warning about them (10-64
// ms, once 1.2 s, at every start and stop) taught operators to ignore the
// warning. A real stall is still warned about: see reactor's
// TestExpectedSlowWorkIsNotWarned.
func TestStartStopLogsNoStall(t *testing.T) {
	dir := testDataDir(t)
	p := startProc(t, dir)
	for round := range 3 {
		if round > 0 {
			p.start()
		}
		cl := produceClient(t, p.addr)
		if round == 0 {
			createTopic(t, cl, "light1", 2)
			createTopic(t, cl, "light4", 4)
			produceSeq(t, cl, "light1", 2, 100, 1)
			produceSeq(t, cl, "light4", 4, 100, 2)
		}
		cl.Close()
		verifyTopic(t, p.addr, "light4", counts(4, 100), 30*time.Second)
		if code := p.term(60 * time.Second); code != 0 {
			t.Fatalf("round %d: SIGTERM exit code %d, want 0", round, code)
		}
	}
	if n, longest, line := stallSummary(p.logs.String()); n > 0 {
		t.Fatalf("%d stall warnings over 3 start/stop cycles under light load (longest %v, load %s):\n%s", n, longest, loadAvg(), line)
	}
}
