package cluster

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strand-io/strand/reactor"
	"github.com/strand-io/strand/wire"
)

// Live placement: the load sampler, the placement view the admin API
// shows, rebalancing on request and, with Config.AutoRebalance, on a
// period. It all runs on one goroutine of its own (the sampler), never on
// a core; moves themselves are MovePartition's messages.

// DefaultRebalanceMargin: a rebalance must lower the hottest core's load by
// 10% or it is not worth a move.
const DefaultRebalanceMargin = 0.10

// DefaultAutoRebalanceInterval is the time between automatic rebalances.
const DefaultAutoRebalanceInterval = 30 * time.Second

// DefaultRebalanceMinBytesPerSec: rebalancing leaves a broker whose
// hottest core moves less than this alone; at that rate no core is hot,
// and moving would only follow noise.
const DefaultRebalanceMinBytesPerSec = 64 << 10

// DefaultRebalanceMaxMoves bounds one requested rebalance's moves, so one
// request cannot pause hundreds of partitions in a row; the automatic
// rebalance makes one move per round, so each round sees the effect of the
// last.
const DefaultRebalanceMaxMoves = 64

// PlacementView is every partition's core, from the metadata, with the
// load measured over the last window.
type PlacementView struct {
	Window     time.Duration
	Cores      []CoreLoad
	Partitions []PartitionLoad // sorted by topic, partition
}

// live is the Node's live-placement state.
type live struct {
	report atomic.Pointer[LoadReport]
	reqs   chan rebalanceReq
	stop   chan struct{}
	done   chan struct{}
	// mu guards lastMoved (written by MovePartition's callers, read by
	// the sampler): admin paths only.
	mu        sync.Mutex
	lastMoved map[wire.PartitionRef]time.Time
	// cutLog and idleLog rate-limit the lines of a rebalance stopped by
	// Config.RebalanceMaxMoves or RebalanceMinBytesPerSec.
	cutLog, idleLog rateLog
	// slowLog rate-limits the warning of a core that did not report its
	// counters within 2 s (a stalled core; the sample is skipped).
	slowLog rateLog
}

type rebalanceReq struct {
	ctx    context.Context
	dryRun bool
	reply  chan rebalanceRes
}

type rebalanceRes struct {
	moves []Move
	err   error
}

func (l *live) moved(ref wire.PartitionRef) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lastMoved == nil {
		l.lastMoved = map[wire.PartitionRef]time.Time{}
	}
	l.lastMoved[ref] = time.Now()
}

func (l *live) movedSince(ref wire.PartitionRef, t time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.lastMoved[ref]
	return ok && at.After(t)
}

// startLive starts the sampler goroutine; stopLive ends it.
func (n *Node) startLive() {
	n.live = &live{reqs: make(chan rebalanceReq), stop: make(chan struct{}), done: make(chan struct{})}
	go n.runSampler()
}

func (n *Node) stopLive() {
	if n.live == nil {
		return
	}
	close(n.live.stop)
	<-n.live.done
}

func (n *Node) runSampler() {
	l := n.live
	defer close(l.done)
	meter := newLoadMeter(n.cfg.LoadWindow)
	tick := time.NewTicker(n.cfg.LoadSampleInterval)
	defer tick.Stop()
	sample := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := n.sampleLoad(ctx)
		if err != nil {
			l.slowLog.Warn(n.log, "placement: a core did not report its load in time; the load shown is older", "err", err)
			return
		}
		meter.observe(s)
		r := meter.report(len(n.cores))
		l.report.Store(&r)
	}
	sample()
	lastAuto := time.Now()
	for {
		select {
		case <-l.stop:
			return
		case <-tick.C:
			sample()
			if n.cfg.AutoRebalance && time.Since(lastAuto) >= n.cfg.AutoRebalanceInterval {
				lastAuto = time.Now()
				n.autoRebalance()
			}
		case req := <-l.reqs:
			moves, err := n.rebalance(req.ctx, req.dryRun, n.cfg.RebalanceMaxMoves, nil)
			req.reply <- rebalanceRes{moves, err}
			sample() // the next view shows the moves
		}
	}
}

