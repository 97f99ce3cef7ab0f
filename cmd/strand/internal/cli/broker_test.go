package cli

import (
	"strconv"
	"strings"
	"testing"
)

// selfID is the test broker's node id, as `strand cluster info` shows it.
func selfID(t *testing.T) string {
	t.Helper()
	var info struct {
		Brokers []struct {
			ID int32 `json:"id"`
		} `json:"brokers"`
	}
	decode(t, ok(t, "", "cluster", "info", "--json"), &info)
	if len(info.Brokers) != 1 {
		t.Fatalf("the test broker's cluster lists %d brokers", len(info.Brokers))
	}
	return strconv.Itoa(int(info.Brokers[0].ID))
}

// A broker that holds partitions is not removed: the refusal (exit 1)
// lists them, on stdout as a table or JSON and in the error, and says
// what to do; the broker stays in the cluster.
func TestBrokerDecommissionRefusedWhileHolding(t *testing.T) {
	topic := uniq("cli-decom")
	ok(t, "", "topic", "create", topic, "--partitions", "2")
	self := selfID(t)
	r := fails(t, ExitFailed, "still holds", "", "broker", "decommission", self)
	for _, want := range []string{"broker " + self + " still holds", topic + "/0", "no other live broker", "strand topic delete"} {
		if !strings.Contains(r.stderr, want) {
			t.Fatalf("decommission of a broker holding partitions: stderr lacks %q: %s", want, r.stderr)
		}
	}
	for _, want := range []string{"TOPIC", "PARTITION", "ROLE", topic, "leader"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("decommission of a broker holding partitions: stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	r = fails(t, ExitFailed, "still holds", "", "broker", "decommission", self, "--json")
	var res decommissionResult
	decode(t, r.stdout, &res)
	var mine []int32
	for _, p := range res.Partitions {
		if p.Topic == topic {
			if !p.Leader {
				t.Fatalf("%s/%d not reported led by its only broker: %+v", p.Topic, p.Partition, res)
			}
			mine = append(mine, p.Partition)
		}
	}
	if res.Decommissioned || strconv.Itoa(int(res.Broker)) != self || !res.WasRunning ||
		len(mine) != 2 || mine[0] != 0 || mine[1] != 1 || !strings.Contains(res.Error, "no other live broker") {
		t.Fatalf("decommission --json of a broker holding partitions: %+v", res)
	}
	if selfID(t) != self {
		t.Fatal("the refused broker left the cluster")
	}
}

func TestBrokerDecommissionErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"decommission", "99"}, ExitFailed, "broker 99 is not registered in the cluster (`strand cluster info`"},
		{[]string{"decommission", "x"}, ExitUsage, "want a broker id"},
		{[]string{"decommission", "4294967296"}, ExitUsage, "want a broker id"},
		{[]string{"decommission"}, ExitUsage, "the ID of the broker"},
		{[]string{"decommission", "1", "2"}, ExitUsage, "the ID of the broker"},
		{[]string{"decommission", "1", "--nope"}, ExitUsage, "unknown flag"},
		{[]string{"nope"}, ExitUsage, "unknown command"},
		{[]string{}, ExitUsage, "needs a subcommand"},
	} {
		fails(t, tc.code, tc.want, "", append([]string{"broker"}, tc.args...)...)
	}
	var res decommissionResult
	decode(t, fails(t, ExitFailed, "not registered", "", "broker", "decommission", "99", "--json").stdout, &res)
	if res.Broker != 99 || res.Decommissioned || res.WasRunning || len(res.Partitions) != 0 || !strings.Contains(res.Error, "not registered") {
		t.Fatalf("decommission --json of an unknown broker: %+v", res)
	}
}
