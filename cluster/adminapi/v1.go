package adminapi

import (
	"fmt"
	"net/http"
	"sort"

	"github.com/strand-io/strand/cluster"
)

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "live"})
}

func (s *Server) ready(w http.ResponseWriter, _ *http.Request) {
	b := s.broker.Load()
	switch {
	case s.draining.Load() || b != nil && !(*b).Ready():
		writeError(w, http.StatusServiceUnavailable, "the broker is draining: it is shutting down",
			"send clients to another broker; this one stops once in-flight requests finish and its logs are synced")
	case b == nil:
		writeError(w, http.StatusServiceUnavailable, "the broker is starting",
			"retry in a moment; it is ready once every core is up and every log is open")
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
}

// brokerJSON is an element of GET /v1/brokers: every broker of the
// cluster metadata. The one answering ("self") also reports its listener,
// I/O mode and each core's CPU, thread and partitions; of the others this
// broker knows what the metadata holds: address, rack, core count and
// whether the controller has fenced it.
type brokerJSON struct {
	NodeID    int32      `json:"node_id"`
	Self      bool       `json:"self"`
	Listen    string     `json:"listen,omitempty"`
	Advertise string     `json:"advertise"`
	RaftAddr  string     `json:"raft_address,omitempty"`
	Rack      string     `json:"rack,omitempty"`
	IOMode    string     `json:"io_mode,omitempty"`
	CoreCount int32      `json:"core_count"`
	Fenced    bool       `json:"fenced"`
	Cores     []coreJSON `json:"cores,omitempty"`
}

type coreJSON struct {
	Core       int `json:"core"`
	CPU        int `json:"cpu"`
	TID        int `json:"tid"`
	Partitions int `json:"partitions"`
}

func (s *Server) brokers(w http.ResponseWriter, _ *http.Request, b Broker) {
	info := b.Info()
	counts := map[int]int{}
	for _, t := range b.Topics() {
		for _, c := range t.Cores {
			counts[int(c)]++
		}
	}
	self := brokerJSON{NodeID: info.NodeID, Self: true, Listen: info.Listen, Advertise: info.Advertise, Rack: info.Rack,
		IOMode: info.IOMode, CoreCount: int32(len(info.Cores)), Cores: []coreJSON{}}
	for _, c := range info.Cores {
		self.Cores = append(self.Cores, coreJSON{Core: int(c.ID), CPU: c.CPU, TID: c.TID, Partitions: counts[int(c.ID)]})
	}
	out := []brokerJSON{}
	for _, m := range b.Members() {
		if m.NodeID == info.NodeID {
			self.RaftAddr, self.Fenced = m.RaftAddr, m.Fenced
			continue
		}
		out = append(out, brokerJSON{NodeID: m.NodeID, Advertise: m.KafkaAddr, RaftAddr: m.RaftAddr, Rack: m.Rack, CoreCount: m.Cores, Fenced: m.Fenced})
	}
	// This broker first, then the others in id order; before it has
	// applied any metadata it is the only one listed.
	out = append([]brokerJSON{self}, out...)
	writeJSON(w, http.StatusOK, map[string]any{"brokers": out})
}

type topicJSON struct {
	Name       string          `json:"name"`
	Internal   bool            `json:"internal"`
	Partitions []partitionJSON `json:"partitions"`
}

// partitionJSON is one partition. Open is false while its log is still
// being opened on its core; the offsets are then -1.
type partitionJSON struct {
	Partition      int32 `json:"partition"`
	Broker         int32 `json:"broker"`
	Core           int   `json:"core"`
	Open           bool  `json:"open"`
	LogSizeBytes   int64 `json:"log_size_bytes"`
	LogStartOffset int64 `json:"log_start_offset"`
	EndOffset      int64 `json:"end_offset"`
	HighWatermark  int64 `json:"high_watermark"`
}

type partKey struct {
	topic string
	part  int32
}

func partIndex(snap []cluster.CoreSnapshot) map[partKey]cluster.PartitionSnapshot {
	m := map[partKey]cluster.PartitionSnapshot{}
	for _, c := range snap {
		for _, p := range c.Partitions {
			m[partKey{p.Topic, p.Partition}] = p
		}
	}
	return m
}

func topicOf(t cluster.TopicLayout, node int32, parts map[partKey]cluster.PartitionSnapshot) topicJSON {
	tj := topicJSON{Name: t.Name, Internal: t.Internal, Partitions: make([]partitionJSON, len(t.Cores))}
	for i, c := range t.Cores {
		pj := partitionJSON{Partition: int32(i), Broker: node, Core: int(c), LogSizeBytes: -1, LogStartOffset: -1, EndOffset: -1, HighWatermark: -1}
		if c < 0 && t.Leaders != nil { // held by another broker
			pj.Broker = t.Leaders[i]
		}
		if p, ok := parts[partKey{t.Name, int32(i)}]; ok {
			pj.Open, pj.LogSizeBytes, pj.LogStartOffset, pj.EndOffset, pj.HighWatermark = true, p.SizeBytes, p.LogStartOffset, p.EndOffset, p.HighWatermark
		}
		tj.Partitions[i] = pj
	}
	return tj
}

func (s *Server) topics(w http.ResponseWriter, r *http.Request, b Broker) {
	snap, ok := s.snapshot(w, r, b)
	if !ok {
		return
	}
	parts, node := partIndex(snap), b.Info().NodeID
	out := []topicJSON{}
	for _, t := range b.Topics() {
		out = append(out, topicOf(t, node, parts))
	}
	writeJSON(w, http.StatusOK, map[string]any{"topics": out})
}

func (s *Server) topic(w http.ResponseWriter, r *http.Request, b Broker) {
	name := r.PathValue("name")
	for _, t := range b.Topics() {
		if t.Name != name {
			continue
		}
		snap, ok := s.snapshot(w, r, b)
		if !ok {
			return
		}
		writeJSON(w, http.StatusOK, topicOf(t, b.Info().NodeID, partIndex(snap)))
		return
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("unknown topic %q", name),
		"list the topics with GET /v1/topics or `strand topic list`; create it with `strand topic create "+name+"`")
}

type groupSummaryJSON struct {
	Group        string `json:"group"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
	Members      int    `json:"members"`
	Coordinator  int    `json:"coordinator_core"`
	Lag          int64  `json:"lag"`
}

type groupJSON struct {
	Group        string       `json:"group"`
	State        string       `json:"state"`
	ProtocolType string       `json:"protocol_type"`
	Protocol     string       `json:"protocol"`
	Coordinator  int          `json:"coordinator_core"`
	Members      []memberJSON `json:"members"`
	Offsets      []offsetJSON `json:"offsets"`
	Lag          int64        `json:"lag"`
}

type memberJSON struct {
	MemberID   string `json:"member_id"`
	ClientID   string `json:"client_id"`
	ClientHost string `json:"client_host"`
}

// offsetJSON is a group's position in one partition. Lag is the high
// watermark minus the committed offset (never below 0); HighWatermark and
// Lag are -1 when the partition no longer exists or is not open.
type offsetJSON struct {
	Topic         string `json:"topic"`
	Partition     int32  `json:"partition"`
	Committed     int64  `json:"committed"`
	HighWatermark int64  `json:"high_watermark"`
	Lag           int64  `json:"lag"`
}

// lagOf is a committed offset's lag against the partition's high
// watermark, and that watermark; both -1 when the partition is unknown.
func lagOf(parts map[partKey]cluster.PartitionSnapshot, o cluster.GroupOffset) (hw, lag int64) {
	p, ok := parts[partKey{o.Topic, o.Partition}]
	if !ok {
		return -1, -1
	}
	return p.HighWatermark, max(0, p.HighWatermark-o.Committed)
}

func groupOf(g cluster.GroupSnapshot, core int, parts map[partKey]cluster.PartitionSnapshot) groupJSON {
	gj := groupJSON{Group: g.ID, State: g.State, ProtocolType: g.ProtocolType, Protocol: g.Protocol, Coordinator: core,
		Members: []memberJSON{}, Offsets: []offsetJSON{}}
	for _, m := range g.Members {
		gj.Members = append(gj.Members, memberJSON{m.MemberID, m.ClientID, m.ClientHost})
	}
	for _, o := range g.Offsets {
		hw, lag := lagOf(parts, o)
		gj.Offsets = append(gj.Offsets, offsetJSON{Topic: o.Topic, Partition: o.Partition, Committed: o.Committed, HighWatermark: hw, Lag: lag})
		if lag > 0 {
			gj.Lag += lag
		}
	}
	return gj
}

func (s *Server) groups(w http.ResponseWriter, r *http.Request, b Broker) {
	snap, ok := s.snapshot(w, r, b)
	if !ok {
		return
	}
	parts := partIndex(snap)
	out := []groupSummaryJSON{}
	for _, c := range snap {
		for _, g := range c.Groups {
			gj := groupOf(g, int(c.Core), parts)
			out = append(out, groupSummaryJSON{Group: gj.Group, State: gj.State, ProtocolType: gj.ProtocolType,
				Members: len(gj.Members), Coordinator: gj.Coordinator, Lag: gj.Lag})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	writeJSON(w, http.StatusOK, map[string]any{"groups": out})
}

func (s *Server) group(w http.ResponseWriter, r *http.Request, b Broker) {
	id := r.PathValue("id")
	snap, ok := s.snapshot(w, r, b)
	if !ok {
		return
	}
	for _, c := range snap {
		for _, g := range c.Groups {
			if g.ID == id {
				writeJSON(w, http.StatusOK, groupOf(g, int(c.Core), partIndex(snap)))
				return
			}
		}
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("unknown group %q", id),
		"list the groups with GET /v1/groups or `strand group list`; a group exists once a member joins or commits")
}
