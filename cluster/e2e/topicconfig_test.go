package e2e

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strand-io/strand/cluster"
	"github.com/strand-io/strand/cluster/topicconfig"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// createTopicFull sends one CreateTopics and returns the topic's answer.
func createTopicFull(t testing.TB, cl *kgo.Client, name string, configs map[string]string) kmsg.CreateTopicsResponseTopic {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, 1
	for k, v := range configs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 10000
	resp, err := req.RequestWith(ctxFor(t, 20*time.Second), cl)
	if err != nil || len(resp.Topics) != 1 {
		t.Fatalf("create topic %s: %v (%d topics)", name, err, len(resp.Topics))
	}
	return resp.Topics[0]
}

// describeAll describes every config of one resource.
func describeAll(t testing.TB, cl *kgo.Client, typ kmsg.ConfigResourceType, name string) kmsg.DescribeConfigsResponseResource {
	t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	r := kmsg.NewDescribeConfigsRequestResource()
	r.ResourceType, r.ResourceName = typ, name
	req.Resources = append(req.Resources, r)
	req.IncludeDocumentation = true
	resp, err := req.RequestWith(ctxFor(t, 10*time.Second), cl)
	if err != nil || len(resp.Resources) != 1 {
		t.Fatalf("describe configs %s: %v", name, err)
	}
	return resp.Resources[0]
}

