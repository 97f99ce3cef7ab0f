package e2e

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func sptr(s string) *string { return &s }

// kadmConfig returns key's value and source in one described resource.
func kadmConfig(t testing.TB, rcs kadm.ResourceConfigs, err error, key string) (string, kmsg.ConfigSource) {
	t.Helper()
	if err != nil || len(rcs) != 1 || rcs[0].Err != nil {
		t.Fatalf("describe: %v %+v", err, rcs)
	}
	for _, c := range rcs[0].Configs {
		if c.Key == key {
			return c.MaybeValue(), c.Source
		}
	}
	t.Fatalf("describe %s: no %s", rcs[0].Name, key)
	return "", 0
}

// alterErr is the one resource's outcome of an alter call.
func alterErr(t testing.TB, rs kadm.AlterConfigsResponses, err error) (error, string) {
	t.Helper()
	if err != nil || len(rs) != 1 {
		t.Fatalf("alter: %v %+v", err, rs)
	}
	return rs[0].Err, rs[0].ErrMessage
}

// TestIncrementalAlterConfigsKadm drives IncrementalAlterConfigs through
// franz-go's kadm: SET, APPEND, SUBTRACT and DELETE on a topic with
// Kafka's rules, validate_only, the error paths, and dynamic broker
// configs per broker and cluster-wide, which topics then inherit.
func TestIncrementalAlterConfigsKadm(t *testing.T) {
	n := startNode(t, testDataDir(t), nil)
	cl := newClient(t, n.Addr())
	adm := kadm.NewClient(cl)
	ctx := ctxFor(t, 60*time.Second)
	createTopic(t, cl, "iac", 1)
	topicCfg := func(key string) (string, kmsg.ConfigSource) {
		rcs, err := adm.DescribeTopicConfigs(ctx, "iac")
		return kadmConfig(t, rcs, err, key)
	}
	brokerCfg := func(key string, brokers ...int32) (string, kmsg.ConfigSource) {
		rcs, err := adm.DescribeBrokerConfigs(ctx, brokers...)
		return kadmConfig(t, rcs, err, key)
	}

	rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "retention.ms", Value: sptr("3600000")},
		{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: sptr("compact")},
	}, "iac")
	if e, msg := alterErr(t, rs, err); e != nil {
		t.Fatalf("set and append: %v %s", e, msg)
	}
	if v, src := topicCfg("cleanup.policy"); v != "delete,compact" || src != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("cleanup.policy after APPEND compact: %q %v", v, src)
	}
	rs, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SubtractConfig, Name: "cleanup.policy", Value: sptr("delete")}}, "iac")
	if e, msg := alterErr(t, rs, err); e != nil {
		t.Fatalf("subtract: %v %s", e, msg)
	}
	if v, _ := topicCfg("cleanup.policy"); v != "compact" {
		t.Fatalf("cleanup.policy after SUBTRACT delete: %q", v)
	}

	for _, tc := range []struct {
		what string
		cfg  kadm.AlterConfig
		want error
		msg  string
	}{
		{"unknown key", kadm.AlterConfig{Name: "retention.mss", Value: sptr("1")}, kerr.InvalidConfig, `"retention.mss"`},
		{"bad value", kadm.AlterConfig{Name: "retention.ms", Value: sptr("-7")}, kerr.InvalidConfig, "retention.ms"},
		{"append to a long", kadm.AlterConfig{Op: kadm.AppendConfig, Name: "retention.ms", Value: sptr("1")}, kerr.InvalidConfig, "append is not allowed"},
		{"bad list element", kadm.AlterConfig{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: sptr("shred")}, kerr.InvalidConfig, "cleanup.policy"},
	} {
		rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{tc.cfg, {Name: "segment.ms", Value: sptr("1000")}}, "iac")
		if e, msg := alterErr(t, rs, err); !errors.Is(e, tc.want) || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: %v %q, want %v naming %q", tc.what, e, msg, tc.want, tc.msg)
		}
	}
	if v, src := topicCfg("segment.ms"); src != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("a refused resource changed segment.ms to %q", v)
	}
	rs, err = adm.AlterTopicConfigs(ctx, nil, "no-such-topic")
	if e, _ := alterErr(t, rs, err); !errors.Is(e, kerr.UnknownTopicOrPartition) {
		t.Errorf("unknown topic: %v", e)
	}

	// validate_only checks everything and changes nothing.
	rs, err = adm.ValidateAlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "retention.ms"}}, "iac")
	if e, msg := alterErr(t, rs, err); e != nil {
		t.Fatalf("validate delete: %v %s", e, msg)
	}
	rs, err = adm.ValidateAlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: sptr("x")}}, "iac")
	if e, _ := alterErr(t, rs, err); !errors.Is(e, kerr.InvalidConfig) {
		t.Errorf("validate a bad value: %v", e)
	}
	if v, _ := topicCfg("retention.ms"); v != "3600000" {
		t.Fatalf("validate_only changed retention.ms to %q", v)
	}
	rs, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "retention.ms"}}, "iac")
	if e, msg := alterErr(t, rs, err); e != nil {
		t.Fatalf("delete: %v %s", e, msg)
	}

	// Dynamic broker configs: this broker's, and the cluster default,
	// which a topic without its own override inherits.
	rs, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: "log.retention.ms", Value: sptr("7200000")}})
	if e, msg := alterErr(t, rs, err); e != nil {
		t.Fatalf("cluster default: %v %s", e, msg)
	}
	if v, src := topicCfg("retention.ms"); v != "7200000" || src != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Fatalf("topic retention.ms after the cluster default: %q %v", v, src)
	}
	rs, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: "log.retention.ms", Value: sptr("5400000")}}, 0)
	if e, msg := alterErr(t, rs, err); e != nil {
		t.Fatalf("broker 0: %v %s", e, msg)
	}
	if v, src := brokerCfg("log.retention.ms", 0); v != "5400000" || src != kmsg.ConfigSourceDynamicBrokerConfig {
		t.Fatalf("broker 0 log.retention.ms: %q %v", v, src)
	}
	if v, src := brokerCfg("log.retention.ms"); v != "7200000" || src != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Fatalf("cluster default log.retention.ms: %q %v", v, src)
	}
	if v, src := topicCfg("retention.ms"); v != "5400000" || src != kmsg.ConfigSourceDynamicBrokerConfig {
		t.Fatalf("topic retention.ms after broker 0's: %q %v", v, src)
	}
	// The synonyms say where each level's value comes from, in Kafka's
	// order: this broker's, the cluster default, the default.
	rcs, err := adm.DescribeTopicConfigs(ctx, "iac")
	if err != nil || len(rcs) != 1 {
		t.Fatalf("describe: %v", err)
	}
	var syns []string
	for _, c := range rcs[0].Configs {
		if c.Key == "retention.ms" {
			for _, s := range c.Synonyms {
				syns = append(syns, s.Source.String()+" "+s.Key+"="+ptrStr(s.Value))
			}
		}
	}
	if want := []string{"DYNAMIC_BROKER_CONFIG log.retention.ms=5400000", "DYNAMIC_DEFAULT_BROKER_CONFIG log.retention.ms=7200000",
		"DEFAULT_CONFIG log.retention.ms=604800000"}; !slices.Equal(syns, want) {
		t.Errorf("retention.ms synonyms %q, want %q", syns, want)
	}
	for _, tc := range []struct {
		what string
		cfg  kadm.AlterConfig
		want error
		msg  string
	}{
		{"read-only key", kadm.AlterConfig{Name: "log.dirs", Value: sptr("/tmp")}, kerr.InvalidRequest, "cannot be updated dynamically"},
		{"unknown key", kadm.AlterConfig{Name: "log.retention.msec", Value: sptr("1")}, kerr.InvalidConfig, `"log.retention.msec"`},
		{"bad value", kadm.AlterConfig{Name: "log.segment.bytes", Value: sptr("ten")}, kerr.InvalidRequest, "log.segment.bytes"},
	} {
		rs, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{tc.cfg}, 0)
		if e, msg := alterErr(t, rs, err); !errors.Is(e, tc.want) || !strings.Contains(msg, tc.msg) {
			t.Errorf("broker %s: %v %q, want %v naming %q", tc.what, e, msg, tc.want, tc.msg)
		}
	}
	rs, err = adm.ValidateAlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: "log.retention.ms", Value: sptr("1")}}, 0)
	if e, _ := alterErr(t, rs, err); e != nil {
		t.Fatalf("validate broker: %v", e)
	}
	if v, _ := brokerCfg("log.retention.ms", 0); v != "5400000" {
		t.Fatalf("validate_only changed broker 0's log.retention.ms to %q", v)
	}
}