// autoRebalance is one automatic round: at most one move, none for a
// partition moved within the last window.
func (n *Node) autoRebalance() {
	since := time.Now().Add(-n.cfg.LoadWindow)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	moves, err := n.rebalance(ctx, false, 1, func(p PartitionLoad) bool {
		return !n.live.movedSince(wire.PartitionRef{Topic: p.Topic, Partition: p.Partition}, since)
	})
	if err != nil {
		n.log.Warn("auto-rebalance: move failed; next round retries", "err", err)
	}
	for _, m := range moves {
		n.log.Info("auto-rebalance: moved partition", "topic", m.Topic, "partition", m.Partition,
			"from_core", m.From, "to_core", m.To, "bytes_per_sec", int64(m.Load))
	}
}

// Placement returns every partition's core (from the newest metadata) and
// the load measured over the last window. Safe from any goroutine.
func (n *Node) Placement() PlacementView {
	v := PlacementView{Cores: make([]CoreLoad, len(n.cores))}
	var r LoadReport
	if n.live != nil {
		if p := n.live.report.Load(); p != nil {
			r = *p
		}
	}
	v.Window = r.Window
	loads := make(map[wire.PartitionRef]PartitionLoad, len(r.Partitions))
	for _, p := range r.Partitions {
		loads[wire.PartitionRef{Topic: p.Topic, Partition: p.Partition}] = p
	}
	for i := range v.Cores {
		v.Cores[i].Core = reactor.CoreID(i)
		if i < len(r.Cores) {
			v.Cores[i].Busy = r.Cores[i].Busy
		}
	}
	s := n.meta.Load()
	for _, name := range s.names {
		for p, c := range s.topics[name].Cores {
			if c == notLocal { // another broker's
				continue
			}
			pl := loads[wire.PartitionRef{Topic: name, Partition: int32(p)}]
			pl.Topic, pl.Partition, pl.Core = name, int32(p), c
			v.Partitions = append(v.Partitions, pl)
			if int(c) < len(v.Cores) {
				cl := &v.Cores[c]
				cl.BytesInPerSec += pl.BytesInPerSec
				cl.BytesOutPerSec += pl.BytesOutPerSec
				cl.Partitions++
			}
		}
	}
	return v
}

// Rebalance plans moves from the measured load (planRebalance with
// Config.RebalanceMargin) and, unless dryRun, makes them one after
// another; it returns the moves made (or planned). Safe from any
// goroutine; rebalances run one at a time.
func (n *Node) Rebalance(ctx context.Context, dryRun bool) ([]Move, error) {
	req := rebalanceReq{ctx: ctx, dryRun: dryRun, reply: make(chan rebalanceRes, 1)}
	select {
	case n.live.reqs <- req:
	case <-n.live.done:
		return nil, fmt.Errorf("cluster: the broker is shutting down")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-req.reply:
		return r.moves, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// rebalance runs on the sampler goroutine. movable, if set, further
// limits which partitions may move.
func (n *Node) rebalance(ctx context.Context, dryRun bool, maxMoves int, movable func(PartitionLoad) bool) ([]Move, error) {
	topics := n.meta.Load().topics
	v := n.Placement()
	hottest := 0.0
	for _, c := range v.Cores {
		hottest = max(hottest, c.Load())
	}
	auto := movable != nil
	if hottest < n.cfg.RebalanceMinBytesPerSec {
		if !auto {
			n.live.idleLog.Warn(n.log, "rebalance: no core is hot enough to move anything (see --rebalance-min-bytes-per-sec)",
				"hottest_core_bytes_per_sec", int64(hottest), "min_bytes_per_sec", int64(n.cfg.RebalanceMinBytesPerSec))
		}
		return []Move{}, nil
	}
	plan, cut := planRebalance(v, n.cfg.RebalanceMargin, maxMoves, func(p PartitionLoad, to reactor.CoreID) bool {
		t := topics[p.Topic]
		return t != nil && !t.Internal && pinAllows(t.Configs, to) && (movable == nil || movable(p))
	})
	if cut && !auto {
		n.live.cutLog.Warn(n.log, "rebalance: stopped at --rebalance-max-moves; the placement is better but not balanced: rebalance again",
			"max_moves", maxMoves)
	}
	if dryRun {
		return plan, nil
	}
	done := []Move{}
	for _, m := range plan {
		if _, err := n.MovePartition(ctx, m.Topic, m.Partition, m.To); err != nil {
			return done, fmt.Errorf("moving %s/%d from core %d to %d: %w", m.Topic, m.Partition, m.From, m.To, err)
		}
		done = append(done, m)
	}
	return done, nil
}
