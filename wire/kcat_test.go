package wire

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// kcatPath finds kcat, installing the Debian package if it is missing.
// The test skips, saying why, only when it cannot be had.
func kcatPath(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("kcat"); err == nil {
		return p
	}
	if os.Geteuid() == 0 {
		if _, err := exec.LookPath("apt-get"); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, "apt-get", "install", "-y", "kcat").CombinedOutput()
			if err != nil {
				upd, _ := exec.CommandContext(ctx, "apt-get", "update").CombinedOutput()
				out, err = exec.CommandContext(ctx, "apt-get", "install", "-y", "kcat").CombinedOutput()
				out = append(upd, out...)
			}
			if err == nil {
				if p, err := exec.LookPath("kcat"); err == nil {
					return p
				}
			}
			t.Skipf("kcat not installed and apt-get install kcat failed: %v\n%s", err, tail(out))
		}
	}
	t.Skip("kcat not installed and cannot be installed here (needs root and apt-get)")
	return ""
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

func runKcat(t *testing.T, kcat string, stdin []byte, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat %s: %v\nstderr:\n%s", strings.Join(args, " "), err, tail(stderr.Bytes()))
	}
	return stdout.Bytes()
}

func TestKcat(t *testing.T) {
	kcat := kcatPath(t)
	ts := startServer(t, nil)
	const topic = "lines"
	createTopic(t, ts.client(t), topic, 1, nil)

	meta := string(runKcat(t, kcat, nil, "-b", ts.addr, "-L"))
	for _, want := range []string{"1 brokers:", "broker 1 at " + ts.addr, `topic "lines" with 1 partitions`} {
		if !strings.Contains(meta, want) {
			t.Fatalf("kcat -L output lacks %q:\n%s", want, meta)
		}
	}

	var lines []string
	for i := range 10_000 {
		lines = append(lines, fmt.Sprintf("line %05d %s", i, strings.Repeat("x", i%50)))
	}
	file := filepath.Join(t.TempDir(), "in.txt")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runKcat(t, kcat, nil, "-b", ts.addr, "-P", "-t", topic, "-l", "-X", "acks=all", file)

	cargs := []string{"-b", ts.addr, "-C", "-t", topic, "-o", "beginning", "-e", "-q"}
	if d := os.Getenv("KCAT_DEBUG"); d != "" {
		cargs = append(cargs, "-d", d)
	}
	out := runKcat(t, kcat, nil, cargs...)
	got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(got) != len(lines) {
		t.Fatalf("kcat consumed %d lines, want %d", len(got), len(lines))
	}
	for i := range lines {
		if got[i] != lines[i] {
			t.Fatalf("line %d: got %q want %q", i, got[i], lines[i])
		}
	}
}
