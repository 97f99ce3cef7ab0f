package cluster

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"

	"github.com/strand-io/strand/dma"
	"github.com/strand-io/strand/reactor"
	"github.com/strand-io/strand/wire"
)

// Topic is one topic in the metadata.
type Topic struct {
	Name     string            `json:"name"`
	ID       [16]byte          `json:"id"`
	Internal bool              `json:"internal,omitempty"`
	Configs  map[string]string `json:"configs,omitempty"` // overrides only
	// Cores[p] is the core that owns partition p on this node, or
	// notLocal when this broker holds no replica of it.
	Cores []reactor.CoreID `json:"cores"`
	// Leaders[p] is partition p's leader broker (-1: none), Replicas[p]
	// and ISR[p] its replica and in-sync sets, all from the applied
	// metadata. Nil (a snapshot read from an old metadata.json, or one
	// built in a test) means every partition is this broker's alone.
	Leaders  []int32   `json:"-"`
	Replicas [][]int32 `json:"-"`
	ISR      [][]int32 `json:"-"`
	// LeaderEpochs[p] is partition p's leader epoch (nil with Leaders).
	LeaderEpochs []int32 `json:"-"`
}

// notLocal is Topic.Cores' entry for a partition this broker holds no
// replica of.
const notLocal reactor.CoreID = -1

// local reports whether this broker holds a replica of partition p.
func (t *Topic) local(p int) bool { return t.Cores[p] != notLocal }

// Partitions is the topic's partition count.
func (t *Topic) Partitions() int32 { return int32(len(t.Cores)) }

// snapshot is an immutable view of the metadata. A change builds a new one.
type snapshot struct {
	version uint64
	// pidLimit: producer ids below it may have been handed out; a restart
	// continues from it.
	pidLimit int64
	topics   map[string]*Topic
	names    []string // sorted
	// brokerConfigs are the dynamic BROKER resource configs: by broker id
	// in decimal, "" for the cluster default (brokerconfig.go).
	brokerConfigs map[string]map[string]string
	// brokers are the live (unfenced) brokers, in id order; empty before
	// this broker registered (Brokers then answers with itself alone).
	brokers []wire.BrokerInfo
}

func newSnapshot(version uint64, topics map[string]*Topic) *snapshot {
	s := &snapshot{version: version, topics: topics}
	for n := range topics {
		s.names = append(s.names, n)
	}
	sort.Strings(s.names)
	return s
}

// with returns a copy of s with t added or replaced (t == nil removes name).
func (s *snapshot) with(name string, t *Topic) *snapshot {
	topics := make(map[string]*Topic, len(s.topics)+1)
	for k, v := range s.topics {
		topics[k] = v
	}
	if t == nil {
		delete(topics, name)
	} else {
		topics[name] = t
	}
	ns := newSnapshot(s.version+1, topics)
	ns.pidLimit, ns.brokerConfigs = s.pidLimit, s.brokerConfigs
	ns.brokers = s.brokers
	return ns
}

// metadataFile is the persisted form of a snapshot.
type metadataFile struct {
	Version          uint64   `json:"version"`
	ProducerIDsBelow int64    `json:"producer_ids_below"`
	Topics           []*Topic `json:"topics"`
	// BrokerConfigs: the dynamic broker configs, by broker resource.
	BrokerConfigs map[string]map[string]string `json:"broker_configs,omitempty"`
}

const metadataName = "metadata.json"

func loadMetadata(dir string) (*snapshot, error) {
	b, err := os.ReadFile(filepath.Join(dir, metadataName))
	if os.IsNotExist(err) {
		return newSnapshot(0, map[string]*Topic{}), nil
	}
	if err != nil {
		return nil, err
	}
	var f metadataFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("cluster: %s: %w", filepath.Join(dir, metadataName), err)
	}
	topics := map[string]*Topic{}
	for _, t := range f.Topics {
		topics[t.Name] = t
	}
	s := newSnapshot(f.Version, topics)
	s.pidLimit, s.brokerConfigs = f.ProducerIDsBelow, f.BrokerConfigs
	return s, nil
}

// saveMetadata writes the snapshot atomically and durably: temp file,
// fsync, rename, fsync of the directory. Placement is part of it, so a
// restart puts every partition back on the same core.
func saveMetadata(dir string, s *snapshot) (err error) {
	defer func() {
		if err != nil {
			err = metadataWriteError(dir, err)
		}
	}()
	f := metadataFile{Version: s.version, ProducerIDsBelow: s.pidLimit, BrokerConfigs: s.brokerConfigs}
	for _, n := range s.names {
		f.Topics = append(f.Topics, s.topics[n])
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return writeFileDurably(dir, metadataName, b)
}

// metadataWriteError names the cause of a failed metadata write; on a full
// disk, the directory and the space left (the disk reserve, see
// --disk-reserve-bytes, exists so that this should not happen).
func metadataWriteError(dir string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		free, _ := dma.OSFS().FreeBytes(dir)
		return fmt.Errorf("could not persist %s: disk full on %s: %d bytes free: %w", metadataName, dir, free, err)
	}
	return fmt.Errorf("could not persist %s in %s: %w", metadataName, dir, err)
}

func newTopicID() [16]byte {
	var id [16]byte
	_, _ = rand.Read(id[:])
	id[6] = id[6]&0x0f | 0x40 // a version 4 UUID, as Kafka's topic ids are
	id[8] = id[8]&0x3f | 0x80
	return id
}

// placementOf is s's partition → core table on a process with cores
// cores. Partitions recorded on a core this process does not have are left
// unplaced, for Assign to place on the least-loaded cores.
func placementOf(s *snapshot, cores int) *Placement {
	p := NewPlacement(cores)
	for _, name := range s.names {
		for i, c := range s.topics[name].Cores {
			_ = p.Move(name, int32(i), c) // refuses cores beyond the range
		}
	}
	return p
}

// placeNewByLoad is placeNew guided by the load measured over the last
// window: new partitions go to the least-loaded cores, each expected to
// bring the average busy partition's load. With nothing measured yet (or an
// idle broker) it is placeNew. A topic pinned to cores (configs'
// strand.cores) gets only those. Controller core.
func (n *Node) placeNewByLoad(s *snapshot, count int32, configs map[string]string) []reactor.CoreID {
	p := placementOf(s, len(n.cores))
	p.Restrict(pinnedCores(configs))
	v := n.Placement()
	loads, total := make([]float64, len(v.Cores)), 0.0
	for i, c := range v.Cores {
		loads[i] = c.Load()
		total += c.Load()
	}
	// A new partition is expected to carry what an average busy
	// partition does: averaging over idle ones too would make a hot
	// partition's core look worth several new ones, and pile a whole new
	// topic onto the idle core.
	busy := 0
	for _, pl := range v.Partitions {
		if pl.Load() > 0 {
			busy++
		}
	}
	if total > 0 && busy > 0 {
		p.Weigh(loads, total/float64(busy))
	}
	return p.Assign("\x00new", count)
}

// placeNew spreads n new partitions over cores, least-loaded first, given
// the current snapshot's load.
func placeNew(s *snapshot, cores int, n int32) []reactor.CoreID {
	// A name no topic can have (topic names are [a-zA-Z0-9._-]) stands for
	// the partitions about to be created.
	return placementOf(s, cores).Assign("\x00new", n)
}
