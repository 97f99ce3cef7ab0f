package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// newClient returns a kgo client for addr with idempotence off (these tests
// check plain acks=all delivery; idempotence_test.go covers the default,
// idempotent producer) and acks=all; it is closed at cleanup.
func newClient(t testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	base := []kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.DisableIdempotentWrite(),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// createTopicReq sends one CreateTopics request (replication factor 1)
// and returns the topic's error code.
func createTopicReq(ctx context.Context, cl *kgo.Client, name string, parts int32, configs map[string]string) (int16, error) {
	code, _, err := createTopicRFReq(ctx, cl, name, parts, 1, configs)
	return code, err
}

// createTopicRFReq is createTopicReq with a replication factor, also
// returning the error message.
func createTopicRFReq(ctx context.Context, cl *kgo.Client, name string, parts int32, rf int16, configs map[string]string) (int16, string, error) {
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, parts, rf
	for k, v := range configs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 10000
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, "", err
	}
	if len(resp.Topics) != 1 {
		return 0, "", fmt.Errorf("CreateTopics answered %d topics, want 1", len(resp.Topics))
	}
	msg := ""
	if m := resp.Topics[0].ErrorMessage; m != nil {
		msg = *m
	}
	return resp.Topics[0].ErrorCode, msg, nil
}

// createTopic creates a topic and fails the test unless that succeeds.
func createTopic(t testing.TB, cl *kgo.Client, name string, parts int32) {
	t.Helper()
	code, err := createTopicReq(ctxFor(t, 20*time.Second), cl, name, parts, nil)
	if err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
	if code != 0 {
		t.Fatalf("create topic %s: %v", name, kerr.ErrorForCode(code))
	}
}

// endOffsets returns each partition's high watermark (ListOffsets -1).
func endOffsets(t testing.TB, cl *kgo.Client, topic string, parts int32) []int64 {
	t.Helper()
	return listOffsets(t, cl, topic, parts, -1)
}

func listOffsets(t testing.TB, cl *kgo.Client, topic string, parts int32, ts int64) []int64 {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for p := range parts {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = p, ts, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	// The broker may still be opening partitions right after a restart
	// (retriable LEADER_NOT_AVAILABLE): retry those until the deadline.
	ctx := ctxFor(t, 30*time.Second)
	for {
		resp, err := req.RequestWith(ctx, cl)
		retry := false
		switch {
		case err != nil && kerr.IsRetriable(err) && ctx.Err() == nil:
			// kgo routes ListOffsets by its cached metadata, which may not
			// know a topic created a moment ago.
			retry = true
			resp = kmsg.NewPtrListOffsetsResponse()
		case err != nil:
			t.Fatalf("list offsets %s: %v", topic, err)
		}
		out := make([]int64, parts)
		for _, tp := range resp.Topics {
			for _, p := range tp.Partitions {
				if p.ErrorCode != 0 {
					if kerr.IsRetriable(kerr.ErrorForCode(p.ErrorCode)) && ctx.Err() == nil {
						retry = true
						continue
					}
					t.Fatalf("list offsets %s/%d: %v", topic, p.Partition, kerr.ErrorForCode(p.ErrorCode))
				}
				out[p.Partition] = p.Offset
			}
		}
		if !retry {
			return out
		}
		select {
		case <-ctx.Done():
			t.Fatalf("list offsets %s: %v", topic, ctx.Err())
		case <-time.After(10 * time.Millisecond): // retry back-off
		}
	}
}

// Deterministic payloads: record seq of partition p always has the same key
// and value, so a consumer can verify every byte without the producer
// keeping what it sent.

func recKey(p int32, seq int64) []byte {
	k := make([]byte, 12)
	binary.BigEndian.PutUint32(k, uint32(p))
	binary.BigEndian.PutUint64(k[4:], uint64(seq))
	return k
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// recValue is 8..135 pseudo-random bytes derived from (p, seq).
func recValue(p int32, seq int64) []byte {
	s := splitmix(uint64(p)<<48 ^ uint64(seq))
	v := make([]byte, 8+s%128)
	for i := 0; i < len(v); i += 8 {
		s = splitmix(s)
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], s)
		copy(v[i:], w[:])
	}
	return v
}

