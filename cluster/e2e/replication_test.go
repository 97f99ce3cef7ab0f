package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Replication end to end (issue 13): three broker processes (the
// multibroker_test.go cluster), a topic of 12 partitions with replication
// factor 3 and min.insync.replicas 2, idempotent acks=all producers
// running throughout, and one broker at a time SIGKILLed, SIGSTOPped, or
// stopped and wiped. Whatever happens, verifyReplicated must hold at the
// end: every acknowledged record is in the log exactly once, at the offset
// its acknowledgement named, in each producer's order; nothing a consumer
// read was taken back; and the in-sync replicas' segment files hold the
// same batches below the high watermark.

const (
	replTopic     = "replicated"
	replParts     = 12
	replProducers = 3
	// replLagMax is --replica-lag-time-max: how long a silent follower
	// stays in the in-sync set (unless the controller fences its broker
	// first), so how long acks=all may stall after a kill.
	replLagMax = "3s"
	// Generous bounds on what the brokers do after a fault (they share 2
	// cores with the race detector and the test's clients).
	replMoveBound   = 15 * time.Second // leadership off a dead broker
	replRejoinBound = 45 * time.Second // a restarted broker back in every ISR
	replAckBound    = 30 * time.Second // producers making progress again
)

// replID is a record's identity in the ackLog: producer and its sequence
// in the partition (the partition is the ackLog's index).
func replID(producer int32, seq uint64) uint64 { return uint64(producer)<<48 | seq }

// replValue is producer, partition and sequence in a 16-byte header, then
// filler derived from them, so any record read back can be checked byte
// for byte.
func replValue(producer, p int32, seq uint64) []byte {
	filler := recValue(p, int64(replID(producer, seq)))
	v := make([]byte, 16, 16+len(filler))
	binary.BigEndian.PutUint32(v, uint32(producer))
	binary.BigEndian.PutUint32(v[4:], uint32(p))
	binary.BigEndian.PutUint64(v[8:], seq)
	return append(v, filler...)
}

// replParse returns the identity in v and whether v is exactly a value
// replValue made.
func replParse(v []byte) (producer, p int32, seq uint64, ok bool) {
	if len(v) < 16 {
		return 0, 0, 0, false
	}
	producer, p, seq = int32(binary.BigEndian.Uint32(v)), int32(binary.BigEndian.Uint32(v[4:])), binary.BigEndian.Uint64(v[8:])
	if producer < 0 || producer >= 1<<15 || p < 0 || seq >= 1<<48 {
		return 0, 0, 0, false
	}
	return producer, p, seq, string(v) == string(replValue(producer, p, seq))
}

// partState is one partition as a broker's Metadata reports it.
type partState struct {
	leader, epoch int32
	replicas, isr []int32
}

func (s partState) String() string {
	return fmt.Sprintf("leader %d epoch %d replicas %v isr %v", s.leader, s.epoch, s.replicas, s.isr)
}

// states returns every partition of topic as broker id reports it.
func (c *testCluster) states(ctx context.Context, id int32, topic string) ([]partState, error) {
	m, err := c.metadataOf(ctx, id, topic)
	if err != nil {
		return nil, err
	}
	if len(m.Topics) != 1 || m.Topics[0].ErrorCode != 0 {
		return nil, fmt.Errorf("metadata of %s from broker %d: %+v", topic, id, m.Topics)
	}
	out := make([]partState, len(m.Topics[0].Partitions))
	for _, p := range m.Topics[0].Partitions {
		if int(p.Partition) >= len(out) || p.Partition < 0 {
			return nil, fmt.Errorf("broker %d: partition %d of %d", id, p.Partition, len(out))
		}
		s := partState{leader: p.Leader, epoch: p.LeaderEpoch, replicas: slices.Sorted(slices.Values(p.Replicas)), isr: slices.Sorted(slices.Values(p.ISR))}
		if p.ErrorCode == kerr.LeaderNotAvailable.Code {
			s.leader = -1
		}
		out[p.Partition] = s
	}
	return out, nil
}

// statesFromOther asks the running brokers other than skip (one that is
// down or paused: -1 for none), in id order, until one answers.
func (c *testCluster) statesFromOther(ctx context.Context, skip int32, topic string) ([]partState, int32, error) {
	var errs []error
	for id := int32(1); id <= int32(len(c.procs)); id++ {
		if id == skip || !c.procs[id].running() {
			continue
		}
		s, err := c.states(ctx, id, topic)
		if err == nil {
			return s, id, nil
		}
		errs = append(errs, fmt.Errorf("broker %d: %w", id, err))
	}
	return nil, -1, errors.Join(append(errs, errors.New("no broker answered Metadata"))...)
}

// leaderMost is the broker leading the most partitions (the lowest id of
// a tie) and how many it leads.
func leaderMost(s []partState) (id int32, n int) {
	led := map[int32]int{}
	for _, p := range s {
		if p.leader >= 0 {
			led[p.leader]++
		}
	}
	for b, k := range led {
		if k > n || k == n && b < id {
			id, n = b, k
		}
	}
	return id, n
}

// createTopicRF creates topic with replication factor rf and configs.
func createTopicRF(ctx context.Context, cl *kgo.Client, topic string, parts int32, rf int16, configs map[string]string) error {
	code, msg, err := createTopicRFReq(ctx, cl, topic, parts, rf, configs)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("%w: %s", kerr.ErrorForCode(code), msg)
	}
	return nil
}

