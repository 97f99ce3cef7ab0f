package replication

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
)

// The simulator: brokers hosting replicas, the controller, idempotent
// producers and consumers, all exchanging messages over a network that a
// seeded scheduler delays, drops, duplicates, reorders and partitions,
// while it crashes, restarts, pauses and resumes brokers. Everything runs
// on one goroutine in one order fixed by the seed.

const (
	tickMs     = Millis(10)
	ctrlNode   = 0   // the controller (the metadata quorum, which never fails here)
	clientBase = 100 // node ids of producers
)

type simConfig struct {
	brokers, partitions, minISR int
	producersPerPartition       int
	batchesPerProducer          int
	faultSteps, settleSteps     int
	dropPct, dupPct, faultPct   int
	delayTicksMax               int
	plainProducer               bool // one more producer per partition: acks=1, not idempotent, no retries
}

func randomConfig(rng *rand.Rand) simConfig {
	return simConfig{
		brokers:               3 + rng.IntN(2),
		partitions:            1 + rng.IntN(2),
		minISR:                1 + rng.IntN(2),
		producersPerPartition: 1 + rng.IntN(2),
		batchesPerProducer:    2 + rng.IntN(3),
		faultSteps:            50 + rng.IntN(110),
		settleSteps:           4000,
		dropPct:               rng.IntN(8),
		dupPct:                rng.IntN(5),
		faultPct:              2 + rng.IntN(5),
		delayTicksMax:         1 + rng.IntN(3),
		plainProducer:         rng.IntN(2) == 0,
	}
}

// coverage counts what a run exercised, so a test can tell a simulator
// that still finds failures from one that has gone tame.
type coverage struct {
	elections, isrShrinks, isrGrowths, truncations, crashes, pauses, cuts               int
	wipes, lostPartitions, stepDowns, deposed, staleReads, acked, notEnough, dupAnswers int
	// Paths inside the replicas (ReplicaStats).
	proposalsRefused, staleFetches, truncationRounds int
}

func (c *coverage) add(o coverage) {
	c.elections += o.elections
	c.isrShrinks += o.isrShrinks
	c.isrGrowths += o.isrGrowths
	c.truncations += o.truncations
	c.crashes += o.crashes
	c.pauses += o.pauses
	c.cuts += o.cuts
	c.wipes += o.wipes
	c.lostPartitions += o.lostPartitions
	c.stepDowns += o.stepDowns
	c.deposed += o.deposed
	c.staleReads += o.staleReads
	c.acked += o.acked
	c.notEnough += o.notEnough
	c.dupAnswers += o.dupAnswers
	c.proposalsRefused += o.proposalsRefused
	c.staleFetches += o.staleFetches
	c.truncationRounds += o.truncationRounds
}

type message struct {
	from, to int
	at       int // tick from which it may be delivered
	body     any
}

type brokerStatus int

const (
	up brokerStatus = iota
	crashed
	paused
)

type simBroker struct {
	id          BrokerID
	status      brokerStatus
	incarnation uint64
	logDirID    uint64      // new when the data dir is wiped
	epoch       BrokerEpoch // 0 until registered
	registerAt  int
	parts       []PartitionID // the partitions it hosts, in order
	replicas    map[PartitionID]*Replica
	disks       map[PartitionID]*simDisk
	// meta is the broker's copy of the metadata log, which survives its
	// restarts as KRaft's does.
	meta map[PartitionID]PartitionState
}

// simDisk is one partition log on one broker: a durable prefix and a
// volatile suffix. A crash keeps only the prefix.
type simDisk struct {
	batches []Batch
	recs    []Batch // per offset: the batch holding it
	durable Offset
	syncs   []Offset // fsyncs in flight, in issue order
	gen     int      // bumped whenever records are removed
}

func (d *simDisk) end() Offset { return Offset(len(d.recs)) }

