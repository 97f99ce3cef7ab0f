package wire

import (
	"fmt"
	"slices"
	"testing"

	"github.com/strand-io/strand/cluster/topicconfig"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func fetchReq(maxBytes, partMax int32, parts ...int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.MaxBytes, req.MinBytes, req.MaxWaitMillis, req.SessionEpoch = maxBytes, 1, 0, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "t"
	for _, p := range parts {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.PartitionMaxBytes = p, partMax
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

func TestFetchLimits(t *testing.T) {
	h := newHarness(Config{})
	h.broker.createTopic("t", 2, nil)
	one := makeBatch(make([]byte, 1000))
	for p := range int32(2) {
		for range 3 {
			if r := h.do(t, produceReq("t", p, 1, one), 8).(*kmsg.ProduceResponse); r.Topics[0].Partitions[0].ErrorCode != 0 {
				t.Fatal("produce failed")
			}
		}
	}
	size := int32(len(one))
	cases := []struct {
		name           string
		max, partMax   int32
		want0, want1   int // batches per partition
		wantHWM, epoch int64
	}{
		{"everything", 1 << 20, 1 << 20, 3, 3, 3, 0},
		{"response limit", size + size/2, 1 << 20, 1, 0, 3, 0},
		{"partition limit", 1 << 20, 2 * size, 2, 2, 3, 0},
		{"first batch whole (KIP-74)", 10, 10, 1, 0, 3, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(t, fetchReq(tc.max, tc.partMax, 0, 1), 11).(*kmsg.FetchResponse)
			ps := r.Topics[0].Partitions
			if r.SessionID != 0 || ps[0].HighWatermark != tc.wantHWM {
				t.Fatalf("session %d hwm %d", r.SessionID, ps[0].HighWatermark)
			}
			if g0, g1 := len(ps[0].RecordBatches)/len(one), len(ps[1].RecordBatches)/len(one); g0 != tc.want0 || g1 != tc.want1 {
				t.Fatalf("batches %d/%d, want %d/%d", g0, g1, tc.want0, tc.want1)
			}
		})
	}
	t.Run("out of range and unknown", func(t *testing.T) {
		req := fetchReq(1<<20, 1<<20, 0, 7)
		req.Topics[0].Partitions[0].FetchOffset = 99
		r := h.do(t, req, 12).(*kmsg.FetchResponse)
		if c0, c1 := r.Topics[0].Partitions[0].ErrorCode, r.Topics[0].Partitions[1].ErrorCode; c0 != errOffsetOutOfRange || c1 != errUnknownTopicOrPartition {
			t.Fatalf("codes %s %s", errName(c0), errName(c1))
		}
	})
	t.Run("incremental session refused", func(t *testing.T) {
		req := fetchReq(1<<20, 1<<20, 0)
		req.SessionID, req.SessionEpoch = 5, 3
		if r := h.do(t, req, 12).(*kmsg.FetchResponse); r.ErrorCode != errFetchSessionIDNotFound {
			t.Fatalf("code %s", errName(r.ErrorCode))
		}
	})
}

// TestFetchLongPollUnit drives the long-poll with the fake loop: the fetch
// waits, a produce on the same broker wakes it, and the response follows.
func TestFetchLongPollUnit(t *testing.T) {
	h := newHarness(Config{})
	h.broker.createTopic("t", 1, nil)
	req := fetchReq(1<<20, 1<<20, 0)
	req.MaxWaitMillis = 60_000
	req.SetVersion(12)
	h.traffic(encodeRequest(req, 1, "c"), 100)
	if len(h.fc.out) != 0 || len(h.c.waits) != 1 || h.broker.watcherCount(PartitionRef{"t", 0}) != 1 {
		t.Fatalf("fetch did not park: out %d waits %d", len(h.fc.out), len(h.c.waits))
	}
	// A second connection's produce: same broker, same fake loop.
	other := &memSession{b: h.broker, exec: h.exec}
	other.Append(PartitionRef{"t", 0}, makeBatch([]byte("late")), -1, func(AppendResult) {})
	h.drain(100)
	fs := h.frames(t)
	if len(fs) != 1 {
		t.Fatalf("%d responses after the append", len(fs))
	}
	r := decodeResponse(t, req, fs[0].body).(*kmsg.FetchResponse)
	if len(r.Topics[0].Partitions[0].RecordBatches) == 0 || len(h.c.waits) != 0 {
		t.Fatal("long-poll answered without the new batch")
	}
	// Closing the connection cancels a parked fetch's watch.
	h.traffic(encodeRequest(req, 2, "c"), 100)
	req.Topics[0].Partitions[0].FetchOffset = 1
	h.traffic(encodeRequest(req, 3, "c"), 100)
	h.close()
	if n := h.broker.watcherCount(PartitionRef{"t", 0}); n != 0 {
		t.Fatalf("%d watches left after close", n)
	}
}

func TestListOffsets(t *testing.T) {
	h := newHarness(Config{})
	h.broker.createTopic("t", 1, nil)
	for range 3 {
		h.do(t, produceReq("t", 0, 1, makeBatch([]byte("a"), []byte("b"))), 8)
	}
	for _, tc := range []struct {
		v    int16
		ts   int64
		want int64
	}{{1, -1, 6}, {1, -2, 0}, {6, 0, 0}, {6, 1 << 62, -1}, {0, -1, 6}} {
		req := kmsg.NewPtrListOffsetsRequest()
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "t"
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp = tc.ts
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		p := h.do(t, req, tc.v).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
		got := p.Offset
		if tc.v == 0 {
			got = p.OldStyleOffsets[0]
		}
		if p.ErrorCode != 0 || got != tc.want {
			t.Errorf("v%d ts %d: offset %d err %s, want %d", tc.v, tc.ts, got, errName(p.ErrorCode), tc.want)
		}
	}
}

// TestListOffsetsNoTopicDescription: ListOffsets checks partitions by
// count and takes the leader epoch from each answer, without building the
// topic's description (about 2,000 allocations for a 1,000-partition
// topic).
func TestListOffsetsNoTopicDescription(t *testing.T) {
	h := newHarness(Config{})
	h.broker.leaderEpoch = 3
	h.broker.createTopic("t", 2, nil)
	h.do(t, produceReq("t", 1, 1, makeBatch([]byte("a"))), 8)
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = "t"
	for _, ts := range []int64{-1, -3} {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = 1, ts
		rt.Partitions = append(rt.Partitions, rp)
	}
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = 2, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	h.broker.described = 0
	ps := h.do(t, req, 7).(*kmsg.ListOffsetsResponse).Topics[0].Partitions
	for _, p := range ps[:2] {
		if p.ErrorCode != 0 || p.LeaderEpoch != 3 {
			t.Fatalf("partition 1: %s, leader epoch %d, want 3", errName(p.ErrorCode), p.LeaderEpoch)
		}
	}
	if ps[2].ErrorCode != errUnknownTopicOrPartition {
		t.Fatalf("partition 2 of 2: %s", errName(ps[2].ErrorCode))
	}
	if h.broker.described != 0 {
		t.Fatalf("ListOffsets built %d topic descriptions", h.broker.described)
	}
}

func TestMetadata(t *testing.T) {
	h := newHarness(Config{})
	h.broker.createTopic("b", 2, nil)
	h.broker.createTopic("a", 1, nil)
	all := h.do(t, kmsg.NewPtrMetadataRequest(), 12).(*kmsg.MetadataResponse)
	if len(all.Topics) != 2 || *all.Topics[0].Topic != "a" || len(all.Topics[1].Partitions) != 2 || len(all.Brokers) != 1 {
		t.Fatalf("all topics: %+v", all)
	}
	v0 := kmsg.NewPtrMetadataRequest()
	v0.Topics = []kmsg.MetadataRequestTopic{}
	if r := h.do(t, v0, 0).(*kmsg.MetadataResponse); len(r.Topics) != 2 {
		t.Fatalf("v0 empty list should mean all, got %d", len(r.Topics))
	}
	one := kmsg.NewPtrMetadataRequest()
	for _, n := range []string{"a", "zz", "bad/name"} {
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(n)
		one.Topics = append(one.Topics, mt)
	}
	r := h.do(t, one, 9).(*kmsg.MetadataResponse)
	if r.Topics[0].ErrorCode != 0 || r.Topics[1].ErrorCode != errUnknownTopicOrPartition || r.Topics[2].ErrorCode != errInvalidTopic {
		t.Fatalf("codes %d %d %d", r.Topics[0].ErrorCode, r.Topics[1].ErrorCode, r.Topics[2].ErrorCode)
	}
	h.broker.autoCreate = true
	one.AllowAutoTopicCreation = true
	r = h.do(t, one, 9).(*kmsg.MetadataResponse)
	if r.Topics[1].ErrorCode != 0 || len(r.Topics[1].Partitions) != 3 {
		t.Fatalf("auto-create: %+v", r.Topics[1])
	}
}

func TestAdminAPIs(t *testing.T) {
	h := newHarness(Config{})
	ct := kmsg.NewPtrCreateTopicsRequest()
	add := func(name string, parts int32, rf int16, cfg map[string]string) {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, parts, rf
		for k, v := range cfg {
			c := kmsg.NewCreateTopicsRequestTopicConfig()
			c.Name, c.Value = k, kmsg.StringPtr(v)
			rt.Configs = append(rt.Configs, c)
		}
		ct.Topics = append(ct.Topics, rt)
	}
	add("ok", 2, 1, map[string]string{"retention.ms": "1000"})
	add("dflt", -1, -1, nil)
	add("dup", 1, 1, nil)
	add("dup", 1, 1, nil)
	add("bad name!", 1, 1, nil)
	add("zero", 0, 1, nil)
	add("badcfg", 1, 1, map[string]string{"no.such.key": "1"})
	add("badval", 1, 1, map[string]string{"cleanup.policy": "shred"})
	want := []int16{0, 0, errInvalidRequest, errInvalidRequest, errInvalidTopic, errInvalidPartitions, errInvalidConfig, errInvalidConfig}
	r := h.do(t, ct, 7).(*kmsg.CreateTopicsResponse)
	for i, w := range want {
		if r.Topics[i].ErrorCode != w {
			t.Errorf("create %s: %s, want %s", r.Topics[i].Topic, errName(r.Topics[i].ErrorCode), errName(w))
		}
	}
	if r.Topics[1].NumPartitions != 3 || r.Topics[0].TopicID == [16]byte{} || len(r.Topics[0].Configs) == 0 {
		t.Errorf("created topic details: %+v", r.Topics[1])
	}
	if r := h.do(t, ct, 4).(*kmsg.CreateTopicsResponse); r.Topics[0].ErrorCode != errTopicAlreadyExists {
		t.Errorf("re-create: %s", errName(r.Topics[0].ErrorCode))
	}

	dc := kmsg.NewPtrDescribeConfigsRequest()
	res := kmsg.NewDescribeConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, "ok"
	dc.Resources = append(dc.Resources, res)
	d := h.do(t, dc, 4).(*kmsg.DescribeConfigsResponse)
	found := false
	for _, c := range d.Resources[0].Configs {
		if c.Name == "retention.ms" {
			found = *c.Value == "1000" && c.Source == kmsg.ConfigSourceDynamicTopicConfig && c.ConfigType == kmsg.ConfigTypeLong
		}
	}
	if !found || len(d.Resources[0].Configs) != len(topicconfig.Keys()) {
		t.Fatalf("describe: %+v", d.Resources[0].Configs)
	}

	bc := kmsg.NewPtrDescribeConfigsRequest()
	for _, name := range []string{"1", "9"} {
		br := kmsg.NewDescribeConfigsRequestResource()
		br.ResourceType, br.ResourceName = kmsg.ConfigResourceTypeBroker, name
		bc.Resources = append(bc.Resources, br)
	}
	bd := h.do(t, bc, 4).(*kmsg.DescribeConfigsResponse)
	if len(bd.Resources[0].Configs) != len(topicconfig.BrokerNames()) || bd.Resources[1].ErrorCode != errInvalidRequest {
		t.Fatalf("describe brokers: %d configs, other broker %s", len(bd.Resources[0].Configs), errName(bd.Resources[1].ErrorCode))
	}
	for _, c := range bd.Resources[0].Configs {
		want := kmsg.ConfigSourceDefaultConfig
		if c.Name == "broker.id" {
			want = kmsg.ConfigSourceStaticBrokerConfig
		}
		dynamic := slices.Contains(topicconfig.DynamicBrokerNames(), c.Name)
		if c.Source != want || c.ReadOnly == dynamic || c.ConfigType == kmsg.ConfigTypeUnknown {
			t.Errorf("broker config %s: source %v read-only %v type %v", c.Name, c.Source, c.ReadOnly, c.ConfigType)
		}
	}

	ac := kmsg.NewPtrAlterConfigsRequest()
	ar := kmsg.NewAlterConfigsRequestResource()
	ar.ResourceType, ar.ResourceName = kmsg.ConfigResourceTypeTopic, "ok"
	cfg := kmsg.NewAlterConfigsRequestResourceConfig()
	cfg.Name, cfg.Value = "segment.bytes", kmsg.StringPtr("1048576")
	ar.Configs = append(ar.Configs, cfg)
	bad := ar
	bad.Configs = []kmsg.AlterConfigsRequestResourceConfig{{Name: "nope", Value: kmsg.StringPtr("1")}}
	ac.Resources = append(ac.Resources, ar, bad)
	a := h.do(t, ac, 1).(*kmsg.AlterConfigsResponse)
	if a.Resources[0].ErrorCode != 0 || a.Resources[1].ErrorCode != errInvalidConfig {
		t.Fatalf("alter: %d %d", a.Resources[0].ErrorCode, a.Resources[1].ErrorCode)
	}
	// AlterConfigs replaces: retention.ms returns to its default.
	d = h.do(t, dc, 0).(*kmsg.DescribeConfigsResponse)
	for _, c := range d.Resources[0].Configs {
		if c.Name == "retention.ms" && !c.IsDefault {
			t.Error("retention.ms still overridden after a replacing AlterConfigs")
		}
	}

	cp := kmsg.NewPtrCreatePartitionsRequest()
	for _, tc := range []struct {
		n string
		c int32
	}{{"ok", 5}, {"dflt", 2}, {"missing", 3}} {
		pt := kmsg.NewCreatePartitionsRequestTopic()
		pt.Topic, pt.Count = tc.n, tc.c
		cp.Topics = append(cp.Topics, pt)
	}
	p := h.do(t, cp, 3).(*kmsg.CreatePartitionsResponse)
	if p.Topics[0].ErrorCode != 0 || p.Topics[1].ErrorCode != errInvalidPartitions || p.Topics[2].ErrorCode != errUnknownTopicOrPartition {
		t.Fatalf("create partitions: %+v", p.Topics)
	}
	if ti, _ := (&memSession{b: h.broker}).Topic("ok"); len(ti.Partitions) != 5 {
		t.Fatalf("ok has %d partitions", len(ti.Partitions))
	}

	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.TopicNames = []string{"ok", "missing"}
	del := h.do(t, dt, 3).(*kmsg.DeleteTopicsResponse)
	if del.Topics[0].ErrorCode != 0 || del.Topics[1].ErrorCode != errUnknownTopicOrPartition {
		t.Fatalf("delete: %+v", del.Topics)
	}
	ti, _ := (&memSession{b: h.broker}).Topic("dflt")
	dt6 := kmsg.NewPtrDeleteTopicsRequest()
	dt6.Topics = []kmsg.DeleteTopicsRequestTopic{{TopicID: ti.ID}, {TopicID: [16]byte{1}}}
	del = h.do(t, dt6, 6).(*kmsg.DeleteTopicsResponse)
	if del.Topics[0].ErrorCode != 0 || *del.Topics[0].Topic != "dflt" || del.Topics[1].ErrorCode != errUnknownTopicID {
		t.Fatalf("delete by id: %+v", del.Topics)
	}
}

// TestMetadataAutoCreatePerRequest: a Metadata request naming more unknown
// topics than AutoCreateMaxPerRequest creates that many and answers the
// rest LEADER_NOT_AVAILABLE, which a client retries; asking again creates
// the next ones.
func TestMetadataAutoCreatePerRequest(t *testing.T) {
	h := newHarness(Config{AutoCreateMaxPerRequest: 3})
	h.broker.autoCreate = true
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = true
	for i := range 10 {
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(fmt.Sprintf("new-%d", i))
		req.Topics = append(req.Topics, mt)
	}
	for round, wantCreated := range []int{3, 6, 9, 10} {
		r := h.do(t, req, 9).(*kmsg.MetadataResponse)
		created := 0
		for _, tp := range r.Topics {
			switch tp.ErrorCode {
			case 0:
				created++
			case errLeaderNotAvailable:
			default:
				t.Fatalf("round %d: %s: %s", round, *tp.Topic, errName(tp.ErrorCode))
			}
		}
		if created != wantCreated {
			t.Fatalf("round %d: %d of the named topics exist, want %d", round, created, wantCreated)
		}
	}
}
