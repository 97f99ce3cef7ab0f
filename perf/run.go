package perf

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// runParams are one run's resolved settings.
type runParams struct {
	w          *Workload
	brokers    []string
	rate       int64 // total msgs/s; 0 = as fast as possible
	warmup     time.Duration
	duration   time.Duration
	proc       *procProbe // nil: no broker CPU/RSS
	progress   io.Writer  // nil: no progress lines
	label      string     // progress line prefix
	keepTopics bool
	noBacklog  bool // the rate probe never builds a backlog
}

// Timing of a run's end. tailTimeout is a variable so a test can reach it
// without waiting ten seconds.
const flushTimeout = 30 * time.Second // producers' last acks

var tailTimeout = 10 * time.Second // consumers catching up after the producers stop

// run is the state of one execution. Times are offsets from the clock's
// base, the moment the producers start; warm-up is [0, measureStart), the
// measured window [measureStart, end).
type run struct {
	runParams
	clk          wallClock
	baseUnix     int64 // clk's base as Unix ns, for payload timestamps
	measureStart time.Duration
	horizon      time.Duration // producers send nothing due at or after this
	end          atomic.Int64  // window end: horizon, or the drain's end

	topics    []string
	payloads  *payloads
	producers []*producer
	consumers []*consumer
	series    *series
	backlog   *backlogState

	stopProducers    context.CancelFunc
	producersStopped atomic.Bool

	pubMsgs, pubBytes     atomic.Int64 // acked in the window
	conMsgs, conBytes     atomic.Int64 // received in the window
	ackedMsgs, ackedBytes atomic.Int64 // acked, whole run
	subConsumed           []atomic.Int64
	pubErrs, conErrs      errCounter

	cpuStart, cpuEnd procSample
	procErr          error
	interrupted      bool

	// progressMu serialises writes to progress: the progress loop and the
	// run's warnings come from different goroutines, and the writer (Main's
	// stderr) need not be safe for that.
	progressMu sync.Mutex
}

// say writes a progress line or warning, if there is a progress writer.
func (r *run) say(format string, a ...any) {
	if r.progress == nil {
		return
	}
	r.progressMu.Lock()
	defer r.progressMu.Unlock()
	fmt.Fprintf(r.progress, format, a...)
}

func (r *run) inWindow(t time.Duration) bool {
	return t >= r.measureStart && t < time.Duration(r.end.Load())
}

