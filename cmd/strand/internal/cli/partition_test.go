package cli

import (
	"strings"
	"testing"
)

// TestPartitionCommands: on a single broker every preferred election is
// "not needed", a reassignment to the broker holding the partition is a
// no-op accepted, one to an unknown broker and a cancel without a
// reassignment fail (exit 1) with Kafka's error names, and nothing is
// listed in progress. Bad arguments are usage errors.
func TestPartitionCommands(t *testing.T) {
	topic := uniq("cli-partition")
	ok(t, "", "topic", "create", topic, "--partitions", "2")
	self := selfID(t)

	var res []partitionResult
	decode(t, ok(t, "", "partition", "elect", topic, "--json"), &res)
	if len(res) != 2 || res[0].Result != "not needed" || res[1].Result != "not needed" {
		t.Fatalf("elect %s: %+v", topic, res)
	}
	if out := ok(t, "", "partition", "elect", topic+"/1"); !strings.Contains(out, "not needed") {
		t.Fatalf("elect %s/1:\n%s", topic, out)
	}
	if out := ok(t, "", "partition", "reassign", topic+"/0="+self); !strings.Contains(out, "ok") {
		t.Fatalf("reassign to its own broker:\n%s", out)
	}
	r := fails(t, ExitFailed, "failed", "", "partition", "reassign", topic+"/0=9999")
	if !strings.Contains(r.stdout, "INVALID_REPLICA_ASSIGNMENT") {
		t.Fatalf("reassign to an unknown broker:\n%s", r.stdout)
	}
	r = fails(t, ExitFailed, "failed", "", "partition", "reassign", "--cancel", topic+"/1")
	if !strings.Contains(r.stdout, "NO_REASSIGNMENT_IN_PROGRESS") {
		t.Fatalf("cancel without a reassignment:\n%s", r.stdout)
	}
	var list []reassignmentStatus
	decode(t, ok(t, "", "partition", "reassignments", "--json"), &list)
	if len(list) != 0 {
		t.Fatalf("reassignments in progress: %+v", list)
	}
	fails(t, ExitUsage, "TOPIC/PARTITION", "", "partition", "reassign", topic)
	fails(t, ExitUsage, "not a broker id", "", "partition", "reassign", topic+"/0=x")
	fails(t, ExitUsage, "--cancel takes", "", "partition", "reassign", "--cancel", topic+"/0=1")
}
