package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"
)

// produceN produces n records to partition p of topic, one batch each.
func produceN(t testing.TB, cl *kgo.Client, topic string, p int32, n int, ts func(i int) time.Time) {
	t.Helper()
	ctx := ctxFor(t, 30*time.Second)
	for i := range n {
		r := &kgo.Record{Topic: topic, Partition: p, Value: []byte(fmt.Sprintf("v%03d", i))}
		if ts != nil {
			r.Timestamp = ts(i)
		}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
}

func manualClient(t testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	return newClient(t, addr, append([]kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0)}, opts...)...)
}

// startOffset is partition p's log start as kadm reports it.
func startOffset(t testing.TB, adm *kadm.Client, topic string, p int32) int64 {
	t.Helper()
	lo, err := adm.ListStartOffsets(ctxFor(t, 20*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := lo.Lookup(topic, p)
	if !ok || o.Err != nil {
		t.Fatalf("start offset of %s-%d: %v %v", topic, p, ok, o.Err)
	}
	return o.Offset
}

// firstOffsetKcat consumes from the beginning with kcat (librdkafka) and
// returns the first offset it gets.
func firstOffsetKcat(t testing.TB, addr, topic string, p int32) int64 {
	t.Helper()
	out := runKcat(t, kcatPath(t), 30*time.Second, "-b", addr, "-C", "-t", topic, "-p", strconv.Itoa(int(p)), "-o", "beginning", "-c", "1", "-e", "-f", "%o\n")
	o, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		t.Fatalf("kcat printed %q", out)
	}
	return o
}

// TestDeleteRecords: kadm moves the log start; kcat then starts reading at
// it; a fetch below it is OFFSET_OUT_OF_RANGE; offsets above the high
// watermark and unknown partitions are refused; the new start survives a
// restart; -1 deletes up to the high watermark.
func TestDeleteRecords(t *testing.T) {
	dir := testDataDir(t)
	n := startNode(t, dir, nil)
	const topic = "dr"
	createTopic(t, newClient(t, n.Addr()), topic, 2)
	cl := manualClient(t, n.Addr())
	produceN(t, cl, topic, 0, 100, nil)
	adm := kadm.NewClient(cl)

	ctx := ctxFor(t, 30*time.Second)
	rs, err := adm.DeleteRecords(ctx, offsetsAt(topic, 0, 40))
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := rs.Lookup(topic, 0); !ok || r.Err != nil || r.LowWatermark != 40 {
		t.Fatalf("DeleteRecords to 40: %+v", r)
	}
	if got := startOffset(t, adm, topic, 0); got != 40 {
		t.Fatalf("log start %d after DeleteRecords to 40", got)
	}
	if got := firstOffsetKcat(t, n.Addr(), topic, 0); got != 40 {
		t.Fatalf("kcat's first offset %d, want 40", got)
	}

	// Error paths, raw.
	rc := dialRaw(t, n.Addr())
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.TimeoutMillis = 5000
	for _, tp := range []struct {
		topic string
		p     int32
		off   int64
	}{{topic, 0, 101}, {topic, 0, -2}, {"nope", 0, 1}, {topic, 9, 1}, {topic, 1, 0}, {"__consumer_offsets", 0, -1}} {
		rt := kmsg.NewDeleteRecordsRequestTopic()
		rt.Topic = tp.topic
		rp := kmsg.NewDeleteRecordsRequestTopicPartition()
		rp.Partition, rp.Offset = tp.p, tp.off
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := rc.roundTrip(req, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := []int16{kerr.OffsetOutOfRange.Code, kerr.OffsetOutOfRange.Code, kerr.UnknownTopicOrPartition.Code, kerr.UnknownTopicOrPartition.Code, 0, kerr.InvalidTopicException.Code}
	for i, rt := range resp.(*kmsg.DeleteRecordsResponse).Topics {
		wantCode(t, fmt.Sprintf("DeleteRecords case %d", i), rt.Partitions[0].ErrorCode, want[i])
	}
	fetch := kmsg.NewPtrFetchRequest()
	fetch.SetVersion(11)
	fetch.MaxBytes, fetch.SessionEpoch, fetch.ReplicaID = 1<<20, -1, -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes, fp.CurrentLeaderEpoch = 0, 39, 1<<20, -1
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	fr, err := rc.roundTrip(fetch, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	frp := fr.(*kmsg.FetchResponse).Topics[0].Partitions[0]
	wantCode(t, "fetch below the log start", frp.ErrorCode, kerr.OffsetOutOfRange.Code)

	closeNode(t, n)
	n = startNode(t, dir, nil)
	cl = manualClient(t, n.Addr())
	adm = kadm.NewClient(cl)
	if got := startOffset(t, adm, topic, 0); got != 40 {
		t.Fatalf("log start %d after a restart, want 40", got)
	}
	rs, err = adm.DeleteRecords(ctxFor(t, 30*time.Second), offsetsAt(topic, 0, -1))
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := rs.Lookup(topic, 0); r.Err != nil || r.LowWatermark != 100 {
		t.Fatalf("DeleteRecords to -1: %+v, want the high watermark 100", r)
	}
	produceN(t, cl, topic, 0, 1, nil)
	if got := firstOffsetKcat(t, n.Addr(), topic, 0); got != 100 {
		t.Fatalf("kcat's first offset %d after deleting everything, want 100", got)
	}
}

func offsetsAt(topic string, p int32, at int64) kadm.Offsets {
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: topic, Partition: p, At: at})
	return os
}

// TestDescribeLogDirs: the data directory is the one log directory, each
// partition's size is the bytes a fetch of the whole partition returns, and
// the volume sizes come from statfs.
func TestDescribeLogDirs(t *testing.T) {
	dir := testDataDir(t)
	n := startNode(t, dir, nil)
	createTopic(t, newClient(t, n.Addr()), "ld", 2)
	createTopic(t, newClient(t, n.Addr()), "other", 1)
	cl := manualClient(t, n.Addr())
	produceN(t, cl, "ld", 1, 30, nil)
	adm := kadm.NewClient(cl)

	all, err := adm.DescribeAllLogDirs(ctxFor(t, 20*time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(dir)
	for _, dirs := range all {
		if len(dirs) != 1 {
			t.Fatalf("%d log dirs, want 1: %v", len(dirs), dirs)
		}
		for _, d := range dirs {
			if d.Err != nil || (d.Dir != dir && d.Dir != abs) {
				t.Fatalf("log dir %q err %v, want %q", d.Dir, d.Err, dir)
			}
			if d.TotalBytes != int64(st.Blocks)*int64(st.Bsize) || d.UsableBytes <= 0 || d.UsableBytes > d.TotalBytes {
				t.Fatalf("total %d usable %d, statfs total %d", d.TotalBytes, d.UsableBytes, int64(st.Blocks)*int64(st.Bsize))
			}
			p0, ok0 := d.Topics.Lookup("ld", 0)
			p1, ok1 := d.Topics.Lookup("ld", 1)
			if !ok0 || !ok1 || p0.Size != 0 || p1.Size != fetchedBytes(t, n.Addr(), "ld", 1) || p1.Size == 0 {
				t.Fatalf("sizes: p0 %+v p1 %+v", p0, p1)
			}
			if p1.OffsetLag != 0 || p1.IsFuture {
				t.Fatalf("p1 lag %d future %v", p1.OffsetLag, p1.IsFuture)
			}
			if _, ok := d.Topics.Lookup("other", 0); !ok {
				t.Fatal("topic other missing from an unfiltered DescribeLogDirs")
			}
		}
	}

	// A filtered request, raw at v1 (before the top-level error code), and
	// an unknown topic, which Kafka leaves out.
	rc := dialRaw(t, n.Addr())
	req := kmsg.NewPtrDescribeLogDirsRequest()
	req.SetVersion(1)
	for _, tp := range []string{"ld", "nope"} {
		rt := kmsg.NewDescribeLogDirsRequestTopic()
		rt.Topic, rt.Partitions = tp, []int32{1}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := rc.roundTrip(req, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ds := resp.(*kmsg.DescribeLogDirsResponse).Dirs
	if len(ds) != 1 || len(ds[0].Topics) != 1 || ds[0].Topics[0].Topic != "ld" || len(ds[0].Topics[0].Partitions) != 1 || ds[0].Topics[0].Partitions[0].Partition != 1 {
		t.Fatalf("filtered DescribeLogDirs: %+v", ds)
	}
	// v5 (cordoned dirs) is not advertised.
	req.SetVersion(5)
	resp, err = rc.roundTrip(req, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, "DescribeLogDirs v5", resp.(*kmsg.DescribeLogDirsResponse).ErrorCode, kerr.UnsupportedVersion.Code)
}

// fetchedBytes is the size of every batch of a partition, fetched raw.
func fetchedBytes(t testing.TB, addr, topic string, p int32) int64 {
	t.Helper()
	rc := dialRaw(t, addr)
	fetch := kmsg.NewPtrFetchRequest()
	fetch.SetVersion(11)
	fetch.MaxBytes, fetch.SessionEpoch, fetch.ReplicaID = 64<<20, -1, -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.PartitionMaxBytes, fp.CurrentLeaderEpoch = p, 64<<20, -1
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	fr, err := rc.roundTrip(fetch, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	rp := fr.(*kmsg.FetchResponse).Topics[0].Partitions[0]
	if rp.ErrorCode != 0 {
		t.Fatalf("fetch %s-%d: %v", topic, p, kerr.ErrorForCode(rp.ErrorCode))
	}
	return int64(len(rp.RecordBatches))
}

// TestListOffsetsMaxTimestamp: -3 finds the batch with the largest
// timestamp (not the last one), through kadm and raw; an empty partition
// has none; -3 at v6 and -4 at v7 are UNSUPPORTED_VERSION; -4 at v8 is the
// log start, which DeleteRecords moved; kcat sees the same offsets.
func TestListOffsetsMaxTimestamp(t *testing.T) {
	n := startNode(t, testDataDir(t), nil)
	const topic = "mt"
	createTopic(t, newClient(t, n.Addr()), topic, 2)
	cl := manualClient(t, n.Addr())
	stamps := []int64{1000, 9000, 3000, 9000, 5000}
	produceN(t, cl, topic, 0, len(stamps), func(i int) time.Time { return time.UnixMilli(stamps[i]) })
	adm := kadm.NewClient(cl)
	lo, err := adm.ListMaxTimestampOffsets(ctxFor(t, 20*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := lo.Lookup(topic, 0); o.Err != nil || o.Offset != 1 || o.Timestamp != 9000 {
		t.Fatalf("max timestamp of p0: %+v, want offset 1 at 9000", o)
	}
	if o, _ := lo.Lookup(topic, 1); o.Err != nil || o.Offset != -1 || o.Timestamp != -1 {
		t.Fatalf("max timestamp of empty p1: %+v, want -1/-1", o)
	}
	if _, err := adm.DeleteRecords(ctxFor(t, 20*time.Second), offsetsAt(topic, 0, 2)); err != nil {
		t.Fatal(err)
	}

	rc := dialRaw(t, n.Addr())
	ask := func(v int16, ts int64) kmsg.ListOffsetsResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrListOffsetsRequest()
		req.SetVersion(v)
		req.ReplicaID = -1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = 0, ts, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := rc.roundTrip(req, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
	}
	if p := ask(7, -3); p.ErrorCode != 0 || p.Offset != 3 || p.Timestamp != 9000 {
		t.Fatalf("v7 -3 after deleting below 2: %+v, want offset 3 at 9000", p)
	}
	wantCode(t, "v6 -3", ask(6, -3).ErrorCode, kerr.UnsupportedVersion.Code)
	wantCode(t, "v7 -4", ask(7, -4).ErrorCode, kerr.UnsupportedVersion.Code)
	if p := ask(8, -4); p.ErrorCode != 0 || p.Offset != 2 {
		t.Fatalf("v8 -4: %+v, want the log start 2", p)
	}
	if p := ask(10, -5); p.ErrorCode != 0 || p.Offset != -1 {
		t.Fatalf("v10 -5: %+v, want -1 (nothing is tiered)", p)
	}
	wantCode(t, "v11", ask(11, -1).ErrorCode, kerr.UnsupportedVersion.Code)

	// librdkafka (kcat 2.0.2) sends ListOffsets v2, which cannot carry -3:
	// it is told so, as by Kafka, while its timestamp and -2 queries work.
	kcat := kcatPath(t)
	out, err := exec.CommandContext(ctxFor(t, 30*time.Second), kcat, "-b", n.Addr(), "-Q", "-t", topic+":0:-3").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "API version not supported") {
		t.Fatalf("kcat -Q -3: %v %s, want API version not supported", err, out)
	}
	for q, want := range map[string]string{":0:-2": "offset 2", ":0:4000": "offset 3", ":0:-1": "offset 5"} {
		if out := string(runKcat(t, kcat, 30*time.Second, "-b", n.Addr(), "-Q", "-t", topic+q)); !strings.Contains(out, want) {
			t.Fatalf("kcat -Q %s: %q, want %q", q, out, want)
		}
	}
}

// TestDescribeProducers: an idempotent kgo producer shows up with its id,
// epoch and last sequence; transaction fields are -1; it is no longer
// listed once DeleteRecords passes its last batch; unknown partitions are
// UNKNOWN_TOPIC_OR_PARTITION.
func TestDescribeProducers(t *testing.T) {
	n := startNode(t, testDataDir(t), nil)
	const topic = "dp"
	createTopic(t, newClient(t, n.Addr()), topic, 2)
	prod, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	produceN(t, prod, topic, 0, 7, nil)
	adm := kadm.NewClient(newClient(t, n.Addr()))
	ds, err := adm.DescribeProducers(ctxFor(t, 20*time.Second), kadm.TopicsSet{topic: {0: {}, 1: {}}})
	if err != nil {
		t.Fatal(err)
	}
	p0, ok := ds[topic].Partitions[0]
	if !ok || p0.Err != nil || len(p0.ActiveProducers) != 1 {
		t.Fatalf("partition 0: %+v", p0)
	}
	var dp kadm.DescribedProducer
	for _, v := range p0.ActiveProducers {
		dp = v
	}
	pid, epoch, err := prod.ProducerID(ctxFor(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if dp.ProducerID != pid || dp.ProducerEpoch != epoch || dp.LastSequence != 6 || dp.CoordinatorEpoch != -1 || dp.CurrentTxnStartOffset != -1 {
		t.Fatalf("producer %+v, want id %d epoch %d last sequence 6", dp, pid, epoch)
	}
	if p1 := ds[topic].Partitions[1]; p1.Err != nil || len(p1.ActiveProducers) != 0 {
		t.Fatalf("partition 1: %+v", p1)
	}

	// Once the log start passes its last batch, Kafka no longer lists it.
	if _, err := adm.DeleteRecords(ctxFor(t, 20*time.Second), offsetsAt(topic, 0, -1)); err != nil {
		t.Fatal(err)
	}
	ds, err = adm.DescribeProducers(ctxFor(t, 20*time.Second), kadm.TopicsSet{topic: {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if p0 := ds[topic].Partitions[0]; p0.Err != nil || len(p0.ActiveProducers) != 0 {
		t.Fatalf("after deleting every record: %+v", p0)
	}

	rc := dialRaw(t, n.Addr())
	req := kmsg.NewPtrDescribeProducersRequest()
	for _, tp := range []string{"nope", topic} {
		rt := kmsg.NewDescribeProducersRequestTopic()
		rt.Topic, rt.Partitions = tp, []int32{5}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := rc.roundTrip(req, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range resp.(*kmsg.DescribeProducersResponse).Topics {
		wantCode(t, "DescribeProducers "+rt.Topic+"-5", rt.Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition.Code)
	}
}
