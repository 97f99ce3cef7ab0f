package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKeylessRecordToCompactedTopic: as in Kafka, a record without a key
// produced to a compacted topic is refused with INVALID_RECORD and nothing
// of its batch is stored, whether the topic compacts by its own override
// or by the broker's dynamic default; kcat (librdkafka) sees the same.
func TestKeylessRecordToCompactedTopic(t *testing.T) {
	n := startNode(t, testDataDir(t), nil)
	cl := produceClient(t, n.Addr(), kgo.DisableIdempotentWrite())
	ctx := ctxFor(t, 60*time.Second)
	if rt := createTopicFull(t, cl, "compacted", map[string]string{"cleanup.policy": "compact"}); rt.ErrorCode != 0 {
		t.Fatalf("create: %s", codeName(rt.ErrorCode))
	}
	createTopic(t, cl, "plain", 1)
	produce := func(topic string, key []byte) error {
		return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: key, Value: []byte("v")}).FirstErr()
	}
	err := produce("compacted", nil)
	if !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("keyless record to a compacted topic: %v, want INVALID_RECORD", err)
	}
	if err := produce("compacted", []byte("k")); err != nil {
		t.Fatalf("keyed record: %v", err)
	}
	if end := endOffsets(t, cl, "compacted", 1)[0]; end != 1 {
		t.Fatalf("end offset %d after one refused and one stored record, want 1", end)
	}
	if err := produce("plain", nil); err != nil {
		t.Fatalf("keyless record to a delete topic: %v", err)
	}

	// The broker's dynamic default reaches a topic without an override.
	rs, err := kadm.NewClient(cl).AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: "log.cleanup.policy", Value: sptr("compact")}})
	if e, msg := alterErr(t, rs, err); e != nil {
		t.Fatalf("alter: %v %s", e, msg)
	}
	if err := produce("plain", nil); !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("keyless record once the broker default compacts: %v", err)
	}

	kcat := kcatPath(t)
	file := writeTemp(t, "no key here\n")
	kctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(kctx, kcat, "-b", n.Addr(), "-P", "-t", "compacted", "-X", "acks=all", "-l", file)
	cmd.Stderr = &stderr
	_ = cmd.Run() // kcat's exit status for a failed delivery differs between versions
	if !strings.Contains(stderr.String(), "Broker failed to validate record") {
		t.Errorf("kcat -P of a keyless line: stderr %q, want librdkafka's text for INVALID_RECORD", stderr.String())
	}
	if end := endOffsets(t, cl, "compacted", 1)[0]; end != 1 {
		t.Fatalf("end offset %d after kcat's keyless line, want 1", end)
	}
	runKcat(t, kcat, 30*time.Second, "-b", n.Addr(), "-P", "-t", "compacted", "-X", "acks=all", "-K", ":", "-l", writeTemp(t, "k2:with a key\n"))
	if end := endOffsets(t, cl, "compacted", 1)[0]; end != 2 {
		t.Fatalf("end offset %d after kcat's keyed line, want 2", end)
	}
}

func writeTemp(t testing.TB, s string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "in.txt")
	if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestTimestampBoundsOnProduce: a CreateTime topic with
// message.timestamp.before.max.ms / after.max.ms (or the legacy
// difference.max.ms) refuses a record outside them with
// INVALID_TIMESTAMP and stores nothing; a LogAppendTime topic takes any
// timestamp and stamps the broker's clock into the batch.
func TestTimestampBoundsOnProduce(t *testing.T) {
	n := startNode(t, testDataDir(t), nil)
	cl := produceClient(t, n.Addr(), kgo.DisableIdempotentWrite())
	ctx := ctxFor(t, 60*time.Second)
	hour := "3600000"
	for topic, cfg := range map[string]map[string]string{
		"bounded": {"message.timestamp.before.max.ms": hour, "message.timestamp.after.max.ms": hour},
		"legacy":  {"message.timestamp.difference.max.ms": hour},
		"stamped": {"message.timestamp.type": "LogAppendTime", "message.timestamp.difference.max.ms": hour},
	} {
		if rt := createTopicFull(t, cl, topic, cfg); rt.ErrorCode != 0 {
			t.Fatalf("create %s: %s", topic, codeName(rt.ErrorCode))
		}
	}
	produce := func(topic string, ts time.Time) error {
		return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte("v"), Timestamp: ts}).FirstErr()
	}
	now := time.Now()
	for _, topic := range []string{"bounded", "legacy"} {
		for _, ts := range []time.Time{now.Add(-2 * time.Hour), now.Add(2 * time.Hour)} {
			if err := produce(topic, ts); !errors.Is(err, kerr.InvalidTimestamp) {
				t.Errorf("%s: timestamp %v: %v, want INVALID_TIMESTAMP", topic, ts.Sub(now).Round(time.Minute), err)
			}
		}
		if err := produce(topic, now.Add(-30*time.Minute)); err != nil {
			t.Errorf("%s: timestamp within the bounds: %v", topic, err)
		}
		if end := endOffsets(t, cl, topic, 1)[0]; end != 1 {
			t.Errorf("%s: end offset %d, want 1 (the refused batches stored nothing)", topic, end)
		}
	}
	if err := produce("stamped", now.Add(-48*time.Hour)); err != nil {
		t.Fatalf("LogAppendTime topic: %v", err)
	}
	if rec := consumeOne(t, n.Addr(), "stamped"); rec.Timestamp.Before(now.Add(-time.Minute)) {
		t.Fatalf("LogAppendTime topic served timestamp %v, not the broker's clock", rec.Timestamp)
	}
}
