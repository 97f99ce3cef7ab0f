package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestGroups(t *testing.T) {
	topic, grp := uniq("cli-groups"), uniq("cli-group")
	ok(t, "", "topic", "create", topic, "-p", "2")
	ok(t, "a\nb\nc\n", "produce", topic, "--partition", "0")
	ok(t, "d\ne\n", "produce", topic, "--partition", "1")

	// A group consumer reads everything once and commits what it printed.
	if out := ok(t, "", "consume", topic, "--group", grp); strings.Count(out, "\n") != 5 {
		t.Fatalf("first group consume:\n%s", out)
	}
	if out := ok(t, "", "consume", topic, "--group", grp, "--timeout", "300ms"); out != "" {
		t.Fatalf("second group consume re-read:\n%s", out)
	}

	out := ok(t, "", "group", "list")
	if !strings.Contains(out, "GROUP") || !strings.Contains(out, grp) {
		t.Fatalf("group list:\n%s", out)
	}
	var listed []struct {
		Group string `json:"group"`
		State string `json:"state"`
	}
	decode(t, ok(t, "", "group", "list", "--json"), &listed)
	if !containsGroup(listed, grp) {
		t.Fatalf("group list --json: %+v", listed)
	}

	d := describeGroup(t, grp)
	if d.TotalLag != 0 || len(d.Offsets) != 2 || len(d.Members) != 0 {
		t.Fatalf("after consuming all: %+v", d)
	}
	for _, o := range d.Offsets {
		if o.Committed != o.End || o.Lag != 0 {
			t.Fatalf("partition %d: committed %d, end %d, lag %d", o.Partition, o.Committed, o.End, o.Lag)
		}
	}
	out = ok(t, "", "group", "describe", grp)
	for _, want := range []string{"GROUP " + grp, "TOTAL LAG 0", "COMMITTED", "LAG", topic} {
		if !strings.Contains(out, want) {
			t.Fatalf("group describe table lacks %q:\n%s", want, out)
		}
	}

	// seek: to the start, to an offset (clamped), to a time, to the end.
	out = ok(t, "", "group", "seek", grp, "--to", "oldest")
	if !strings.Contains(out, "OLD") || !strings.Contains(out, topic) {
		t.Fatalf("seek table:\n%s", out)
	}
	if d := describeGroup(t, grp); d.TotalLag != 5 {
		t.Fatalf("after seek --to oldest: lag %d, want 5", d.TotalLag)
	}
	var moved []struct {
		Partition int32 `json:"partition"`
		Old, New  int64
	}
	decode(t, ok(t, "", "group", "seek", grp, "--to", "2", "--topic", topic, "--json"), &moved)
	if len(moved) != 2 || moved[0].New != 2 || moved[1].New != 2 || moved[0].Old != 0 {
		t.Fatalf("seek --to 2: %+v", moved)
	}
	if out := ok(t, "", "consume", topic, "--group", grp); strings.Count(out, "\n") != 1 || out != "c\n" {
		t.Fatalf("consume after seek --to 2 (partition 1 has only 2 records): %q", out)
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	ok(t, "", "group", "seek", grp, "--to", future)
	if d := describeGroup(t, grp); d.TotalLag != 0 {
		t.Fatalf("after seek to a future time: lag %d, want 0", d.TotalLag)
	}
	ok(t, "", "group", "seek", grp, "--to", "2000-01-01T00:00:00Z")
	if d := describeGroup(t, grp); d.TotalLag != 5 {
		t.Fatalf("after seek to a past time: lag %d, want 5", d.TotalLag)
	}
	ok(t, "", "group", "seek", grp, "--to", "newest")
	if d := describeGroup(t, grp); d.TotalLag != 0 {
		t.Fatalf("after seek --to newest: lag %d, want 0", d.TotalLag)
	}
	fails(t, ExitUsage, "--to is required", "", "group", "seek", grp)
	fails(t, ExitUsage, "--to \"soon\"", "", "group", "seek", grp, "--to", "soon")
	fails(t, ExitUsage, "no committed offsets", "", "group", "seek", "cli-no-group", "--to", "oldest")

	// A running member: describe shows it and its assignment; seek and
	// delete refuse.
	cl, err := kgo.NewClient(kgo.SeedBrokers(testBroker), kgo.ConsumerGroup(grp), kgo.ConsumeTopics(topic), kgo.ClientID("cli-test-member"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithCancel(context.Background())
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for ctx.Err() == nil {
			cl.PollFetches(ctx)
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		d := describeGroup(t, grp)
		if len(d.Members) == 1 && len(d.Members[0].Assigned[topic]) == 2 {
			if d.Members[0].ClientID != "cli-test-member" {
				t.Fatalf("member %+v", d.Members[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the member never showed up with its assignment: %+v", d)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out := ok(t, "", "group", "describe", grp); !strings.Contains(out, "cli-test-member") || !strings.Contains(out, topic+":0,1") {
		t.Fatalf("describe with a member:\n%s", out)
	}
	fails(t, ExitFailed, "stop its consumers first", "", "group", "seek", grp, "--to", "oldest")
	fails(t, ExitFailed, "stop its consumers first", "", "group", "delete", grp)
	cancel()
	<-polled
	cl.Close() // leaves the group

	deadline = time.Now().Add(20 * time.Second)
	for len(describeGroup(t, grp).Members) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the member never left")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out := ok(t, "", "group", "delete", grp); !strings.Contains(out, "deleted") {
		t.Fatalf("group delete:\n%s", out)
	}
	fails(t, ExitFailed, "does not exist", "", "group", "describe", grp)
	fails(t, ExitFailed, "does not exist", "", "group", "delete", grp)
}

func describeGroup(t *testing.T, grp string) describedGroup {
	t.Helper()
	var ds []describedGroup
	decode(t, ok(t, "", "group", "describe", grp, "--json"), &ds)
	if len(ds) != 1 || ds[0].Group != grp {
		t.Fatalf("group describe --json: %+v", ds)
	}
	return ds[0]
}

func containsGroup(ls []struct {
	Group string `json:"group"`
	State string `json:"state"`
}, grp string) bool {
	for _, l := range ls {
		if l.Group == grp {
			return true
		}
	}
	return false
}

// A group consume with -n commits exactly the records it printed, though
// it may have fetched more.
func TestGroupConsumeCommitsWhatItPrinted(t *testing.T) {
	topic, grp := uniq("cli-group-n"), uniq("cli-group-n")
	ok(t, "", "topic", "create", topic)
	ok(t, "a\nb\nc\nd\n", "produce", topic)
	if out := ok(t, "", "consume", topic, "--group", grp, "-n", "2"); out != "a\nb\n" {
		t.Fatalf("consume -n 2: %q", out)
	}
	d := describeGroup(t, grp)
	if len(d.Offsets) != 1 || d.Offsets[0].Committed != 2 || d.Offsets[0].Lag != 2 {
		t.Fatalf("after printing 2 of 4: %+v", d.Offsets)
	}
	if out := ok(t, "", "consume", topic, "--group", grp); out != "c\nd\n" {
		t.Fatalf("the next group consume: %q", out)
	}
}

// An interrupted `consume --follow --group` (main cancels the context on
// SIGINT) exits 0 and still commits what it printed.
func TestConsumeFollowInterrupted(t *testing.T) {
	topic, grp := uniq("cli-follow"), uniq("cli-follow")
	ok(t, "", "topic", "create", topic)
	ok(t, "a\nb\nc\n", "produce", topic)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main([]string{"consume", topic, "--group", grp, "--follow", "--brokers", testBroker},
			Env{Context: ctx, Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr})
	}()
	deadline := time.Now().Add(20 * time.Second)
	for stdout.String() != "a\nb\nc\n" {
		if time.Now().After(deadline) {
			t.Fatalf("consume --follow printed %q", stdout.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("interrupted consume: exit %d, stderr %q", code, stderr.String())
	}
	if d := describeGroup(t, grp); len(d.Offsets) != 1 || d.Offsets[0].Committed != 3 {
		t.Fatalf("after an interrupted consume of 3 records: %+v", d.Offsets)
	}
}
