package perf

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// consumer is one kgo client reading a share of one topic's partitions for
// one subscription.
type consumer struct {
	r   *run
	sub int // subscription index, the same across topics
	cl  *kgo.Client
	lat *latencyRecorder
}

// startConsumers creates every consumer and starts polling. Consumer c of
// a subscription reads partitions p with p mod consumerPerSubscription == c;
// with more consumers than partitions the extra ones stay idle.
func (r *run) startConsumers(ctx context.Context) (*sync.WaitGroup, error) {
	var wg sync.WaitGroup
	per := r.w.ConsumerPerSubscription
	for _, topic := range r.topics {
		for s := range r.w.SubscriptionsPerTopic {
			for c := range per {
				var parts []int32
				for p := c; p < r.w.PartitionsPerTopic; p += per {
					parts = append(parts, int32(p))
				}
				if len(parts) == 0 {
					continue
				}
				cl, err := kgo.NewClient(consumerOpts(r.brokers, map[string][]int32{topic: parts})...)
				if err != nil {
					return &wg, err
				}
				cn := &consumer{r: r, sub: s, cl: cl, lat: newLatencyRecorder()}
				r.consumers = append(r.consumers, cn)
				wg.Go(func() { cn.loop(ctx) })
			}
		}
	}
	return &wg, nil
}

func (c *consumer) loop(ctx context.Context) {
	r := c.r
	for {
		fs := c.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.Canceled) {
				r.conErrs.add(err)
				r.series.add(r.series.errs, r.clk.now(), 1)
			}
		})
		// One receipt time per poll: the records of a poll arrived
		// together, and reading the clock per record would cost more
		// than it tells.
		now := r.clk.now()
		// Paused or draining, whatever arrives waited in the backlog.
		draining := r.backlog != nil && r.backlog.phase.Load() == backlogDraining
		var n, bytes int64
		fs.EachRecord(func(rec *kgo.Record) {
			n++
			bytes += int64(len(rec.Value))
			ts, ok := sendTimestamp(rec.Value)
			if !ok {
				return
			}
			intended := time.Duration(ts - r.baseUnix)
			if draining || r.inBacklog(intended) {
				return // its latency is the backlog's age, not the broker's
			}
			c.lat.record(now-intended, intended >= r.measureStart && intended < r.horizon)
		})
		if n == 0 {
			continue
		}
		r.series.add(r.series.conMsgs, now, n)
		r.series.add(r.series.conBytes, now, bytes)
		if r.inWindow(now) {
			r.conMsgs.Add(n)
			r.conBytes.Add(bytes)
		}
		r.subConsumed[c.sub].Add(n)
		r.backlogConsumed(now)
	}
}

// Backlog phases.
const (
	backlogNone int32 = iota // warm-up: consumers keep up
	backlogBuilding
	backlogDraining
	backlogDone
)

// backlogState runs a consumerBacklogSizeGB workload: at the start of the
// measured window consumers pause; once producers have had target bytes
// acked since then, consumers resume and the drain is timed until every
// subscription has read backlogDrainRatio of what it was behind.
type backlogState struct {
	target     int64
	phase      atomic.Int32
	startDrain sync.Once
	endDrain   sync.Once
	drained    chan struct{} // closed when the drain completes

	// Written once in pause and the startDrain / endDrain blocks, which the phase
	// transitions order; read after the run.
	pausedAt, drainStart, drainEnd time.Duration
	bytesAtPause, bytesAtDrain     int64
	readAtPause, readAtDrain       []int64 // per subscription
	drainGoal                      []int64
	readAtEnd                      []int64
}

// pause stops the consumers at the start of the window.
func (r *run) pause() {
	b := r.backlog
	b.pausedAt = r.clk.now()
	b.bytesAtPause = r.ackedBytes.Load()
	for _, c := range r.consumers {
		c.cl.PauseFetchTopics(r.topics...)
	}
	for s := range b.readAtPause {
		b.readAtPause[s] = r.subConsumed[s].Load()
	}
	b.phase.Store(backlogBuilding)
}

// inBacklog reports whether a message sent at intended is part of the
// backlog: sent after the consumers paused and before the drain ended.
func (r *run) inBacklog(intended time.Duration) bool {
	b := r.backlog
	if b == nil {
		return false
	}
	switch b.phase.Load() {
	case backlogNone:
		return false
	case backlogDone:
		return intended >= b.pausedAt && intended < b.drainEnd
	}
	return intended >= b.pausedAt
}

// backlogAck is called on every ack with the bytes acked so far; it starts
// the drain once the backlog is built.
func (r *run) backlogAck(now time.Duration, ackedBytes int64) {
	b := r.backlog
	if b == nil || b.phase.Load() != backlogBuilding || ackedBytes-b.bytesAtPause < b.target {
		return
	}
	b.startDrain.Do(func() {
		b.drainStart, b.bytesAtDrain = now, ackedBytes
		acked := r.ackedMsgs.Load()
		for s := range b.readAtDrain {
			read := r.subConsumed[s].Load()
			b.readAtDrain[s] = read
			b.drainGoal[s] = read + int64(r.w.BacklogDrainRatio*float64(acked-read))
		}
		if r.rate == 0 {
			// At max rate the producers would race the drain; stop them.
			r.producersStopped.Store(true)
			r.stopProducers()
		}
		b.phase.Store(backlogDraining)
		for _, c := range r.consumers {
			c.cl.ResumeFetchTopics(r.topics...)
		}
	})
}

// backlogConsumed is called after every poll; it ends the drain once every
// subscription has reached its goal.
func (r *run) backlogConsumed(now time.Duration) {
	b := r.backlog
	if b == nil || b.phase.Load() != backlogDraining {
		return
	}
	for s, goal := range b.drainGoal {
		if r.subConsumed[s].Load() < goal {
			return
		}
	}
	b.endDrain.Do(func() {
		b.drainEnd = now
		for s := range b.readAtEnd {
			b.readAtEnd[s] = r.subConsumed[s].Load()
		}
		b.phase.Store(backlogDone)
		close(b.drained)
	})
}

// caughtUp reports whether every subscription has read every acked
// message (each subscription reads all topics), the condition for ending
// the run's tail.
func (r *run) caughtUp() bool {
	acked := r.ackedMsgs.Load()
	for s := range r.subConsumed {
		if r.subConsumed[s].Load() < acked {
			return false
		}
	}
	return true
}

// errCounter counts errors and keeps the first one's text for the report.
type errCounter struct {
	n     atomic.Int64
	mu    sync.Mutex
	first string
}

func (e *errCounter) add(err error) {
	if e.n.Add(1) == 1 {
		e.mu.Lock()
		e.first = err.Error()
		e.mu.Unlock()
	}
}

func (e *errCounter) firstText() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.first
}