// startReplicated starts three brokers and creates the replicated topic
// (RF 3, min.insync.replicas 2), waiting until every broker reports each
// partition with a leader and all three replicas in sync.
func startReplicated(t *testing.T) *testCluster {
	t.Helper()
	c := startCluster(t, 3, "--replica-lag-time-max", replLagMax)
	ctx := ctxFor(t, 30*time.Second)
	if err := createTopicRF(ctx, c.clientOf(1), replTopic, replParts, 3, map[string]string{"min.insync.replicas": "2"}); err != nil {
		t.Fatalf("create %s with 12 partitions, replication factor 3: %v", replTopic, err)
	}
	s := c.waitAllInSync(ctx, 20*time.Second, "the new topic")
	t.Logf("topic %s: %s", replTopic, describeStates(s))
	return c
}

// describeStates is a one-line summary of every partition.
func describeStates(s []partState) string {
	var b strings.Builder
	for p, ps := range s {
		fmt.Fprintf(&b, "[%d: %s] ", p, ps)
	}
	return b.String()
}

// waitAllInSync waits until every running broker reports every partition
// of the topic with a leader and the in-sync set {1,2,3}, and returns what
// the lowest of them reported. what names the occasion for the failure
// message.
func (c *testCluster) waitAllInSync(ctx context.Context, d time.Duration, what string) []partState {
	c.t.Helper()
	var last []partState
	waitUntil(c.t, d, fmt.Sprintf("every partition led and in sync on all three brokers (%s)", what), func() error {
		var first []partState
		for id := int32(1); id <= 3; id++ {
			s, err := c.states(ctx, id, replTopic)
			if err != nil {
				return err
			}
			if len(s) != replParts {
				return fmt.Errorf("broker %d reports %d partitions", id, len(s))
			}
			for p, ps := range s {
				if ps.leader < 1 || !slices.Equal(ps.isr, []int32{1, 2, 3}) || !slices.Equal(ps.replicas, []int32{1, 2, 3}) {
					return fmt.Errorf("broker %d reports partition %d: %s", id, p, ps)
				}
			}
			if first == nil {
				first = s
			}
		}
		last = first
		return nil
	})
	return last
}

// waitMoved waits until a broker other than victim reports every partition
// led by a broker other than victim, checks that each partition victim led
// went to a member of its in-sync set with a higher leader epoch, and
// returns the time since from.
func (c *testCluster) waitMoved(ctx context.Context, victim int32, before []partState, from time.Time) time.Duration {
	c.t.Helper()
	var after []partState
	var asked int32
	waitUntil(c.t, replMoveBound, fmt.Sprintf("leadership off broker %d", victim), func() error {
		s, id, err := c.statesFromOther(ctx, victim, replTopic)
		if err != nil {
			return err
		}
		for p, ps := range s {
			if ps.leader == victim || ps.leader < 0 {
				return fmt.Errorf("broker %d reports partition %d: %s", id, p, ps)
			}
		}
		after, asked = s, id
		return nil
	})
	took := time.Since(from)
	for p, b := range before {
		a := after[p]
		if b.leader != victim {
			continue
		}
		if !slices.Contains(b.isr, a.leader) {
			c.t.Errorf("partition %d: new leader %d was not in the in-sync set %v before broker %d went (broker %d's Metadata): an unclean election", p, a.leader, b.isr, victim, asked)
		}
		if a.epoch <= b.epoch {
			c.t.Errorf("partition %d: leader %d -> %d, but the leader epoch went %d -> %d (broker %d's Metadata); a new leader must bump it", p, b.leader, a.leader, b.epoch, a.epoch, asked)
		}
	}
	return took
}