// execute performs one run against p.brokers and returns its result.
func execute(ctx context.Context, p runParams) (*Result, error) {
	w := p.w
	r := &run{runParams: p}
	r.measureStart, r.horizon = p.warmup, p.warmup+p.duration
	r.end.Store(int64(r.horizon))
	r.subConsumed = make([]atomic.Int64, w.SubscriptionsPerTopic)
	if w.BacklogBytes() > 0 && !p.noBacklog {
		r.backlog = &backlogState{target: w.BacklogBytes(), drained: make(chan struct{}),
			readAtPause: make([]int64, w.SubscriptionsPerTopic),
			readAtDrain: make([]int64, w.SubscriptionsPerTopic), drainGoal: make([]int64, w.SubscriptionsPerTopic),
			readAtEnd: make([]int64, w.SubscriptionsPerTopic)}
	}
	var err error
	if r.payloads, err = newPayloads(w); err != nil {
		return nil, err
	}
	r.topics = topicNames(w)

	admin, err := kgo.NewClient(kgo.SeedBrokers(p.brokers...))
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	if err := createTopics(ctx, admin, r.topics, w.PartitionsPerTopic, w.ReplicationFactor); err != nil {
		return nil, err
	}
	if !p.keepTopics {
		defer func() {
			if err := deleteTopics(context.Background(), admin, r.topics); err != nil {
				r.say("perf: %v (the results stand)\n", err)
			}
		}()
	}

	res, err := r.measure(ctx)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// measure runs producers and consumers through warm-up, the window and the
// tail, then builds the result.
func (r *run) measure(ctx context.Context) (*Result, error) {
	r.series = newSeries(int((r.horizon+tailTimeout+flushTimeout)/time.Second) + 2)
	r.clk = wallClock{base: time.Now()}
	r.baseUnix = r.clk.base.UnixNano()
	started := time.Now().UTC()

	cctx, stopConsumers := context.WithCancel(ctx)
	defer stopConsumers()
	cwg, err := r.startConsumers(cctx)
	defer func() {
		stopConsumers()
		cwg.Wait()
		for _, c := range r.consumers {
			c.cl.Close()
		}
	}()
	if err != nil {
		return nil, err
	}
	// The producers' context is cancelled only by the run itself, after it
	// has marked the producers stopped: records the cancellation fails
	// are then not counted as broker errors. A Ctrl-C reaches them through
	// waitForEnd.
	pctx, stopProducers := context.WithCancel(context.Background())
	defer stopProducers()
	r.stopProducers = stopProducers
	if r.proc != nil {
		r.cpuStart, r.procErr = r.proc.read()
	}
	producersDone, err := r.startProducers(pctx)
	defer func() {
		for _, p := range r.producers {
			p.cl.Close()
		}
	}()
	if err != nil {
		stopProducers()
		return nil, err
	}

	// The window opens: broker CPU is counted from here, and a backlog
	// workload pauses its consumers.
	var windowOnce sync.Once
	openWindow := func() {
		windowOnce.Do(func() {
			if r.proc != nil {
				r.cpuStart, r.procErr = r.proc.read()
			}
			if r.backlog != nil {
				r.pause()
			}
		})
	}
	windowTimer := time.AfterFunc(r.measureStart-r.clk.now(), openWindow)
	prog := r.startProgress()

	r.waitForEnd(ctx, producersDone)
	if !windowTimer.Stop() {
		windowOnce.Do(func() {}) // the timer fired: wait until openWindow is done
	}
	if r.proc != nil && r.procErr == nil {
		r.cpuEnd, r.procErr = r.proc.read()
	}
	r.flushProducers(flushTimeout)
	r.waitTail(ctx)
	prog.stop()
	return r.result(started), nil
}

// waitForEnd returns when the window has closed and every producer loop
// has ended: the producers reached the horizon, a max-rate backlog
// finished draining, or ctx ended (Ctrl-C). It does not cancel the
// producers' context on a normal end: kgo fails buffered records whose
// context is done, and those records still have to be flushed.
func (r *run) waitForEnd(ctx context.Context, producersDone chan struct{}) {
	if r.backlog != nil && r.rate == 0 {
		// Producers stop when the drain starts, so their end says nothing;
		// the drain's end (or the horizon) closes the window.
		horizon := time.NewTimer(r.horizon - r.clk.now())
		defer horizon.Stop()
		select {
		case <-horizon.C:
		case <-r.backlog.drained:
			r.end.Store(int64(r.backlog.drainEnd))
		case <-ctx.Done():
			r.interrupt()
		}
	} else {
		select {
		case <-producersDone:
		case <-ctx.Done():
			r.interrupt()
		}
	}
	<-producersDone
}

// interrupt closes the window now, keeping what was measured so far.
func (r *run) interrupt() {
	r.interrupted = true
	r.producersStopped.Store(true)
	r.stopProducers()
	r.end.Store(int64(min(max(r.clk.now(), r.measureStart), r.horizon)))
}

// waitTail lets consumers read what was acked, so the last messages'
// end-to-end latency is recorded, bounded by tailTimeout.
func (r *run) waitTail(ctx context.Context) {
	if len(r.consumers) == 0 {
		return
	}
	deadline := time.NewTimer(tailTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !r.caughtUp() {
		select {
		case <-deadline.C:
			r.say("perf: consumers had not read everything %v after producing stopped\n", tailTimeout)
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// topicNames makes fresh topic names so a run never reads another run's
// messages and can start consuming at offset 0.
func topicNames(w *Workload) []string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	names := make([]string, w.Topics)
	for i := range names {
		names[i] = fmt.Sprintf("perf-%s-%s-%d", slug(w.Name), hex.EncodeToString(b[:]), i)
	}
	return names
}