func (d *simDisk) apply(op LogOp) {
	switch op.Kind {
	case OpAppend:
		for _, b := range op.Batches {
			if b.Base != d.end() {
				panic(fmt.Sprintf("sim: append at %d, disk ends at %d", b.Base, d.end()))
			}
			d.batches = append(d.batches, b)
			for range b.Values {
				d.recs = append(d.recs, b)
			}
		}
	case OpTruncate:
		d.cut(op.Offset)
	}
}

func (d *simDisk) cut(off Offset) {
	if off >= d.end() {
		return
	}
	d.gen++
	d.recs = d.recs[:off]
	i := len(d.batches)
	for i > 0 && d.batches[i-1].Base >= off {
		i--
	}
	d.batches = d.batches[:i]
	d.durable = min(d.durable, off)
	// An fsync in flight cannot make durable what is no longer there,
	// nor what replaces it after its write was issued.
	for i := range d.syncs {
		d.syncs[i] = min(d.syncs[i], off)
	}
}

func (d *simDisk) startSync(to Offset) {
	last := d.durable
	if n := len(d.syncs); n > 0 {
		last = d.syncs[n-1]
	}
	if to > last {
		d.syncs = append(d.syncs, to)
	}
}

func (d *simDisk) finishSync() {
	d.durable = max(d.durable, min(d.syncs[0], d.end()))
	d.syncs = d.syncs[1:]
}

func (d *simDisk) crash() {
	d.syncs = nil
	d.cut(d.durable)
}

type producer struct {
	node      int
	partition PartitionID
	pid       int64
	nextSeq   int32
	batches   int // produced and acknowledged so far
	inflight  *ProduceRequest
	sentAt    int
}

// plainValue marks the values of a producer without idempotence (pid 0,
// acks=1, as Kafka requires acks=all for idempotence): network
// duplicates may store them twice, and a failover may lose them.
const plainValue = 1 << 62

type consumer struct {
	partition PartitionID
	next      Offset
}

type sim struct {
	seed    uint64
	cfg     simConfig
	rng     *rand.Rand
	tick    int
	nextInc uint64
	nextVal uint64

	ctrl      simController
	brokers   []*simBroker // index = id-1
	net       []message
	cut       [8][8]bool // only brokers and the controller
	scratch   []int
	producers []*producer
	consumers []*consumer
	settling  bool

	cov     coverage
	chk     *checker
	trace   []string // last events, only when tracing
	doTrace bool
	// noDirs: followers report no data dir id (ctrlMetadataNoDirs).
	noDirs bool
	// plantBug plants ReplicaConfig's HW-before-fsync bug in every
	// replica (TestSimulationFindsPlantedBug).
	plantBug bool
}

func newSim(seed uint64, trace bool) *sim { return newSimWith(seed, trace, ctrlKind(*flagController)) }

// newSimWith is newSim on the given controller.
func newSimWith(seed uint64, trace bool, kind ctrlKind) *sim {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	cfg := randomConfig(rng)
	s := &sim{seed: seed, cfg: cfg, rng: rng, doTrace: trace, noDirs: kind == ctrlMetadataNoDirs}
	var parts []PartitionState
	for p := range cfg.partitions {
		st := PartitionState{Partition: PartitionID(p)}
		for i := range 3 {
			st.Replicas = append(st.Replicas, BrokerID((p+i)%cfg.brokers+1))
		}
		parts = append(parts, st)
	}
	s.ctrl = newSimController(kind, ControllerConfig{SessionTimeoutMs: 8 * tickMs}, parts)
	for i := range cfg.brokers {
		b := &simBroker{id: BrokerID(i + 1), disks: map[PartitionID]*simDisk{}, meta: map[PartitionID]PartitionState{}}
		for _, st := range parts {
			if contains(st.Replicas, b.id) {
				b.disks[st.Partition] = &simDisk{}
				b.parts = append(b.parts, st.Partition)
			}
		}
		// A data dir gets its id at its first start, as a broker's
		// cluster.json does: never 0, which metadata reads as unknown.
		s.nextInc++
		b.logDirID = s.nextInc
		s.brokers = append(s.brokers, b)
		s.start(b)
	}
	for p := range cfg.partitions {
		for range cfg.producersPerPartition {
			n := len(s.producers)
			s.producers = append(s.producers, &producer{node: clientBase + n, partition: PartitionID(p), pid: int64(n + 1)})
		}
		if cfg.plainProducer {
			s.producers = append(s.producers, &producer{node: clientBase + len(s.producers), partition: PartitionID(p)})
		}
		s.consumers = append(s.consumers, &consumer{partition: PartitionID(p)})
	}
	s.chk = newChecker(s)
	return s
}

