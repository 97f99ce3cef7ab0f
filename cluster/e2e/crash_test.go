package e2e

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Records of the crash tests carry their identity: round, producer and
// sequence in a 16-byte header, then filler derived from it, so any record
// read back can be checked to be one that was sent, byte for byte.

func crashValue(round, producer uint32, seq uint64) []byte {
	id := uint64(round)<<56 | uint64(producer)<<48 | seq
	filler := recValue(int32(producer), int64(id))
	v := make([]byte, 16, 16+len(filler))
	binary.BigEndian.PutUint32(v, round)
	binary.BigEndian.PutUint32(v[4:], producer)
	binary.BigEndian.PutUint64(v[8:], seq)
	return append(v, filler...)
}

// crashID returns the identity in v and whether v is exactly a value
// crashValue made.
func crashID(v []byte) (uint64, bool) {
	if len(v) < 16 {
		return 0, false
	}
	round, producer, seq := binary.BigEndian.Uint32(v), binary.BigEndian.Uint32(v[4:]), binary.BigEndian.Uint64(v[8:])
	if round > 255 || producer > 255 || seq >= 1<<48 {
		return 0, false
	}
	return uint64(round)<<56 | uint64(producer)<<48 | seq, bytes.Equal(v, crashValue(round, producer, seq))
}

// ackLog records every acknowledged record: partition -> offset -> id.
type ackLog struct {
	mu     sync.Mutex
	byOff  []map[int64]uint64
	n      atomic.Int64
	target int64         // under mu: close reached when n gets there
	reach  chan struct{} // under mu
}

func newAckLog(parts int) *ackLog {
	a := &ackLog{byOff: make([]map[int64]uint64, parts)}
	for i := range a.byOff {
		a.byOff[i] = map[int64]uint64{}
	}
	return a
}

// add records an ack; it returns an error if two acks name one offset.
func (a *ackLog) add(p int32, off int64, id uint64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if prev, dup := a.byOff[p][off]; dup {
		return fmt.Errorf("partition %d offset %d acknowledged twice (ids %#x and %#x)", p, off, prev, id)
	}
	a.byOff[p][off] = id
	if a.n.Add(1) == a.target && a.reach != nil {
		close(a.reach)
		a.reach = nil
	}
	return nil
}

// at returns a channel closed once n acks have been recorded in total.
func (a *ackLog) at(n int64) <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	ch := make(chan struct{})
	if a.n.Load() >= n {
		close(ch)
		return ch
	}
	a.target, a.reach = n, ch
	return ch
}

// producers runs `n` goroutines producing crash records (acks=all) to the
// topic's partitions until stop is closed; every success goes into acks.
// wait() returns once every promise has run.
type producers struct {
	cl     *kgo.Client
	stop   chan struct{}
	wg     sync.WaitGroup // producer goroutines and outstanding promises
	failed atomic.Int64
	mu     sync.Mutex
	errs   []error // unexpected outcomes (not a delivery failure)
}

func startProducers(t testing.TB, addr, topic string, parts int32, n int, round uint32, acks *ackLog) *producers {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.DisableIdempotentWrite(),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(time.Millisecond),
		kgo.MaxBufferedRecords(4096),
	)
	if err != nil {
		t.Fatal(err)
	}
	ps := &producers{cl: cl, stop: make(chan struct{})}
	for g := range n {
		ps.wg.Add(1)
		go func() {
			defer ps.wg.Done()
			for seq := uint64(0); ; seq++ {
				select {
				case <-ps.stop:
					return
				default:
				}
				p := int32((uint64(g) + seq) % uint64(parts))
				rec := &kgo.Record{Topic: topic, Partition: p, Value: crashValue(round, uint32(g), seq)}
				ps.wg.Add(1)
				cl.Produce(nil, rec, func(r *kgo.Record, err error) {
					defer ps.wg.Done()
					if err != nil {
						ps.failed.Add(1)
						return
					}
					id, _ := crashID(r.Value)
					if err := acks.add(r.Partition, r.Offset, id); err != nil {
						ps.fail(err)
					}
				})
			}
		}()
	}
	return ps
}

func (ps *producers) fail(err error) {
	ps.mu.Lock()
	ps.errs = append(ps.errs, err)
	ps.mu.Unlock()
}

