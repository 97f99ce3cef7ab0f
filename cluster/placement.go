package cluster

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/strand-io/strand/cluster/topicconfig"

	"github.com/strand-io/strand/reactor"
	"github.com/strand-io/strand/wire"
)

// Placement maps partitions to the cores that own them. It is a plain value
// with no threads or locks: whichever core runs the controller owns it and
// ships copies (or changes) to the others by message. Version goes up on
// every change so a core can tell which copy is newer.
//
// Placement is broker policy, not runtime: the reactor only runs cores. It
// is not persisted here: the broker keeps each partition's core in its
// cluster metadata (metadata.go), written atomically with the topic, and
// rebuilds a Placement from it when it needs to place partitions.
type Placement struct {
	cores   int
	owner   map[wire.PartitionRef]reactor.CoreID
	load    []int // partitions per core
	version uint64
	// weight, once Weigh set it, is each core's measured load, and unit
	// the load a new partition is expected to bring.
	weight []float64
	unit   float64
	// allowed, once Restrict set it, is the cores Assign may use.
	allowed []bool
}

// NewPlacement returns an empty placement over cores cores (at least 1).
func NewPlacement(cores int) *Placement {
	if cores < 1 {
		cores = 1
	}
	return &Placement{cores: cores, owner: make(map[wire.PartitionRef]reactor.CoreID), load: make([]int, cores)}
}

// Cores is the number of cores partitions are spread over.
func (p *Placement) Cores() int { return p.cores }

// Version counts changes since the placement was created or loaded.
func (p *Placement) Version() uint64 { return p.version }

// Len is the number of placed partitions.
func (p *Placement) Len() int { return len(p.owner) }

// LoadOf is the number of partitions placed on core.
func (p *Placement) LoadOf(core reactor.CoreID) int {
	if uint(core) >= uint(p.cores) {
		return 0
	}
	return p.load[core]
}

// Lookup returns the core owning topic/partition.
func (p *Placement) Lookup(topic string, partition int32) (reactor.CoreID, bool) {
	c, ok := p.owner[wire.PartitionRef{Topic: topic, Partition: partition}]
	return c, ok
}

// Assign places partitions 0..partitions-1 of topic and returns their cores,
// indexed by partition. Partitions already placed keep their core; each new
// one goes to the least-loaded core, lowest id on a tie, so the result is
// deterministic and a topic's partitions spread round the cores.
func (p *Placement) Assign(topic string, partitions int32) []reactor.CoreID {
	out := make([]reactor.CoreID, 0, max(partitions, 0))
	for i := int32(0); i < partitions; i++ {
		k := wire.PartitionRef{Topic: topic, Partition: i}
		c, ok := p.owner[k]
		if !ok {
			c = p.leastLoaded()
			p.set(k, c)
			if p.weight != nil {
				p.weight[c] += p.unit
			}
		}
		out = append(out, c)
	}
	return out
}

// Move places topic/partition on core, placing it if it was not. Moving the
// data is the caller's job; this only records where it now lives.
func (p *Placement) Move(topic string, partition int32, core reactor.CoreID) error {
	if uint(core) >= uint(p.cores) {
		return fmt.Errorf("%w: core %d of %d", reactor.ErrNoCore, core, p.cores)
	}
	if partition < 0 {
		return fmt.Errorf("cluster: placement: negative partition %d", partition)
	}
	k := wire.PartitionRef{Topic: topic, Partition: partition}
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
func (p *Placement) set(k wire.PartitionRef, c reactor.CoreID) {
	p.owner[k] = c
	p.load[c]++
	p.version++
}

// Weigh makes Assign place new partitions by measured load: on the core
// with the least of loads (one per core), then the fewest partitions; each
// placed partition adds unit to its core's load, so that several new ones
// spread rather than all landing on the idlest core.
func (p *Placement) Weigh(loads []float64, unit float64) {
	p.weight = make([]float64, p.cores)
	copy(p.weight, loads)
	p.unit = unit
}

// Restrict makes Assign place new partitions only on cores (a topic's
// strand.cores); cores this placement does not span are ignored, and a
// list naming none of its cores restricts nothing.
func (p *Placement) Restrict(cores []reactor.CoreID) {
	allowed, any := make([]bool, p.cores), false
	for _, c := range cores {
		if uint(c) < uint(p.cores) {
			allowed[c], any = true, true
		}
	}
	if any {
		p.allowed = allowed
	}
}

func (p *Placement) leastLoaded() reactor.CoreID {
	best := 0
	if p.allowed != nil {
		for !p.allowed[best] {
			best++
		}
	}
	for c := best + 1; c < p.cores; c++ {
		if p.allowed != nil && !p.allowed[c] {
			continue
		}
		if p.weight != nil && p.weight[c] != p.weight[best] {
			if p.weight[c] < p.weight[best] {
				best = c
			}
			continue
		}
		if p.load[c] < p.load[best] {
			best = c
		}
	}
	return reactor.CoreID(best)
}

// pinnedCores is a topic's strand.cores: the cores its partitions may live
// on, nil for any. The value was validated on its way in.
func pinnedCores(configs map[string]string) []reactor.CoreID {
	v := strings.TrimSpace(configs[topicconfig.PinnedCoresKey])
	if v == "" {
		return nil
	}
	var out []reactor.CoreID
	for _, f := range strings.Split(v, ",") {
		if c, err := strconv.Atoi(strings.TrimSpace(f)); err == nil {
			out = append(out, reactor.CoreID(c))
		}
	}
	return out
}

// pinProblem says why a topic's strand.cores cannot be honoured on a
// broker of cores cores ("" if it can).
func pinProblem(configs map[string]string, cores int) string {
	for _, c := range pinnedCores(configs) {
		if int(c) >= cores {
			return fmt.Sprintf("%s names core %d; this broker has cores 0 to %d", topicconfig.PinnedCoresKey, c, cores-1)
		}
	}
	return ""
}

// pinAllows says whether a topic with configs may live on core.
func pinAllows(configs map[string]string, core reactor.CoreID) bool {
	pins := pinnedCores(configs)
	if pins == nil {
		return true
	}
	for _, c := range pins {
		if c == core {
			return true
		}
	}
	return false
}