func (s *sim) logf(format string, args ...any) {
	if !s.doTrace {
		return
	}
	s.trace = append(s.trace, fmt.Sprintf("t%d ", s.tick)+fmt.Sprintf(format, args...))
	if len(s.trace) > 400 {
		s.trace = s.trace[len(s.trace)-300:]
	}
}

func (s *sim) now() Millis { return Millis(s.tick) * tickMs }

func (s *sim) replicaConfig(b BrokerID, p PartitionID) ReplicaConfig {
	dir := s.broker(b).logDirID
	if s.noDirs {
		dir = 0
	}
	return ReplicaConfig{Broker: b, Partition: p, LogDirID: dir, MinISR: s.cfg.minISR, LagMaxMs: 10 * tickMs,
		RetryMs: 3 * tickMs, ProduceTimeoutMs: 30 * tickMs, FetchBatchesMax: 3, plantBugHWBeforeFsync: s.plantBug}
}

// start begins a new incarnation of b: it registers before it runs any
// replica.
func (s *sim) start(b *simBroker) {
	s.nextInc++
	b.status = up
	b.incarnation = s.nextInc
	b.epoch = 0
	b.replicas = nil
	b.registerAt = s.tick
	s.send(int(b.id), ctrlNode, RegisterRequest{Broker: b.id, Incarnation: b.incarnation, LogDirID: b.logDirID})
}

// send puts a message on the network, where it may be dropped, delayed
// or duplicated.
func (s *sim) send(from, to int, body any) {
	n := 1
	if !s.settling {
		if s.rng.IntN(100) < s.cfg.dropPct {
			s.logf("drop %d->%d %T", from, to, body)
			return
		}
		if s.rng.IntN(100) < s.cfg.dupPct {
			n = 2
		}
	}
	for range n {
		s.net = append(s.net, message{from: from, to: to, at: s.tick + s.rng.IntN(s.cfg.delayTicksMax+1), body: body})
	}
}

func (s *sim) isCut(a, b int) bool { return s.cut[a][b] }

func (s *sim) setCut(a, b int) {
	s.cut[a][b] = true
	s.cut[b][a] = true
}

func (s *sim) broker(id BrokerID) *simBroker { return s.brokers[id-1] }

// deliverable reports whether m can be delivered now; a message to a
// crashed broker or across a cut link is lost.
func (s *sim) deliverable(m message) (ok, lost bool) {
	if m.at > s.tick {
		return false, false
	}
	if m.to >= 1 && m.to < clientBase {
		switch s.broker(BrokerID(m.to)).status {
		case crashed:
			return false, true
		case paused:
			return false, false
		}
	}
	if m.from < clientBase && m.to < clientBase && s.isCut(m.from, m.to) {
		return false, true
	}
	return true, false
}

// deliverOne delivers a random deliverable message: picking at random
// among them is what reorders.
func (s *sim) deliverOne() bool {
	idx := s.scratch[:0]
	for i := 0; i < len(s.net); {
		ok, lost := s.deliverable(s.net[i])
		if lost {
			s.removeMsg(i)
			continue
		}
		if ok {
			idx = append(idx, i)
		}
		i++
	}
	s.scratch = idx
	if len(idx) == 0 {
		return false
	}
	i := idx[s.rng.IntN(len(idx))]
	m := s.net[i]
	s.removeMsg(i)
	s.deliver(m)
	return true
}

