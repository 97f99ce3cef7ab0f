package wire

import (
	"context"
	"encoding/binary"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/strand-io/strand/cluster/topicconfig"
	"github.com/strand-io/strand/shard"

	"github.com/panjf2000/gnet/v2"
	"github.com/twmb/franz-go/pkg/kerr"
)

// memBroker is the test-only in-memory broker behind Backend. It is shared
// by every event loop, so its state sits behind a mutex; each connection
// gets a memSession that knows how to run work on that connection's loop
// (exec), which is how WatchAppend and After call back on the right thread.
// Everything else calls back synchronously, inside the Backend call.
type memBroker struct {
	mu         sync.Mutex
	nodeID     int32
	host       string
	port       int32
	autoCreate bool
	defParts   int32
	topics     map[string]*memTopic
	nextID     byte
	// leaderEpoch is every partition's leader epoch (Metadata, ListOffsets).
	leaderEpoch int32
	// described counts Topic calls: the hot paths must not build topic
	// descriptions.
	described int
	// brokerConfigs are this broker's dynamic configs.
	brokerConfigs map[string]string

	// watchAdded, if set, receives a value each time a WatchAppend is
	// registered (tests use it to know a fetch is long-polling).
	watchAdded chan PartitionRef
	// panicTopic, if set, makes Append to that topic panic (tests the
	// per-connection recover).
	panicTopic string
	// followerFetches counts FollowerFetch calls.
	followerFetches int
}

type memTopic struct {
	info    TopicInfo
	configs map[string]*string
	parts   []*memPart
}

type memPart struct {
	batches  [][]byte // base offsets already rewritten
	bases    []int64
	hwm      int64
	logStart int64
	watchers map[*memWatch]struct{}
}

type memWatch struct {
	offset    int64
	exec      func(func())
	cb        func()
	cancelled bool // touched only on the owning loop
}

func newMemBroker(host string, port int32) *memBroker {
	return &memBroker{nodeID: 1, host: host, port: port, defParts: 3, topics: make(map[string]*memTopic)}
}

// attachGnet is the Attach for a real gnet server.
func (b *memBroker) attachGnet(c gnet.Conn) Backend {
	loop := c.EventLoop()
	return &memSession{b: b, exec: func(fn func()) {
		_ = loop.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error { fn(); return nil }))
	}}
}

// memMaxPartitions bounds topic size, as any real backend must: the wire
// layer passes counts through (a request may ask for 2^31-1 partitions).
const memMaxPartitions = 10_000

// createTopic is also used directly by tests to set up fixtures.
func (b *memBroker) createTopic(name string, parts int32, configs map[string]*string) int16 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.topics[name]; ok {
		return errTopicAlreadyExists
	}
	b.nextID++
	t := &memTopic{info: TopicInfo{Name: name, ID: [16]byte{0: 0x5a, 15: b.nextID}}, configs: configs}
	b.addPartitionsLocked(t, parts)
	b.topics[name] = t
	return errNone
}

func (b *memBroker) addPartitionsLocked(t *memTopic, total int32) {
	for i := int32(len(t.parts)); i < total; i++ {
		t.parts = append(t.parts, &memPart{watchers: make(map[*memWatch]struct{})})
	}
	infos := make([]PartitionInfo, total) // fresh slice: readers may hold the old one
	for i := range infos {
		infos[i] = PartitionInfo{ID: int32(i), Leader: b.nodeID, LeaderEpoch: b.leaderEpoch, Replicas: []int32{b.nodeID}, ISR: []int32{b.nodeID}}
	}
	t.info.Partitions = infos
}

func (b *memBroker) part(p PartitionRef) (*memPart, bool) {
	t, ok := b.topics[p.Topic]
	if !ok || p.Partition < 0 || int(p.Partition) >= len(t.parts) {
		return nil, false
	}
	return t.parts[p.Partition], true
}

// memSession is the Backend one connection sees.
type memSession struct {
	b    *memBroker
	exec func(func()) // run fn on this connection's loop
}

func (s *memSession) Brokers() []BrokerInfo {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	return []BrokerInfo{{NodeID: s.b.nodeID, Host: s.b.host, Port: s.b.port}}
}
func (s *memSession) ControllerID() int32 { return s.b.nodeID }
func (s *memSession) AutoCreateTopics() bool {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	return s.b.autoCreate
}