// waitOutOfISR waits until a broker other than victim reports no
// in-sync set holding victim (a dead or paused follower must leave it, or
// acks=all would wait for it, or worse, answer without it), and returns
// the time since from.
func (c *testCluster) waitOutOfISR(ctx context.Context, victim int32, from time.Time) time.Duration {
	c.t.Helper()
	waitUntil(c.t, replMoveBound, fmt.Sprintf("broker %d out of every in-sync set", victim), func() error {
		s, id, err := c.statesFromOther(ctx, victim, replTopic)
		if err != nil {
			return err
		}
		for p, ps := range s {
			if slices.Contains(ps.isr, victim) {
				return fmt.Errorf("broker %d reports partition %d: %s", id, p, ps)
			}
		}
		return nil
	})
	return time.Since(from)
}

// replLoad is replProducers franz-go clients with their defaults
// (idempotent, acks=all, unlimited retries), each producing numbered
// records to every partition at a steady pace until stop, and a consumer
// reading every partition at the tail throughout, which records what it
// read where: a record a consumer saw must never disappear.
type replLoad struct {
	acks   *ackLog
	cls    []*kgo.Client
	cancel context.CancelFunc
	loops  sync.WaitGroup
	mu     sync.Mutex
	errs   []string // under mu: failed records and double acks, the first 20
	nErrs  int      // under mu

	readMu sync.Mutex
	read   []map[int64]uint64 // under readMu: partition -> offset -> id read there
	nRead  int64              // under readMu
}

func startReplLoad(t testing.TB, c *testCluster, acks *ackLog) *replLoad {
	ctx, cancel := context.WithCancel(context.Background())
	l := &replLoad{acks: acks, cancel: cancel}
	t.Cleanup(func() { cancel(); l.loops.Wait() })
	for g := range int32(replProducers) {
		// Only the partitioner (the test picks partitions), a shorter
		// metadata refresh floor than the 5 s default (so a producer finds
		// a new leader in about the time the brokers elect it) and a
		// larger buffer differ from franz-go's defaults. A paused broker
		// holds requests until franz-go gives up on them (10 s produce
		// timeout + 10 s overhead), and an idempotent producer sends
		// nothing more to their partitions before it knows their fate:
		// with the default 10,000 records the stuck partitions would fill
		// the buffer and block the others.
		cl := defaultClient(t, c.seeds()[0], kgo.SeedBrokers(c.seeds()...),
			kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.MetadataMinAge(250*time.Millisecond),
			kgo.MaxBufferedRecords(1<<20))
		l.cls = append(l.cls, cl)
		l.loops.Add(1)
		go l.run(ctx, cl, g)
	}
	offsets := map[string]map[int32]kgo.Offset{replTopic: {}}
	for p := range int32(replParts) {
		offsets[replTopic][p] = kgo.NewOffset().AtStart()
		l.read = append(l.read, map[int64]uint64{})
	}
	cons := defaultClient(t, c.seeds()[0], kgo.SeedBrokers(c.seeds()...), kgo.ConsumePartitions(offsets),
		kgo.MetadataMinAge(250*time.Millisecond), kgo.FetchMaxWait(200*time.Millisecond))
	l.loops.Add(1)
	go l.consume(ctx, cons)
	return l
}

// consume records every record read until ctx ends.
func (l *replLoad) consume(ctx context.Context, cl *kgo.Client) {
	defer l.loops.Done()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		l.readMu.Lock()
		fs.EachRecord(func(r *kgo.Record) {
			g, _, seq, _ := replParse(r.Value)
			l.read[r.Partition][r.Offset] = replID(g, seq)
			l.nRead++
		})
		l.readMu.Unlock()
	}
}

// run produces one record to every partition each 10 ms (1,200 records/s
// per producer) until ctx ends.
func (l *replLoad) run(ctx context.Context, cl *kgo.Client, g int32) {
	defer l.loops.Done()
	seq := make([]uint64, replParts)
	tick := time.NewTicker(10 * time.Millisecond) // the producer's pace
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for p := range int32(replParts) {
			rec := &kgo.Record{Topic: replTopic, Partition: p, Value: replValue(g, p, seq[p])}
			seq[p]++
			cl.Produce(ctx, rec, func(r *kgo.Record, err error) { l.done(ctx, g, r, err) })
		}
	}
}

func (l *replLoad) done(ctx context.Context, g int32, r *kgo.Record, err error) {
	_, _, seq, _ := replParse(r.Value)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return // never buffered: Produce was blocked when the load stopped
		}
		l.fail(fmt.Sprintf("producer %d partition %d sequence %d failed: %v", g, r.Partition, seq, err))
		return
	}
	if err := l.acks.add(r.Partition, r.Offset, replID(g, seq)); err != nil {
		l.fail(fmt.Sprintf("producer %d sequence %d: %v", g, seq, err))
	}
}

func (l *replLoad) fail(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.nErrs++
	if len(l.errs) < 20 {
		l.errs = append(l.errs, msg)
	}
}