// removeMsg takes message i off the network (order there carries no
// meaning: delivery picks at random).
func (s *sim) removeMsg(i int) {
	last := len(s.net) - 1
	s.net[i] = s.net[last]
	s.net[last] = message{}
	s.net = s.net[:last]
}

func (s *sim) deliver(m message) {
	if s.doTrace {
		s.logf("deliver %d->%d %s", m.from, m.to, describe(m.body))
	}
	switch {
	case m.to == ctrlNode:
		s.controllerReceive(m.from, m.body)
	case m.to >= clientBase:
		s.producerReceive(s.producers[m.to-clientBase], m.body.(ProduceResponse))
	default:
		s.brokerReceive(s.broker(BrokerID(m.to)), m.from, m.body)
	}
}

func (s *sim) controllerReceive(from int, body any) {
	now := s.now()
	switch m := body.(type) {
	case RegisterRequest:
		resp, changed := s.ctrl.Register(m, now)
		s.publish(changed)
		s.send(ctrlNode, from, resp)
	case Heartbeat:
		s.publish(s.ctrl.Heartbeat(m, now))
	case AlterPartitionRequest:
		resp, changed := s.ctrl.AlterPartition(m)
		s.publish(changed)
		s.send(ctrlNode, from, resp)
	default:
		panic(fmt.Sprintf("sim: controller got %T", body))
	}
}

// publish carries controller changes to the replicas, as the metadata log
// would (here over the faulty network; brokers keep only newer states,
// and the controller repeats every state periodically).
func (s *sim) publish(changed []PartitionState) {
	for _, st := range changed {
		s.logf("controller: p%d leader=%d e%d pe%d isr=%v", st.Partition, st.Leader, st.LeaderEpoch, st.PartitionEpoch, st.ISR)
		old := s.chk.parts[st.Partition].ctrl
		switch {
		case st.LeaderEpoch > old.LeaderEpoch:
			s.cov.elections++
		case len(st.ISR) < len(old.ISR):
			s.cov.isrShrinks++
		case len(st.ISR) > len(old.ISR):
			s.cov.isrGrowths++
		}
		s.chk.controllerChanged(st)
		for _, b := range st.Replicas {
			s.send(ctrlNode, int(b), PartitionUpdate{State: st})
		}
	}
}

func (s *sim) brokerReceive(b *simBroker, from int, body any) {
	now := s.now()
	if resp, ok := body.(RegisterResponse); ok {
		if resp.Err != nil || resp.Incarnation != b.incarnation || b.epoch != 0 {
			return
		}
		b.epoch = resp.BrokerEpoch
		b.replicas = map[PartitionID]*Replica{}
		for _, p := range b.parts {
			d := b.disks[p]
			b.replicas[p] = NewReplica(s.replicaConfig(b.id, p), b.epoch, d.batches, b.meta[p], now)
			s.chk.newReplica(b, p)
			s.flush(b, p)
		}
		for _, st := range resp.States {
			s.applyState(b, st)
		}
		return
	}
	if b.epoch == 0 {
		return // not registered: this incarnation runs nothing yet
	}
	var p PartitionID
	switch m := body.(type) {
	case PartitionUpdate:
		s.applyState(b, m.State)
		return
	case ProduceRequest:
		p = m.Partition
		if r := b.replicas[p]; r != nil {
			if _, dup := r.findBatch(m.ProducerID, m.BaseSeq); dup && m.ProducerID != 0 && r.Role() == Leader {
				s.cov.dupAnswers++
			}
			r.Produce(m, now)
		}
	case FetchRequest:
		p = m.Partition
	case FetchResponse:
		p = m.Partition
	case EpochRequest:
		p = m.Partition
	case EpochResponse:
		p = m.Partition
	case AlterPartitionResponse:
		p = m.Partition
	default:
		panic(fmt.Sprintf("sim: broker got %T", body))
	}
	r := b.replicas[p]
	if r == nil {
		return
	}
	if _, ok := body.(ProduceRequest); !ok {
		r.Step(BrokerID(from), body, now)
	}
	s.flush(b, p)
}

