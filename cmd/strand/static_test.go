package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Settings from flags and from the config file both report as
// STATIC_BROKER_CONFIG; the rest stay DEFAULT_CONFIG.
func TestStaticConfigs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "strand.yaml")
	if err := os.WriteFile(path, []byte("data_dir: /srv/strand\nnode_id: 4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{"listen": true}
	dataDir, listen, advertise, cores, level := "", "", "", "", ""
	nodeID, defParts, maxReq := 0, 1, 0
	autoCreate := true
	if err := applyConfigFile(path, set, &dataDir, &listen, &advertise, &cores, &nodeID, &autoCreate, &defParts, &maxReq, &level); err != nil {
		t.Fatal(err)
	}
	got := staticConfigs(set)
	slices.Sort(got)
	want := []string{"broker.id", "listeners", "log.dirs", "node.id"}
	if !slices.Equal(got, want) {
		t.Fatalf("static configs %v, want %v", got, want)
	}
}