// TestTopicConfigsEveryKafkaKey: keys tools set routinely (min.insync.replicas,
// compression.type, flush.messages) no longer fail CreateTopics; they are
// reported back as topic overrides while every other key of the table
// reports its default; unknown keys and tiered storage are refused with
// INVALID_CONFIG naming the key.
func TestTopicConfigsEveryKafkaKey(t *testing.T) {
	n := startNode(t, testDataDir(t), nil)
	cl := newClient(t, n.Addr())

	set := map[string]string{"min.insync.replicas": "2", "compression.type": "zstd", "flush.messages": "1", "retention.ms": "3600000"}
	if rt := createTopicFull(t, cl, "configured", set); rt.ErrorCode != 0 {
		t.Fatalf("create with %v: %s (%v)", set, codeName(rt.ErrorCode), rt.ErrorMessage)
	}
	res := describeAll(t, cl, kmsg.ConfigResourceTypeTopic, "configured")
	if res.ErrorCode != 0 {
		t.Fatalf("describe: %s", codeName(res.ErrorCode))
	}
	seen := map[string]bool{}
	for _, c := range res.Configs {
		seen[c.Name] = true
		k, ok := topicconfig.Lookup(c.Name)
		if !ok {
			t.Errorf("described %s, which is not a topic config", c.Name)
			continue
		}
		want, override := set[c.Name]
		wantSource := kmsg.ConfigSourceDynamicTopicConfig
		if !override {
			want, wantSource = k.Default, kmsg.ConfigSourceDefaultConfig
		}
		if c.Value == nil || *c.Value != want || c.Source != wantSource {
			t.Errorf("%s: value %v source %v, want %q source %v", c.Name, ptrStr(c.Value), c.Source, want, wantSource)
		}
		if c.ConfigType == kmsg.ConfigTypeUnknown || c.Documentation == nil || *c.Documentation == "" {
			t.Errorf("%s: type %v, documentation %v", c.Name, c.ConfigType, c.Documentation)
		}
	}
	for _, name := range topicconfig.Names() {
		if !seen[name] {
			t.Errorf("DescribeConfigs lacks %s", name)
		}
	}

	refused := []struct {
		configs map[string]string
		key     string
		text    string
	}{
		{map[string]string{"min.insync.replica": "2"}, "min.insync.replica", "unknown topic config"},
		{map[string]string{"remote.storage.enable": "true"}, "remote.storage.enable", "tiered storage is not supported"},
		{map[string]string{"compression.type": "brotli"}, "compression.type", "invalid value"},
		{map[string]string{"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "5"}, "min.compaction.lag.ms", "max.compaction.lag.ms"},
	}
	for _, r := range refused {
		rt := createTopicFull(t, cl, "refused", r.configs)
		msg := ptrStr(rt.ErrorMessage)
		if rt.ErrorCode != kerr.InvalidConfig.Code || !strings.Contains(msg, r.key) || !strings.Contains(msg, r.text) {
			t.Errorf("create with %v: %s %q, want INVALID_CONFIG naming %s (%q)", r.configs, codeName(rt.ErrorCode), msg, r.key, r.text)
		}
	}
	if code, _ := topicMeta(t, cl, "refused"); code != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("a refused CreateTopics left topic \"refused\" behind (metadata code %s)", codeName(code))
	}

	// AlterConfigs goes through the same table.
	wantCode(t, "alter with flush.ms", alterTopicConfig(t, cl, "configured", map[string]string{"flush.ms": "1000", "compression.type": "lz4"}), 0)
	if v, def, _ := describeTopicConfig(t, cl, "configured", "compression.type"); v != "lz4" || def {
		t.Fatalf("compression.type after AlterConfigs = %q (default %v), want lz4", v, def)
	}
	wantCode(t, "alter with an unknown key", alterTopicConfig(t, cl, "configured", map[string]string{"flush.msgs": "1"}), kerr.InvalidConfig.Code)
}

// TestDescribeBrokerConfigs: DescribeConfigs for the broker lists its real
// settings, those set explicitly as STATIC_BROKER_CONFIG, and only the
// dynamic ones (topic defaults such as log.retention.ms) are not read-only. (Another broker's
// id is INVALID_REQUEST: wire's TestAdminAPIs, since kgo routes such a
// request to a broker that does not exist.)
func TestDescribeBrokerConfigs(t *testing.T) {
	dir := testDataDir(t)
	n := startNode(t, dir, func(c *cluster.Config) {
		c.NodeID, c.DefaultPartitions = 0, 3
		c.StaticConfigs = []string{"num.partitions", "log.dirs"}
	})
	cl := newClient(t, n.Addr())
	res := describeAll(t, cl, kmsg.ConfigResourceTypeBroker, "0")
	if res.ErrorCode != 0 {
		t.Fatalf("describe broker: %s", codeName(res.ErrorCode))
	}
	got := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
	for _, c := range res.Configs {
		got[c.Name] = c
	}
	want := map[string]string{
		"num.partitions": "3", "log.dirs": dir, "broker.id": "0", "log.retention.ms": "604800000",
		"log.segment.bytes": "1073741824", "listeners": "PLAINTEXT://" + n.Addr(), "auto.create.topics.enable": "true",
	}
	for name, v := range want {
		c, ok := got[name]
		dynamic := slices.Contains(topicconfig.DynamicBrokerNames(), name)
		if !ok || c.Value == nil || *c.Value != v || c.ReadOnly == dynamic {
			t.Errorf("%s: %+v, want value %q, read-only unless dynamic (%v)", name, c, v, dynamic)
		}
	}
	for _, name := range topicconfig.BrokerNames() {
		c, ok := got[name]
		if !ok {
			t.Errorf("broker configs lack %s", name)
			continue
		}
		wantSource := kmsg.ConfigSourceDefaultConfig
		if name == "num.partitions" || name == "log.dirs" {
			wantSource = kmsg.ConfigSourceStaticBrokerConfig
		}
		if c.Source != wantSource || c.ConfigType == kmsg.ConfigTypeUnknown {
			t.Errorf("%s: source %v type %v, want source %v", name, c.Source, c.ConfigType, wantSource)
		}
	}
}

func ptrStr(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

// TestCompactTopicKeepsRecords is issue 11's reproduction: a topic with
// cleanup.policy=compact, retention.ms=2000 and segment.ms=500 lost its
// keys to time retention. Kafka applies retention only with the delete
// policy; until Strand compacts, a compact-only topic keeps every record.
// A delete topic with the same settings, produced to in step, is the
// clock: once it has lost two segments to retention, every core has ticked
// past the point where the compact topic would have lost its first.
func TestCompactTopicKeepsRecords(t *testing.T) {
	n := startNode(t, testDataDir(t), func(c *cluster.Config) { c.TickInterval = 20 * time.Millisecond })
	cl := produceClient(t, n.Addr())
	cfg := map[string]string{"retention.ms": "2000", "segment.ms": "500"}
	for _, policy := range []string{"compact", "delete"} {
		set := map[string]string{"cleanup.policy": policy}
		for k, v := range cfg {
			set[k] = v
		}
		if rt := createTopicFull(t, cl, policy, set); rt.ErrorCode != 0 {
			t.Fatalf("create %s: %s", policy, codeName(rt.ErrorCode))
		}
	}
	ctx := ctxFor(t, 60*time.Second)
	var moves int
	last := int64(0)
	for i := 0; moves < 2; i++ {
		if ctx.Err() != nil {
			t.Fatalf("the delete topic's log start offset moved %d times before the deadline", moves)
		}
		for _, topic := range []string{"compact", "delete"} {
			r := &kgo.Record{Topic: topic, Key: []byte{byte('a' + i%10)}, Value: []byte("v")}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("produce to %s: %v", topic, err)
			}
		}
		if i%20 != 0 {
			continue
		}
		if start := listOffsets(t, cl, "delete", 1, -2)[0]; start > last {
			moves, last = moves+1, start
		}
	}
	if start := listOffsets(t, cl, "compact", 1, -2)[0]; start != 0 {
		t.Fatalf("compact topic's log start offset %d: retention deleted records of a compact-only topic", start)
	}
}

// TestTopicConfigsKadm: the same through franz-go's admin client, as
// tools built on it (and Terraform providers) call it.
func TestTopicConfigsKadm(t *testing.T) {
	n := startNode(t, testDataDir(t), nil)
	adm := kadm.NewClient(newClient(t, n.Addr()))
	ctx := ctxFor(t, 30*time.Second)
	set := map[string]*string{"min.insync.replicas": kmsg.StringPtr("2"), "compression.type": kmsg.StringPtr("lz4"), "segment.jitter.ms": kmsg.StringPtr("100")}
	created, err := adm.CreateTopic(ctx, 2, 1, set, "kadm-configs")
	if err != nil {
		t.Fatalf("CreateTopic: %v (%s)", err, created.ErrMessage)
	}
	if c := created.Configs["compression.type"]; c.MaybeValue() != "lz4" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("CreateTopics' own config report: compression.type %+v", c)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, "kadm-configs")
	if err != nil || len(rcs) != 1 || rcs[0].Err != nil {
		t.Fatalf("DescribeTopicConfigs: %v %+v", err, rcs)
	}
	if len(rcs[0].Configs) != len(topicconfig.Keys()) {
		t.Errorf("described %d configs, the table has %d", len(rcs[0].Configs), len(topicconfig.Keys()))
	}
	for _, c := range rcs[0].Configs {
		v, override := set[c.Key]
		switch {
		case override && (c.MaybeValue() != *v || c.Source != kmsg.ConfigSourceDynamicTopicConfig):
			t.Errorf("%s: %q source %v, want %q DYNAMIC_TOPIC_CONFIG", c.Key, c.MaybeValue(), c.Source, *v)
		case !override && c.Source != kmsg.ConfigSourceDefaultConfig:
			t.Errorf("%s: source %v, want DEFAULT_CONFIG", c.Key, c.Source)
		}
	}
	bad, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"remote.storage.enable": kmsg.StringPtr("true")}, "kadm-tiered")
	if !errors.Is(err, kerr.InvalidConfig) || !strings.Contains(bad.ErrMessage, "tiered storage is not supported") {
		t.Errorf("remote.storage.enable=true: %v %q, want INVALID_CONFIG saying tiered storage is not supported", err, bad.ErrMessage)
	}
	brokers, err := adm.DescribeBrokerConfigs(ctx, 0)
	if err != nil || len(brokers) != 1 || brokers[0].Err != nil || len(brokers[0].Configs) != len(topicconfig.BrokerNames()) {
		t.Fatalf("DescribeBrokerConfigs: %v %+v", err, brokers)
	}
}