func (s *sim) applyState(b *simBroker, st PartitionState) {
	r := b.replicas[st.Partition]
	if r == nil {
		return
	}
	r.ApplyState(st, s.now())
	s.flush(b, st.Partition)
}

// flush carries out what a replica asked for: log writes first, then an
// fsync, then its messages.
func (s *sim) flush(b *simBroker, p PartitionID) {
	r := b.replicas[p]
	rd := r.Ready()
	st := r.TakeStats()
	s.cov.proposalsRefused += st.ProposalsRefused
	s.cov.staleFetches += st.StaleFetches
	s.cov.truncationRounds += st.TruncationRounds
	// The state a replica acts on is in the broker's metadata log (an
	// AlterPartition answer is, too), which survives restarts.
	if st := r.State(); st.PartitionEpoch > b.meta[p].PartitionEpoch {
		b.meta[p] = st
	}
	d := b.disks[p]
	for _, op := range rd.LogOps {
		if op.Kind == OpTruncate && op.Offset < d.end() {
			s.cov.truncations++
		}
		d.apply(op)
	}
	if rd.SyncTo > 0 {
		d.startSync(rd.SyncTo)
	}
	for _, e := range rd.ToBrokers {
		s.send(int(b.id), int(e.To), e.Body)
	}
	for _, req := range rd.ToController {
		s.send(int(b.id), ctrlNode, req)
	}
	for _, pr := range rd.Produced {
		s.send(int(b.id), clientBase+pr.Client, pr)
	}
	s.chk.afterFlush(b, p)
}

