package cluster

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/strand-io/strand/reactor"
	"github.com/strand-io/strand/wire"
)

// Load measurement for placement. Each core already counts, in plain
// fields only it writes, its busy time and every partition's bytes in and
// out (probe.go); a sampler goroutine asks every core for a copy of those
// counters by message, once a second, and a loadMeter (a plain value that
// only the sampler touches) turns consecutive copies into rates over the
// last window. Nothing on the data path is added: no atomic, no lock, no
// clock read.

// DefaultLoadWindow is how far back placement's load looks by default.
const DefaultLoadWindow = time.Minute

// DefaultLoadSampleInterval is how often the cores' counters are sampled.
const DefaultLoadSampleInterval = time.Second

// loadSample is one core's counters at one moment.
type loadSample struct {
	core  reactor.CoreID
	at    time.Time
	busy  time.Duration
	parts map[wire.PartitionRef]partCounters
}

type partCounters struct{ in, out uint64 }

// loadSample runs on the core.
func (cs *coreState) loadSample() loadSample {
	s := loadSample{core: cs.core.ID(), at: time.Now(), busy: cs.core.Busy(),
		parts: make(map[wire.PartitionRef]partCounters, len(cs.parts))}
	for ref, p := range cs.parts {
		s.parts[ref] = partCounters{in: p.probe.bytesIn, out: p.probe.bytesOut}
	}
	return s
}

// sampleLoad asks every core for its counters and waits for all of them
// until ctx ends.
func (n *Node) sampleLoad(ctx context.Context) ([]loadSample, error) {
	ch := make(chan loadSample, len(n.cores)) // a late answer must not block its core
	for _, cs := range n.cores {
		cs := cs
		if err := n.rt.Post(cs.core.ID(), func(*reactor.Core) { ch <- cs.loadSample() }); err != nil {
			return nil, err
		}
	}
	out := make([]loadSample, len(n.cores))
	for range n.cores {
		select {
		case s := <-ch:
			out[s.core] = s
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %v", ErrSnapshotTimeout, ctx.Err())
		}
	}
	return out, nil
}

// loadStep is what happened between two consecutive samples.
type loadStep struct {
	dur   time.Duration
	busy  []time.Duration // per core
	parts map[wire.PartitionRef]partStep
}

type partStep struct {
	core    reactor.CoreID
	in, out uint64
}

// loadMeter keeps the steps covering the last window. It is a plain value:
// its one user (the sampler goroutine) owns it.
type loadMeter struct {
	window time.Duration
	prev   []loadSample
	steps  []loadStep // oldest first
}

func newLoadMeter(window time.Duration) *loadMeter {
	if window <= 0 {
		window = DefaultLoadWindow
	}
	return &loadMeter{window: window}
}

// observe adds a sample of every core. A partition counter that went down
// or a partition now on another core is a new incarnation of its counters
// (it was moved, or deleted and created again): everything it counted
// since is this step's.
func (m *loadMeter) observe(cur []loadSample) {
	if m.prev != nil && len(m.prev) == len(cur) {
		st := loadStep{busy: make([]time.Duration, len(cur)), parts: map[wire.PartitionRef]partStep{}}
		for i, c := range cur {
			p := m.prev[i]
			st.dur = max(st.dur, c.at.Sub(p.at))
			if c.busy >= p.busy {
				st.busy[i] = c.busy - p.busy
			}
			for ref, pc := range c.parts {
				d := partStep{core: c.core, in: pc.in, out: pc.out}
				if old, ok := p.parts[ref]; ok && old.in <= pc.in && old.out <= pc.out {
					d.in, d.out = pc.in-old.in, pc.out-old.out
				}
				st.parts[ref] = d
			}
		}
		if st.dur > 0 {
			m.steps = append(m.steps, st)
		}
	}
	m.prev = cur
	// Keep the newest steps that cover the window.
	var total time.Duration
	for i := len(m.steps) - 1; i >= 0; i-- {
		total += m.steps[i].dur
		if total >= m.window {
			m.steps = slices.Delete(m.steps, 0, i)
			break
		}
	}
}

