package e2e

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strand-io/strand/cluster"
	"github.com/strand-io/strand/shard"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// mountTmpfs mounts a tmpfs of size bytes for the test and unmounts it at
// cleanup (registered first, so it runs after the broker has closed).
// It skips when mounting is not allowed here (not root, no CAP_SYS_ADMIN).
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.FormatInt(size, 10)); err != nil {
		t.Skipf("cannot mount a small tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			// Something still holds it; a lazy unmount frees it when released.
			t.Errorf("unmount %s: %v", dir, err)
			_ = exec.Command("umount", "-l", dir).Run()
		}
	})
	return dir
}

// produceOnce sends one Produce v9 (which has error messages) of one batch
// and returns the partition's error code and message.
func produceOnce(t *testing.T, rc *rawConn, topic string, batch []byte) (int16, string) {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 9, -1, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = 0, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := rc.roundTrip(req, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	p := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	msg := ""
	if p.ErrorMessage != nil {
		msg = *p.ErrorMessage
	}
	return p.ErrorCode, msg
}

// deleteTopicReq deletes one topic and returns its error code.
func deleteTopicReq(t *testing.T, rc *rawConn, name string) int16 {
	t.Helper()
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.Version, req.TimeoutMillis = 4, 10000
	req.TopicNames = []string{name}
	resp, err := rc.roundTrip(req, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return resp.(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode
}

// createTopicRaw creates a one-partition topic and returns code and message.
func createTopicRaw(t *testing.T, rc *rawConn, name string) (int16, string) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version, req.TimeoutMillis = 5, 10000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, 1
	req.Topics = append(req.Topics, rt)
	resp, err := rc.roundTrip(req, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r := resp.(*kmsg.CreateTopicsResponse).Topics[0]
	msg := ""
	if r.ErrorMessage != nil {
		msg = *r.ErrorMessage
	}
	return r.ErrorCode, msg
}

// TestFullDisk is the regression test for issue 9's full-disk defect, on a
// 48 MiB tmpfs: produce fails with KAFKA_STORAGE_ERROR and a message naming
// the cause, logged once per partition per minute; CreateTopics and
// DeleteTopics still work on the full disk (the reserve) or, when the disk
// is filled past the reserve from outside, fail with KAFKA_STORAGE_ERROR,
// never INVALID_CONFIG/INVALID_REQUEST; and produce resumes without a
// restart once space returns, whether a topic was deleted or an unrelated
// file removed.
func TestFullDisk(t *testing.T) {
	mnt := mountTmpfs(t, 48<<20)
	logs := newLogBuf()
	logs.dumpOnFailure(t, "broker")
	const reserve = 8 << 20
	n := startNode(t, filepath.Join(mnt, "data"), func(c *cluster.Config) {
		c.Log = shard.Config{Preallocate: true, DiskReserveBytes: reserve}
		c.OffsetsPartitions = 1
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	rc := dialRaw(t, n.Addr())
	for _, name := range []string{"victim", "keeper"} {
		if code, msg := createTopicRaw(t, rc, name); code != 0 {
			t.Fatalf("create %s: %v %s", name, kerr.ErrorForCode(code), msg)
		}
	}
	big := makeBatch([]byte(strings.Repeat("x", 256<<10)))
	// Fill the disk through one partition.
	var code int16
	var msg string
	for i := 0; i < 400; i++ {
		if code, msg = produceOnce(t, rc, "victim", big); code != 0 {
			break
		}
	}
	if code != kerr.KafkaStorageError.Code {
		t.Fatalf("produce on a full disk: %v %q, want KAFKA_STORAGE_ERROR", kerr.ErrorForCode(code), msg)
	}
	if !strings.Contains(msg, "disk full on") || !strings.Contains(msg, "bytes free") {
		t.Fatalf("produce on a full disk says %q, want the cause", msg)
	}
	for i := 0; i < 5; i++ {
		if code, _ := produceOnce(t, rc, "victim", big); code != kerr.KafkaStorageError.Code {
			t.Fatalf("produce on a full disk: %v", kerr.ErrorForCode(code))
		}
	}
	if lines := strings.Count(logs.String(), "partition storage error"); lines != 1 {
		t.Fatalf("%d broker log lines for 6 refused appends to one partition within a minute, want 1", lines)
	}
	// The reserve lets admin work go on.
	if code, msg := createTopicRaw(t, rc, "late"); code != 0 {
		t.Fatalf("create topic on a full disk: %v %s", kerr.ErrorForCode(code), msg)
	}
	if code, _ := produceOnce(t, rc, "keeper", big); code != kerr.KafkaStorageError.Code {
		t.Fatalf("produce to another partition on the full disk: %v", kerr.ErrorForCode(code))
	}
	if code := deleteTopicReq(t, rc, "victim"); code != 0 {
		t.Fatalf("delete topic on a full disk: %v", kerr.ErrorForCode(code))
	}
	// The deleted topic's space comes back (its directory is removed in
	// the background) and produce resumes by itself.
	waitProduce(t, rc, "keeper", big)

	// Now fill the disk past the reserve from outside the broker.
	ballast := filepath.Join(mnt, "ballast")
	fillDisk(t, ballast)
	if code, msg := createTopicRaw(t, rc, "blocked"); code != kerr.KafkaStorageError.Code || !strings.Contains(msg, "disk full") {
		t.Fatalf("create topic on a disk filled from outside: %v %q, want KAFKA_STORAGE_ERROR naming the cause", kerr.ErrorForCode(code), msg)
	}
	if code := deleteTopicReq(t, rc, "late"); code != kerr.KafkaStorageError.Code {
		t.Fatalf("delete topic on a disk filled from outside: %v, want KAFKA_STORAGE_ERROR", kerr.ErrorForCode(code))
	}
	if !strings.Contains(logs.String(), "could not persist metadata.json: disk full on") {
		t.Fatal("refused metadata changes were not logged with their cause")
	}
	if code, msg := produceOnce(t, rc, "keeper", big); code != kerr.KafkaStorageError.Code || !strings.Contains(msg, "disk full") {
		t.Fatalf("produce on a disk filled from outside: %v %q", kerr.ErrorForCode(code), msg)
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	waitProduce(t, rc, "keeper", big)
	if code := deleteTopicReq(t, rc, "late"); code != 0 {
		t.Fatalf("delete topic once space returned: %v", kerr.ErrorForCode(code))
	}
}

// waitProduce produces until an append succeeds, for at most 20 s.
func waitProduce(t *testing.T, rc *rawConn, topic string, batch []byte) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, msg := produceOnce(t, rc, topic, batch)
		if code == 0 {
			return
		}
		if code != kerr.KafkaStorageError.Code || time.Now().After(deadline) {
			t.Fatalf("produce after space returned: %v %q", kerr.ErrorForCode(code), msg)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition the broker cannot signal
	}
}

// fillDisk writes path until the file system is full.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if strings.Contains(err.Error(), "no space") {
				return
			}
			t.Fatal(err)
		}
	}
}