// TestBrokerConfigReachesLogs: a dynamic broker default changes what the
// partition logs do, for topics that exist already and ones created
// after, and a topic override still wins. LogAppendTime is the probe: a
// record produced with an ancient timestamp comes back with the broker's.
func TestBrokerConfigReachesLogs(t *testing.T) {
	n := startNode(t, testDataDir(t), nil)
	cl := produceClient(t, n.Addr())
	adm := kadm.NewClient(cl)
	ctx := ctxFor(t, 60*time.Second)
	createTopic(t, cl, "before", 1)
	if rt := createTopicFull(t, cl, "pinned", map[string]string{"message.timestamp.type": "CreateTime"}); rt.ErrorCode != 0 {
		t.Fatalf("create pinned: %s", codeName(rt.ErrorCode))
	}
	rs, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: "log.message.timestamp.type", Value: sptr("LogAppendTime")}})
	if e, msg := alterErr(t, rs, err); e != nil {
		t.Fatalf("alter: %v %s", e, msg)
	}
	createTopic(t, cl, "after", 1)
	ancient := time.UnixMilli(1_000_000)
	start := time.Now().Add(-time.Minute)
	for _, topic := range []string{"before", "after", "pinned"} {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v"), Timestamp: ancient}).FirstErr(); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
		rec := consumeOne(t, n.Addr(), topic)
		if stamped := !rec.Timestamp.Before(start); stamped != (topic != "pinned") {
			t.Errorf("%s: record timestamp %v (produced with %v)", topic, rec.Timestamp, ancient)
		}
	}
}

