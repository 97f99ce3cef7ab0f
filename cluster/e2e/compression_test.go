package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strand-io/strand/shard"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The record format end to end (issue #4): compressed batches are stored
// and served exactly as the client sent them, and broker timestamps
// (LogAppendTime) and ListOffsets by timestamp behave as in Kafka.

var codecs = []struct {
	name string
	id   int16 // attributes bits 0-2
	kgo  kgo.CompressionCodec
}{
	{"gzip", 1, kgo.GzipCompression()},
	{"snappy", 2, kgo.SnappyCompression()},
	{"lz4", 3, kgo.Lz4Compression()},
	{"zstd", 4, kgo.ZstdCompression()},
}

// compressibleLines returns n distinct lines that compress well.
func compressibleLines(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s line %05d %s", prefix, i, strings.Repeat("abcdefgh", 4+i%8))
	}
	return out
}

// consumeValues reads partition 0 of topic from the start with a default kgo
// client until it has n records and returns their values; every record
// must have been served in a batch compressed with codec.
func consumeValues(t testing.TB, addr, topic string, n int, codec int16) []string {
	t.Helper()
	cl := defaultClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	defer cl.Close()
	ctx := ctxFor(t, time.Minute)
	var out []string
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s: consumed %d of %d records: %v", topic, len(out), n, ctx.Err())
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", tp, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if got := int16(r.Attrs.CompressionType()); got != codec {
				t.Fatalf("%s offset %d: served in a batch with codec %d, want %d", topic, r.Offset, got, codec)
			}
			out = append(out, string(r.Value))
		})
	}
	return out
}

// checkStoredCodec checks that the batches of topic/0 in the data directory
// are the client's compressed batches: the first one carries codec, and
// none carries another (a producer may send a batch that does not shrink
// uncompressed). It returns the first batch's size.
func checkStoredCodec(t testing.TB, dir, topic string, codec int16, records int64) int {
	t.Helper()
	bs := segmentBatches(t, dir, topic, 0)
	if len(bs) == 0 || storedEnd(bs) != records {
		t.Fatalf("%s: the segment files hold %d records in %d batches, want %d records", topic, storedEnd(bs), len(bs), records)
	}
	for i, b := range bs {
		got := b.h.Attributes & 0x07
		if i == 0 && got != codec || got != 0 && got != codec {
			t.Fatalf("%s: batch %d (offset %d) is stored with codec %d (attributes %#x at byte 21 of %s+%d), want %d: the broker recompressed",
				topic, i, b.h.BaseOffset, got, b.h.Attributes, filepath.Base(b.file), b.pos, codec)
		}
	}
	return bs[0].h.Size()
}

// TestCompressionKcat: kcat produces with each of -z gzip, snappy, lz4 and
// zstd; kcat and kgo consume the same bytes back, served compressed; and
// the segment file holds the batches with the codec kcat chose. (A linger
// gathers the lines into a few large batches, so that none is too small
// for compression to pay.)
func TestCompressionKcat(t *testing.T) {
	kcat := kcatPath(t)
	dir := testDataDir(t)
	n := startNode(t, dir, nil)
	addr := n.Addr()
	admin := newClient(t, addr)
	for _, c := range codecs {
		topic := "kcat-" + c.name
		createTopic(t, admin, topic, 1)
		lines := compressibleLines(topic, 2000)
		in := []byte(strings.Join(lines, "\n") + "\n")
		file := filepath.Join(t.TempDir(), topic+".txt")
		if err := os.WriteFile(file, in, 0o644); err != nil {
			t.Fatal(err)
		}
		runKcat(t, kcat, time.Minute, "-b", addr, "-P", "-t", topic, "-p", "0", "-z", c.name, "-X", "linger.ms=50", "-l", "-X", "acks=all", file)
		out := runKcat(t, kcat, time.Minute, "-b", addr, "-C", "-t", topic, "-o", "beginning", "-e", "-q")
		if !bytes.Equal(out, in) {
			t.Fatalf("%s: kcat -C read %d bytes back, want the %d produced", topic, len(out), len(in))
		}
		if got := consumeValues(t, addr, topic, len(lines), c.id); strings.Join(got, "\n") != strings.Join(lines, "\n") {
			t.Fatalf("%s: kgo read values that differ from the lines produced", topic)
		}
		checkStoredCodec(t, dir, topic, c.id, int64(len(lines)))
	}
}