// LoadReport is the measured load of every core and partition over the
// last window (at most Config.LoadWindow; less just after start).
type LoadReport struct {
	Window     time.Duration
	Cores      []CoreLoad
	Partitions []PartitionLoad // sorted by topic, partition
}

// CoreLoad is one core's load. BytesIn/OutPerSec are those of the
// partitions the core owns now (each measured over the window, wherever it
// was), so a move shows at once; Busy is the fraction of the window the
// core itself spent working, connections and all.
type CoreLoad struct {
	Core                          reactor.CoreID
	BytesInPerSec, BytesOutPerSec float64
	Busy                          float64
	Partitions                    int
}

// Load is what placement balances: bytes in and out per second.
func (c CoreLoad) Load() float64 { return c.BytesInPerSec + c.BytesOutPerSec }

// PartitionLoad is one partition's load. Busy estimates its share of its
// core's busy time, in proportion to its bytes among the core's: the data
// path reads no clock per partition.
type PartitionLoad struct {
	Topic                         string
	Partition                     int32
	Core                          reactor.CoreID
	BytesInPerSec, BytesOutPerSec float64
	Busy                          float64
}

// Load is what placement balances: bytes in and out per second.
func (p PartitionLoad) Load() float64 { return p.BytesInPerSec + p.BytesOutPerSec }

// report computes the rates over the steps kept, for cores cores.
func (m *loadMeter) report(cores int) LoadReport {
	r := LoadReport{Cores: make([]CoreLoad, cores)}
	busy := make([]time.Duration, cores)
	type acc struct {
		core    reactor.CoreID
		in, out uint64
	}
	parts := map[wire.PartitionRef]*acc{}
	for _, st := range m.steps {
		r.Window += st.dur
		for i, b := range st.busy {
			if i < cores {
				busy[i] += b
			}
		}
		for ref, d := range st.parts {
			a := parts[ref]
			if a == nil {
				a = &acc{}
				parts[ref] = a
			}
			a.core, a.in, a.out = d.core, a.in+d.in, a.out+d.out
		}
	}
	// Partitions gone since (deleted) are not reported.
	if m.prev != nil {
		live := map[wire.PartitionRef]reactor.CoreID{}
		for _, s := range m.prev {
			for ref := range s.parts {
				live[ref] = s.core
			}
		}
		for ref := range parts {
			if c, ok := live[ref]; ok {
				parts[ref].core = c
			} else {
				delete(parts, ref)
			}
		}
		for ref, c := range live {
			if parts[ref] == nil {
				parts[ref] = &acc{core: c}
			}
		}
	}
	secs := r.Window.Seconds()
	for i := range r.Cores {
		r.Cores[i].Core = reactor.CoreID(i)
		if secs > 0 {
			r.Cores[i].Busy = min(1, busy[i].Seconds()/secs)
		}
	}
	for ref, a := range parts {
		pl := PartitionLoad{Topic: ref.Topic, Partition: ref.Partition, Core: a.core}
		if secs > 0 {
			pl.BytesInPerSec, pl.BytesOutPerSec = float64(a.in)/secs, float64(a.out)/secs
		}
		r.Partitions = append(r.Partitions, pl)
		if int(a.core) < cores {
			c := &r.Cores[a.core]
			c.BytesInPerSec += pl.BytesInPerSec
			c.BytesOutPerSec += pl.BytesOutPerSec
			c.Partitions++
		}
	}
	for i := range r.Partitions {
		p := &r.Partitions[i]
		if int(p.Core) < cores {
			if c := r.Cores[p.Core]; c.Load() > 0 {
				p.Busy = c.Busy * p.Load() / c.Load()
			}
		}
	}
	slices.SortFunc(r.Partitions, func(a, b PartitionLoad) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return r
}
