package cluster

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"time"

	"github.com/strand-io/strand/dma"
	"github.com/strand-io/strand/reactor"
	"github.com/strand-io/strand/wire"
)

// CoreSnapshot is one core's state as that core reported it: its counters
// and every partition and group it owns. Counters are cumulative since the
// core started.
type CoreSnapshot struct {
	Core reactor.CoreID
	CPU  int
	// Busy is the time the core has spent working (see reactor.Core.Busy);
	// At is when the core read it, for rates between two snapshots.
	Busy    time.Duration
	At      time.Time
	Reactor reactor.Stats
	IO      dma.IOStats
	// Requests counts Kafka requests by API name (only names seen).
	Requests          map[string]uint64
	BytesIn, BytesOut uint64 // request and response frames
	Partitions        []PartitionSnapshot
	Groups            []GroupSnapshot
}

// PartitionSnapshot is one open partition.
type PartitionSnapshot struct {
	Topic     string
	Partition int32
	Core      reactor.CoreID
	// LogStartOffset, EndOffset (the next offset to assign) and
	// HighWatermark (what consumers may read) are Kafka offsets.
	LogStartOffset, EndOffset, HighWatermark int64
	SizeBytes                                int64
	RecordsIn, BytesIn, RecordsOut, BytesOut uint64
}

// GroupSnapshot is one consumer group, reported by the core hosting its
// coordinator.
type GroupSnapshot struct {
	ID, State, ProtocolType, Protocol string
	Members                           []GroupMember
	Offsets                           []GroupOffset // sorted by topic, partition
}

// GroupMember is one member of a group.
type GroupMember struct {
	MemberID, ClientID, ClientHost string
}

// GroupOffset is a group's committed offset for one partition.
type GroupOffset struct {
	Topic     string
	Partition int32
	Committed int64
}

// ErrSnapshotTimeout is returned when a core does not answer in time: it is
// stalled or overloaded, which is itself what an operator needs to know.
var ErrSnapshotTimeout = fmt.Errorf("cluster: a core did not report its state in time")

// Snapshot asks every core, by a message run on that core, to copy its
// counters, partitions and groups, and waits for all of them until ctx
// ends. The cores' data stays owned by them: nothing on the data path is
// locked or atomic for the sake of this reader, and a core answers between
// two pieces of work, so one snapshot is consistent per core (not across
// cores).
func (n *Node) Snapshot(ctx context.Context) ([]CoreSnapshot, error) {
	type reply struct {
		i int
		s CoreSnapshot
	}
	// Buffered for every core: a core that answers after ctx ended must
	// not block.
	ch := make(chan reply, len(n.cores))
	for i, cs := range n.cores {
		i, cs := i, cs
		if err := n.rt.Post(cs.core.ID(), func(*reactor.Core) { ch <- reply{i, cs.snapshot()} }); err != nil {
			return nil, err
		}
	}
	out := make([]CoreSnapshot, len(n.cores))
	for range n.cores {
		select {
		case r := <-ch:
			out[r.i] = r.s
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %v", ErrSnapshotTimeout, ctx.Err())
		}
	}
	return out, nil
}

// snapshot runs on the core.
func (cs *coreState) snapshot() CoreSnapshot {
	c := cs.core
	s := CoreSnapshot{Core: c.ID(), CPU: c.CPU(), Busy: c.Busy(), At: time.Now(), Reactor: c.Stats(), IO: c.IOStats(),
		Requests: map[string]uint64{}, BytesIn: cs.probe.bytesIn, BytesOut: cs.probe.bytesOut}
	for k, v := range cs.probe.requests {
		if v > 0 {
			s.Requests[wire.APIName(int16(k))] = v
		}
	}
	if cs.probe.unknownKeys > 0 {
		s.Requests["Unknown"] = cs.probe.unknownKeys
	}
	for ref, p := range cs.parts {
		l := p.log
		s.Partitions = append(s.Partitions, PartitionSnapshot{Topic: ref.Topic, Partition: ref.Partition, Core: c.ID(),
			LogStartOffset: int64(l.LogStartOffset()), EndOffset: int64(l.NextOffset()), HighWatermark: int64(l.HighWatermark()),
			SizeBytes: l.SizeBytes(), RecordsIn: p.probe.recordsIn, BytesIn: p.probe.bytesIn,
			RecordsOut: p.probe.recordsOut, BytesOut: p.probe.bytesOut})
	}
	sort.Slice(s.Partitions, func(i, j int) bool {
		a, b := s.Partitions[i], s.Partitions[j]
		return a.Topic < b.Topic || a.Topic == b.Topic && a.Partition < b.Partition
	})
	for _, h := range cs.coords {
		for _, l := range h.coord.List() {
			g := h.coord.Group(l.ID)
			gs := GroupSnapshot{ID: l.ID, State: l.State, ProtocolType: l.ProtocolType}
			if g != nil {
				d := g.Describe()
				gs.Protocol = d.Protocol
				for _, m := range d.Members {
					gs.Members = append(gs.Members, GroupMember{MemberID: m.MemberID, ClientID: m.ClientID, ClientHost: m.ClientHost})
				}
			}
			for tp, o := range h.coord.Fetch(l.ID, nil) {
				gs.Offsets = append(gs.Offsets, GroupOffset{Topic: tp.Topic, Partition: tp.Partition, Committed: o.Offset})
			}
			sort.Slice(gs.Offsets, func(i, j int) bool {
				a, b := gs.Offsets[i], gs.Offsets[j]
				return a.Topic < b.Topic || a.Topic == b.Topic && a.Partition < b.Partition
			})
			s.Groups = append(s.Groups, gs)
		}
	}
	sort.Slice(s.Groups, func(i, j int) bool { return s.Groups[i].ID < s.Groups[j].ID })
	return s
}