func (s *memSession) Topics() []TopicInfo {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	out := make([]TopicInfo, 0, len(s.b.topics))
	for _, t := range s.b.topics {
		out = append(out, t.info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (s *memSession) PartitionCount(name string) (int32, bool) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	t, ok := s.b.topics[name]
	if !ok {
		return 0, false
	}
	return int32(len(t.info.Partitions)), true
}

func (s *memSession) Topic(name string) (TopicInfo, bool) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.described++
	t, ok := s.b.topics[name]
	if !ok {
		return TopicInfo{}, false
	}
	return t.info, true
}

func (s *memSession) CreateTopic(t NewTopic, validateOnly bool, cb func(int16, string)) {
	parts := t.Partitions
	if parts == -1 {
		parts = s.b.defParts
	}
	if t.ReplicationFactor > 1 {
		cb(errInvalidReplicationFactor, "only one broker")
		return
	}
	if parts > memMaxPartitions {
		cb(errInvalidPartitions, "too many partitions")
		return
	}
	if validateOnly {
		if _, exists := s.Topic(t.Name); exists {
			cb(errTopicAlreadyExists, "")
			return
		}
		cb(errNone, "")
		return
	}
	cb(s.b.createTopic(t.Name, parts, t.Configs), "")
}

func (s *memSession) DeleteTopic(name string, cb func(int16, string)) {
	s.b.mu.Lock()
	_, ok := s.b.topics[name]
	delete(s.b.topics, name)
	s.b.mu.Unlock()
	if !ok {
		cb(errUnknownTopicOrPartition, "")
		return
	}
	cb(errNone, "")
}

func (s *memSession) CreatePartitions(name string, total int32, validateOnly bool, cb func(int16, string)) {
	s.b.mu.Lock()
	t, ok := s.b.topics[name]
	code := errNone
	switch {
	case !ok:
		code = errUnknownTopicOrPartition
	case int(total) <= len(t.parts) || total > memMaxPartitions:
		code = errInvalidPartitions
	case !validateOnly:
		s.b.addPartitionsLocked(t, total)
	}
	s.b.mu.Unlock()
	cb(code, "")
}

func (s *memSession) DescribeConfigs(topic string, keys []string) ([]ConfigEntry, int16) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	t, ok := s.b.topics[topic]
	if !ok {
		return nil, errUnknownTopicOrPartition
	}
	overrides := map[string]string{}
	for k, v := range t.configs {
		if v != nil {
			overrides[k] = *v
		}
	}
	return memEntries(topicconfig.Describe(overrides, nil, keys)), errNone
}

func (s *memSession) DescribeBrokerConfigs(name string, keys []string) ([]ConfigEntry, int16) {
	if name != strconv.Itoa(int(s.b.nodeID)) {
		return nil, errInvalidRequest
	}
	s.b.mu.Lock()
	bs := topicconfig.BrokerSettings{NodeID: s.b.nodeID, Static: map[string]bool{"broker.id": true}, Dynamic: s.b.brokerConfigs}
	s.b.mu.Unlock()
	return memEntries(topicconfig.Broker(bs, keys)), errNone
}

func memEntries(es []topicconfig.Entry) []ConfigEntry {
	out := make([]ConfigEntry, len(es))
	for i, e := range es {
		v := e.Value
		out[i] = ConfigEntry{Name: e.Name, Value: &v, Source: e.Source, ReadOnly: e.ReadOnly, Type: e.Type, Doc: e.Doc, Synonyms: e.Synonyms}
	}
	return out
}

// AlterConfigOps keeps this broker's dynamic configs in memory; topic
// operations go through topicconfig as the broker's do.
func (s *memSession) AlterConfigOps(a ConfigAlteration, cb func(error)) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if a.Broker {
		if a.Name != strconv.Itoa(int(s.b.nodeID)) {
			cb(kerr.InvalidRequest)
			return
		}
		next, err := topicconfig.ApplyBrokerOps(s.b.brokerConfigs, a.Ops, a.Replace)
		if err == nil && !a.ValidateOnly {
			s.b.brokerConfigs = next
		}
		cb(err)
		return
	}
	t, ok := s.b.topics[a.Name]
	if !ok {
		cb(kerr.UnknownTopicOrPartition)
		return
	}
	cur := map[string]string{}
	for k, v := range t.configs {
		if v != nil {
			cur[k] = *v
		}
	}
	next, err := topicconfig.ApplyTopicOps(cur, nil, a.Ops)
	if err == nil && !a.ValidateOnly {
		t.configs = map[string]*string{}
		for k, v := range next {
			t.configs[k] = &v
		}
	}
	cb(err)
}

func (s *memSession) AlterConfigs(topic string, set map[string]*string, validateOnly bool, cb func(int16)) {
	s.b.mu.Lock()
	t, ok := s.b.topics[topic]
	if ok && !validateOnly {
		t.configs = set
	}
	s.b.mu.Unlock()
	if !ok {
		cb(errUnknownTopicOrPartition)
		return
	}
	cb(errNone)
}

