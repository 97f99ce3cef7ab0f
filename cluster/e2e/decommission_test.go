package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// strandCLI runs the strand binary's CLI and returns its stdout, stderr
// and exit code.
func strandCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(strandBin(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("strand %s: %v", strings.Join(args, " "), err)
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

type decomJSON struct {
	Broker         int32 `json:"broker"`
	Decommissioned bool  `json:"decommissioned"`
	Partitions     []struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
		Leader    bool   `json:"leader"`
	} `json:"partitions"`
	Moved []struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
	} `json:"moved"`
	Error string `json:"error"`
}

// TestBrokerDecommission: `strand broker decommission` against a live
// cluster. A joined fourth broker leads partitions of a topic with records;
// decommission moves each of its replicas to another broker by
// reassignment (the new replica fetches the records from it), then removes
// it: every record is still read back from the others, `strand cluster
// info` no longer lists it on any broker, and a second decommission finds
// it unknown. A partition with nowhere to go (a replica on every broker)
// is refused (exit 1) with its partitions listed, and the broker stays; an
// unknown id is refused.
func TestBrokerDecommission(t *testing.T) {
	c := startCluster(t, 3)
	ctx := ctxFor(t, 3*time.Minute)
	p4 := c.join(ctx, 4)
	seed := c.procs[1].addr

	// Nowhere to go: a replica on each of the four brokers.
	if err := createReplicated(ctx, c, 1, "everywhere", [][]int32{{4, 1, 2, 3}}); err != nil {
		t.Fatalf("create everywhere: %v", err)
	}
	stdout, stderr, code := strandCLI(t, "broker", "decommission", "4", "--brokers", seed)
	if code != 1 || !strings.Contains(stderr, "broker 4 still holds") || !strings.Contains(stderr, "no other live broker") ||
		!strings.Contains(stderr, "everywhere/0") || !strings.Contains(stderr, "strand topic delete everywhere") {
		t.Fatalf("decommission of a broker whose partition has nowhere to go: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	stdout, stderr, code = strandCLI(t, "broker", "decommission", "4", "--json", "--brokers", seed)
	var res decomJSON
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || code != 1 || res.Decommissioned || len(res.Moved) != 0 {
		t.Fatalf("decommission --json refused: exit %d, %v\nstdout:\n%s\nstderr:\n%s", code, err, stdout, stderr)
	}
	if ids := c.infoBrokers(t, 2); !slices.Contains(ids, 4) {
		t.Fatalf("a refused decommission removed broker 4: cluster info lists %v", ids)
	}
	wantCode(t, "delete everywhere", deleteTopic(t, c.clientOf(1), "everywhere"), 0)

	if _, stderr, code := strandCLI(t, "broker", "decommission", "9", "--brokers", seed); code != 1 || !strings.Contains(stderr, "broker 9 is not registered") {
		t.Fatalf("decommission of an unknown broker: exit %d, %s", code, stderr)
	}

	const topic = "held"
	createTopic(t, c.clientOf(2), topic, 4)
	c.waitLeads(ctx, 4, topic)
	leads, err := c.leaders(ctx, 1, topic)
	if err != nil {
		t.Fatal(err)
	}
	var want []string // broker 4's partitions
	for p, l := range leads {
		if l == 4 {
			want = append(want, fmt.Sprintf("%s/%d", topic, p))
		}
	}
	acked := produceAll(t, ctx, c.client(), topic, 4, 20)
	stdout, stderr, code = strandCLI(t, "broker", "decommission", "4", "--json", "--brokers", seed, "--move-timeout", "60s")
	res = decomJSON{}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || code != 0 || !res.Decommissioned || len(res.Partitions) != 0 {
		t.Fatalf("decommission --json: exit %d, %v\nstdout:\n%s\nstderr:\n%s", code, err, stdout, stderr)
	}
	var moved []string
	for _, p := range res.Moved {
		moved = append(moved, fmt.Sprintf("%s/%d", p.Topic, p.Partition))
	}
	if !slices.Equal(moved, want) {
		t.Fatalf("moved %v, want broker 4's partitions %v", moved, want)
	}
	p4.term(30 * time.Second)
	delete(c.procs, 4)
	consumeCounts(t, ctx, c.seeds(), topic, acked)
	for id := int32(1); id <= 3; id++ {
		waitUntil(t, 10*time.Second, fmt.Sprintf("broker %d's cluster info without broker 4", id), func() error {
			if ids := c.infoBrokers(t, id); !slices.Equal(ids, []int32{1, 2, 3}) {
				return fmt.Errorf("brokers %v", ids)
			}
			return nil
		})
	}
	if _, stderr, code := strandCLI(t, "broker", "decommission", "4", "--brokers", seed); code != 1 || !strings.Contains(stderr, "broker 4 is not registered") {
		t.Fatalf("a second decommission of broker 4: exit %d, %s", code, stderr)
	}
}

// infoBrokers is the broker ids `strand cluster info` shows when asked
// through broker id.
func (c *testCluster) infoBrokers(t *testing.T, id int32) []int32 {
	t.Helper()
	stdout, stderr, code := strandCLI(t, "cluster", "info", "--json", "--brokers", c.procs[id].addr)
	var info struct {
		Brokers []struct {
			ID int32 `json:"id"`
		} `json:"brokers"`
	}
	if err := json.Unmarshal([]byte(stdout), &info); err != nil || code != 0 {
		t.Fatalf("strand cluster info: exit %d, %v\n%s%s", code, err, stdout, stderr)
	}
	var ids []int32
	for _, b := range info.Brokers {
		ids = append(ids, b.ID)
	}
	slices.Sort(ids)
	return ids
}
