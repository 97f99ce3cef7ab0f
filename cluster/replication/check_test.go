package replication

import "fmt"

// checker holds the simulator's invariants, checked after every step.
//
//   - Committed records stay: every record acknowledged to a producer
//     (acks=all) or read by a consumer sits at its offset in the durable
//     log of the partition's current leader, as named by the controller,
//     and so of every later leader (it is checked again at each step).
//   - One record, one offset: a record (a producer's value) is
//     acknowledged or read at one offset only, and one offset holds one
//     record: no duplicate from idempotent retries.
//   - In-sync logs agree: while the controller's leader leads in the
//     controller's current partition epoch, every in-sync replica holds
//     durably the same records as the leader below the leader's high
//     watermark.
//   - Monotonic views: within one incarnation of a replica, its high
//     watermark and leader epoch never decrease; a broker's partition
//     epoch never decreases across restarts that keep its data dir (its
//     metadata copy is durable); the controller's leader and partition epochs never
//     decrease; the high watermark exposed to consumers by a leader of the
//     controller's current epoch never decreases.
//   - A replica's view of its log matches the disk it wrote.
type checker struct {
	s   *sim
	err error
	// skipISRAgree leaves out the in-sync agreement check, so a planted
	// bug must show as a lost record.
	skipISRAgree bool

	parts []*partCheck
	seen  map[*Replica]*replicaSeen
	// lastMetaEpoch survives broker restarts.
	lastMetaEpoch map[[2]int32]PartitionEpoch
}

type partCheck struct {
	committed  map[Offset]uint64 // offset -> value
	at         map[uint64]Offset // value -> offset
	ackedEnd   Offset
	ctrl       PartitionState
	maxExposed Offset
	// lastCommitted is the check of committed records last passed, so an
	// unchanged leader disk is not rechecked.
	lastKey commitKey
	// agreed[b] is how far broker b's log was found to agree with the
	// leader's under agreedKey.
	agreed    map[BrokerID]Offset
	agreedKey [3]int
}

type commitKey struct {
	leader BrokerID
	gen    int
	n      int
	ok     bool
}

type replicaSeen struct {
	hw    Offset
	epoch Epoch
	role  Role
}

func newChecker(s *sim) *checker {
	c := &checker{s: s, seen: map[*Replica]*replicaSeen{}, lastMetaEpoch: map[[2]int32]PartitionEpoch{}}
	for p := range s.cfg.partitions {
		c.parts = append(c.parts, &partCheck{committed: map[Offset]uint64{}, at: map[uint64]Offset{},
			agreed: map[BrokerID]Offset{}, ctrl: s.ctrl.State(PartitionID(p))})
	}
	return c
}

func (c *checker) failed() bool { return c.err != nil }

// violation is a broken invariant; kind names which.
type violation struct {
	kind string
	msg  string
}

func (v *violation) Error() string { return v.kind + ": " + v.msg }

func (c *checker) fail(kind, format string, args ...any) {
	if c.err == nil {
		c.err = &violation{kind: kind, msg: fmt.Sprintf("tick %d: ", c.s.tick) + fmt.Sprintf(format, args...)}
	}
}

func (c *checker) ackedEnd(p PartitionID) Offset { return c.parts[p].ackedEnd }

// commit records that value v was acknowledged or read at offset o.
func (c *checker) commit(p PartitionID, o Offset, v uint64, how string) {
	pc := c.parts[p]
	if old, ok := pc.committed[o]; ok && old != v {
		c.fail("lost", "p%d offset %d %s with value %d, but value %d was committed there before", p, o, how, v, old)
	}
	if old, ok := pc.at[v]; ok && old != o && v&plainValue == 0 {
		c.fail("duplicate", "p%d value %d %s at offset %d but committed at %d before: a duplicate", p, v, how, o, old)
	}
	pc.committed[o] = v
	pc.at[v] = o
}

