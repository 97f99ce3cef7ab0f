package cluster

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
)

// identityName is the file that ties a data dir to one broker of one
// cluster. It is written once, at the first start, and only read after.
const identityName = "cluster.json"

// identity is what a restart needs besides --data-dir.
type identity struct {
	// ClusterID is the Raft group's deployment id: replicas of another
	// cluster never exchange messages with this one.
	ClusterID uint64 `json:"cluster_id"`
	NodeID    int32  `json:"node_id"`
	// RaftAddress is the address recorded for this replica in the Raft
	// group (Dragonboat keeps it with the log, so it never changes).
	RaftAddress string `json:"raft_address"`
	// Members are the initial voters (node id to Raft address) of a
	// bootstrapped cluster; Joined marks a broker that joined a running
	// one. Neither: a single broker (membership.go).
	Members map[int32]string `json:"initial_cluster,omitempty"`
	Joined  bool             `json:"joined,omitempty"`
	// LogDirID names this data dir: random, made with it. The broker
	// registers with it, so when a broker comes back with an empty data
	// dir under its old node id, the metadata sees a new id and takes the
	// broker out of every in-sync set before it could lead what it lost
	// (metadata.RegisterBroker). A data dir from before log dir ids gets
	// one at its next start.
	LogDirID uint64 `json:"log_dir_id,omitempty"`
	// RaftGeneration is the high half of the Raft replica id (replicaID):
	// 0 for an initial voter, derived from LogDirID for a broker that
	// joined. Dragonboat never takes back a replica id, and a replica that
	// lost its log must not come back under its old one (Raft assumes a
	// member keeps what it acknowledged; Dragonboat panics when it does
	// not), so a broker that rejoins with an empty data dir gets a new
	// replica id under the same node id.
	RaftGeneration uint32 `json:"raft_generation,omitempty"`
}

// raftGeneration is the generation a join with data dir id dir uses:
// non-zero, so it never collides with an initial voter's.
func raftGeneration(dir uint64) uint32 {
	if dir == 0 {
		return 0
	}
	return uint32(dir>>32) | 1
}

// raftReplicaID is node id's Raft replica id in generation gen: node id
// + 1 in the low half (Dragonboat refuses 0, a valid Kafka node id), the
// generation in the high half.
func raftReplicaID(node int32, gen uint32) uint64 { return uint64(gen)<<32 | uint64(node) + 1 }

// raftNodeID is the Kafka node id of Raft replica rid.
func raftNodeID(rid uint64) int32 { return int32(uint32(rid)) - 1 }

// dirUUID carries a data dir id in KIP-853's 16-byte directory id.
func dirUUID(dir uint64) [16]byte {
	var u [16]byte
	binary.BigEndian.PutUint64(u[:8], dir)
	return u
}

// newLogDirID is a random non-zero data dir id.
func newLogDirID() uint64 {
	for {
		var r [8]byte
		_, _ = rand.Read(r[:])
		if id := binary.BigEndian.Uint64(r[:]); id != 0 {
			return id
		}
	}
}

// identityExists reports whether dataDir has been started before.
func identityExists(dataDir string) bool {
	_, err := os.Stat(filepath.Join(dataDir, identityName))
	return err == nil
}

// replicaID is the broker's Raft replica id: Dragonboat refuses 0, which
// is a valid (and today's default) Kafka node id.
func (id identity) replicaID() uint64 { return raftReplicaID(id.NodeID, id.RaftGeneration) }

// loadIdentity reads the data dir's identity, or makes and persists one
// on the first start. A data dir of another cluster or another node id
// than the one asked for is refused: opening it would mix two clusters'
// metadata, or serve one broker's partitions under another's id.
func loadIdentity(cfg Config) (identity, error) {
	path := filepath.Join(cfg.DataDir, identityName)
	b, err := os.ReadFile(path)
	if err == nil {
		var id identity
		if err := json.Unmarshal(b, &id); err != nil {
			return identity{}, fmt.Errorf("cluster: %s: %w", path, err)
		}
		if cfg.ClusterID != 0 && id.ClusterID != cfg.ClusterID {
			return identity{}, fmt.Errorf("cluster: data dir %s belongs to cluster %016x, not %016x: refusing to open it (give it a data dir of its own cluster, or an empty one)",
				cfg.DataDir, id.ClusterID, cfg.ClusterID)
		}
		if cfg.InitialCluster != nil && !maps.Equal(cfg.InitialCluster, id.Members) {
			return identity{}, fmt.Errorf("cluster: data dir %s was started with another --initial-cluster (%v): refusing to open it (restart with --data-dir alone)",
				cfg.DataDir, id.Members)
		}
		if cfg.NodeIDExplicit && id.NodeID != cfg.NodeID {
			return identity{}, fmt.Errorf("cluster: data dir %s belongs to node %d, not %d: refusing to open it (restart with --data-dir alone to keep its id)",
				cfg.DataDir, id.NodeID, cfg.NodeID)
		}
		if id.LogDirID == 0 {
			// Its replicas hold what they held: the metadata adopts the
			// first id it is told (a recorded 0 is "not known").
			id.LogDirID = newLogDirID()
			if err := writeIdentity(cfg.DataDir, id); err != nil {
				return identity{}, err
			}
		}
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return identity{}, err
	}
	id := identity{ClusterID: cfg.ClusterID, NodeID: cfg.NodeID, LogDirID: newLogDirID()}
	for id.ClusterID == 0 {
		var r [8]byte
		_, _ = rand.Read(r[:])
		id.ClusterID = binary.BigEndian.Uint64(r[:])
	}
	switch {
	case cfg.InitialCluster != nil:
		id.Members, id.RaftAddress = cfg.InitialCluster, cfg.InitialCluster[cfg.NodeID]
	case cfg.Join != "":
		id.Joined, id.RaftAddress = true, cfg.RaftListen
		id.RaftGeneration = raftGeneration(id.LogDirID)
	default:
		if id.RaftAddress, err = freeLoopbackAddr(); err != nil {
			return identity{}, err
		}
	}
	if err := writeIdentity(cfg.DataDir, id); err != nil {
		return identity{}, err
	}
	return id, nil
}

func writeIdentity(dir string, id identity) error {
	b, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileDurably(dir, identityName, b); err != nil {
		return fmt.Errorf("cluster: writing %s: %w", filepath.Join(dir, identityName), err)
	}
	return nil
}

// freeLoopbackAddr is an address on 127.0.0.1 no one listened on a moment
// ago. A single voter only records it (it listens on an OS-chosen port),
// so it need not stay free.
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// writeFileDurably writes dir/name atomically and durably: temp file,
// fsync, rename, fsync of the directory.
func writeFileDurably(dir, name string, b []byte) error {
	tmp := filepath.Join(dir, name+".tmp")
	fh, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := fh.Write(b); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
