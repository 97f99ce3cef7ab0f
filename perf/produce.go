package perf

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Payload layout. Only the first 8 bytes mean anything:
//
//	[0:8)  intended send time, Unix nanoseconds, big endian
//	[8:n)  random bytes from a pool (or the workload's payloadFile)
//
// The consumer subtracts [0:8) from its receipt time for the end-to-end
// latency. Writing the intended (scheduled) time rather than the actual
// send time keeps end-to-end latency free of coordinated omission too.

// payloadPoolBytes is the random pool payloads are cut from: big enough
// that consecutive messages differ, so nothing along the way dedups or
// compresses them.
const payloadPoolBytes = 1 << 20

// payloads builds message values. Values are recycled after their ack:
// at hundreds of MB/s, fresh allocations would make the client's garbage
// collector a noticeable share of the CPU the broker is competing for.
type payloads struct {
	size int
	pool []byte // random bytes, or the payload file
	file bool
	free sync.Pool
}

func newPayloads(w *Workload) (*payloads, error) {
	p := &payloads{size: w.MessageSize}
	if w.payloadPath != "" {
		b, err := os.ReadFile(w.payloadPath)
		if err != nil {
			return nil, err
		}
		p.pool, p.file, p.size = b, true, len(b)
		return p, nil
	}
	p.pool = make([]byte, payloadPoolBytes+w.MessageSize)
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(time.Now().UnixNano()))
	_, _ = rand.NewChaCha8(seed).Read(p.pool) // ChaCha8.Read never fails
	return p, nil
}

// get returns a value for message seq stamped with tsUnixNs.
func (p *payloads) get(seq uint64, tsUnixNs int64) []byte {
	var b []byte
	if v, ok := p.free.Get().(*[]byte); ok {
		b = *v
	} else {
		b = make([]byte, p.size)
	}
	if p.file {
		copy(b, p.pool)
	} else {
		// A multiplicative hash spreads consecutive seqs over the pool.
		off := int((seq * 0x9E3779B97F4A7C15) >> 44) // in [0, 2^20)
		copy(b, p.pool[off:off+p.size])
	}
	binary.BigEndian.PutUint64(b[0:8], uint64(tsUnixNs))
	return b
}

// put recycles a value whose record the client is done with.
func (p *payloads) put(b []byte) {
	if len(b) == p.size {
		p.free.Put(&b)
	}
}

// sendTimestamp reads the intended send time back from a payload.
func sendTimestamp(b []byte) (int64, bool) {
	if len(b) < 8 {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(b[0:8])), true
}

// producer is one kgo client sending to one topic on its own schedule.
type producer struct {
	r     *run
	index int
	topic string
	cl    *kgo.Client
	lat   *latencyRecorder
	lag   *latencyRecorder // fixed rate only
	sent  int64
}

// record builds message k: its key and partition follow the workload's
// key distributor (see KeyDistributor).
func (p *producer) record(k int64, intended time.Duration) *kgo.Record {
	r := p.r
	rec := &kgo.Record{Topic: p.topic, Value: r.payloads.get(uint64(k)<<16|uint64(p.index), r.baseUnix+int64(intended))}
	switch r.w.KeyDistributor {
	case RandomNano:
		rec.Key = strconv.AppendUint(nil, rand.Uint64(), 10)
	case KeyRoundRobin:
		// Offset by the producer index so producers do not move through
		// the partitions in lockstep.
		n := k + int64(p.index)
		rec.Key = strconv.AppendInt(nil, n, 10)
		rec.Partition = int32(n % int64(r.w.PartitionsPerTopic))
	}
	return rec
}

// send is the producer's sendFunc.
func (p *producer) send(ctx context.Context, k int64, intended time.Duration) {
	r := p.r
	measured := intended >= r.measureStart
	if p.lag != nil {
		p.lag.record(r.clk.now()-intended, measured)
	}
	p.cl.Produce(ctx, p.record(k, intended), func(rec *kgo.Record, err error) {
		now := r.clk.now()
		if err != nil {
			// Records cancelled because the run chose to stop its
			// producers are not broker errors.
			if !(r.producersStopped.Load() && errors.Is(err, context.Canceled)) {
				r.pubErrs.add(err)
				r.series.add(r.series.errs, now, 1)
			}
			return
		}
		p.lat.record(now-intended, measured)
		n := int64(len(rec.Value))
		r.series.add(r.series.pubMsgs, now, 1)
		r.series.add(r.series.pubBytes, now, n)
		if r.inWindow(now) {
			r.pubMsgs.Add(1)
			r.pubBytes.Add(n)
		}
		r.ackedMsgs.Add(1)
		r.backlogAck(now, r.ackedBytes.Add(n))
		r.payloads.put(rec.Value)
	})
}

// startProducers creates one client per producer and starts its loop.
// Each loop ends at the horizon or when ctx ends; done is closed when all
// have ended.
func (r *run) startProducers(ctx context.Context) (done chan struct{}, err error) {
	n := r.w.Topics * r.w.ProducersPerTopic
	for i := range n {
		cl, err := kgo.NewClient(producerOpts(r.brokers, r.w)...)
		if err != nil {
			return nil, err
		}
		p := &producer{r: r, index: i, topic: r.topics[i/r.w.ProducersPerTopic], cl: cl, lat: newLatencyRecorder()}
		if r.rate > 0 {
			p.lag = newLatencyRecorder()
		}
		r.producers = append(r.producers, p)
	}
	done = make(chan struct{})
	var wg sync.WaitGroup
	for _, p := range r.producers {
		sched := schedule{rate: uint64(r.rate), producers: uint64(n), index: uint64(p.index)}
		wg.Go(func() {
			p.sent = produceLoop(ctx, r.clk, sched, 0, r.horizon, func(k int64, at time.Duration) { p.send(ctx, k, at) })
		})
	}
	go func() { wg.Wait(); close(done) }()
	return done, nil
}

// flushProducers waits for every buffered record's outcome, up to
// timeout; what is left then is failed (and counted as errors).
func (r *run) flushProducers(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, p := range r.producers {
		wg.Go(func() {
			if p.cl.Flush(ctx) != nil {
				_ = p.cl.AbortBufferedRecords(context.Background())
			}
		})
	}
	wg.Wait()
}

// missedSends counts fixed-rate messages due before the window's end that
// the loops never sent, because the run was stopped. They would be the latest
// messages of all; reporting their number keeps the latency honest.
func (r *run) missedSends() int64 {
	if r.rate == 0 {
		return 0
	}
	var missed int64
	for _, p := range r.producers {
		sched := schedule{rate: uint64(r.rate), producers: uint64(len(r.producers)), index: uint64(p.index)}
		missed += max(sched.countBefore(time.Duration(r.end.Load()))-p.sent, 0)
	}
	return missed
}