func sortedParts[V any](m map[PartitionID]V) []PartitionID {
	var ps []PartitionID
	for p := range m {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// finishOneSync completes the oldest fsync in flight on a random disk of a
// running broker.
func (s *sim) finishOneSync() bool {
	type target struct {
		b *simBroker
		p PartitionID
	}
	var ts []target
	for _, b := range s.brokers {
		if b.status != up {
			continue
		}
		for _, p := range b.parts {
			if len(b.disks[p].syncs) > 0 {
				ts = append(ts, target{b, p})
			}
		}
	}
	if len(ts) == 0 {
		return false
	}
	t := ts[s.rng.IntN(len(ts))]
	d := t.b.disks[t.p]
	d.finishSync()
	s.logf("b%d p%d fsynced to %d", t.b.id, t.p, d.durable)
	if r := t.b.replicas[t.p]; r != nil && d.durable <= r.LogEnd() {
		r.Synced(d.durable, s.now())
		s.flush(t.b, t.p)
	}
	return true
}

// advance moves time one tick: brokers heartbeat, register and tick their
// replicas; the controller checks sessions and repeats its states;
// producers and consumers act.
func (s *sim) advance() {
	s.tick++
	now := s.now()
	for _, b := range s.brokers {
		if b.status != up {
			continue
		}
		if b.epoch == 0 {
			if s.tick-b.registerAt >= 3 {
				b.registerAt = s.tick
				s.send(int(b.id), ctrlNode, RegisterRequest{Broker: b.id, Incarnation: b.incarnation, LogDirID: b.logDirID})
			}
			continue
		}
		if s.tick%2 == 0 {
			s.send(int(b.id), ctrlNode, Heartbeat{Broker: b.id, BrokerEpoch: b.epoch})
		}
		for _, p := range b.parts {
			b.replicas[p].Tick(now)
			s.flush(b, p)
		}
	}
	s.publish(s.ctrl.Tick(now))
	if s.tick%10 == 0 {
		for _, st := range s.ctrl.States() {
			for _, b := range st.Replicas {
				s.send(ctrlNode, int(b), PartitionUpdate{State: st})
			}
		}
	}
	for _, pr := range s.producers {
		s.producerTick(pr)
	}
	for _, c := range s.consumers {
		s.consume(c)
	}
}

func (s *sim) producerTick(pr *producer) {
	if pr.inflight == nil {
		if pr.batches >= s.cfg.batchesPerProducer || (!s.settling && s.rng.IntN(3) != 0) {
			return
		}
		req := ProduceRequest{Partition: pr.partition, Client: pr.node - clientBase, ProducerID: pr.pid,
			BaseSeq: pr.nextSeq, Acks: -1}
		for range 1 + s.rng.IntN(3) {
			s.nextVal++
			req.Values = append(req.Values, s.nextVal)
		}
		if pr.pid == 0 {
			req.Acks = 1
			for i := range req.Values {
				req.Values[i] |= plainValue
			}
		}
		pr.inflight = &req
	} else if s.tick-pr.sentAt < 6 {
		return
	} else if pr.pid == 0 {
		pr.inflight = nil // no retries without idempotence: move on
		pr.batches++
		return
	}
	// Mostly the leader the controller names; sometimes a stale guess.
	st := s.ctrl.peek(pr.partition) // read only
	to := st.Leader
	if !s.settling && s.rng.IntN(5) == 0 {
		to = st.Replicas[s.rng.IntN(len(st.Replicas))]
	}
	if to == NoLeader {
		return
	}
	pr.sentAt = s.tick
	s.send(pr.node, int(to), *pr.inflight)
}

func (s *sim) producerReceive(pr *producer, resp ProduceResponse) {
	req := pr.inflight
	if req == nil || resp.BaseSeq != req.BaseSeq {
		return // an answer to an attempt already settled
	}
	if pr.pid == 0 {
		pr.inflight = nil
		pr.batches++
		return
	}
	switch resp.Err {
	case nil:
		s.cov.acked++
		s.chk.acked(*req, resp.Base)
		pr.nextSeq += int32(len(req.Values))
		pr.batches++
		pr.inflight = nil
	case ErrNotEnoughReplicas, ErrNotEnoughReplicasAfter:
		s.cov.notEnough++
		pr.sentAt = s.tick - 6
	case ErrOutOfOrderSequence:
		// A stale leader may lack the producer's last batches; the
		// current one must not.
		if resp.LeaderEpoch >= s.ctrl.peek(pr.partition).LeaderEpoch {
			s.chk.fail("sequence", "producer %d seq %d: OUT_OF_ORDER_SEQUENCE_NUMBER from the current leader (e%d) though it never skips a sequence",
				pr.pid, req.BaseSeq, resp.LeaderEpoch)
		}
		pr.sentAt = s.tick - 6
	default:
		pr.sentAt = s.tick - 6 // retry at the next tick
	}
}

// consume reads from a broker that believes it leads: usually the
// controller's leader, sometimes any self-styled leader, stale or not.
func (s *sim) consume(c *consumer) {
	var cands []*Replica
	for _, b := range s.brokers {
		if b.status != up || b.replicas == nil {
			continue
		}
		if r := b.replicas[c.partition]; r != nil && r.Role() == Leader {
			cands = append(cands, r)
		}
	}
	if len(cands) == 0 {
		return
	}
	r := cands[s.rng.IntN(len(cands))]
	bs, hw, err := r.Read(c.next, 4)
	if err != nil {
		return
	}
	if r.LeaderEpoch() < s.ctrl.peek(c.partition).LeaderEpoch {
		s.cov.staleReads++
	}
	for _, bt := range bs {
		s.chk.consumed(c, bt)
		c.next = bt.End()
	}
	s.chk.exposed(r, hw)
}

// wipedUnknown reports whether b's data dir was wiped and the controller
// has not yet seen it register with the new one: until then it counts b's
// replicas as they were (no system can know sooner), so the checks that
// read b's disk skip it.
func (s *sim) wipedUnknown(b BrokerID) bool {
	id, ok := s.ctrl.LogDirID(b)
	return ok && id != s.broker(b).logDirID
}

func (s *sim) crash(b *simBroker) {
	b.status = crashed
	b.replicas = nil
	b.epoch = 0
	for _, p := range b.parts {
		b.disks[p].crash()
	}
}

// fault injects one failure (or a repair) chosen by the seed.
func (s *sim) fault() {
	b := s.brokers[s.rng.IntN(len(s.brokers))]
	down := 0
	for _, x := range s.brokers {
		if x.status != up {
			down++
		}
	}
	switch s.rng.IntN(9) {
	case 0:
		if b.status != crashed && down < len(s.brokers)-1 {
			s.logf("CRASH b%d", b.id)
			s.cov.crashes++
			s.crash(b)
		}
	case 8:
		// The data dir is lost with the process: empty logs, no metadata
		// copy, a new log dir id.
		if b.status != crashed && down < len(s.brokers)-1 {
			s.logf("CRASH AND WIPE b%d", b.id)
			s.cov.wipes++
			s.crash(b)
			s.nextInc++
			b.logDirID = s.nextInc
			for _, p := range b.parts {
				b.disks[p] = &simDisk{}
				delete(b.meta, p)
				s.chk.lastMetaEpoch[[2]int32{int32(b.id), int32(p)}] = 0
			}
		}
	case 1:
		if b.status == crashed {
			s.logf("RESTART b%d", b.id)
			s.start(b)
		}
	case 2:
		if b.status == up && down < len(s.brokers)-1 {
			s.logf("PAUSE b%d", b.id)
			s.cov.pauses++
			b.status = paused
		}
	case 3:
		if b.status == paused {
			s.logf("RESUME b%d", b.id)
			b.status = up
		}
	case 4:
		// Isolate b from everyone, the controller included.
		s.logf("ISOLATE b%d", b.id)
		s.cov.cuts++
		for i := 0; i <= len(s.brokers); i++ {
			if i != int(b.id) {
				s.setCut(i, int(b.id))
			}
		}
	case 5:
		o := s.rng.IntN(len(s.brokers) + 1)
		if o != int(b.id) {
			s.logf("CUT %d-%d", o, b.id)
			s.setCut(o, int(b.id))
		}
	case 6:
		s.logf("HEAL")
		s.cut = [8][8]bool{}
	case 7:
		p := PartitionID(s.rng.IntN(s.cfg.partitions))
		changed, err := s.ctrl.ElectPreferred(p)
		s.logf("ELECT PREFERRED p%d: %v", p, err)
		s.publish(changed)
	}
}

// step runs one scheduler decision. Time moves on mostly when nothing is
// left to do at the current tick, as in a discrete-event simulation, but
// sometimes early, so that timeouts fire while messages are in flight.
func (s *sim) step() {
	if !s.settling && s.rng.IntN(100) < s.cfg.faultPct {
		s.fault()
	} else if !s.settling && s.rng.IntN(100) < 8 {
		s.advance()
	} else if s.rng.IntN(100) < 25 {
		if !s.finishOneSync() && !s.deliverOne() {
			s.advance()
		}
	} else if !s.deliverOne() && !s.finishOneSync() {
		s.advance()
	}
	s.chk.afterStep()
}

// settle repairs everything and runs until every producer is done and
// every consumer has read all of it.
func (s *sim) settle() {
	s.settling = true
	s.cut = [8][8]bool{}
	for _, b := range s.brokers {
		switch b.status {
		case crashed:
			s.start(b)
		case paused:
			b.status = up
		}
	}
	for range s.cfg.settleSteps {
		if s.chk.failed() || s.done() {
			return
		}
		s.step()
	}
}

// lost reports whether partition p lost its last in-sync copy to a wiped
// data dir: the controller keeps it offline (no clean leader can exist),
// so nothing more can finish there.
func (s *sim) lost(p PartitionID) bool { return len(s.ctrl.peek(p).ISR) == 0 }

func (s *sim) done() bool {
	for _, pr := range s.producers {
		if pr.batches < s.cfg.batchesPerProducer && !s.lost(pr.partition) {
			return false
		}
	}
	for _, c := range s.consumers {
		if c.next < s.chk.ackedEnd(c.partition) && !s.lost(c.partition) {
			return false
		}
	}
	return true
}

// run plays the whole seed and returns the first violation, if any.
func (s *sim) run() (err error) {
	defer func() {
		// A state machine's invariant panic is a finding like any other:
		// reported with its seed, not a crash of the whole sweep.
		if r := recover(); r != nil {
			err = &violation{kind: "panic", msg: fmt.Sprintf("tick %d: %v", s.tick, r)}
		}
	}()
	for range s.cfg.faultSteps {
		s.step()
		if s.chk.failed() {
			return s.chk.err
		}
	}
	s.settle()
	if s.chk.failed() {
		return s.chk.err
	}
	if !s.done() {
		var sb strings.Builder
		for _, pr := range s.producers {
			fmt.Fprintf(&sb, " producer %d: %d/%d acked;", pr.pid, pr.batches, s.cfg.batchesPerProducer)
		}
		for _, c := range s.consumers {
			fmt.Fprintf(&sb, " consumer p%d at %d of %d;", c.partition, c.next, s.chk.ackedEnd(c.partition))
		}
		for _, b := range s.brokers {
			for _, p := range b.parts {
				fmt.Fprintf(&sb, " %v;", b.replicas[p])
			}
		}
		return &violation{kind: "liveness", msg: fmt.Sprintf("not done %d steps after every fault was repaired:%s", s.cfg.settleSteps, sb.String())}
	}
	return s.chk.final()
}

// errName is an error's Kafka name (none for nil).
func errName(err error) string {
	if err == nil {
		return "none"
	}
	return strings.SplitN(err.Error(), ":", 2)[0]
}

func describe(body any) string {
	switch m := body.(type) {
	case FetchRequest:
		return fmt.Sprintf("Fetch p%d from b%d e%d off=%d dur=%d", m.Partition, m.Replica, m.CurrentLeaderEpoch, m.FetchOffset, m.DurableOffset)
	case FetchResponse:
		return fmt.Sprintf("FetchResp p%d e%d off=%d hw=%d n=%d err=%s", m.Partition, m.LeaderEpoch, m.FetchOffset, m.HighWatermark, len(m.Batches), errName(m.Err))
	case ProduceRequest:
		return fmt.Sprintf("Produce p%d pid%d seq%d n=%d", m.Partition, m.ProducerID, m.BaseSeq, len(m.Values))
	case ProduceResponse:
		return fmt.Sprintf("ProduceResp p%d pid%d seq%d base=%d err=%s", m.Partition, m.ProducerID, m.BaseSeq, m.Base, errName(m.Err))
	case EpochRequest:
		return fmt.Sprintf("OffsetForLeaderEpoch p%d from b%d current=e%d epoch=%d", m.Partition, m.Replica, m.CurrentLeaderEpoch, m.LeaderEpoch)
	case EpochResponse:
		return fmt.Sprintf("OffsetForLeaderEpochResp p%d current=e%d asked=%d epoch=%d end=%d err=%s", m.Partition, m.CurrentLeaderEpoch, m.Requested, m.Epoch, m.EndOffset, errName(m.Err))
	case PartitionUpdate:
		return fmt.Sprintf("Update p%d leader=%d e%d pe%d isr=%v", m.State.Partition, m.State.Leader, m.State.LeaderEpoch, m.State.PartitionEpoch, m.State.ISR)
	default:
		return fmt.Sprintf("%T%+v", body, body)
	}
}
