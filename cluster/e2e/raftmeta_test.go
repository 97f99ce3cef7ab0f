package e2e

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/strand-io/strand/cluster"
	"github.com/strand-io/strand/reactor"
	"github.com/strand-io/strand/shard"
)

// oldDataDir turns dir, closed, into what the broker wrote before the
// metadata moved into Raft: partition directories and metadata.json only
// (saveMetadata, which still writes metadata.json, is that code).
func oldDataDir(t *testing.T, dir string) {
	t.Helper()
	for _, name := range []string{"raft", "cluster.json", "metadata.json.imported"} {
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestImportsDataDirWithoutRaft: a data dir holding only metadata.json and
// partition logs opens with the same topics (ids, partition cores,
// configs) and every record, metadata.json is kept as
// metadata.json.imported, and a second restart reads the Raft group alone.
func TestImportsDataDirWithoutRaft(t *testing.T) {
	dir := testDataDir(t)
	n := startNode(t, dir, nil)
	cl := produceClient(t, n.Addr())
	ctx := ctxFor(t, time.Minute)
	createTopic(t, cl, "plain", 4)
	if code, err := createTopicReq(ctx, cl, "configured", 2, map[string]string{"retention.ms": "3600000"}); err != nil || code != 0 {
		t.Fatalf("create configured: %v %v", code, err)
	}
	produceSeq(t, cl, "plain", 4, 300, 2)
	produceSeq(t, cl, "configured", 2, 200, 1)
	cl.Close()
	closeNode(t, n)
	oldDataDir(t, dir)
	before := metadataPlacement(t, dir)

	for round := 0; round < 2; round++ {
		n = startNode(t, dir, nil)
		if _, err := os.Stat(filepath.Join(dir, "metadata.json.imported")); err != nil {
			t.Fatalf("round %d: metadata.json not kept as metadata.json.imported: %v", round, err)
		}
		if after := metadataPlacement(t, dir); !reflect.DeepEqual(before, after) {
			t.Fatalf("round %d: metadata changed by the import:\nbefore %+v\nafter  %+v", round, before, after)
		}
		cl = produceClient(t, n.Addr())
		if got := endOffsets(t, cl, "plain", 4); !slicesEqual(got, counts(4, 300)) {
			t.Fatalf("round %d: plain holds %v", round, got)
		}
		if got := endOffsets(t, cl, "configured", 2); !slicesEqual(got, counts(2, 200)) {
			t.Fatalf("round %d: configured holds %v", round, got)
		}
		if recs := consumeAll(t, n.Addr(), "plain", 300); len(recs) != 300 {
			t.Fatalf("round %d: read %d records of plain/0", round, len(recs))
		}
		cl.Close()
		closeNode(t, n)
	}
}

// TestRefusesDataDirOfAnotherCluster: a data dir records its cluster and
// node id; opening it for another cluster or another node id fails with a
// message that says so, and a restart with the data dir alone keeps them.
func TestRefusesDataDirOfAnotherCluster(t *testing.T) {
	dir := testDataDir(t)
	n := startNode(t, dir, func(c *cluster.Config) { c.NodeID, c.NodeIDExplicit = 7, true })
	closeNode(t, n)
	var id struct {
		ClusterID uint64 `json:"cluster_id"`
		NodeID    int32  `json:"node_id"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "cluster.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &id); err != nil || id.ClusterID == 0 || id.NodeID != 7 {
		t.Fatalf("cluster.json: %s (%v)", b, err)
	}
	start := func(tweak func(*cluster.Config)) error {
		cfg := cluster.Config{DataDir: dir, Listen: "127.0.0.1:0", Log: shard.Config{Preallocate: true},
			Logger: slog.New(slog.NewTextHandler(newLogBuf(), nil))}
		tweak(&cfg)
		n, err := cluster.Start(cfg)
		if err == nil {
			closeNode(t, n)
		}
		return err
	}
	err = start(func(c *cluster.Config) { c.ClusterID = id.ClusterID + 1 })
	if err == nil || !strings.Contains(err.Error(), "belongs to cluster") {
		t.Fatalf("opening the data dir for another cluster: %v; want a refusal naming the cluster", err)
	}
	err = start(func(c *cluster.Config) { c.NodeID, c.NodeIDExplicit = 8, true })
	if err == nil || !strings.Contains(err.Error(), "belongs to node 7") {
		t.Fatalf("opening the data dir as node 8: %v; want a refusal naming node 7", err)
	}
	if err := start(func(c *cluster.Config) {}); err != nil {
		t.Fatalf("restart with the data dir alone: %v", err)
	}
	if err := start(func(c *cluster.Config) { c.ClusterID = id.ClusterID }); err != nil {
		t.Fatalf("restart naming its own cluster: %v", err)
	}
}

// TestRestartWithFewerCores: partitions on a core the restarted broker no
// longer has move to the cores it has (MoveReplicaCore, then the broker
// re-registers with fewer cores), with every record, both from the Raft
// group and when importing a pre-Raft data dir.
func TestRestartWithFewerCores(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("needs two CPUs to place partitions on two cores")
	}
	for _, imported := range []bool{false, true} {
		dir := testDataDir(t)
		n := startNode(t, dir, func(c *cluster.Config) { c.CPUs = []int{0, 1} })
		cl := produceClient(t, n.Addr())
		createTopic(t, cl, "spread", 4)
		produceSeq(t, cl, "spread", 4, 100, 2)
		cl.Close()
		closeNode(t, n)
		used := map[reactor.CoreID]bool{}
		for _, c := range metadataPlacement(t, dir)["spread"].Cores {
			used[c] = true
		}
		if !used[1] {
			t.Fatalf("no partition on core 1 before the restart: %v", metadataPlacement(t, dir)["spread"].Cores)
		}
		if imported {
			oldDataDir(t, dir)
		}
		n = startNode(t, dir, func(c *cluster.Config) { c.CPUs = []int{0} })
		for p, c := range metadataPlacement(t, dir)["spread"].Cores {
			if c != 0 {
				t.Fatalf("imported=%v: partition %d on core %d of a one-core broker", imported, p, c)
			}
		}
		cl = produceClient(t, n.Addr())
		if got := endOffsets(t, cl, "spread", 4); !slicesEqual(got, counts(4, 100)) {
			t.Fatalf("imported=%v: spread holds %v", imported, got)
		}
		cl.Close()
		closeNode(t, n)
		// And back to two cores: nothing has to move.
		n = startNode(t, dir, func(c *cluster.Config) { c.CPUs = []int{0, 1} })
		cl = produceClient(t, n.Addr())
		if got := endOffsets(t, cl, "spread", 4); !slicesEqual(got, counts(4, 100)) {
			t.Fatalf("imported=%v: back on two cores, spread holds %v", imported, got)
		}
		cl.Close()
		closeNode(t, n)
	}
}

// TestImportResumesAfterCrash: an import that stopped after some of its
// commands (here: the Raft group holds the broker and the offsets topic,
// metadata.json one topic more, and no metadata.json.imported) proposes
// the rest on the next start, and one that stopped just before the rename
// proposes nothing twice.
func TestImportResumesAfterCrash(t *testing.T) {
	dir := testDataDir(t)
	closeNode(t, startNode(t, dir, nil))
	raft, early := filepath.Join(dir, "raft"), filepath.Join(t.TempDir(), "raft-early")
	if err := os.CopyFS(early, os.DirFS(raft)); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, dir, nil)
	cl := produceClient(t, n.Addr())
	createTopic(t, cl, "late", 3)
	produceSeq(t, cl, "late", 3, 50, 1)
	cl.Close()
	closeNode(t, n)
	want := metadataPlacement(t, dir)

	// Stopped half way: the group as it was before "late", the file with it.
	if err := os.RemoveAll(raft); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(raft, os.DirFS(early)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "metadata.json.imported")); err != nil {
		t.Fatal(err)
	}
	check := func(what string) {
		t.Helper()
		n := startNode(t, dir, nil)
		if got := metadataPlacement(t, dir); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: metadata %+v, want %+v", what, got, want)
		}
		cl := produceClient(t, n.Addr())
		if got := endOffsets(t, cl, "late", 3); !slicesEqual(got, counts(3, 50)) {
			t.Fatalf("%s: late holds %v", what, got)
		}
		cl.Close()
		closeNode(t, n)
	}
	check("resumed import")

	// Stopped after every command, before the rename.
	if err := os.Rename(filepath.Join(dir, "metadata.json.imported"), filepath.Join(dir, "metadata.json")); err != nil {
		t.Fatal(err)
	}
	check("import repeated after its commands")
}
