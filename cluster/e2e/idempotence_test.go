package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strand-io/strand/shard"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Idempotent producers across broker crashes (issue #4). A partition's
// producer state (per producer id: epoch and the last batches' sequence
// ranges) must survive SIGKILL, rebuilt from snapshots and log replay, so
// that a producer retrying batches that were in flight at the crash gets
// them deduplicated, not written twice.

// storedBatch is one record batch as found in a segment file.
type storedBatch struct {
	h    shard.BatchHeader
	file string
	pos  int64
}

// segmentBatches reads the segment files of topic-partition in the data
// directory dir and returns their batches up to the first position that
// does not hold a whole, CRC-valid batch (the zeros after the end, or a
// torn tail), segment after segment.
func segmentBatches(t testing.TB, dir, topic string, partition int32) []storedBatch {
	t.Helper()
	pdir := filepath.Join(dir, fmt.Sprintf("%s-%d", topic, partition))
	files, err := filepath.Glob(filepath.Join(pdir, "*.log"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no segment files in %s (%v)", pdir, err)
	}
	slices.Sort(files)
	var out []storedBatch
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for pos := int64(0); ; {
			h, err := shard.ValidateBatch(b[pos:min(int64(len(b)), pos+int64(max(0, batchSizeAt(b, pos))))], 0)
			if err != nil {
				break
			}
			out = append(out, storedBatch{h: h, file: f, pos: pos})
			pos += int64(h.Size())
		}
	}
	return out
}

// batchSizeAt is the size the batch header at pos claims, or -1.
func batchSizeAt(b []byte, pos int64) int {
	if int64(len(b)) < pos+shard.BatchHeaderSize {
		return -1
	}
	return 12 + int(int32(binary.BigEndian.Uint32(b[pos+8:])))
}

// storedEnd is the offset after the last batch of storedBatches, 0 if none.
func storedEnd(bs []storedBatch) int64 {
	if len(bs) == 0 {
		return 0
	}
	return int64(bs[len(bs)-1].h.LastOffset()) + 1
}

