package e2e

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// saramaConfig is a sarama client of the newest protocol version sarama
// knows, so it picks each API's highest version both sides support.
func saramaConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.MaxVersion
	c.ClientID = "strand-e2e-sarama"
	c.Producer.Return.Successes = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Partitioner = sarama.NewManualPartitioner
	c.Admin.Timeout = 20 * time.Second
	c.Metadata.Retry.Backoff = 50 * time.Millisecond
	return c
}

// TestSaramaAdminAPIs drives the admin APIs tools call through a second
// client library, sarama (whose version negotiation, request shapes and
// error handling are its own): CreateTopics with configs and a refused
// key, DescribeConfigs of a topic and of the broker, AlterConfigs,
// DeleteRecords and the offsets it moves, ListOffsets by time, and
// DescribeLogDirs, each with its error path.
func TestSaramaAdminAPIs(t *testing.T) {
	n := startNode(t, testDataDir(t), nil)
	cfg := saramaConfig()
	client, err := sarama.NewClient([]string{n.Addr()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	const topic = "sarama-admin"
	str := func(s string) *string { return &s }

	// CreateTopics: a config Kafka does not know fails the topic, naming
	// the key; real configs are kept and described back as set.
	err = admin.CreateTopic("sarama-bad", &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"no.such.config": str("1")}}, false)
	var te *sarama.TopicError
	if !errors.As(err, &te) || te.Err != sarama.ErrInvalidConfig || te.ErrMsg == nil || !strings.Contains(*te.ErrMsg, "no.such.config") {
		t.Fatalf("create with an unknown config: %v, want INVALID_CONFIG naming the key", err)
	}
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"retention.ms": str("3600000"), "min.insync.replicas": str("1")}}, false); err != nil {
		t.Fatalf("create: %v", err)
	}
	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic, ConfigNames: []string{"retention.ms", "cleanup.policy"}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]sarama.ConfigEntry{}
	for _, e := range entries {
		got[e.Name] = e
	}
	if e := got["retention.ms"]; e.Value != "3600000" || e.Source != sarama.SourceTopic {
		t.Errorf("retention.ms described as %+v, want 3600000 from the topic", e)
	}
	if e := got["cleanup.policy"]; e.Value != "delete" || e.Source != sarama.SourceDefault {
		t.Errorf("cleanup.policy described as %+v, want the default delete", e)
	}

	// AlterConfigs replaces the topic's configs; a bad value is refused
	// and changes nothing.
	if err := admin.AlterConfig(sarama.TopicResource, topic, map[string]*string{"retention.ms": str("not-a-number")}, false); err == nil {
		t.Error("AlterConfigs accepted retention.ms=not-a-number")
	}
	if err := admin.AlterConfig(sarama.TopicResource, topic, map[string]*string{"retention.ms": str("7200000")}, false); err != nil {
		t.Fatalf("alter: %v", err)
	}
	entries, err = admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic, ConfigNames: []string{"retention.ms", "min.insync.replicas"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name == "retention.ms" && e.Value != "7200000" || e.Name == "min.insync.replicas" && e.Source != sarama.SourceDefault {
			t.Errorf("after AlterConfigs: %+v", e)
		}
	}

	// The broker's own configs, by its id.
	brokers := client.Brokers()
	if len(brokers) != 1 {
		t.Fatalf("%d brokers in metadata", len(brokers))
	}
	id := brokers[0].ID()
	entries, err = admin.DescribeConfig(sarama.ConfigResource{Type: sarama.BrokerResource, Name: fmt.Sprint(id)})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, e := range entries {
		names[e.Name] = e.Value
	}
	for _, k := range []string{"log.retention.ms", "log.segment.bytes", "num.partitions", "log.dirs"} {
		if _, ok := names[k]; !ok {
			t.Errorf("broker config %s not described (%d entries)", k, len(entries))
		}
	}
	if _, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.BrokerResource, Name: fmt.Sprint(id + 7)}); err == nil {
		t.Error("DescribeConfigs of a broker that does not exist answered")
	}

	// 100 records to partition 0, then DeleteRecords below 40.
	prod, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	before := time.Now()
	for i := range 100 {
		if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.StringEncoder(fmt.Sprint("v", i))}); err != nil {
			t.Fatal(err)
		}
	}
	if off, err := client.GetOffset(topic, 0, sarama.OffsetNewest); err != nil || off != 100 {
		t.Fatalf("newest offset %d, %v; want 100", off, err)
	}
	if off, err := client.GetOffset(topic, 0, before.Add(-time.Hour).UnixMilli()); err != nil || off != 0 {
		t.Errorf("offset for a time before every record: %d, %v; want 0", off, err)
	}
	if off, err := client.GetOffset(topic, 0, time.Now().Add(time.Hour).UnixMilli()); err != nil || off != -1 {
		t.Errorf("offset for a time after every record: %d, %v; want -1", off, err)
	}
	// -3 is KIP-734's max-timestamp spec, defined from ListOffsets v7;
	// sarama sends v6 at most, which Kafka answers with
	// UNSUPPORTED_VERSION for that partition, and so must Strand.
	if off, err := client.GetOffset(topic, 0, -3); !errors.Is(err, sarama.ErrUnsupportedVersion) {
		t.Errorf("max-timestamp offset through ListOffsets v6: %d, %v; want %v", off, err, sarama.ErrUnsupportedVersion)
	}
	if err := admin.DeleteRecords(topic, map[int32]int64{0: 40}); err != nil {
		t.Fatalf("delete records: %v", err)
	}
	if off, err := client.GetOffset(topic, 0, sarama.OffsetOldest); err != nil || off != 40 {
		t.Fatalf("oldest offset after DeleteRecords(40): %d, %v", off, err)
	}
	// Past the high watermark: OFFSET_OUT_OF_RANGE, and nothing moves.
	if err := admin.DeleteRecords(topic, map[int32]int64{0: 500}); err == nil || !strings.Contains(err.Error(), sarama.ErrOffsetOutOfRange.Error()) {
		t.Errorf("DeleteRecords past the end: %v, want %v", err, sarama.ErrOffsetOutOfRange)
	}
	if err := admin.DeleteRecords("no-such-topic", map[int32]int64{0: 1}); err == nil {
		t.Error("DeleteRecords on a missing topic answered success")
	}
	if off, err := client.GetOffset(topic, 0, sarama.OffsetOldest); err != nil || off != 40 {
		t.Fatalf("oldest offset after refused DeleteRecords: %d, %v", off, err)
	}
	// A consumer from the oldest offset starts at 40.
	cons, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	pc, err := cons.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-pc.Messages():
		if m.Offset != 40 || string(m.Value) != "v40" {
			t.Errorf("first record after DeleteRecords: offset %d value %q", m.Offset, m.Value)
		}
	case err := <-pc.Errors():
		t.Fatal(err)
	case <-time.After(20 * time.Second):
		t.Fatal("no record from the oldest offset")
	}
	pc.Close()

	// DescribeLogDirs: the data dir, with both partitions and the
	// written one's size.
	dirs, err := admin.DescribeLogDirs([]int32{id})
	if err != nil {
		t.Fatal(err)
	}
	var sizes map[int32]int64
	for _, d := range dirs[id] {
		if d.ErrorCode != sarama.ErrNoError {
			t.Errorf("log dir %s: %v", d.Path, d.ErrorCode)
		}
		for _, tp := range d.Topics {
			if tp.Topic == topic {
				sizes = map[int32]int64{}
				for _, p := range tp.Partitions {
					sizes[p.PartitionID] = p.Size
				}
			}
		}
	}
	t.Logf("sarama %s: %d broker configs; log dir sizes of %s: %v", cfg.Version, len(names), topic, sizes)
	if len(sizes) != 2 || sizes[0] <= 0 || sizes[1] != 0 {
		t.Errorf("DescribeLogDirs sizes of %s: %v, want partition 0 non-empty and 1 empty", topic, sizes)
	}
}
