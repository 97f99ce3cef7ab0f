package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func runKcat(t testing.TB, kcat string, d time.Duration, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat %s: %v (timeout %v: %v)\nstderr:\n%s", strings.Join(args, " "), err, d, ctx.Err(), lastBytes(stderr.Bytes(), 4000))
	}
	return stdout.Bytes()
}

func lastBytes(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// TestKcat checks client compatibility with kcat (librdkafka): -L lists the
// broker and the topic, -P with acks=all writes 100,000 lines, and -C -e
// reads exactly those lines back, in order.
func TestKcat(t *testing.T) {
	kcat := kcatPath(t)
	n := startNode(t, testDataDir(t), nil)
	addr := n.Addr()
	const topic = "lines"
	createTopic(t, newClient(t, addr), topic, 1)

	meta := string(runKcat(t, kcat, 30*time.Second, "-b", addr, "-L"))
	for _, want := range []string{"1 brokers:", "broker 0 at " + addr, `topic "lines" with 1 partitions:`, "partition 0, leader 0, replicas: 0, isrs: 0"} {
		if !strings.Contains(meta, want) {
			t.Fatalf("kcat -L output lacks %q:\n%s", want, meta)
		}
	}
	var js struct {
		Brokers []struct {
			ID   int32  `json:"id"`
			Name string `json:"name"`
		} `json:"brokers"`
		Topics []struct {
			Topic      string `json:"topic"`
			Partitions []struct {
				Partition int32 `json:"partition"`
				Leader    int32 `json:"leader"`
			} `json:"partitions"`
		} `json:"topics"`
	}
	if err := json.Unmarshal(runKcat(t, kcat, 30*time.Second, "-b", addr, "-L", "-J"), &js); err != nil {
		t.Fatalf("kcat -L -J: %v", err)
	}
	found := false
	for _, tp := range js.Topics {
		found = found || tp.Topic == topic && len(tp.Partitions) == 1
	}
	if len(js.Brokers) != 1 || js.Brokers[0].Name != addr || !found {
		t.Fatalf("kcat -L -J: want broker %s and topic %q with 1 partition, got %+v", addr, topic, js)
	}

	const lines = 100_000
	var in bytes.Buffer
	for i := range lines {
		fmt.Fprintf(&in, "line %06d %x\n", i, splitmix(uint64(i))>>(4*(i%9)))
	}
	file := filepath.Join(t.TempDir(), "lines.txt")
	if err := os.WriteFile(file, in.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	runKcat(t, kcat, 2*time.Minute, "-b", addr, "-P", "-t", topic, "-l", "-X", "acks=all", file)
	t.Logf("kcat -P: %d lines in %v", lines, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	out := runKcat(t, kcat, 2*time.Minute, "-b", addr, "-C", "-t", topic, "-o", "beginning", "-e", "-q")
	t.Logf("kcat -C -e: %d bytes in %v", len(out), time.Since(start).Round(time.Millisecond))
	if !bytes.Equal(out, in.Bytes()) {
		got := strings.Split(string(out), "\n")
		want := strings.Split(in.String(), "\n")
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Fatalf("kcat -C: line %d is %q, want %q (got %d lines, want %d)", i, got[i], want[i], len(got)-1, lines)
			}
		}
		t.Fatalf("kcat -C: got %d lines, want %d", len(got)-1, lines)
	}
}