func (c *checker) acked(req ProduceRequest, base Offset) {
	if req.Acks != -1 {
		return // acks=1 promises only the leader's fsync: a failover may lose it
	}
	for i, v := range req.Values {
		c.commit(req.Partition, base+Offset(i), v, "acknowledged")
	}
	pc := c.parts[req.Partition]
	pc.ackedEnd = max(pc.ackedEnd, base+Offset(len(req.Values)))
}

func (c *checker) consumed(cs *consumer, b Batch) {
	if b.Base != cs.next {
		c.fail("consumer", "p%d consumer at %d was served a batch at %d", cs.partition, cs.next, b.Base)
	}
	for i, v := range b.Values {
		c.commit(cs.partition, b.Base+Offset(i), v, "read by a consumer")
	}
}

func (c *checker) exposed(r *Replica, hw Offset) {
	pc := c.parts[r.cfg.Partition]
	if r.LeaderEpoch() != pc.ctrl.LeaderEpoch || r.cfg.Broker != pc.ctrl.Leader {
		return // a stale leader may lag; what it serves is checked as committed
	}
	if hw < pc.maxExposed {
		c.fail("hw-back", "p%d leader b%d e%d exposed high watermark %d after %d had been exposed", r.cfg.Partition,
			r.cfg.Broker, r.LeaderEpoch(), hw, pc.maxExposed)
	}
	pc.maxExposed = max(pc.maxExposed, hw)
}

func (c *checker) controllerChanged(st PartitionState) {
	pc := c.parts[st.Partition]
	if st.PartitionEpoch < pc.ctrl.PartitionEpoch || st.LeaderEpoch < pc.ctrl.LeaderEpoch {
		c.fail("epoch-back", "controller p%d went back from e%d/pe%d to e%d/pe%d", st.Partition,
			pc.ctrl.LeaderEpoch, pc.ctrl.PartitionEpoch, st.LeaderEpoch, st.PartitionEpoch)
	}
	if st.Leader != NoLeader && !contains(st.ISR, st.Leader) {
		c.fail("election", "controller p%d elected b%d outside the in-sync set %v", st.Partition, st.Leader, st.ISR)
	}
	pc.ctrl = st
}

func (c *checker) newReplica(b *simBroker, p PartitionID) {
	c.seen[b.replicas[p]] = &replicaSeen{}
}

// afterFlush checks one replica after its Ready was carried out.
func (c *checker) afterFlush(b *simBroker, p PartitionID) {
	r := b.replicas[p]
	d := b.disks[p]
	if r.LogEnd() != d.end() || r.Durable() > d.durable {
		c.fail("view", "%v disagrees with its disk: end %d durable %d", r, d.end(), d.durable)
	}
	if r.HighWatermark() > r.LogEnd() || (r.Role() == Leader && r.HighWatermark() > r.Durable()) {
		c.fail("view", "%v: high watermark past its log", r)
	}
	sn := c.seen[r]
	if r.HighWatermark() < sn.hw {
		c.fail("hw-back", "%v: high watermark went back from %d", r, sn.hw)
	}
	if r.LeaderEpoch() < sn.epoch {
		c.fail("epoch-back", "%v: leader epoch went back from %d", r, sn.epoch)
	}
	if sn.role == Leader && r.Role() != Leader {
		c.s.cov.stepDowns++
		if r.Role() == Deposed {
			c.s.cov.deposed++ // learned from a newer epoch before the metadata
		}
	}
	sn.hw, sn.epoch, sn.role = r.HighWatermark(), r.LeaderEpoch(), r.Role()
	k := [2]int32{int32(b.id), int32(p)}
	if pe := r.State().PartitionEpoch; pe < c.lastMetaEpoch[k] {
		c.fail("epoch-back", "%v: partition epoch went back from %d to %d", r, c.lastMetaEpoch[k], pe)
	} else {
		c.lastMetaEpoch[k] = pe
	}
}