// verifyTopic consumes partitions 0..len(want)-1 of topic from the start and
// checks that partition p holds exactly want[p] records, record i at offset
// i carrying recKey(p, i) and recValue(p, i).
func verifyTopic(t testing.TB, addr, topic string, want []int64, d time.Duration) {
	t.Helper()
	ctx := ctxFor(t, d)
	offsets := map[string]map[int32]kgo.Offset{topic: {}}
	var total int64
	for p, n := range want {
		if n > 0 {
			offsets[topic][int32(p)] = kgo.NewOffset().AtStart()
		}
		total += n
	}
	if total == 0 {
		return
	}
	cl := newClient(t, addr, kgo.ConsumePartitions(offsets), kgo.FetchMaxWait(500*time.Millisecond))
	defer cl.Close()
	next := make([]int64, len(want))
	var got int64
	for got < total {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records of %s: %v (per partition %v, want %v)", got, total, topic, ctx.Err(), next, want)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", tp, p, err) })
		var bad error
		fs.EachRecord(func(r *kgo.Record) {
			if bad != nil {
				return
			}
			p := r.Partition
			switch {
			case r.Offset != next[p]:
				bad = fmt.Errorf("partition %d: got offset %d, want %d", p, r.Offset, next[p])
			case next[p] >= want[p]:
				bad = fmt.Errorf("partition %d: extra record at offset %d (want %d records)", p, r.Offset, want[p])
			case !bytes.Equal(r.Key, recKey(p, r.Offset)):
				bad = fmt.Errorf("partition %d offset %d: key %x, want %x", p, r.Offset, r.Key, recKey(p, r.Offset))
			case !bytes.Equal(r.Value, recValue(p, r.Offset)):
				bad = fmt.Errorf("partition %d offset %d: value differs (%d bytes, want %d)", p, r.Offset, len(r.Value), len(recValue(p, r.Offset)))
			}
			next[p]++
			got++
		})
		if bad != nil {
			t.Fatal(bad)
		}
	}
}

// rawConn is a plain TCP Kafka connection for hand-made frames.
type rawConn struct {
	nc   net.Conn
	corr int32
	fmt  *kmsg.RequestFormatter
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{nc: nc, fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID("strand-e2e"))}
}