func consumeOne(t testing.TB, addr, topic string) *kgo.Record {
	t.Helper()
	c := newClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx := ctxFor(t, 30*time.Second)
	for {
		fs := c.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consume %s: %v", topic, ctx.Err())
		}
		if recs := fs.Records(); len(recs) > 0 {
			return recs[0]
		}
	}
}

// TestBrokerConfigsSurviveRestart: dynamic broker configs are in the
// metadata, so a restarted broker reports them with their sources and
// its topics still inherit them.
func TestBrokerConfigsSurviveRestart(t *testing.T) {
	dir := testDataDir(t)
	n := startNode(t, dir, nil)
	cl := newClient(t, n.Addr())
	createTopic(t, cl, "kept", 1)
	adm := kadm.NewClient(cl)
	ctx := ctxFor(t, 60*time.Second)
	rs, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: "log.segment.bytes", Value: sptr("2097152")}, {Name: "log.cleanup.policy", Value: sptr("compact,delete")}})
	if e, msg := alterErr(t, rs, err); e != nil {
		t.Fatalf("cluster default: %v %s", e, msg)
	}
	rs, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: "log.retention.hours", Value: sptr("3")}}, 0)
	if e, msg := alterErr(t, rs, err); e != nil {
		t.Fatalf("broker 0: %v %s", e, msg)
	}
	cl.Close()
	closeNode(t, n)

	n = startNode(t, dir, nil)
	adm = kadm.NewClient(newClient(t, n.Addr()))
	rcs, err := adm.DescribeBrokerConfigs(ctx, 0)
	if v, src := kadmConfig(t, rcs, err, "log.retention.hours"); v != "3" || src != kmsg.ConfigSourceDynamicBrokerConfig {
		t.Errorf("after restart, log.retention.hours %q %v", v, src)
	}
	if v, src := kadmConfig(t, rcs, err, "log.segment.bytes"); v != "2097152" || src != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Errorf("after restart, log.segment.bytes %q %v", v, src)
	}
	rcs, err = adm.DescribeTopicConfigs(ctx, "kept")
	for key, want := range map[string]string{"retention.ms": "10800000", "segment.bytes": "2097152", "cleanup.policy": "compact,delete"} {
		if v, _ := kadmConfig(t, rcs, err, key); v != want {
			t.Errorf("after restart, topic %s = %q, want %q inherited", key, v, want)
		}
	}
}