// finish stops producing and waits until every buffered record is
// acknowledged (all brokers are expected up); a record that failed is an
// error: with unlimited retries, only a non-retriable answer fails one.
func (l *replLoad) finish(t testing.TB) {
	t.Helper()
	start := time.Now()
	l.cancel()
	l.loops.Wait()
	ctx := ctxFor(t, 90*time.Second)
	for i, cl := range l.cls {
		if err := cl.Flush(ctx); err != nil {
			t.Errorf("producer %d: flush: %v (%d records still buffered)", i, err, cl.BufferedProduceRecords())
		}
	}
	t.Logf("producers stopped; every buffered record answered %v later", time.Since(start).Round(time.Millisecond))
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.nErrs > 0 {
		t.Errorf("%d records failed or were acknowledged twice (the first %d):\n  %s", l.nErrs, len(l.errs), strings.Join(l.errs, "\n  "))
	}
}

// waitAcks waits until n more records are acknowledged than now, failing
// the test (with the partitions' state) after replAckBound.
func (c *testCluster) waitAcks(ctx context.Context, acks *ackLog, n int64, skip int32, what string) time.Duration {
	c.t.Helper()
	start := time.Now()
	from := acks.n.Load()
	select {
	case <-acks.at(from + n):
		return time.Since(start)
	case <-time.After(replAckBound):
	}
	s, id, err := c.statesFromOther(ctx, skip, replTopic)
	c.t.Fatalf("%s: %d of %d more acknowledgements within %v; broker %d reports %s (%v)", what, acks.n.Load()-from, n, replAckBound, id, describeStates(s), err)
	return 0
}

// verifyReplicated checks the invariants of issue 13 against the final
// log. It reads each partition's high watermark, then every record from the
// start to it with a fresh consumer, and checks: the offsets are dense;
// every record is one a producer sent, byte for byte, in the partition it
// was sent to; no record is there twice; each producer's records are in
// its order; every acknowledged offset is below the high watermark and
// holds exactly the record acknowledged there; every record the load's
// consumer read during the run is still at the offset it was read at.
// Together: every acknowledged record is there exactly once, in order, and
// nothing a consumer saw was ever taken back. Then checkReplicasAgree
// stops the brokers and compares the in-sync replicas' files.
func verifyReplicated(t *testing.T, c *testCluster, load *replLoad) {
	t.Helper()
	start := time.Now()
	seeds := c.seeds()
	admin := newClient(t, seeds[0], kgo.SeedBrokers(seeds...))
	hw := endOffsets(t, admin, replTopic, replParts)
	var bad []string
	nBad := 0
	report := func(format string, args ...any) {
		nBad++
		if len(bad) < 30 {
			bad = append(bad, fmt.Sprintf(format, args...))
		}
	}
	acks := load.acks
	acks.mu.Lock()
	defer acks.mu.Unlock()
	load.readMu.Lock()
	defer load.readMu.Unlock()
	for p := range int32(replParts) {
		for off, id := range load.read[p] {
			if off >= hw[p] {
				report("partition %d: a consumer read %s at offset %d during the run, but the high watermark is %d", p, idName(id), off, hw[p])
			}
		}
		for off, id := range acks.byOff[p] {
			if off >= hw[p] {
				report("partition %d: offset %d (%s) was acknowledged, but the high watermark is %d", p, off, idName(id), hw[p])
			}
		}
	}
	offsets := map[string]map[int32]kgo.Offset{replTopic: {}}
	var total int64
	for p := range int32(replParts) {
		if hw[p] > 0 {
			offsets[replTopic][p] = kgo.NewOffset().AtStart()
		}
		total += hw[p]
	}
	type key struct {
		producer, partition int32
		seq                 uint64
	}
	type pp struct{ producer, partition int32 }
	seen := map[key]int64{} // record -> offset
	lastSeq := map[pp]uint64{}
	lastOff := map[pp]int64{}
	next := make([]int64, replParts)
	var got, ackedSeen int64
	if total > 0 {
		cons := newClient(t, seeds[0], kgo.SeedBrokers(seeds...), kgo.ConsumePartitions(offsets), kgo.FetchMaxWait(200*time.Millisecond))
		ctx := ctxFor(t, 2*time.Minute)
		for got < total {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("read %d of %d records back (next offsets %v, high watermarks %v): %v", got, total, next, hw, ctx.Err())
			}
			fs.EachError(func(tp string, p int32, err error) {
				if !kerr.IsRetriable(err) {
					t.Fatalf("fetch %s/%d: %v", tp, p, err)
				}
			})
			fs.EachRecord(func(r *kgo.Record) {
				p := r.Partition
				if r.Offset >= hw[p] {
					return
				}
				if r.Offset != next[p] {
					report("partition %d: offset %d follows %d: a gap or reordering in the log", p, r.Offset, next[p]-1)
				}
				next[p] = r.Offset + 1
				got++
				g, vp, seq, ok := replParse(r.Value)
				want, acked := acks.byOff[p][r.Offset]
				if seen, read := load.read[p][r.Offset]; read && (!ok || seen != replID(g, seq)) {
					report("partition %d offset %d: a consumer read %s there during the run; the final log holds %s", p, r.Offset, idName(seen), describeRecord(r.Value))
				}
				switch {
				case !ok:
					report("partition %d offset %d: a record no producer sent (%d bytes: %.16x...)", p, r.Offset, len(r.Value), r.Value)
					return
				case vp != p:
					report("partition %d offset %d: producer %d's sequence %d of partition %d", p, r.Offset, g, seq, vp)
				case acked && want != replID(g, seq):
					report("partition %d offset %d: holds %s, but %s was acknowledged at this offset", p, r.Offset, idName(replID(g, seq)), idName(want))
				case acked:
					ackedSeen++
				}
				k := key{g, vp, seq}
				if prev, dup := seen[k]; dup {
					report("partition %d: producer %d sequence %d at offsets %d and %d (acknowledged at %s)", p, g, seq, prev, r.Offset, ackedAt(acks, p, replID(g, seq)))
				}
				seen[k] = r.Offset
				o := pp{g, vp}
				if prev, ok := lastSeq[o]; ok && seq <= prev {
					report("partition %d: producer %d sequence %d at offset %d comes after its sequence %d at offset %d", p, g, seq, r.Offset, prev, lastOff[o])
				}
				lastSeq[o], lastOff[o] = seq, r.Offset
			})
		}
	}
	var ackedTotal int64 // every acknowledged record, the stale probe's too
	for _, m := range acks.byOff {
		ackedTotal += int64(len(m))
	}
	t.Logf("final log, read back in %v: %d records (high watermarks %v); %d acknowledged, %d of them read back in place; %d present but unacknowledged (acks lost in faults); %d reads by the tail consumer during the run",
		time.Since(start).Round(time.Millisecond), total, hw, ackedTotal, ackedSeen, total-ackedSeen, load.nRead)
	if nBad > 0 {
		t.Fatalf("%d violations of the replication invariants (the first %d):\n  %s", nBad, len(bad), strings.Join(bad, "\n  "))
	}
	if ackedSeen != ackedTotal {
		t.Fatalf("%d acknowledged records, but %d read back at their offsets", ackedTotal, ackedSeen)
	}
	checkReplicasAgree(t, c, hw)
}

