package cli

import (
	"strconv"
	"strings"
	"testing"
)

// place runs a placement command against the test broker's admin API.
func place(t *testing.T, args ...string) result {
	t.Helper()
	return cli(t, "", append(append([]string{"placement"}, args...), "--admin", testAdmin)...)
}

func TestPlacementShowMoveRebalance(t *testing.T) {
	topic := uniq("cli-placed")
	ok(t, "", "topic", "create", topic, "--partitions", "2")
	r := place(t, "show")
	if r.code != 0 {
		t.Fatalf("placement show: exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"LOAD OVER THE LAST", "CORE", "PARTITIONS", "IN/S", "BUSY", topic} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("placement show lacks %q:\n%s", want, r.stdout)
		}
	}
	var v placementView
	decode(t, place(t, "show", "--json").stdout, &v)
	if len(v.Cores) < 2 {
		t.Fatalf("moving needs two cores; the test broker has %d", len(v.Cores))
	}
	from := -1
	for _, p := range v.Partitions {
		if p.Topic == topic && p.Partition == 1 {
			from = p.Core
		}
	}
	if from < 0 {
		t.Fatalf("%s/1 not in placement show --json: %+v", topic, v)
	}
	to := strconv.Itoa(1 - from)
	r = place(t, "move", topic, "1", to)
	if want := "moved " + topic + "/1 from core " + strconv.Itoa(from) + " to core " + to; r.code != 0 || !strings.Contains(r.stdout, want) {
		t.Fatalf("placement move: exit %d, %q; want %q (%s)", r.code, r.stdout, want, r.stderr)
	}
	var m placementMove
	decode(t, place(t, "move", topic, "1", to, "--json").stdout, &m)
	if m.FromCore != 1-from || m.ToCore != 1-from {
		t.Fatalf("a repeated move --json: %+v", m)
	}
	if r := place(t, "move", topic, "1", to); !strings.Contains(r.stdout, "already on core "+to) {
		t.Fatalf("a repeated move: %q", r.stdout)
	}
	// Other tests' traffic decides whether anything moves here (the
	// placement e2e test checks what moves); the output is one or the
	// other, and a dry run moves nothing.
	r = place(t, "rebalance", "--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, "balanced") && !strings.Contains(r.stdout, "WOULD MOVE") {
		t.Fatalf("rebalance --dry-run: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	var rb rebalanceResult
	decode(t, place(t, "rebalance", "--json", "--dry-run").stdout, &rb)
	if !rb.DryRun || rb.Moves == nil {
		t.Fatalf("rebalance --json --dry-run: %+v", rb)
	}
	decode(t, place(t, "show", "--json").stdout, &v)
	for _, p := range v.Partitions {
		for _, m := range rb.Moves {
			if p.Topic == m.Topic && p.Partition == m.Partition && p.Core != m.FromCore {
				t.Fatalf("a dry run moved %s/%d", m.Topic, m.Partition)
			}
		}
	}
}

func TestPlacementErrors(t *testing.T) {
	topic := uniq("cli-placed-err")
	ok(t, "", "topic", "create", topic)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"move", "no-such-topic", "0", "1"}, ExitFailed, "no such topic or partition"},
		{[]string{"move", topic, "0", "64"}, ExitFailed, "no such core"},
		{[]string{"move", topic, "x", "1"}, ExitUsage, "want a partition number"},
		{[]string{"move", topic, "0", "one"}, ExitUsage, "want a core number"},
		{[]string{"move", topic, "0"}, ExitUsage, "TOPIC PARTITION CORE"},
		{[]string{"show", "extra"}, ExitUsage, "no arguments"},
		{[]string{"nope"}, ExitUsage, "unknown command"},
		{[]string{}, ExitUsage, "needs a subcommand"},
	} {
		r := place(t, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Fatalf("placement %v: exit %d, %q; want exit %d and %q", tc.args, r.code, r.stderr, tc.code, tc.want)
		}
	}
	// The hint comes with the API's error.
	if r := place(t, "move", "no-such-topic", "0", "1"); !strings.Contains(r.stderr, "strand placement show") {
		t.Fatalf("no hint: %q", r.stderr)
	}
	// Admin API down: exit 3, saying what to check.
	down := "http://" + closedPort(t)
	for _, args := range [][]string{{"show"}, {"move", topic, "0", "1"}, {"rebalance"}} {
		r := cli(t, "", append(append([]string{"placement"}, args...), "--admin", down)...)
		if r.code != ExitUnreachable || !strings.Contains(r.stderr, "cannot reach the admin API") || !strings.Contains(r.stderr, "--admin") {
			t.Fatalf("placement %v with the admin API down: exit %d, %q", args, r.code, r.stderr)
		}
	}
}