// finish stops producing, fails what is still buffered by closing the
// client, and waits for every promise.
func (ps *producers) finish(t testing.TB) {
	t.Helper()
	close(ps.stop)
	ps.cl.Close()
	done := make(chan struct{})
	go func() { ps.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("producer promises still outstanding 60 s after the client closed")
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, err := range ps.errs {
		t.Error(err)
	}
}

// checkAcked reads every partition from the start to its high watermark and
// checks: offsets are dense, every record is one the test sent (byte for
// byte), and every acknowledged record is at the offset its ack named.
func checkAcked(t testing.TB, addr, topic string, parts int32, acks *ackLog) (records int64) {
	t.Helper()
	cl := newClient(t, addr)
	hw := endOffsets(t, cl, topic, parts)
	cl.Close()
	acks.mu.Lock()
	defer acks.mu.Unlock()
	for p := range parts {
		for off, id := range acks.byOff[p] {
			if off >= hw[p] {
				t.Fatalf("partition %d: acknowledged offset %d (id %#x) is past the high watermark %d after restart", p, off, id, hw[p])
			}
		}
	}
	offsets := map[string]map[int32]kgo.Offset{topic: {}}
	var total int64
	for p := range parts {
		if hw[p] > 0 {
			offsets[topic][p] = kgo.NewOffset().AtStart()
		}
		total += hw[p]
	}
	if total == 0 {
		return 0
	}
	cons := newClient(t, addr, kgo.ConsumePartitions(offsets), kgo.FetchMaxWait(200*time.Millisecond))
	defer cons.Close()
	ctx := ctxFor(t, 3*time.Minute)
	next := make([]int64, parts)
	var got int64
	for got < total {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records back: %v", got, total, ctx.Err())
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", tp, p, err) })
		var bad error
		fs.EachRecord(func(r *kgo.Record) {
			p := r.Partition
			if bad != nil || r.Offset >= hw[p] {
				return
			}
			id, ok := crashID(r.Value)
			switch {
			case r.Offset != next[p]:
				bad = fmt.Errorf("partition %d: offset %d follows %d: a gap or reordering in the log", p, r.Offset, next[p]-1)
			case !ok:
				bad = fmt.Errorf("partition %d offset %d: a record the test never sent (%d bytes)", p, r.Offset, len(r.Value))
			default:
				if want, acked := acks.byOff[p][r.Offset]; acked && want != id {
					bad = fmt.Errorf("partition %d offset %d: holds id %#x, but id %#x was acknowledged there", p, r.Offset, id, want)
				}
			}
			next[p]++
			got++
		})
		if bad != nil {
			t.Fatal(bad)
		}
	}
	return total
}

// crashRounds runs rounds of: produce from several goroutines, stop the
// broker process at a random moment (after a random number of acks) with
// sig, restart it on the same data dir, and check every acknowledged
// record so far.
func crashRounds(t *testing.T, sig syscall.Signal, rounds int) {
	const (
		topic = "crash"
		parts = 4
	)
	seed := time.Now().UnixNano()
	if s := os.Getenv("STRAND_E2E_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	t.Logf("seed %d (rerun the kill points: STRAND_E2E_SEED=%d go test -ldflags=-checklinkname=0 -run '%s' ./cluster/e2e/)", seed, seed, t.Name())
	rng := rand.New(rand.NewSource(seed))

	p := startProc(t, testDataDir(t))
	// Small segments, so that crashes also land on segment rolls.
	code, err := createTopicReq(ctxFor(t, 20*time.Second), newClient(t, p.addr), topic, parts, map[string]string{"segment.bytes": "1048576"})
	if err != nil || code != 0 {
		t.Fatalf("create topic: %v %v", err, kerr.ErrorForCode(code))
	}
	acks := newAckLog(parts)
	for round := range rounds {
		before := acks.n.Load()
		stopAt := before + 2000 + rng.Int63n(30000)
		reached := acks.at(stopAt)
		ps := startProducers(t, p.addr, topic, parts, 4, uint32(round), acks)
		select {
		case <-reached:
		case <-time.After(2 * time.Minute):
			t.Fatalf("round %d: only %d of %d acks after 2 minutes", round, acks.n.Load()-before, stopAt-before)
		}
		switch sig {
		case syscall.SIGKILL:
			p.kill()
		case syscall.SIGTERM:
			if code := p.term(60 * time.Second); code != 0 {
				t.Fatalf("round %d: broker exited with code %d after SIGTERM, want 0", round, code)
			}
		}
		ps.finish(t)
		p.start()
		total := checkAcked(t, p.addr, topic, parts, acks)
		t.Logf("round %d: %v after %d acks; %d acked, %d failed this round; log holds %d records, all %d acked ones in place",
			round, sig, stopAt-before, acks.n.Load()-before, ps.failed.Load(), total, acks.n.Load())
		if t.Failed() {
			return
		}
	}
}

// TestSIGKILLKeepsAckedRecords kills the broker process with SIGKILL while
// four producers run with acks=all, several times at random moments, and
// checks after each restart that every acknowledged record is in place.
func TestSIGKILLKeepsAckedRecords(t *testing.T) {
	rounds := 5
	if testing.Short() {
		rounds = 2
	}
	crashRounds(t, syscall.SIGKILL, rounds)
}

// TestSIGTERMCleanShutdown stops the broker with SIGTERM while producers
// run: it must exit 0, and every acknowledged record must be there after
// the restart.
func TestSIGTERMCleanShutdown(t *testing.T) {
	rounds := 3
	if testing.Short() {
		rounds = 1
	}
	crashRounds(t, syscall.SIGTERM, rounds)
}