// checkReplicasAgree stops every broker (SIGKILL: what a replica holds
// below the high watermark is fsynced) and checks that each partition's
// in-sync replicas, as the Metadata reported them before, hold the same
// batches from offset 0 to the high watermark hw[p]: the same offsets,
// leader epochs and CRCs, read from their segment files.
func checkReplicasAgree(t *testing.T, c *testCluster, hw []int64) {
	t.Helper()
	s, _, err := c.statesFromOther(ctxFor(t, 30*time.Second), -1, replTopic)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range c.procs {
		if p.running() {
			p.kill()
		}
	}
	type batch struct {
		base, last int64
		epoch      int32
		crc        uint32
	}
	// prefix is the batches of broker id's copy of partition p below
	// hw[p], stopping where offsets stop being contiguous (bytes after a
	// truncation may still hold an older batch).
	prefix := func(id, p int32) []batch {
		var out []batch
		next := int64(0)
		for _, b := range segmentBatches(t, c.procs[id].dir, replTopic, p) {
			if int64(b.h.BaseOffset) != next || int64(b.h.BaseOffset) >= hw[p] {
				break
			}
			out = append(out, batch{int64(b.h.BaseOffset), int64(b.h.LastOffset()), int32(b.h.LeaderEpoch), b.h.CRC})
			next = int64(b.h.LastOffset()) + 1
		}
		return out
	}
	var agree, pairs int
	for p := range int32(replParts) {
		isr := s[p].isr
		if len(isr) < 2 {
			t.Errorf("partition %d: in-sync set %v at the end; want at least two copies to compare", p, isr)
			continue
		}
		want := prefix(isr[0], p)
		end := int64(0)
		if len(want) > 0 {
			end = want[len(want)-1].last + 1
		}
		if end != hw[p] {
			t.Errorf("partition %d: broker %d holds %d contiguous batches, offsets 0 to %d, but the high watermark is %d", p, isr[0], len(want), end, hw[p])
			continue
		}
		for _, id := range isr[1:] {
			got := prefix(id, p)
			pairs++
			if slices.Equal(got, want) {
				agree++
				continue
			}
			i := 0
			for i < min(len(got), len(want)) && got[i] == want[i] {
				i++
			}
			var g, w any = "nothing", "nothing"
			if i < len(got) {
				g = got[i]
			}
			if i < len(want) {
				w = want[i]
			}
			t.Errorf("partition %d: in-sync replicas %d and %d differ below the high watermark %d at batch %d: %+v against %+v", p, isr[0], id, hw[p], i, w, g)
		}
	}
	t.Logf("in-sync replicas' segment files below the high watermark: %d of %d replica pairs agree", agree, pairs)
}