// batchSizes records the compressed size and codec kgo reports for each
// batch it wrote (kgo.HookProduceBatchWritten, which kgo calls from a
// goroutine of its own, after the records' promises).
type batchSizes struct {
	mu      sync.Mutex
	sizes   []int
	codecs  []uint8
	changed chan struct{} // told (without blocking) on every report
}

func (b *batchSizes) OnProduceBatchWritten(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.ProduceBatchMetrics) {
	b.mu.Lock()
	b.sizes = append(b.sizes, m.CompressedBytes)
	b.codecs = append(b.codecs, m.CompressionType)
	b.mu.Unlock()
	select {
	case b.changed <- struct{}{}:
	default:
	}
}

// await waits until n batches have been reported and returns them.
func (b *batchSizes) await(t testing.TB, n int) ([]int, []uint8) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		b.mu.Lock()
		sizes, codecs := slices.Clone(b.sizes), slices.Clone(b.codecs)
		b.mu.Unlock()
		if len(sizes) >= n {
			return sizes, codecs
		}
		select {
		case <-b.changed:
		case <-timeout:
			t.Fatalf("kgo reported %d written batches in 30s, want %d", len(sizes), n)
		}
	}
}

// TestCompressionKgo: kgo produces with each codec; the segment file holds
// the batch with that codec and exactly the size kgo wrote (the compressed
// bytes were not rewritten), and kcat and kgo read the values back.
func TestCompressionKgo(t *testing.T) {
	kcat := kcatPath(t)
	dir := testDataDir(t)
	n := startNode(t, dir, nil)
	addr := n.Addr()
	admin := newClient(t, addr)
	for _, c := range codecs {
		topic := "kgo-" + c.name
		createTopic(t, admin, topic, 1)
		hook := &batchSizes{changed: make(chan struct{}, 1)}
		cl := manualProducer(t, addr, kgo.ProducerBatchCompression(c.kgo), kgo.ProducerLinger(50*time.Millisecond), kgo.WithHooks(hook))
		lines := compressibleLines(topic, 1000)
		var recs []*kgo.Record
		for _, l := range lines {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: 0, Value: []byte(l)})
		}
		if err := cl.ProduceSync(ctxFor(t, time.Minute), recs...).FirstErr(); err != nil {
			t.Fatalf("%s: produce: %v", topic, err)
		}
		checkStoredCodec(t, dir, topic, c.id, int64(len(lines)))
		// Every stored batch is exactly as large as one kgo wrote: a
		// 61-byte header and the compressed records, not rewritten.
		var stored []int
		for _, b := range segmentBatches(t, dir, topic, 0) {
			stored = append(stored, b.h.Size()-shard.BatchHeaderSize)
		}
		sent, codecs := hook.await(t, len(stored))
		cl.Close()
		for _, k := range codecs {
			if int16(k) != c.id {
				t.Fatalf("%s: kgo reports writing batches with codecs %v, want %d", topic, codecs, c.id)
			}
		}
		slices.Sort(stored)
		slices.Sort(sent)
		if !slices.Equal(stored, sent) {
			t.Fatalf("%s: stored batches hold %v bytes of records, kgo sent %v: the broker rewrote them", topic, stored, sent)
		}
		if got := consumeValues(t, addr, topic, len(lines), c.id); strings.Join(got, "\n") != strings.Join(lines, "\n") {
			t.Fatalf("%s: kgo read values that differ from the ones produced", topic)
		}
		out := runKcat(t, kcat, time.Minute, "-b", addr, "-C", "-t", topic, "-o", "beginning", "-e", "-q")
		if want := strings.Join(lines, "\n") + "\n"; string(out) != want {
			t.Fatalf("%s: kcat -C read %d bytes, want %d", topic, len(out), len(want))
		}
	}
}

// listOffsetByTime answers ListOffsets (kgo's newest version) for topic/0
// and timestamp ts: offset and timestamp.
func listOffsetByTime(t testing.TB, cl *kgo.Client, topic string, ts int64) (int64, int64) {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = 0, ts, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxFor(t, 30*time.Second), cl)
	if err != nil {
		t.Fatalf("ListOffsets %s %d: %v", topic, ts, err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("ListOffsets %s: answered %+v", topic, resp.Topics)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Fatalf("ListOffsets %s %d: %v", topic, ts, kerr.ErrorForCode(p.ErrorCode))
	}
	return p.Offset, p.Timestamp
}