func (s *memSession) Append(p PartitionRef, batch []byte, _ int16, cb func(AppendResult)) {
	if p.Topic != "" && p.Topic == s.b.panicTopic {
		panic("memBroker: append to panic topic")
	}
	batch = append([]byte(nil), batch...) // lent by the server: keep a copy
	h, _ := shard.ParseBatchHeader(batch)
	s.b.mu.Lock()
	mp, ok := s.b.part(p)
	if !ok {
		s.b.mu.Unlock()
		cb(AppendResult{BaseOffset: -1, LogAppendTimeMs: -1, ErrCode: errUnknownTopicOrPartition})
		return
	}
	base := mp.hwm
	binary.BigEndian.PutUint64(batch[0:8], uint64(base))
	mp.batches = append(mp.batches, batch)
	mp.bases = append(mp.bases, base)
	mp.hwm += int64(h.LastOffsetDelta) + 1
	var fire []*memWatch
	for w := range mp.watchers {
		if mp.hwm > w.offset {
			fire = append(fire, w)
			delete(mp.watchers, w)
		}
	}
	start := mp.logStart
	s.b.mu.Unlock()
	for _, w := range fire {
		w.fire()
	}
	cb(AppendResult{BaseOffset: base, LogAppendTimeMs: -1, LogStartOffset: start})
}

func (w *memWatch) fire() {
	w.exec(func() {
		if !w.cancelled {
			w.cancelled = true
			w.cb()
		}
	})
}

func (s *memSession) Fetch(p PartitionRef, offset int64, maxBytes int32, cb func(FetchResult)) {
	s.b.mu.Lock()
	mp, ok := s.b.part(p)
	if !ok {
		s.b.mu.Unlock()
		cb(FetchResult{HighWatermark: -1, LastStable: -1, LogStartOffset: -1, ErrCode: errUnknownTopicOrPartition})
		return
	}
	r := FetchResult{HighWatermark: mp.hwm, LastStable: mp.hwm, LogStartOffset: mp.logStart}
	if offset < mp.logStart || offset > mp.hwm {
		r.ErrCode = errOffsetOutOfRange
		s.b.mu.Unlock()
		cb(r)
		return
	}
	// The batch holding offset: the last one whose base is <= offset.
	i := sort.Search(len(mp.bases), func(i int) bool { return mp.bases[i] > offset }) - 1
	i = max(i, 0)
	var out []byte
	for ; i < len(mp.batches); i++ {
		b := mp.batches[i]
		if mp.bases[i]+int64(binary.BigEndian.Uint32(b[23:])) < offset { // batch ends before offset
			continue
		}
		if len(out) > 0 && len(out)+len(b) > int(maxBytes) {
			break
		}
		out = append(out, b...)
	}
	r.Records = out
	s.b.mu.Unlock()
	cb(r)
}

func (s *memSession) WatchAppend(p PartitionRef, offset int64, cb func()) func() {
	w := &memWatch{offset: offset, exec: s.exec, cb: cb}
	s.b.mu.Lock()
	mp, ok := s.b.part(p)
	now := !ok || mp.hwm > offset
	if !now {
		mp.watchers[w] = struct{}{}
	}
	ch := s.b.watchAdded
	s.b.mu.Unlock()
	if now {
		w.fire()
	} else if ch != nil {
		select {
		case ch <- p:
		default:
		}
	}
	return func() {
		w.cancelled = true
		s.b.mu.Lock()
		if mp != nil {
			delete(mp.watchers, w)
		}
		s.b.mu.Unlock()
	}
}

func (s *memSession) ListOffset(p PartitionRef, ts int64, cb func(ListOffsetResult)) {
	s.b.mu.Lock()
	mp, ok := s.b.part(p)
	if !ok {
		s.b.mu.Unlock()
		cb(ListOffsetResult{Offset: -1, TimestampMs: -1, ErrCode: errUnknownTopicOrPartition})
		return
	}
	r := ListOffsetResult{Offset: -1, TimestampMs: -1, LeaderEpoch: s.b.leaderEpoch}
	switch ts {
	case listLatest:
		r.Offset = mp.hwm
	case listEarliest:
		r.Offset = mp.logStart
	default: // batch granularity is enough for a test backend
		for i, b := range mp.batches {
			if h, _ := shard.ParseBatchHeader(b); h.MaxTimestamp >= ts {
				r.Offset, r.TimestampMs = mp.bases[i], h.MaxTimestamp
				break
			}
		}
	}
	s.b.mu.Unlock()
	cb(r)
}

func (s *memSession) After(d time.Duration, fn func()) func() {
	cancelled := false // touched only on the owning loop
	t := time.AfterFunc(d, func() {
		s.exec(func() {
			if !cancelled {
				cancelled = true
				fn()
			}
		})
	})
	return func() { cancelled = true; t.Stop() }
}

// watcherCount reports the registered watches on a partition.
func (b *memBroker) watcherCount(p PartitionRef) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if mp, ok := b.part(p); ok {
		return len(mp.watchers)
	}
	return 0
}