// describeRecord names the record in v for a failure message.
func describeRecord(v []byte) string {
	g, p, seq, ok := replParse(v)
	if !ok {
		return fmt.Sprintf("a record no producer sent (%d bytes)", len(v))
	}
	return fmt.Sprintf("%s of partition %d", idName(replID(g, seq)), p)
}

// idName names a record's identity for a failure message.
func idName(id uint64) string {
	g, seq := int32(id>>48), id&(1<<48-1)
	if g >= staleProducer {
		return fmt.Sprintf("the stale probe's round %d request %d (acks=%s)", g-staleProducer, seq, staleAcks[seq])
	}
	return fmt.Sprintf("producer %d sequence %d", g, seq)
}

// ackedAt is the offset id was acknowledged at in partition p, or "none".
func ackedAt(acks *ackLog, p int32, id uint64) string {
	for off, a := range acks.byOff[p] {
		if a == id {
			return fmt.Sprint(off)
		}
	}
	return "none"
}

// TestReplicatedSIGKILLLeaders: while idempotent acks=all producers run,
// the broker leading the most partitions is SIGKILLed five times (each
// time the one leading the most then), and restarted once the producers
// have made progress without it. Each time: every partition it led gets a
// new leader from its in-sync set with a higher leader epoch within
// replMoveBound, and the restarted broker catches up and is back in the
// in-sync set of every partition within replRejoinBound. At the end
// every acknowledged record is in the log exactly once, in order.
func TestReplicatedSIGKILLLeaders(t *testing.T) {
	kills := 5
	if testing.Short() {
		kills = 2
	}
	c := startReplicated(t)
	ctx := ctxFor(t, 4*time.Minute)
	acks := newAckLog(replParts)
	load := startReplLoad(t, c, acks)
	c.waitAcks(ctx, acks, 3000, -1, "before the first kill")
	for round := range kills {
		before, _, err := c.statesFromOther(ctx, -1, replTopic)
		if err != nil {
			t.Fatal(err)
		}
		victim, led := leaderMost(before)
		ackedBefore := acks.n.Load()
		c.procs[victim].kill()
		killed := time.Now()
		moved := c.waitMoved(ctx, victim, before, killed)
		shrunk := c.waitOutOfISR(ctx, victim, killed)
		resumed := c.waitAcks(ctx, acks, 1000, victim, fmt.Sprintf("round %d: producers with broker %d down", round, victim))
		starting := time.Now()
		c.procs[victim].start()
		restarted := time.Now()
		c.waitAllInSync(ctx, replRejoinBound, fmt.Sprintf("round %d: broker %d restarted", round, victim))
		t.Logf("round %d: SIGKILL of broker %d (leading %d partitions) after %d acks; its partitions had new leaders %v later, no in-sync set held it %v after the kill, 1000 more acks %v after that; restarted (ready in %v), it was back in every in-sync set %v later",
			round, victim, led, ackedBefore, moved.Round(time.Millisecond), shrunk.Round(time.Millisecond), resumed.Round(time.Millisecond),
			restarted.Sub(starting).Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))
		if t.Failed() {
			break
		}
	}
	load.finish(t)
	verifyReplicated(t, c, load)
}

// staleProbe is a client that sends Produce requests (acks=all and
// acks=1) to one broker for the partitions it led, each request on a
// connection opened before the broker was paused, so that the broker reads
// them only when it runs again: by then it has lost leadership, and it
// must not acknowledge them unless the records are in the final log. A
// deposed leader that has not noticed would take acks=1 records most
// readily: they need no follower.
type staleProbe struct {
	broker int32
	parts  []int32
	conns  []*rawConn
	wg     sync.WaitGroup
	mu     sync.Mutex
	answer []string // under mu: what each partition of each request got
}

const staleProducer = 1 << 14 // producer ids of the stale probes' records

// staleAcks are the required acks of the stale probe's requests 0..3:
// two sent when the leader is paused, two once it has lost leadership.
var staleAcks = []string{"all", "1", "all", "1"}

