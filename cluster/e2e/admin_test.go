package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/strand-io/strand/cluster"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka error codes the admin tests expect.
const (
	codeUnknownTopic      int16 = 3
	codeInvalidTopic      int16 = 17
	codeTopicExists       int16 = 36
	codeInvalidPartitions int16 = 37
	codeInvalidReplFactor int16 = 38
)

func codeName(c int16) string {
	if c == 0 {
		return "NONE"
	}
	return kerr.ErrorForCode(c).Error()
}

func wantCode(t testing.TB, what string, got, want int16) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: error %d (%s), want %d (%s)", what, got, codeName(got), want, codeName(want))
	}
}

// topicMeta returns the topic's error code and partition count from a
// Metadata request that does not auto-create.
func topicMeta(t testing.TB, cl *kgo.Client, topic string) (int16, int) {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, mt)
	req.AllowAutoTopicCreation = false
	resp, err := req.RequestWith(ctxFor(t, 10*time.Second), cl)
	if err != nil {
		t.Fatalf("metadata %s: %v", topic, err)
	}
	for _, tp := range resp.Topics {
		if tp.Topic != nil && *tp.Topic == topic {
			return tp.ErrorCode, len(tp.Partitions)
		}
	}
	t.Fatalf("metadata response lacks topic %s", topic)
	return 0, 0
}

func describeTopicConfig(t testing.TB, cl *kgo.Client, topic, key string) (value string, isDefault bool, code int16) {
	t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	r := kmsg.NewDescribeConfigsRequestResource()
	r.ResourceType, r.ResourceName, r.ConfigNames = kmsg.ConfigResourceTypeTopic, topic, []string{key}
	req.Resources = append(req.Resources, r)
	resp, err := req.RequestWith(ctxFor(t, 10*time.Second), cl)
	if err != nil {
		t.Fatalf("describe configs %s: %v", topic, err)
	}
	if len(resp.Resources) != 1 {
		t.Fatalf("describe configs %s: %d resources", topic, len(resp.Resources))
	}
	res := resp.Resources[0]
	if res.ErrorCode != 0 {
		return "", false, res.ErrorCode
	}
	for _, c := range res.Configs {
		if c.Name == key && c.Value != nil {
			return *c.Value, c.Source == kmsg.ConfigSourceDefaultConfig || c.IsDefault, 0
		}
	}
	t.Fatalf("describe configs %s: no %s in %+v", topic, key, res.Configs)
	return "", false, 0
}

func alterTopicConfig(t testing.TB, cl *kgo.Client, topic string, set map[string]string) int16 {
	t.Helper()
	req := kmsg.NewPtrAlterConfigsRequest()
	r := kmsg.NewAlterConfigsRequestResource()
	r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, topic
	for k, v := range set {
		c := kmsg.NewAlterConfigsRequestResourceConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		r.Configs = append(r.Configs, c)
	}
	req.Resources = append(req.Resources, r)
	resp, err := req.RequestWith(ctxFor(t, 10*time.Second), cl)
	if err != nil {
		t.Fatalf("alter configs %s: %v", topic, err)
	}
	return resp.Resources[0].ErrorCode
}

func createPartitions(t testing.TB, cl *kgo.Client, topic string, total int32) int16 {
	t.Helper()
	req := kmsg.NewPtrCreatePartitionsRequest()
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = topic, total
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 10000
	resp, err := req.RequestWith(ctxFor(t, 20*time.Second), cl)
	if err != nil {
		t.Fatalf("create partitions %s: %v", topic, err)
	}
	return resp.Topics[0].ErrorCode
}

func deleteTopic(t testing.TB, cl *kgo.Client, topic string) int16 {
	t.Helper()
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TopicNames = []string{topic}
	rt := kmsg.NewDeleteTopicsRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 10000
	resp, err := req.RequestWith(ctxFor(t, 20*time.Second), cl)
	if err != nil {
		t.Fatalf("delete topic %s: %v", topic, err)
	}
	return resp.Topics[0].ErrorCode
}