// consumeAll reads partition 0 of topic from the start until it has n
// records.
func consumeAll(t testing.TB, addr, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := defaultClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	defer cl.Close()
	ctx := ctxFor(t, time.Minute)
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s: consumed %d of %d records: %v", topic, len(out), n, ctx.Err())
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", tp, p, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

// TestTimestampsAndListOffsetsByTime: records produced with deliberately
// old CreateTimes keep them on a CreateTime topic, and get the broker's
// clock on a LogAppendTime topic; ListOffsets by timestamp finds the first
// record at or after a time on both, by the timestamps consumers see.
func TestTimestampsAndListOffsetsByTime(t *testing.T) {
	n := startNode(t, testDataDir(t), nil)
	addr := n.Addr()
	admin := newClient(t, addr)
	const createTime, appendTime = "ts-create", "ts-append"
	createTopic(t, admin, createTime, 1)
	if code, err := createTopicReq(ctxFor(t, 20*time.Second), admin, appendTime, 1, map[string]string{"message.timestamp.type": "LogAppendTime"}); err != nil || code != 0 {
		t.Fatalf("create %s: %v %v", appendTime, err, kerr.ErrorForCode(code))
	}
	prod := manualProducer(t, addr)
	ctx := ctxFor(t, time.Minute)
	old := time.UnixMilli(1_000_000_000_000) // 2001-09-09, well before this run
	const batches, perBatch = 12, 5
	// Records go in groups, one ProduceSync each, every record of group i
	// stamped old + i seconds by the client. Each group on the
	// LogAppendTime topic is sent once the clock has moved past the
	// previous group's acknowledgement, so groups get distinct append
	// times.
	start := time.Now()
	lastAppend := int64(0)
	for i := range batches {
		for _, topic := range []string{createTime, appendTime} {
			var recs []*kgo.Record
			for j := range perBatch {
				recs = append(recs, &kgo.Record{Topic: topic, Partition: 0, Timestamp: old.Add(time.Duration(i) * time.Second),
					Value: []byte(fmt.Sprintf("batch %d record %d", i, j))})
			}
			for time.Now().UnixMilli() <= lastAppend { // wait for the clock to tick, not for an event
			}
			if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatalf("produce %s: %v", topic, err)
			}
			if topic == appendTime {
				lastAppend = time.Now().UnixMilli()
			}
		}
	}
	end := time.Now()

	// CreateTime: the client's timestamps, as sent.
	ct := consumeAll(t, addr, createTime, batches*perBatch)
	for _, r := range ct {
		want := old.Add(time.Duration(r.Offset/perBatch) * time.Second)
		if r.Attrs.TimestampType() != 0 || !r.Timestamp.Equal(want) {
			t.Fatalf("%s offset %d: timestamp %v (type %d), want the CreateTime %v", createTime, r.Offset, r.Timestamp, r.Attrs.TimestampType(), want)
		}
	}
	// LogAppendTime: the broker's clock during the produce window.
	lat := consumeAll(t, addr, appendTime, batches*perBatch)
	distinct := map[int64]bool{}
	for _, r := range lat {
		ms := r.Timestamp.UnixMilli()
		if r.Attrs.TimestampType() != 1 || ms < start.UnixMilli() || ms > end.UnixMilli() {
			t.Fatalf("%s offset %d: timestamp %v (type %d), want a LogAppendTime between %v and %v", appendTime, r.Offset, r.Timestamp, r.Attrs.TimestampType(), start, end)
		}
		distinct[ms] = true
	}
	if len(distinct) < batches {
		t.Fatalf("%s: %d distinct append times over %d produce calls a clock tick apart, want at least one per call", appendTime, len(distinct), batches)
	}

	// ListOffsets by time must answer, for every probe, the first offset
	// whose timestamp (as consumed) is at or after it, with that
	// timestamp; -1 after the last.
	check := func(topic string, recs []*kgo.Record, probes []int64) {
		t.Helper()
		for _, ts := range probes {
			wantOff, wantTs := int64(-1), int64(-1)
			for _, r := range recs {
				if r.Timestamp.UnixMilli() >= ts {
					wantOff, wantTs = r.Offset, r.Timestamp.UnixMilli()
					break
				}
			}
			if off, got := listOffsetByTime(t, admin, topic, ts); off != wantOff || got != wantTs {
				t.Fatalf("%s: ListOffsets(%d) = offset %d timestamp %d, want offset %d timestamp %d", topic, ts, off, got, wantOff, wantTs)
			}
		}
	}
	var probes []int64
	for _, recs := range [][]*kgo.Record{ct, lat} {
		for i := 0; i < len(recs); i += perBatch {
			ms := recs[i].Timestamp.UnixMilli()
			probes = append(probes, ms-1, ms, ms+1)
		}
	}
	probes = append(probes, 0, old.UnixMilli(), start.UnixMilli(), end.UnixMilli()+60_000)
	check(createTime, ct, probes)
	check(appendTime, lat, probes)
	// The CreateTimes the client sent mean nothing on the LogAppendTime
	// topic: asking for them finds its first record.
	if off, _ := listOffsetByTime(t, admin, appendTime, old.Add(batches*time.Second).UnixMilli()); off != 0 {
		t.Fatalf("%s: ListOffsets by the clients' CreateTime answered offset %d, want 0 (every append time is later)", appendTime, off)
	}
}