// newStaleProbe dials n connections to broker before it is paused.
func (c *testCluster) newStaleProbe(broker int32, parts []int32, n int) *staleProbe {
	sp := &staleProbe{broker: broker, parts: parts}
	for range n {
		sp.conns = append(sp.conns, dialRaw(c.t, c.procs[broker].addr))
	}
	return sp
}

// send writes request i (one record for each partition) with required
// acks on connection i and records the answer in acks when it comes.
func (sp *staleProbe) send(i int, required int16, round int32, acks *ackLog, fail func(string)) {
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 9, required, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = replTopic
	producer := staleProducer + round
	for _, p := range sp.parts {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = p, makeBatch(replValue(producer, p, uint64(i)))
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	rc := sp.conns[i]
	sp.wg.Add(1)
	go func() {
		defer sp.wg.Done()
		resp, err := rc.roundTrip(req, 60*time.Second)
		sp.mu.Lock()
		defer sp.mu.Unlock()
		if err != nil {
			sp.answer = append(sp.answer, fmt.Sprintf("request %d (acks=%d): %v", i, required, err))
			return
		}
		for _, t := range resp.(*kmsg.ProduceResponse).Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					sp.answer = append(sp.answer, fmt.Sprintf("request %d (acks=%d): %s", i, required, codeName(p.ErrorCode)))
					continue
				}
				sp.answer = append(sp.answer, fmt.Sprintf("request %d (acks=%d) partition %d: ACKNOWLEDGED at offset %d", i, required, p.Partition, p.BaseOffset))
				if err := acks.add(p.Partition, p.BaseOffset, replID(producer, uint64(i))); err != nil {
					fail(fmt.Sprintf("stale probe to broker %d: %v", sp.broker, err))
				}
			}
		}
	}()
}

// wait waits for every answer and returns them.
func (sp *staleProbe) wait() []string {
	sp.wg.Wait()
	sp.mu.Lock()
	defer sp.mu.Unlock()
	// Errors are the same for many partitions: count them.
	n := map[string]int{}
	var out []string
	for _, a := range sp.answer {
		if n[a]++; n[a] == 1 {
			out = append(out, a)
		}
	}
	sort.Strings(out)
	for i, a := range out {
		if n[a] > 1 {
			out[i] = fmt.Sprintf("%s (%d partitions)", a, n[a])
		}
	}
	return out
}

// TestReplicatedSIGSTOPLeader: while idempotent acks=all producers run,
// the broker leading the most partitions is paused with SIGSTOP until its
// partitions have new leaders and the producers have made progress
// without it (longer than --broker-lease, which is what fences it), then
// resumed with SIGCONT; twice. Requests it read only after SIGCONT (the
// producers' in flight at the pause, and a stale probe's sent to it during
// the pause, some after it lost leadership) must not be acknowledged
// unless the final log holds them there; it must stop calling itself
// leader, and rejoin every in-sync set. At the end every acknowledged
// record is in the log exactly once, in order.
func TestReplicatedSIGSTOPLeader(t *testing.T) {
	c := startReplicated(t)
	ctx := ctxFor(t, 4*time.Minute)
	acks := newAckLog(replParts)
	load := startReplLoad(t, c, acks)
	c.waitAcks(ctx, acks, 3000, -1, "before the first pause")
	for round := range int32(2) {
		before, _, err := c.statesFromOther(ctx, -1, replTopic)
		if err != nil {
			t.Fatal(err)
		}
		victim, _ := leaderMost(before)
		var led []int32
		for p, s := range before {
			if s.leader == victim {
				led = append(led, int32(p))
			}
		}
		p := c.procs[victim]
		probe := c.newStaleProbe(victim, led, 4)
		if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		paused := time.Now()
		cont := sync.OnceFunc(func() { _ = p.cmd.Process.Signal(syscall.SIGCONT) })
		t.Cleanup(cont) // before the process cleanup kills it
		// Read by the broker after SIGCONT (staleAcks).
		probe.send(0, -1, round, acks, load.fail)
		probe.send(1, 1, round, acks, load.fail)
		moved := c.waitMoved(ctx, victim, before, paused)
		// Sent after it lost leadership.
		probe.send(2, -1, round, acks, load.fail)
		probe.send(3, 1, round, acks, load.fail)
		shrunk := c.waitOutOfISR(ctx, victim, paused)
		resumed := c.waitAcks(ctx, acks, 1000, victim, fmt.Sprintf("round %d: producers with broker %d paused", round, victim))
		cont()
		pausedFor := time.Since(paused)
		answers := probe.wait()
		// The resumed broker learns it lost its partitions.
		waitUntil(t, replMoveBound, fmt.Sprintf("broker %d reporting itself no longer leader after SIGCONT", victim), func() error {
			s, err := c.states(ctx, victim, replTopic)
			if err != nil {
				return err
			}
			for p, ps := range s {
				if ps.leader == victim {
					return fmt.Errorf("broker %d reports partition %d: %s", victim, p, ps)
				}
			}
			return nil
		})
		c.waitAllInSync(ctx, replRejoinBound, fmt.Sprintf("round %d: broker %d resumed", round, victim))
		t.Logf("round %d: SIGSTOP of broker %d (leading partitions %v) for %v; new leaders after %v, out of every in-sync set after %v, 1000 more acks %v after that; the stale probe's answers: %s",
			round, victim, led, pausedFor.Round(time.Millisecond), moved.Round(time.Millisecond), shrunk.Round(time.Millisecond), resumed.Round(time.Millisecond), strings.Join(answers, "; "))
		if t.Failed() {
			break
		}
	}
	load.finish(t)
	verifyReplicated(t, c, load)
}

