package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLimitsFromConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "strand.yaml")
	if err := os.WriteFile(path, []byte("limits:\n  idle_timeout: 7s\n  fetch_max_bytes: 1000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	idle := fs.Duration("idle-timeout", time.Minute, "")
	fetchMax := fs.Int("fetch-max-bytes", 5, "")
	if err := fs.Parse([]string{"--fetch-max-bytes", "42"}); err != nil {
		t.Fatal(err)
	}
	if err := applyLimitsConfig(path, fs, map[string]bool{"fetch-max-bytes": true}); err != nil {
		t.Fatal(err)
	}
	if *idle != 7*time.Second || *fetchMax != 42 {
		t.Fatalf("idle %v fetch-max %d: want the file's 7s and the command line's 42", *idle, *fetchMax)
	}
	if err := os.WriteFile(path, []byte("limits:\n  max_conections: 5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := applyLimitsConfig(path, fs, nil); err == nil {
		t.Fatal("a misspelt limit was accepted")
	}
}

// A rack the metadata would refuse fails at the flag, before anything
// starts, as a usage error.
func TestServeRejectsBadRack(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	for _, rack := range []string{strings.Repeat("r", 256), "zone\na"} {
		if code := serve([]string{"--data-dir", dir, "--admin-listen", "", "--listen", "127.0.0.1:0", "--rack", rack}); code != 2 {
			t.Fatalf("--rack %q: exit %d, want 2", rack, code)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("a refused --rack created the data dir: %v", err)
	}
}