// TestTopicAdmin drives CreateTopics, CreatePartitions, DescribeConfigs,
// AlterConfigs and DeleteTopics through kmsg requests and checks the error
// codes Kafka gives for duplicates, bad arguments and unknown topics, and
// that topic changes and configs survive a restart.
func TestTopicAdmin(t *testing.T) {
	dir := testDataDir(t)
	n := startNode(t, dir, nil)
	cl := newClient(t, n.Addr())
	ctx := ctxFor(t, time.Minute)

	code, err := createTopicReq(ctx, cl, "orders", 3, map[string]string{"retention.ms": "86400000"})
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, "create orders", code, 0)
	code, _ = createTopicReq(ctx, cl, "orders", 3, nil)
	wantCode(t, "create orders again", code, codeTopicExists)
	code, _ = createTopicReq(ctx, cl, "bad/name", 1, nil)
	wantCode(t, "create bad/name", code, codeInvalidTopic)
	code, _ = createTopicReq(ctx, cl, "zero", 0, nil)
	wantCode(t, "create with 0 partitions", code, codeInvalidPartitions)

	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "rf3", 1, 3
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, "create with replication factor 3 on one broker", resp.Topics[0].ErrorCode, codeInvalidReplFactor)

	c, parts := topicMeta(t, cl, "orders")
	wantCode(t, "metadata orders", c, 0)
	if parts != 3 {
		t.Fatalf("orders has %d partitions, want 3", parts)
	}

	wantCode(t, "grow orders to 5", createPartitions(t, cl, "orders", 5), 0)
	if _, parts := topicMeta(t, cl, "orders"); parts != 5 {
		t.Fatalf("orders has %d partitions after CreatePartitions, want 5", parts)
	}
	wantCode(t, "shrink orders to 4", createPartitions(t, cl, "orders", 4), codeInvalidPartitions)
	wantCode(t, "grow an unknown topic", createPartitions(t, cl, "nope", 4), codeUnknownTopic)
	// A new partition takes writes.
	prod := produceClient(t, n.Addr())
	if err := prod.ProduceSync(ctx, &kgo.Record{Topic: "orders", Partition: 4, Key: recKey(4, 0), Value: recValue(4, 0)}).FirstErr(); err != nil {
		t.Fatalf("produce to the new partition: %v", err)
	}

	v, def, c := describeTopicConfig(t, cl, "orders", "retention.ms")
	if c != 0 || v != "86400000" || def {
		t.Fatalf("orders retention.ms = %q (default %v, error %s), want 86400000 set at creation", v, def, codeName(c))
	}
	if v, def, _ := describeTopicConfig(t, cl, "orders", "segment.bytes"); v != "1073741824" || !def {
		t.Fatalf("orders segment.bytes = %q (default %v), want the default 1073741824", v, def)
	}
	_, _, c = describeTopicConfig(t, cl, "nope", "retention.ms")
	wantCode(t, "describe configs of an unknown topic", c, codeUnknownTopic)
	wantCode(t, "alter orders retention.ms", alterTopicConfig(t, cl, "orders", map[string]string{"retention.ms": "3600000"}), 0)
	if v, def, _ := describeTopicConfig(t, cl, "orders", "retention.ms"); v != "3600000" || def {
		t.Fatalf("orders retention.ms = %q (default %v) after AlterConfigs, want 3600000", v, def)
	}
	wantCode(t, "alter configs of an unknown topic", alterTopicConfig(t, cl, "nope", map[string]string{"retention.ms": "1"}), codeUnknownTopic)

	wantCode(t, "create doomed", mustCreate(t, cl, "doomed", 2), 0)
	wantCode(t, "delete doomed", deleteTopic(t, cl, "doomed"), 0)
	wantCode(t, "delete doomed again", deleteTopic(t, cl, "doomed"), codeUnknownTopic)
	if c, _ := topicMeta(t, cl, "doomed"); c != codeUnknownTopic {
		t.Fatalf("metadata of a deleted topic: %s, want UNKNOWN_TOPIC_OR_PARTITION", codeName(c))
	}

	// Everything above survives a restart.
	cl.Close()
	prod.Close()
	closeNode(t, n)
	n = startNode(t, dir, nil)
	cl = newClient(t, n.Addr())
	if c, parts := topicMeta(t, cl, "orders"); c != 0 || parts != 5 {
		t.Fatalf("after restart orders: %s, %d partitions; want 5", codeName(c), parts)
	}
	if v, _, _ := describeTopicConfig(t, cl, "orders", "retention.ms"); v != "3600000" {
		t.Fatalf("after restart orders retention.ms = %q, want 3600000", v)
	}
	if c, _ := topicMeta(t, cl, "doomed"); c != codeUnknownTopic {
		t.Fatalf("after restart the deleted topic is back: %s", codeName(c))
	}
	verifyTopic(t, n.Addr(), "orders", []int64{0, 0, 0, 0, 1}, time.Minute)
	// A topic re-created under a deleted name starts empty.
	wantCode(t, "re-create doomed", mustCreate(t, cl, "doomed", 2), 0)
	if hw := endOffsets(t, newClient(t, n.Addr()), "doomed", 2); hw[0] != 0 || hw[1] != 0 {
		t.Fatalf("re-created topic has end offsets %v, want empty", hw)
	}
}