// TestReplicatedWipedDataDir: while idempotent acks=all producers run, the
// broker leading the most partitions is SIGKILLed, its data dir removed,
// and it is restarted under its node id and ports, joining through a
// running broker (docs/OPERATIONS.md: its Raft log went with the data
// dir, so --initial-cluster cannot bring it back): it must copy every
// partition back from the leaders and rejoin every in-sync set. Then the broker leading the most of the others is killed,
// so that partitions fail over to the wiped one (from its in-sync copy),
// and with that broker still down every acknowledged record must be in
// the log exactly once, in order.
func TestReplicatedWipedDataDir(t *testing.T) {
	c := startReplicated(t)
	ctx := ctxFor(t, 4*time.Minute)
	acks := newAckLog(replParts)
	load := startReplLoad(t, c, acks)
	c.waitAcks(ctx, acks, 10000, -1, "before the wipe")
	before, _, err := c.statesFromOther(ctx, -1, replTopic)
	if err != nil {
		t.Fatal(err)
	}
	wiped, _ := leaderMost(before)
	p := c.procs[wiped]
	p.kill()
	killed := time.Now()
	moved := c.waitMoved(ctx, wiped, before, killed)
	if err := os.RemoveAll(p.dir); err != nil {
		t.Fatal(err)
	}
	c.waitOutOfISR(ctx, wiped, killed)
	c.waitAcks(ctx, acks, 1000, wiped, fmt.Sprintf("producers with broker %d down", wiped))
	// Its Raft replica's log went with the data dir: it comes back
	// under its node id by joining through a running broker, and its new
	// Raft replica replaces the old one.
	via := wiped%3 + 1
	p.extra = []string{"--node-id", strconv.Itoa(int(wiped)), "--join", c.procs[via].addr, "--raft-listen", c.raft[wiped],
		"--cores", "1", "--broker-lease", testLease, "--replica-lag-time-max", replLagMax}
	p.start()
	restarted := time.Now()
	c.waitAllInSync(ctx, replRejoinBound, fmt.Sprintf("broker %d restarted on an empty data dir", wiped))
	t.Logf("broker %d SIGKILLed after %d acks, new leaders after %v; restarted on an empty data dir, back in every in-sync set after %v",
		wiped, acks.n.Load(), moved.Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))
	c.waitAcks(ctx, acks, 1000, -1, "after the wiped broker rejoined")

	// Fail the busiest other broker over, partly onto the wiped one.
	before, _, err = c.statesFromOther(ctx, -1, replTopic)
	if err != nil {
		t.Fatal(err)
	}
	others := slices.Clone(before)
	for i := range others {
		if others[i].leader == wiped {
			others[i].leader = -1 // not a candidate for the kill
		}
	}
	second, _ := leaderMost(others)
	c.procs[second].kill()
	moved = c.waitMoved(ctx, second, before, time.Now())
	after, _, err := c.statesFromOther(ctx, second, replTopic)
	if err != nil {
		t.Fatal(err)
	}
	var onWiped []int
	for p := range after {
		if after[p].leader == wiped && before[p].leader == second {
			onWiped = append(onWiped, p)
		}
	}
	t.Logf("broker %d SIGKILLed, new leaders after %v; partitions %v failed over to the wiped broker %d", second, moved.Round(time.Millisecond), onWiped, wiped)
	if len(onWiped) == 0 {
		t.Errorf("none of broker %d's partitions failed over to the wiped broker %d (%s): the test does not read the wiped broker's copy", second, wiped, describeStates(after))
	}
	c.waitAcks(ctx, acks, 1000, second, fmt.Sprintf("producers with broker %d down", second))
	load.finish(t)
	verifyReplicated(t, c, load)
}