// TopicLayout is a topic as the metadata places it.
type TopicLayout struct {
	Name     string
	Internal bool
	Cores    []reactor.CoreID // Cores[p] owns partition p; -1: another broker holds it
	// Leaders[p] is partition p's leader broker (-1: none); nil when every
	// partition is this broker's.
	Leaders []int32
}

// Topics returns every topic's placement from the newest metadata, sorted
// by name. Safe from any goroutine.
func (n *Node) Topics() []TopicLayout {
	s := n.meta.Load()
	out := make([]TopicLayout, 0, len(s.names))
	for _, name := range s.names {
		t := s.topics[name]
		out = append(out, TopicLayout{Name: t.Name, Internal: t.Internal, Cores: append([]reactor.CoreID(nil), t.Cores...),
			Leaders: append([]int32(nil), t.Leaders...)})
	}
	return out
}

// BrokerInfo describes this broker.
type BrokerInfo struct {
	NodeID    int32
	Listen    string // the bound Kafka address
	Advertise string // host:port clients are told
	Rack      string // --rack; "" = none
	IOMode    string
	Cores     []CoreInfo
}

// CoreInfo is one core: its id, the CPU its thread is pinned to, and the
// thread's Linux id (for top -H, perf -t).
type CoreInfo struct {
	ID       reactor.CoreID
	CPU, TID int
}

// MemberInfo is one broker registered in the cluster metadata, as any
// broker's applied copy has it.
type MemberInfo struct {
	NodeID    int32
	KafkaAddr string
	RaftAddr  string
	Rack      string
	Cores     int32
	// Fenced: the controller has not heard from it within the broker
	// lease (or it has not been unfenced since registering); it leads
	// nothing.
	Fenced bool
}

// Members lists every broker of the applied cluster metadata, in id
// order; empty before this broker has applied any. Safe from any
// goroutine.
func (n *Node) Members() []MemberInfo {
	if n.raft == nil {
		return nil
	}
	v := n.raft.View()
	if v == nil {
		return nil
	}
	var out []MemberInfo
	for _, id := range v.BrokerIDs() {
		b, ok := v.Broker(id)
		if !ok {
			continue
		}
		out = append(out, MemberInfo{NodeID: int32(b.ID), KafkaAddr: b.KafkaAddr, RaftAddr: b.RaftAddr, Rack: b.Rack, Cores: b.Cores, Fenced: b.Fenced})
	}
	return out
}

// Info describes the broker. Safe from any goroutine.
func (n *Node) Info() BrokerInfo {
	b := n.self()
	bi := BrokerInfo{NodeID: n.cfg.NodeID, Listen: n.Addr(), IOMode: n.mode.String(), Rack: n.cfg.Rack,
		Advertise: net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))}
	for _, cs := range n.cores {
		bi.Cores = append(bi.Cores, CoreInfo{ID: cs.core.ID(), CPU: cs.core.CPU(), TID: cs.core.TID()})
	}
	return bi
}

// LimitStats counts what the broker's limits did (docs/RELIABILITY.md),
// for metrics. Safe from any goroutine.
type LimitStats struct {
	Wire wire.Stats
	// PartitionsRefused counts CreateTopics topics and CreatePartitions
	// refused by the partition or descriptor budget.
	PartitionsRefused int64
	// AutoCreateThrottled counts implicit creations refused by
	// --auto-create-per-second.
	AutoCreateThrottled int64
}

// Limits returns the limit counters. Safe from any goroutine.
func (n *Node) Limits() LimitStats {
	return LimitStats{Wire: n.srv.Stats(), PartitionsRefused: n.partsRefused.Load(), AutoCreateThrottled: n.autoThrottled.Load()}
}

// Ready reports whether the broker serves clients: true from the return of
// Start (every core up, every log open) until Close begins.
func (n *Node) Ready() bool { return !n.closed.Load() }