// TestIncrementalAlterConfigsSarama: the same API through sarama's
// ClusterAdmin, which negotiates its own versions (v1, flexible).
func TestIncrementalAlterConfigsSarama(t *testing.T) {
	n := startNode(t, testDataDir(t), nil)
	createTopic(t, newClient(t, n.Addr()), "srm", 1)
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	cfg.Admin.Timeout = 20 * time.Second
	adm, err := sarama.NewClusterAdmin([]string{n.Addr()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	set := func(typ sarama.ConfigResourceType, name string, validate bool, entries map[string]sarama.IncrementalAlterConfigsEntry) error {
		return adm.IncrementalAlterConfig(typ, name, entries, validate)
	}
	describe := func(typ sarama.ConfigResourceType, name, key string) sarama.ConfigEntry {
		es, err := adm.DescribeConfig(sarama.ConfigResource{Type: typ, Name: name, ConfigNames: []string{key}})
		if err != nil || len(es) != 1 {
			t.Fatalf("describe %s %s: %v %+v", name, key, err, es)
		}
		return es[0]
	}
	op := func(o sarama.IncrementalAlterConfigsOperation, v *string) sarama.IncrementalAlterConfigsEntry {
		return sarama.IncrementalAlterConfigsEntry{Operation: o, Value: v}
	}
	if err := set(sarama.TopicResource, "srm", false, map[string]sarama.IncrementalAlterConfigsEntry{
		"segment.ms":     op(sarama.IncrementalAlterConfigsOperationSet, sptr("60000")),
		"cleanup.policy": op(sarama.IncrementalAlterConfigsOperationAppend, sptr("compact")),
	}); err != nil {
		t.Fatalf("topic set+append: %v", err)
	}
	if e := describe(sarama.TopicResource, "srm", "cleanup.policy"); e.Value != "delete,compact" || e.Source != sarama.SourceTopic {
		t.Fatalf("cleanup.policy: %+v", e)
	}
	if err := set(sarama.TopicResource, "srm", true, map[string]sarama.IncrementalAlterConfigsEntry{
		"segment.ms": op(sarama.IncrementalAlterConfigsOperationDelete, nil),
	}); err != nil {
		t.Fatalf("validate delete: %v", err)
	}
	if e := describe(sarama.TopicResource, "srm", "segment.ms"); e.Value != "60000" {
		t.Fatalf("validate_only changed segment.ms: %+v", e)
	}
	err = set(sarama.TopicResource, "srm", false, map[string]sarama.IncrementalAlterConfigsEntry{"segment.mss": op(sarama.IncrementalAlterConfigsOperationSet, sptr("1"))})
	if !errors.Is(err, sarama.ErrInvalidConfig) || !strings.Contains(err.Error(), "segment.mss") {
		t.Errorf("unknown key: %v", err)
	}
	err = set(sarama.TopicResource, "srm", false, map[string]sarama.IncrementalAlterConfigsEntry{"segment.ms": op(sarama.IncrementalAlterConfigsOperationSet, sptr("0"))})
	if !errors.Is(err, sarama.ErrInvalidConfig) || !strings.Contains(err.Error(), "segment.ms") {
		t.Errorf("bad value: %v", err)
	}

	if err := set(sarama.BrokerResource, "0", false, map[string]sarama.IncrementalAlterConfigsEntry{
		"log.roll.ms": op(sarama.IncrementalAlterConfigsOperationSet, sptr("120000")),
	}); err != nil {
		t.Fatalf("broker set: %v", err)
	}
	if e := describe(sarama.BrokerResource, "0", "log.roll.ms"); e.Value != "120000" || e.Source != sarama.SourceDynamicBroker || e.ReadOnly {
		t.Fatalf("broker log.roll.ms: %+v", e)
	}
	err = set(sarama.BrokerResource, "0", false, map[string]sarama.IncrementalAlterConfigsEntry{"node.id": op(sarama.IncrementalAlterConfigsOperationSet, sptr("4"))})
	if !errors.Is(err, sarama.ErrInvalidRequest) || !strings.Contains(err.Error(), "node.id") {
		t.Errorf("read-only broker key: %v", err)
	}
	err = set(sarama.BrokerResource, "0", true, map[string]sarama.IncrementalAlterConfigsEntry{"log.roll.ms": op(sarama.IncrementalAlterConfigsOperationDelete, nil)})
	if err != nil {
		t.Fatalf("validate broker delete: %v", err)
	}
	if e := describe(sarama.BrokerResource, "0", "log.roll.ms"); e.Value != "120000" {
		t.Fatalf("validate_only changed log.roll.ms: %+v", e)
	}
	// The old AlterConfigs replaces a broker's dynamic configs.
	if err := adm.AlterConfig(sarama.BrokerResource, "0", map[string]*string{"log.retention.bytes": sptr("1073741824")}, false); err != nil {
		t.Fatalf("AlterConfigs broker: %v", err)
	}
	if e := describe(sarama.BrokerResource, "0", "log.roll.ms"); e.Source != sarama.SourceDefault {
		t.Errorf("AlterConfigs kept log.roll.ms: %+v", e)
	}
	if e := describe(sarama.BrokerResource, "0", "log.retention.bytes"); e.Value != "1073741824" || e.Source != sarama.SourceDynamicBroker {
		t.Errorf("AlterConfigs log.retention.bytes: %+v", e)
	}
}

// TestTopicConfigsCheckedWithBrokerDefaults: the rule that spans keys
// (min.compaction.lag.ms not above max.compaction.lag.ms) is checked on a
// topic's overrides merged with what it inherits, as Kafka merges the
// broker's log configs, by CreateTopics, AlterConfigs and
// IncrementalAlterConfigs; and a broker change that would break it for a
// topic without overrides is refused.
func TestTopicConfigsCheckedWithBrokerDefaults(t *testing.T) {
	n := startNode(t, testDataDir(t), nil)
	cl := newClient(t, n.Addr())
	adm := kadm.NewClient(cl)
	ctx := ctxFor(t, 60*time.Second)
	createTopic(t, cl, "lagged", 1)
	rs, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: "log.cleaner.max.compaction.lag.ms", Value: sptr("5000")}})
	if e, msg := alterErr(t, rs, err); e != nil {
		t.Fatalf("broker default: %v %s", e, msg)
	}
	tooHigh := map[string]*string{"min.compaction.lag.ms": sptr("10000")}
	if _, err := adm.CreateTopic(ctx, 1, 1, tooHigh, "refused"); !errors.Is(err, kerr.InvalidConfig) {
		t.Errorf("CreateTopics with min lag above the inherited max: %v", err)
	}
	rs, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "min.compaction.lag.ms", Value: sptr("10000")}}, "lagged")
	if e, _ := alterErr(t, rs, err); !errors.Is(e, kerr.InvalidConfig) {
		t.Errorf("IncrementalAlterConfigs with min lag above the inherited max: %v", e)
	}
	rs, err = adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "min.compaction.lag.ms", Value: sptr("10000")}}, "lagged")
	if e, _ := alterErr(t, rs, err); !errors.Is(e, kerr.InvalidConfig) {
		t.Errorf("AlterConfigs with min lag above the inherited max: %v", e)
	}
	rs, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: "log.cleaner.min.compaction.lag.ms", Value: sptr("10000")}}, 0)
	if e, _ := alterErr(t, rs, err); !errors.Is(e, kerr.InvalidRequest) {
		t.Errorf("broker min lag above the cluster's max: %v", e)
	}
	// A topic's own max lifts the inherited one.
	ok := map[string]*string{"min.compaction.lag.ms": sptr("10000"), "max.compaction.lag.ms": sptr("20000")}
	if _, err := adm.CreateTopic(ctx, 1, 1, ok, "own-max"); err != nil {
		t.Errorf("CreateTopics with its own max: %v", err)
	}
	createTopic(t, cl, "after", 1)
}