// roundTrip sends req at its set version and reads the response, waiting at
// most d for it.
func (r *rawConn) roundTrip(req kmsg.Request, d time.Duration) (kmsg.Response, error) {
	r.corr++
	if _, err := r.nc.Write(r.fmt.AppendRequest(nil, req, r.corr)); err != nil {
		return nil, fmt.Errorf("write %s: %w", kmsg.NameForKey(req.Key()), err)
	}
	_ = r.nc.SetReadDeadline(time.Now().Add(d))
	var pfx [4]byte
	if _, err := io.ReadFull(r.nc, pfx[:]); err != nil {
		return nil, fmt.Errorf("read %s v%d response: %w", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	body := make([]byte, binary.BigEndian.Uint32(pfx[:]))
	if _, err := io.ReadFull(r.nc, body); err != nil {
		return nil, fmt.Errorf("read %s response body: %w", kmsg.NameForKey(req.Key()), err)
	}
	if corr := int32(binary.BigEndian.Uint32(body)); corr != r.corr {
		return nil, fmt.Errorf("correlation id %d, want %d", corr, r.corr)
	}
	body = body[4:]
	resp := req.ResponseKind()
	if resp.IsFlexible() && resp.Key() != kmsg.ApiVersions.Int16() {
		body = body[1:] // empty response-header tags
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("decode %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	return resp, nil
}

// closedByPeer waits up to d for the server to close the connection,
// discarding anything it sends first.
func (r *rawConn) closedByPeer(d time.Duration) error {
	_ = r.nc.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	for {
		_, err := r.nc.Read(buf)
		if err == nil {
			continue
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return fmt.Errorf("server did not close the connection within %v", d)
		}
		return nil // EOF or reset
	}
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// makeBatch builds an uncompressed v2 record batch (CRC and lengths filled
// in, base offset 0) for raw Produce requests.
func makeBatch(values ...[]byte) []byte {
	var recs []byte
	for i, v := range values {
		var r []byte
		r = append(r, 0)                     // attributes
		r = binary.AppendVarint(r, 0)        // timestamp delta
		r = binary.AppendVarint(r, int64(i)) // offset delta
		r = binary.AppendVarint(r, -1)       // null key
		r = binary.AppendVarint(r, int64(len(v)))
		r = append(r, v...)
		r = binary.AppendVarint(r, 0) // no headers
		recs = binary.AppendVarint(recs, int64(len(r)))
		recs = append(recs, r...)
	}
	const headerLen = 61
	b := make([]byte, headerLen, headerLen+len(recs))
	be := binary.BigEndian
	be.PutUint32(b[12:], 0xffffffff) // partition leader epoch -1
	b[16] = 2                        // magic
	be.PutUint32(b[23:], uint32(len(values)-1))
	now := uint64(time.Now().UnixMilli())
	be.PutUint64(b[27:], now)
	be.PutUint64(b[35:], now)
	be.PutUint64(b[43:], 0xffffffffffffffff) // producer id -1
	be.PutUint16(b[51:], 0xffff)             // producer epoch -1
	be.PutUint32(b[53:], 0xffffffff)         // base sequence -1
	be.PutUint32(b[57:], uint32(len(values)))
	b = append(b, recs...)
	be.PutUint32(b[8:], uint32(len(b)-12))
	be.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

var (
	kcatOnce sync.Once
	kcatBin  string
	kcatWhy  string
)

// kcatPath finds kcat, installing the Debian package if it is missing and
// this process may; the test skips, saying why, only when it cannot be had.
func kcatPath(t testing.TB) string {
	t.Helper()
	kcatOnce.Do(func() {
		if p, err := exec.LookPath("kcat"); err == nil {
			kcatBin = p
			return
		}
		if os.Geteuid() != 0 {
			kcatWhy = "kcat is not installed and installing it needs root (apt-get install -y kcat)"
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "apt-get", "install", "-y", "kcat").CombinedOutput()
		if err != nil {
			upd, _ := exec.CommandContext(ctx, "apt-get", "update").CombinedOutput()
			out, err = exec.CommandContext(ctx, "apt-get", "install", "-y", "kcat").CombinedOutput()
			out = append(upd, out...)
		}
		if p, lerr := exec.LookPath("kcat"); err == nil && lerr == nil {
			kcatBin = p
			return
		}
		if len(out) > 2000 {
			out = out[len(out)-2000:]
		}
		kcatWhy = fmt.Sprintf("kcat is not installed and apt-get install -y kcat failed: %v\n%s", err, out)
	})
	if kcatBin == "" {
		t.Skip(kcatWhy)
	}
	return kcatBin
}

// produceClient returns a client for producing deterministic records:
// manual partitioning, no compression (raw readers decode the batches),
// acks=all, idempotence off.
func produceClient(t testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	base := []kgo.Opt{
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerLinger(2 * time.Millisecond),
	}
	return newClient(t, addr, append(base, opts...)...)
}

// produceSeq produces records 0..perPart-1 of every partition of a fresh
// topic (recKey/recValue), from `workers` goroutines that each own a
// disjoint set of partitions, and checks every ack: no error, and record
// seq acknowledged at offset seq.
func produceSeq(t testing.TB, cl *kgo.Client, topic string, parts int32, perPart int64, workers int) {
	t.Helper()
	ctx := ctxFor(t, 5*time.Minute)
	var (
		mu    sync.Mutex
		first error
	)
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []int32
			for p := int32(w); p < parts; p += int32(workers) {
				mine = append(mine, p)
			}
			for seq := int64(0); seq < perPart; seq++ {
				for _, p := range mine {
					rec := &kgo.Record{Topic: topic, Partition: p, Key: recKey(p, seq), Value: recValue(p, seq)}
					cl.Produce(ctx, rec, func(r *kgo.Record, err error) {
						switch {
						case err != nil:
							fail(fmt.Errorf("produce %s/%d seq %d: %w", topic, r.Partition, binary.BigEndian.Uint64(r.Key[4:]), err))
						case r.Offset != int64(binary.BigEndian.Uint64(r.Key[4:])):
							fail(fmt.Errorf("%s/%d: record %d acknowledged at offset %d", topic, r.Partition, binary.BigEndian.Uint64(r.Key[4:]), r.Offset))
						}
					})
				}
				if seq%4096 == 0 && ctx.Err() != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if first != nil {
		t.Fatal(first)
	}
}

// counts returns a slice of n copies of v.
func counts(n int, v int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = v
	}
	return out
}