// TestCompressionTypeRecompresses: a topic with compression.type set to
// a codec stores and serves every batch in it, whatever the producer
// used: kcat produces with each other codec (and none), the segment files
// hold only the topic's codec, and kcat and kgo read the lines back.
// compression.type=uncompressed stores compressed batches uncompressed.
func TestCompressionTypeRecompresses(t *testing.T) {
	kcat := kcatPath(t)
	dir := testDataDir(t)
	n := startNode(t, dir, nil)
	addr := n.Addr()
	admin := newClient(t, addr)
	type codec struct {
		name string
		id   int16
	}
	targets := []codec{{"uncompressed", 0}}
	for _, c := range codecs {
		targets = append(targets, codec{c.name, c.id})
	}
	for i, target := range targets {
		// The producer uses the next codec round the list: always
		// another one than the topic's.
		from := targets[(i+1)%len(targets)].name
		if from == "uncompressed" {
			from = "none"
		}
		topic := "recompress-" + target.name
		code, err := createTopicReq(ctxFor(t, 20*time.Second), admin, topic, 1, map[string]string{"compression.type": target.name})
		if err != nil || code != 0 {
			t.Fatalf("create %s: %v, code %d", topic, err, code)
		}
		lines := compressibleLines(topic, 2000)
		in := []byte(strings.Join(lines, "\n") + "\n")
		file := filepath.Join(t.TempDir(), topic+".txt")
		if err := os.WriteFile(file, in, 0o644); err != nil {
			t.Fatal(err)
		}
		runKcat(t, kcat, time.Minute, "-b", addr, "-P", "-t", topic, "-p", "0", "-z", from, "-X", "linger.ms=50", "-l", "-X", "acks=all", file)
		bs := segmentBatches(t, dir, topic, 0)
		if storedEnd(bs) != int64(len(lines)) {
			t.Fatalf("%s: %d records stored, want %d", topic, storedEnd(bs), len(lines))
		}
		for _, b := range bs {
			if got := b.h.Attributes & 0x07; got != target.id {
				t.Fatalf("%s: produced with %s, batch at offset %d stored with codec %d, want %d", topic, from, b.h.BaseOffset, got, target.id)
			}
		}
		if out := runKcat(t, kcat, time.Minute, "-b", addr, "-C", "-t", topic, "-o", "beginning", "-e", "-q"); !bytes.Equal(out, in) {
			t.Fatalf("%s: kcat -C read %d bytes back, want the %d produced", topic, len(out), len(in))
		}
		if got := consumeValues(t, addr, topic, len(lines), target.id); strings.Join(got, "\n") != strings.Join(lines, "\n") {
			t.Fatalf("%s: kgo read values that differ from the lines produced", topic)
		}
		t.Logf("%s: kcat -z %s, %d batches stored with codec %d", topic, from, len(bs), target.id)
	}
}