func (c *checker) afterStep() {
	if c.err != nil {
		return
	}
	for p, pc := range c.parts {
		c.checkCommitted(PartitionID(p), pc)
		if !c.skipISRAgree {
			c.checkISRAgree(PartitionID(p), pc)
		}
	}
}

// checkCommitted: every committed record is in the current leader's
// durable log at its offset.
func (c *checker) checkCommitted(p PartitionID, pc *partCheck) {
	l := pc.ctrl.Leader
	if l == NoLeader || c.s.wipedUnknown(l) {
		return
	}
	d := c.s.broker(l).disks[p]
	key := commitKey{leader: l, gen: d.gen, n: len(pc.committed), ok: true}
	if key == pc.lastKey {
		return // nothing removed from that disk and nothing newly committed
	}
	for o, v := range pc.committed {
		if o >= d.durable {
			c.fail("lost", "p%d: committed value %d at offset %d is not durable on leader b%d (durable to %d, log end %d)",
				p, v, o, l, d.durable, d.end())
			return
		}
		if got := d.recs[o]; got.Values[o-got.Base] != v {
			c.fail("lost", "p%d: leader b%d holds value %d at offset %d, where %d was committed",
				p, l, got.Values[o-got.Base], o, v)
			return
		}
	}
	pc.lastKey = key
}

// checkISRAgree: below the leader's high watermark every in-sync replica
// holds durably what the leader holds.
func (c *checker) checkISRAgree(p PartitionID, pc *partCheck) {
	l := pc.ctrl.Leader
	if l == NoLeader {
		return
	}
	lb := c.s.broker(l)
	if lb.replicas == nil {
		return
	}
	r := lb.replicas[p]
	if r.Role() != Leader || r.State().PartitionEpoch != pc.ctrl.PartitionEpoch {
		return
	}
	ld := lb.disks[p]
	key := [3]int{int(l), int(pc.ctrl.PartitionEpoch), ld.gen}
	for _, f := range pc.ctrl.ISR {
		if f != l {
			key[2] = key[2]*1009 + c.s.broker(f).disks[p].gen
		}
	}
	if key != pc.agreedKey {
		clear(pc.agreed)
		pc.agreedKey = key
	}
	hw := r.HighWatermark()
	for _, f := range pc.ctrl.ISR {
		if f == l {
			continue
		}
		if c.s.wipedUnknown(f) {
			continue
		}
		fd := c.s.broker(f).disks[p]
		if fd.durable < hw {
			c.fail("isr-agree", "p%d: in-sync b%d is durable only to %d, below leader b%d's high watermark %d", p, f, fd.durable, l, hw)
			return
		}
		for o := pc.agreed[f]; o < hw; o++ {
			a, b := ld.recs[o], fd.recs[o]
			if a.Values[o-a.Base] != b.Values[o-b.Base] {
				c.fail("isr-agree", "p%d: in-sync b%d holds value %d at offset %d, leader b%d holds %d (high watermark %d)",
					p, f, b.Values[o-b.Base], o, l, a.Values[o-a.Base], hw)
				return
			}
		}
		pc.agreed[f] = hw
	}
}

// final checks, once everything settled, that every acknowledged record
// was read by the consumer exactly where it was acknowledged.
func (c *checker) final() error {
	for p, pc := range c.parts {
		if c.s.lost(PartitionID(p)) {
			c.s.cov.lostPartitions++
			continue
		}
		cs := c.s.consumers[p]
		for o := Offset(0); o < cs.next; o++ {
			if _, ok := pc.committed[o]; !ok {
				return &violation{kind: "consumer", msg: fmt.Sprintf("p%d: consumer read past offset %d without recording it", p, o)}
			}
		}
		for o := range pc.committed {
			if o >= cs.next {
				return &violation{kind: "lost", msg: fmt.Sprintf("p%d: acknowledged offset %d never read (consumer at %d)", p, o, cs.next)}
			}
		}
	}
	return nil
}