// TestIdempotentProducerAcrossBrokerKills runs bin/strand as a child
// process and a kgo producer with its defaults (idempotent, acks=all),
// unlimited retries and a generous delivery timeout, producing numbered
// records to four partitions. The broker is SIGKILLed mid-stream and
// restarted on the same data directory and port, several times; the
// producer retries what was in flight. In the end every partition must
// hold every record exactly once, in order: record i at offset i. Records
// that reached the disk before a kill but whose acknowledgement did not
// reach the producer are retried, and only the broker's recovered producer
// state can tell they are duplicates.
func TestIdempotentProducerAcrossBrokerKills(t *testing.T) {
	const (
		topic   = "idempotent"
		parts   = 4
		perPart = 10000
	)
	rounds := 5
	if testing.Short() {
		rounds = 2
	}
	seed := time.Now().UnixNano()
	if s := os.Getenv("STRAND_E2E_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	t.Logf("seed %d (rerun the kill points: STRAND_E2E_SEED=%d go test -ldflags=-checklinkname=0 -run '%s' ./cluster/e2e/)", seed, seed, t.Name())
	rng := rand.New(rand.NewSource(seed))

	dir := testDataDir(t)
	bp := startProc(t, dir)
	createTopic(t, newClient(t, bp.addr), topic, parts)

	cl := manualProducer(t, bp.addr, kgo.RecordRetries(math.MaxInt), kgo.RecordDeliveryTimeout(3*time.Minute), kgo.ProducerBatchMaxBytes(16<<10))
	var (
		acked   atomic.Int64
		mu      sync.Mutex
		ackedTo [parts]int64 // per partition: one past the highest acknowledged offset
		errs    []error
		failed  = make(chan struct{}) // closed at the first bad outcome
		reached = map[int64]chan struct{}{}
	)
	fail := func(err error) { // under mu
		if len(errs) == 0 {
			close(failed)
		}
		errs = append(errs, err)
	}
	// reportErrs fails the test with the first bad outcomes, if any.
	reportErrs := func() {
		mu.Lock()
		defer mu.Unlock()
		for i, err := range errs {
			if i == 10 {
				t.Errorf("... and %d more", len(errs)-10)
				break
			}
			t.Error(err)
		}
		if len(errs) > 0 {
			t.FailNow()
		}
	}
	ackAt := func(n int64) <-chan struct{} {
		mu.Lock()
		defer mu.Unlock()
		ch := make(chan struct{})
		if acked.Load() >= n {
			close(ch)
		} else {
			reached[n] = ch
		}
		return ch
	}
	promise := func(r *kgo.Record, err error) {
		mu.Lock()
		defer mu.Unlock()
		seq := int64(bytesSeq(r.Key))
		switch {
		case err != nil:
			fail(fmt.Errorf("partition %d record %d: %w", r.Partition, seq, err))
			return
		case r.Offset != seq:
			fail(fmt.Errorf("partition %d: record %d acknowledged at offset %d", r.Partition, seq, r.Offset))
		}
		ackedTo[r.Partition] = max(ackedTo[r.Partition], r.Offset+1)
		n := acked.Add(1)
		for at, ch := range reached {
			if n >= at {
				close(ch)
				delete(reached, at)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	produced := make(chan struct{})
	t.Cleanup(func() { cancel(); <-produced })
	go func() {
		defer close(produced)
		for seq := range int64(perPart) {
			for p := range int32(parts) {
				cl.Produce(ctx, &kgo.Record{Topic: topic, Partition: p, Key: recKey(p, seq), Value: recValue(p, seq)}, promise)
			}
		}
	}()

	const total = parts * perPart
	var beyondAcks int64
	for round := range rounds {
		// Kill after the producer got through another 6-12% of what is
		// left: always mid-stream. Relative to what is left, because the
		// producer runs on for a few thousand acks between the trigger
		// and the kill, and with fixed steps a fast broker reached the
		// end before the last round's kill.
		left := total - acked.Load()
		at := acked.Load() + left*6/100 + rng.Int63n(left*6/100+1)
		select {
		case <-ackAt(at):
		case <-failed:
			reportErrs()
		case <-time.After(2 * time.Minute):
			t.Fatalf("round %d: only %d of %d records acknowledged after 2 minutes", round, acked.Load(), at)
		}
		bp.kill()
		// What the restarted broker will recover is on disk now; what
		// the producer has been told is acknowledged is ackedTo (give
		// or take a response it is still processing). Records on disk
		// past that are, but for such a response, ones it will retry
		// and the broker must recognise.
		mu.Lock()
		ackedNow := ackedTo
		mu.Unlock()
		var onDisk [parts]int64
		done := true
		for p := range int32(parts) {
			onDisk[p] = storedEnd(segmentBatches(t, dir, topic, p))
			if onDisk[p] < ackedNow[p] {
				t.Fatalf("round %d: partition %d: acknowledged up to offset %d, but the disk holds only %d records", round, p, ackedNow[p]-1, onDisk[p])
			}
			beyondAcks += onDisk[p] - ackedNow[p]
			done = done && ackedNow[p] == perPart
		}
		if done {
			t.Fatalf("round %d: every record was acknowledged before the kill: the kill was not mid-stream", round)
		}
		bp.start()
		t.Logf("round %d: SIGKILL after %d acks; acknowledged %v, on disk %v", round, at, ackedNow, onDisk)
	}

	select {
	case <-produced:
	case <-failed:
		reportErrs()
	case <-time.After(3 * time.Minute):
		t.Fatal("producer still blocked after 3 minutes")
	}
	if err := cl.Flush(ctxFor(t, 3*time.Minute)); err != nil {
		t.Fatalf("flush: %v", err)
	}
	reportErrs()
	admin := newClient(t, bp.addr)
	if hw := endOffsets(t, admin, topic, parts); !slices.Equal(hw, counts(parts, perPart)) {
		t.Fatalf("high watermarks %v, want %d records in each partition: records were duplicated or lost", hw, perPart)
	}
	verifyTopic(t, bp.addr, topic, counts(parts, perPart), 2*time.Minute)
	t.Logf("%d records, each exactly once and in order; %d records were on disk but not acknowledged at the kills (retried, deduplicated)", total, beyondAcks)
	if beyondAcks == 0 {
		t.Fatal("no kill left records on disk that the producer had to retry: the test did not exercise deduplication")
	}
}

// idemBatch is an uncompressed v2 batch of n records from an idempotent
// producer: producer id, epoch and base sequence set, CRC recomputed.
func idemBatch(pid int64, epoch int16, seq int32, n int) []byte {
	vals := make([][]byte, n)
	for i := range vals {
		vals[i] = []byte(fmt.Sprintf("pid %d epoch %d seq %d", pid, epoch, int(seq)+i))
	}
	b := makeBatch(vals...)
	be := binary.BigEndian
	be.PutUint64(b[43:], uint64(pid))
	be.PutUint16(b[51:], uint16(epoch))
	be.PutUint32(b[53:], uint32(seq))
	be.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

// rawProduce sends one Produce v8 (acks=all) of batch to topic/0 on a new
// connection and returns the partition's error code and base offset.
func rawProduce(t testing.TB, addr, topic string, batch []byte) (int16, int64) {
	t.Helper()
	rc := dialRaw(t, addr)
	defer rc.nc.Close()
	req := kmsg.NewPtrProduceRequest()
	req.Version = 8
	req.Acks, req.TimeoutMillis = -1, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = 0, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := rc.roundTrip(req, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pr := resp.(*kmsg.ProduceResponse)
	if len(pr.Topics) != 1 || len(pr.Topics[0].Partitions) != 1 {
		t.Fatalf("produce response %+v", pr.Topics)
	}
	p := pr.Topics[0].Partitions[0]
	return p.ErrorCode, p.BaseOffset
}

// initProducerID asks for a producer id (pid -1) or, with KIP-360 (v3+),
// an epoch bump of pid/epoch.
func initProducerID(t testing.TB, cl *kgo.Client, pid int64, epoch int16) (int64, int16) {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.ProducerID, req.ProducerEpoch = pid, epoch
	req.TransactionTimeoutMillis = 60000
	resp, err := req.RequestWith(ctxFor(t, 30*time.Second), cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil {
		t.Fatalf("InitProducerID: %v", err)
	}
	return resp.ProducerID, resp.ProducerEpoch
}

// offsetCommit commits offsets (partition -> offset, with metadata "m<offset>")
// for group as a simple consumer (generation -1, no member id).
func offsetCommit(t testing.TB, cl *kgo.Client, group, topic string, offsets map[int32]int64) {
	t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation, req.MemberID = group, -1, ""
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	for p, o := range offsets {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch = p, o, -1
		rp.Metadata = kmsg.StringPtr(fmt.Sprint("m", o))
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxFor(t, 30*time.Second), cl)
	if err != nil {
		t.Fatalf("OffsetCommit: %v", err)
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if rp.ErrorCode != 0 {
				t.Fatalf("OffsetCommit %s/%d: %v", rt.Topic, rp.Partition, kerr.ErrorForCode(rp.ErrorCode))
			}
		}
	}
}

// checkCommitted checks group's committed offsets of topic, metadata
// included, against want (partition -> offset; absent: none committed).
func checkCommitted(t testing.TB, cl *kgo.Client, group, topic string, parts int32, want map[int32]int64) {
	t.Helper()
	resp := offsetFetch(t, cl, group)
	got := map[int32]int64{}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if rt.Topic != topic || rp.ErrorCode != 0 {
				t.Fatalf("OffsetFetch %s: unexpected %s/%d error %d", group, rt.Topic, rp.Partition, rp.ErrorCode)
			}
			if rp.Offset < 0 {
				continue
			}
			if rp.Metadata == nil || *rp.Metadata != fmt.Sprint("m", rp.Offset) {
				t.Fatalf("OffsetFetch %s/%d: offset %d with metadata %v, want m%d", topic, rp.Partition, rp.Offset, rp.Metadata, rp.Offset)
			}
			got[rp.Partition] = rp.Offset
		}
	}
	if len(got) != len(want) {
		t.Fatalf("committed offsets %v, want %v", got, want)
	}
	for p, o := range want {
		if got[p] != o {
			t.Fatalf("committed offsets %v, want %v", got, want)
		}
	}
}

// TestCommittedOffsetsAndProducerStateSurviveKill: committed offsets (and
// their deletions) and an idempotent producer's sequence and epoch state
// survive SIGKILL (rebuilt by log replay) and SIGTERM (from the snapshot
// written at close). After each restart, a retry of an earlier batch with
// the same producer id, epoch and sequence is answered with its original
// offset and not written again, a sequence gap gets
// OUT_OF_ORDER_SEQUENCE_NUMBER (45) and an old epoch INVALID_PRODUCER_EPOCH
// (47).
func TestCommittedOffsetsAndProducerStateSurviveKill(t *testing.T) {
	const topic, offTopic, group = "producer-state", "committed", "kill-survivor"
	bp := startProc(t, testDataDir(t))
	// A fresh client per broker incarnation keeps each step independent
	// of kgo's reconnection timing.
	client := func() *kgo.Client { return newClient(t, bp.addr) }
	cl := client()
	createTopic(t, cl, topic, 1)
	createTopic(t, cl, offTopic, 3)

	pid, epoch := initProducerID(t, cl, -1, -1)
	if pid < 0 || epoch != 0 {
		t.Fatalf("InitProducerID gave id %d epoch %d", pid, epoch)
	}
	// expect sends an idempotent batch and checks the answer.
	expect := func(step string, epoch int16, seq int32, n int, wantCode int16, wantBase int64) {
		t.Helper()
		code, base := rawProduce(t, bp.addr, topic, idemBatch(pid, epoch, seq, n))
		if code != wantCode || (code == 0 && base != wantBase) {
			t.Fatalf("%s: epoch %d seq %d (%d records) answered error %d (%v) base offset %d; want error %d base offset %d",
				step, epoch, seq, n, code, kerr.ErrorForCode(code), base, wantCode, wantBase)
		}
	}
	end := func(step string, want int64) {
		t.Helper()
		if hw := endOffsets(t, client(), topic, 1)[0]; hw != want {
			t.Fatalf("%s: the log ends at %d, want %d", step, hw, want)
		}
	}
	expect("first batch", 0, 0, 3, 0, 0)
	expect("second batch", 0, 3, 2, 0, 3)
	offsetCommit(t, cl, group, offTopic, map[int32]int64{0: 5, 1: 17, 2: 9})
	offsetCommit(t, cl, group, offTopic, map[int32]int64{1: 18}) // the newer commit wins
	if top, codes := offsetDelete(t, cl, group, offTopic, 2); top != 0 || codes[2] != 0 {
		t.Fatalf("OffsetDelete: %d %v", top, codes)
	}
	committed := map[int32]int64{0: 5, 1: 18}
	checkCommitted(t, cl, group, offTopic, 3, committed)

	bp.kill()
	bp.start()
	t.Log("restarted after SIGKILL")
	checkCommitted(t, client(), group, offTopic, 3, committed)
	end("after SIGKILL", 5)
	expect("retry of the last batch after SIGKILL", 0, 3, 2, 0, 3)
	expect("retry of the first batch after SIGKILL", 0, 0, 3, 0, 0)
	end("after the retries", 5)
	expect("a sequence gap after SIGKILL", 0, 9, 1, 45, -1)
	expect("the next batch after SIGKILL", 0, 5, 1, 0, 5)
	end("after the next batch", 6)

	// KIP-360 epoch bump: the new epoch starts at sequence 0 and fences 0.
	pid2, epoch := initProducerID(t, client(), pid, 0)
	if pid2 != pid || epoch != 1 {
		t.Fatalf("epoch bump gave id %d epoch %d, want %d epoch 1", pid2, epoch, pid)
	}
	expect("the new epoch's first batch", 1, 0, 2, 0, 6)
	expect("the old epoch", 0, 6, 1, 47, -1)
	offsetCommit(t, client(), group, offTopic, map[int32]int64{2: 30})
	committed[2] = 30

	if code := bp.term(60 * time.Second); code != 0 {
		t.Fatalf("SIGTERM: exit code %d", code)
	}
	bp.start()
	t.Log("restarted after SIGTERM")
	checkCommitted(t, client(), group, offTopic, 3, committed)
	end("after SIGTERM", 8)
	expect("retry of the new epoch's batch after SIGTERM", 1, 0, 2, 0, 6)
	expect("the old epoch after SIGTERM", 0, 6, 1, 47, -1)
	expect("the old epoch's last batch after SIGTERM", 0, 5, 1, 47, -1)
	expect("a sequence gap after SIGTERM", 1, 3, 1, 45, -1)
	expect("the next batch after SIGTERM", 1, 2, 1, 0, 8)

	bp.kill()
	bp.start()
	t.Log("restarted after SIGKILL")
	checkCommitted(t, client(), group, offTopic, 3, committed)
	end("after the second SIGKILL", 9)
	expect("retry of the last batch after the second SIGKILL", 1, 2, 1, 0, 8)
	expect("the old epoch after the second SIGKILL", 0, 6, 1, 47, -1)
	expect("a sequence gap after the second SIGKILL", 1, 4, 1, 45, -1)
	end("at the end", 9)
}
