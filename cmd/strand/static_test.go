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
	if err := os.WriteFile(path, []byte("data_dir: /srv/strand\nnode_id: 4\nrack: zone-b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{"listen": true}
	dataDir, listen, advertise, rack, cores, level := "", "", "", "", "", ""
	nodeID, defParts, maxReq := 0, 1, 0
	autoCreate := true
	if err := applyConfigFile(path, set, &dataDir, &listen, &advertise, &rack, &cores, &nodeID, &autoCreate, &defParts, &maxReq, &level); err != nil {
		t.Fatal(err)
	}
	if rack != "zone-b" {
		t.Fatalf("rack %q from the file, want zone-b", rack)
	}
	got := staticConfigs(set)
	slices.Sort(got)
	want := []string{"broker.id", "broker.rack", "listeners", "log.dirs", "node.id"}
	if !slices.Equal(got, want) {
		t.Fatalf("static configs %v, want %v", got, want)
	}
}