func mustCreate(t testing.TB, cl *kgo.Client, topic string, parts int32) int16 {
	t.Helper()
	code, err := createTopicReq(ctxFor(t, 20*time.Second), cl, topic, parts, nil)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// TestAutoCreateTopics: with auto-creation on (the default) a produce to an
// unknown topic creates it; with `strand serve --auto-create-topics=false`
// Metadata and Produce for it answer UNKNOWN_TOPIC_OR_PARTITION (3).
func TestAutoCreateTopics(t *testing.T) {
	t.Run("on", func(t *testing.T) {
		n := startNode(t, testDataDir(t), func(c *cluster.Config) { c.DefaultPartitions = 2 })
		cl := newClient(t, n.Addr(), kgo.DefaultProduceTopic("fresh"), kgo.AllowAutoTopicCreation())
		ctx := ctxFor(t, 30*time.Second)
		if err := cl.ProduceSync(ctx, kgo.StringRecord("one"), kgo.StringRecord("two")).FirstErr(); err != nil {
			t.Fatalf("produce to an unknown topic with auto-creation on: %v", err)
		}
		if c, parts := topicMeta(t, cl, "fresh"); c != 0 || parts != 2 {
			t.Fatalf("auto-created topic: %s, %d partitions; want 2 (DefaultPartitions)", codeName(c), parts)
		}
	})
	t.Run("off", func(t *testing.T) {
		p := startProc(t, testDataDir(t), "--auto-create-topics=false")
		r := dialRaw(t, p.addr)
		md := kmsg.NewPtrMetadataRequest()
		md.Version = 4
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr("ghost")
		md.Topics = append(md.Topics, mt)
		md.AllowAutoTopicCreation = true
		resp, err := r.roundTrip(md, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		mr := resp.(*kmsg.MetadataResponse)
		if len(mr.Topics) != 1 {
			t.Fatalf("metadata: %d topics", len(mr.Topics))
		}
		wantCode(t, "metadata for an unknown topic (auto-create off)", mr.Topics[0].ErrorCode, codeUnknownTopic)

		pr := kmsg.NewPtrProduceRequest()
		pr.Version = 7
		pr.Acks, pr.TimeoutMillis = -1, 5000
		pt := kmsg.NewProduceRequestTopic()
		pt.Topic = "ghost"
		pp := kmsg.NewProduceRequestTopicPartition()
		pp.Partition, pp.Records = 0, makeBatch([]byte("boo"))
		pt.Partitions = append(pt.Partitions, pp)
		pr.Topics = append(pr.Topics, pt)
		resp, err = r.roundTrip(pr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		prr := resp.(*kmsg.ProduceResponse)
		if len(prr.Topics) != 1 || len(prr.Topics[0].Partitions) != 1 {
			t.Fatalf("produce response: %+v", prr.Topics)
		}
		wantCode(t, "produce to an unknown topic (auto-create off)", prr.Topics[0].Partitions[0].ErrorCode, codeUnknownTopic)
		if c, _ := topicMeta(t, newClient(t, p.addr), "ghost"); c != codeUnknownTopic {
			t.Fatalf("the topic was created anyway: %s", codeName(c))
		}
	})
}

// metadataPlacement reads the data dir's metadata.json and returns each
// topic's partition -> core placement and id.
func metadataPlacement(t testing.TB, dir string) map[string]cluster.Topic {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Topics []cluster.Topic `json:"topics"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("metadata.json: %v", err)
	}
	out := map[string]cluster.Topic{}
	for _, tp := range f.Topics {
		out[tp.Name] = tp
	}
	return out
}

// TestRestartKeepsPlacement: an 8-partition topic placed over the cores
// comes back on the same cores after a restart (metadata.json records the
// placement and it is unchanged), and every record reads back.
func TestRestartKeepsPlacement(t *testing.T) {
	const parts, perPart = 8, 2000
	dir := testDataDir(t)
	n := startNode(t, dir, nil)
	cl := produceClient(t, n.Addr())
	createTopic(t, cl, "placed", parts)
	produceSeq(t, cl, "placed", parts, perPart, 2)
	cl.Close()

	before, ok := metadataPlacement(t, dir)["placed"]
	if !ok || len(before.Cores) != parts {
		t.Fatalf("metadata.json placement of placed: %+v", before)
	}
	used := map[int]bool{}
	for _, c := range before.Cores {
		used[int(c)] = true
	}
	if want := min(runtime.NumCPU(), parts); len(used) < want {
		t.Fatalf("8 partitions placed on %d cores (%v); want them spread over %d", len(used), before.Cores, want)
	}
	t.Logf("placement before restart: %v", before.Cores)

	closeNode(t, n)
	n = startNode(t, dir, nil)
	after := metadataPlacement(t, dir)["placed"]
	if !slices.Equal(after.Cores, before.Cores) || after.ID != before.ID {
		t.Fatalf("placement changed across restart: %v (id %x) -> %v (id %x)", before.Cores, before.ID, after.Cores, after.ID)
	}
	verifyTopic(t, n.Addr(), "placed", counts(parts, perPart), time.Minute)
}
