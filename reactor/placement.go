package reactor

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// PartitionKey names one partition.
type PartitionKey struct {
	Topic     string
	Partition int32
}

// Placement maps partitions to the cores that own them. It is a plain value
// with no threads or locks: whichever core runs the controller owns it and
// ships copies (or changes) to the others by message. Version goes up on
// every change so a core can tell which copy is newer.
//
// Persisted as JSON so a restart puts each partition back on the same core:
//
//	{"format":1,"version":7,"cores":2,
//	 "partitions":[{"topic":"orders","partition":0,"core":1}, ...]}
//
// partitions are sorted by (topic, partition), so the file is deterministic.
type Placement struct {
	cores   int
	owner   map[PartitionKey]CoreID
	load    []int // partitions per core
	version uint64
}

// NewPlacement returns an empty placement over cores cores (at least 1).
func NewPlacement(cores int) *Placement {
	if cores < 1 {
		cores = 1
	}
	return &Placement{cores: cores, owner: make(map[PartitionKey]CoreID), load: make([]int, cores)}
}

// Cores is the number of cores partitions are spread over.
func (p *Placement) Cores() int { return p.cores }

// Version counts changes since the placement was created or loaded.
func (p *Placement) Version() uint64 { return p.version }

// Len is the number of placed partitions.
func (p *Placement) Len() int { return len(p.owner) }

// LoadOf is the number of partitions placed on core.
func (p *Placement) LoadOf(core CoreID) int {
	if uint(core) >= uint(p.cores) {
		return 0
	}
	return p.load[core]
}

// Lookup returns the core owning topic/partition.
func (p *Placement) Lookup(topic string, partition int32) (CoreID, bool) {
	c, ok := p.owner[PartitionKey{topic, partition}]
	return c, ok
}

// Assign places partitions 0..partitions-1 of topic and returns their cores,
// indexed by partition. Partitions already placed keep their core; each new
// one goes to the least-loaded core, lowest id on a tie, so the result is
// deterministic and a topic's partitions spread round the cores.
func (p *Placement) Assign(topic string, partitions int32) []CoreID {
	out := make([]CoreID, 0, max(partitions, 0))
	for i := int32(0); i < partitions; i++ {
		k := PartitionKey{topic, i}
		c, ok := p.owner[k]
		if !ok {
			c = p.leastLoaded()
			p.set(k, c)
		}
		out = append(out, c)
	}
	return out
}

// Move places topic/partition on core, placing it if it was not. Moving the
// data is the caller's job; this only records where it now lives.
func (p *Placement) Move(topic string, partition int32, core CoreID) error {
	if uint(core) >= uint(p.cores) {
		return fmt.Errorf("%w: core %d of %d", ErrNoCore, core, p.cores)
	}
	if partition < 0 {
		return fmt.Errorf("reactor: placement: negative partition %d", partition)
	}
	k := PartitionKey{topic, partition}
	if cur, ok := p.owner[k]; ok {
		if cur == core {
			return nil
		}
		p.load[cur]--
	}
	p.set(k, core)
	return nil
}

// Remove forgets every partition of topic and returns how many there were.
func (p *Placement) Remove(topic string) int {
	n := 0
	for k, c := range p.owner {
		if k.Topic == topic {
			delete(p.owner, k)
			p.load[c]--
			n++
		}
	}
	if n > 0 {
		p.version++
	}
	return n
}

// set records k on c; the caller has already un-counted any old owner.
func (p *Placement) set(k PartitionKey, c CoreID) {
	p.owner[k] = c
	p.load[c]++
	p.version++
}

func (p *Placement) leastLoaded() CoreID {
	best := 0
	for c := 1; c < p.cores; c++ {
		if p.load[c] < p.load[best] {
			best = c
		}
	}
	return CoreID(best)
}

// placementFormat is the file format version.
const placementFormat = 1

type placementFile struct {
	Format     int             `json:"format"`
	Version    uint64          `json:"version"`
	Cores      int             `json:"cores"`
	Partitions []placementItem `json:"partitions"`
}

type placementItem struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Core      CoreID `json:"core"`
}

// sortedKeys returns the placed partitions ordered by (topic, partition).
func (p *Placement) sortedKeys() []PartitionKey {
	keys := make([]PartitionKey, 0, len(p.owner))
	for k := range p.owner {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, comparePK)
	return keys
}

func comparePK(a, b PartitionKey) int {
	return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
}

// Save writes the placement to path atomically: a temporary file in the same
// directory is written and fsynced, renamed over path, and the directory is
// fsynced, so a crash leaves either the old file or the new one.
func (p *Placement) Save(path string) error {
	f := placementFile{Format: placementFormat, Version: p.version, Cores: p.cores}
	for _, k := range p.sortedKeys() {
		f.Partitions = append(f.Partitions, placementItem{k.Topic, k.Partition, p.owner[k]})
	}
	data, err := json.MarshalIndent(f, "", " ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(data, '\n'))
}

// Load replaces the placement with the one saved at path. A missing file is
// reported as an error wrapping fs.ErrNotExist. Entries saved on a core this
// placement does not have (the process now runs on fewer CPUs) are placed
// again on the least-loaded core, in (topic, partition) order; everything
// else goes back exactly where it was.
func (p *Placement) Load(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var f placementFile
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("reactor: placement %s: %w", path, err)
	}
	if f.Format != placementFormat {
		return fmt.Errorf("reactor: placement %s: format %d, want %d", path, f.Format, placementFormat)
	}
	next := NewPlacement(p.cores)
	var orphans []PartitionKey
	seen := make(map[PartitionKey]bool, len(f.Partitions))
	for _, it := range f.Partitions {
		k := PartitionKey{it.Topic, it.Partition}
		if it.Partition < 0 || it.Core < 0 {
			return fmt.Errorf("reactor: placement %s: bad entry %+v", path, it)
		}
		if seen[k] {
			return fmt.Errorf("reactor: placement %s: %s/%d listed twice", path, k.Topic, k.Partition)
		}
		seen[k] = true
		if int(it.Core) >= next.cores {
			orphans = append(orphans, k)
			continue
		}
		next.set(k, it.Core)
	}
	slices.SortFunc(orphans, comparePK) // deterministic whatever the file order
	for _, k := range orphans {
		next.set(k, next.leastLoaded())
	}
	next.version = f.Version + uint64(len(orphans))
	*p = *next
	return nil
}

// writeFileAtomic is write-temp, fsync, rename, fsync-dir.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err = d.Sync(); err != nil {
		_ = d.Close()
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return d.Close()
}
