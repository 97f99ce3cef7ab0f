package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strand-io/strand/cluster/replication"
	"github.com/strand-io/strand/reactor"
	"github.com/strand-io/strand/shard"
	"github.com/strand-io/strand/wire"
)

// fetcher replicates, for one core, the partitions the core follows whose
// leader is one broker: over one connection to that broker, it first asks
// OffsetForLeaderEpoch where each newly followed partition's log diverges
// and truncates it there, then fetches (Fetch with this broker's replica
// id) and appends the leader's batches unchanged. A partition is fetched
// again only once what it last appended is durable, so the fetch offset
// it sends is what it holds fsynced: the leader's high watermark, and so
// its acks=all answers, wait for exactly that.
//
// Its state belongs to the core; the socket work runs on a goroutine of
// its own (one per core and leader, so no connection or goroutine
// funnels a broker's replication), which gets one request at a time and
// posts each answer back to the core.
type fetcher struct {
	cs      *coreState
	leader  int32
	parts   map[wire.PartitionRef]*followed
	busy    bool // a request is out
	waking  bool // a retry timer is set
	calls   chan fetchCall
	stopped bool
	// reconnect: the leader called the connection stale for some
	// partition (it has seen a newer one from this broker); the next
	// request goes over a new connection.
	reconnect bool
}

// followed is one partition a fetcher replicates.
type followed struct {
	part *partition
	// epoch is the leader epoch it follows; truncated says the
	// divergence check for it is done.
	epoch     int32
	truncated bool
	// ask is the epoch the next divergence round asks for, when askSet
	// (replication.Divergence's askNext); otherwise the log's newest.
	ask       shard.Epoch
	askSet    bool
	pending   int       // appends or a truncation not yet complete
	idleUntil time.Time // after an error: not asked for until then
}

type fetchCall struct {
	addr  string
	fresh bool // close the connection first
	req   kmsg.Request
	done  func(kmsg.Response, error) // on the core
}

const (
	replicaFetchMaxWait   = 500 * time.Millisecond
	replicaFetchMaxBytes  = 16 << 20
	replicaPartitionBytes = 1 << 20
	replicaRetry          = 200 * time.Millisecond
	replicaDialTimeout    = 3 * time.Second
)

// fetcherFor returns the core's fetcher for partitions led by leader.
func (cs *coreState) fetcherFor(leader int32) *fetcher {
	f := cs.fetchers[leader]
	if f == nil {
		f = &fetcher{cs: cs, leader: leader, parts: map[wire.PartitionRef]*followed{}, calls: make(chan fetchCall, 1)}
		cs.fetchers[leader] = f
		go f.run(cs.node.rt, cs.core.ID())
	}
	return f
}

func (f *fetcher) add(p *partition) {
	f.parts[p.ref] = &followed{part: p, epoch: p.repl.st.LeaderEpoch}
	f.kick()
}

// remove stops fetching p; the fetcher ends with its last partition.
func (f *fetcher) remove(p *partition) {
	delete(f.parts, p.ref)
	if len(f.parts) == 0 && !f.busy {
		f.stop()
	}
}

func (f *fetcher) stop() {
	if f.stopped {
		return
	}
	f.stopped = true
	if f.cs.fetchers[f.leader] == f {
		delete(f.cs.fetchers, f.leader)
	}
	close(f.calls)
}

// current reports whether fp is still this fetcher's, for the epoch it
// was asked about.
func (f *fetcher) current(ref wire.PartitionRef, fp *followed, epoch int32) bool {
	return f.parts[ref] == fp && fp.epoch == epoch && fp.part.repl != nil && fp.part.repl.fetcher == f
}

// kick sends the next request if none is out: the divergence checks
// first, then a fetch for every partition with nothing pending.
func (f *fetcher) kick() {
	if f.busy || f.stopped || f.cs.closing {
		return
	}
	if len(f.parts) == 0 {
		f.stop()
		return
	}
	addr := f.leaderAddr()
	if addr == "" {
		f.retry()
		return
	}
	now := time.Now()
	var epochs, fetches []*followed
	for _, fp := range f.parts {
		if fp.pending > 0 && fp.truncated {
			// Wait for every partition's appends to be durable and fetch
			// them all in one request: fetched without it, a partition
			// whose fsync lands a moment later would wait out the
			// others' long-poll, and acks=all with it.
			return
		}
	}
	for _, fp := range f.parts {
		switch {
		case fp.pending > 0 || now.Before(fp.idleUntil):
		case !fp.truncated:
			epochs = append(epochs, fp)
		default:
			fetches = append(fetches, fp)
		}
	}
	switch {
	case len(epochs) > 0:
		f.askEpochs(addr, epochs)
	case len(fetches) > 0:
		f.fetch(addr, fetches)
	default:
		for _, fp := range f.parts {
			if fp.pending == 0 {
				f.retry() // some partition is idling after an error
				break
			}
		}
	}
}

// retry kicks again after a pause.
func (f *fetcher) retry() {
	if f.waking || f.stopped {
		return
	}
	f.waking = true
	f.cs.core.After(replicaRetry, func() {
		f.waking = false
		f.kick()
	})
}

func (f *fetcher) leaderAddr() string {
	for _, b := range f.cs.node.meta.Load().brokers {
		if b.NodeID == f.leader {
			return net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
		}
	}
	return ""
}

func (f *fetcher) send(addr string, req kmsg.Request, done func(kmsg.Response, error)) {
	f.busy = true
	fresh := f.reconnect
	f.reconnect = false
	f.calls <- fetchCall{addr: addr, fresh: fresh, req: req, done: func(resp kmsg.Response, err error) {
		f.busy = false
		if f.stopped || f.cs.closing {
			return
		}
		if err != nil {
			f.cs.node.replLog.Warn(f.cs.node.log, "replication: fetching from the leader failed", "leader", f.leader, "addr", addr, "err", err)
			f.retry()
			return
		}
		done(resp, nil)
		f.kick()
	}}
}

// askEpochs is the divergence check (KIP-101/279): where does the leader's
// log end for the newest epoch this log has?
func (f *fetcher) askEpochs(addr string, fps []*followed) {
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.SetVersion(4)
	req.ReplicaID = f.cs.node.cfg.NodeID
	type asked struct {
		fp    *followed
		epoch int32
		mine  shard.Epoch
	}
	byRef := map[wire.PartitionRef]asked{}
	topics := map[string]int{}
	for _, fp := range fps {
		l := fp.part.log
		if l.NextOffset() == l.LogStartOffset() {
			fp.truncated = true // nothing here can diverge
			continue
		}
		mine := l.LeaderEpoch()
		if fp.askSet {
			mine = min(mine, fp.ask) // a further round: see truncate
		}
		i, ok := topics[fp.part.ref.Topic]
		if !ok {
			i = len(req.Topics)
			topics[fp.part.ref.Topic] = i
			t := kmsg.NewOffsetForLeaderEpochRequestTopic()
			t.Topic = fp.part.ref.Topic
			req.Topics = append(req.Topics, t)
		}
		p := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		p.Partition, p.CurrentLeaderEpoch, p.LeaderEpoch = fp.part.ref.Partition, fp.epoch, int32(mine)
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, p)
		byRef[fp.part.ref] = asked{fp, fp.epoch, mine}
	}
	if len(req.Topics) == 0 {
		f.kick()
		return
	}
	f.send(addr, req, func(r kmsg.Response, _ error) {
		resp := r.(*kmsg.OffsetForLeaderEpochResponse)
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				ref := wire.PartitionRef{Topic: t.Topic, Partition: p.Partition}
				a, ok := byRef[ref]
				if !ok || !f.current(ref, a.fp, a.epoch) {
					continue
				}
				if p.ErrorCode != 0 {
					f.partitionError(a.fp, p.ErrorCode)
					continue
				}
				f.truncate(a.fp, p.LeaderEpoch, p.EndOffset)
			}
		}
	})
}

// truncate cuts fp's log where it diverges from the leader's, by
// replication.Divergence (the rule the simulator checks). When the cut
// does not settle it (this log lacks the leader's epoch), the check is
// asked again with the last epoch the cut leaves.
func (f *fetcher) truncate(fp *followed, leaderEpoch int32, leaderEnd int64) {
	l := fp.part.log
	cut, agreed, next := divergenceRound(l, leaderEpoch, leaderEnd)
	fp.ask, fp.askSet = next, !agreed
	if cut >= int64(l.NextOffset()) {
		fp.truncated = agreed
		return // the caller kicks
	}
	fp.pending++
	ref, epoch := fp.part.ref, fp.epoch
	before := l.NextOffset()
	l.TruncateTo(shard.Offset(cut), func(end shard.Offset, err error) {
		fp.pending--
		if err != nil {
			f.cs.node.log.Error("replication: truncating a diverged log failed", "partition", ref, "to", cut, "err", err)
			fp.idleUntil = time.Now().Add(time.Second)
		} else {
			f.cs.node.log.Info("replication: truncated the log where it diverged from the leader's", "partition", ref,
				"leader", f.leader, "epoch", epoch, "from", before, "to", end, "settled", agreed)
			fp.truncated = agreed
		}
		f.kick()
	})
}

// divergenceRound is replication.Divergence over l's leader-epoch cache,
// for the leader's OffsetForLeaderEpoch answer (leaderEpoch, leaderEnd):
// where to cut l, whether l then agrees with the leader's log, and the
// epoch to ask for next if not.
func divergenceRound(l *shard.Log, leaderEpoch int32, leaderEnd int64) (cut int64, agreed bool, next shard.Epoch) {
	local := func(e replication.Epoch) (replication.Epoch, replication.Offset) {
		mine, end := l.EndOffsetForEpoch(shard.Epoch(e))
		if mine < 0 {
			return replication.NoEpoch, 0
		}
		return replication.Epoch(mine), replication.Offset(end)
	}
	if leaderEnd < 0 {
		leaderEpoch = -1
	}
	c, agreed, n := replication.Divergence(replication.Epoch(leaderEpoch), replication.Offset(leaderEnd), local,
		replication.Offset(l.LogStartOffset()))
	return int64(c), agreed, shard.Epoch(n)
}

// fetch asks the leader for what follows each partition's log end.
func (f *fetcher) fetch(addr string, fps []*followed) {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.ReplicaID = f.cs.node.cfg.NodeID
	req.MaxWaitMillis = int32(replicaFetchMaxWait / time.Millisecond)
	req.MinBytes, req.MaxBytes = 1, replicaFetchMaxBytes
	req.SessionEpoch = -1
	// The leader names this data dir when it proposes us into an in-sync
	// set: the metadata refuses the proposal if this broker has come
	// back with another dir since (wiped), whose copy is empty.
	var dir [8]byte
	binary.BigEndian.PutUint64(dir[:], f.cs.node.id.LogDirID)
	req.UnknownTags.Set(wire.TagFollowerLogDir, dir[:])
	type asked struct {
		fp     *followed
		epoch  int32
		offset int64
	}
	byRef := map[wire.PartitionRef]asked{}
	topics := map[string]int{}
	for _, fp := range fps {
		i, ok := topics[fp.part.ref.Topic]
		if !ok {
			i = len(req.Topics)
			topics[fp.part.ref.Topic] = i
			t := kmsg.NewFetchRequestTopic()
			t.Topic = fp.part.ref.Topic
			req.Topics = append(req.Topics, t)
		}
		l := fp.part.log
		p := kmsg.NewFetchRequestTopicPartition()
		p.Partition, p.CurrentLeaderEpoch = fp.part.ref.Partition, fp.epoch
		p.FetchOffset, p.LogStartOffset, p.PartitionMaxBytes = int64(l.NextOffset()), -1, replicaPartitionBytes
		p.LastFetchedEpoch = -1
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, p)
		byRef[fp.part.ref] = asked{fp, fp.epoch, p.FetchOffset}
	}
	f.send(addr, req, func(r kmsg.Response, _ error) {
		resp := r.(*kmsg.FetchResponse)
		if resp.ErrorCode != 0 {
			f.cs.node.replLog.Warn(f.cs.node.log, "replication: the leader refused a fetch", "leader", f.leader, "err", kerr.ErrorForCode(resp.ErrorCode))
			for _, a := range byRef {
				a.fp.idleUntil = time.Now().Add(replicaRetry)
			}
			return
		}
		for _, t := range resp.Topics {
			for i := range t.Partitions {
				p := &t.Partitions[i]
				ref := wire.PartitionRef{Topic: t.Topic, Partition: p.Partition}
				a, ok := byRef[ref]
				if !ok || !f.current(ref, a.fp, a.epoch) || int64(a.fp.part.log.NextOffset()) != a.offset {
					continue
				}
				if p.ErrorCode != 0 {
					if p.ErrorCode == kerr.OffsetOutOfRange.Code && p.LogStartOffset > a.offset {
						f.resetTo(a.fp, p.LogStartOffset)
						continue
					}
					f.partitionError(a.fp, p.ErrorCode)
					continue
				}
				f.appendFetched(a.fp, p.RecordBatches, p.HighWatermark)
				if r := a.fp.part.repl; r != nil && !slices.Contains(r.st.ISR, r.me) {
					t := &f.cs.node.catchUp
					if pause := t.take(int64(len(p.RecordBatches)), time.Now()); pause > 0 {
						a.fp.idleUntil = time.Now().Add(pause)
						t.log.Warn(f.cs.node.log, "replication: catch-up throttled (--replica-catchup-bytes-per-sec)",
							"partition", ref, "rate", t.rate, "pause", pause)
					}
				}
			}
		}
	})
}

// resetTo starts fp's log over at the leader's log start: all of it lies
// below, where the leader's retention has removed what it would fetch
// next, so none of it can be fetched onto (Kafka's
// truncateFullyAndStartAt). Nothing in it is the leader's to keep: the
// leader has dropped those records itself.
func (f *fetcher) resetTo(fp *followed, leaderStart int64) {
	l := fp.part.log
	ref, before := fp.part.ref, l.NextOffset()
	f.cs.node.log.Warn("replication: this replica's log ends below the leader's log start; starting it over there",
		"partition", ref, "leader", f.leader, "log_end", before, "leader_log_start", leaderStart)
	fp.pending++
	l.ResetTo(shard.Offset(leaderStart), func(_ shard.Offset, err error) {
		fp.pending--
		if err != nil {
			f.cs.node.log.Error("replication: starting the log over failed", "partition", ref, "at", leaderStart, "err", err)
			fp.idleUntil = time.Now().Add(time.Second)
		}
		f.kick()
	})
}

// appendFetched appends the leader's batches as they are and takes its
// high watermark (never past what is durable here: the log sees to it).
func (f *fetcher) appendFetched(fp *followed, data []byte, hw int64) {
	l := fp.part.log
	if h, err := shard.ParseBatchHeader(data); err == nil && l.NextOffset() == l.LogStartOffset() &&
		h.BaseOffset < l.NextOffset() && h.LastOffset() >= l.NextOffset() {
		// An empty log started over at the leader's log start, which
		// falls inside this batch (DeleteRecords and retention move it
		// record by record): start over at the batch, then append it, as
		// Kafka's follower does on an unexpected append offset.
		data = slices.Clone(data)
		fp.pending++
		ref := fp.part.ref
		l.ResetTo(h.BaseOffset, func(_ shard.Offset, err error) {
			fp.pending--
			if err != nil {
				f.cs.node.log.Error("replication: starting the log over failed", "partition", ref, "at", h.BaseOffset, "err", err)
				fp.idleUntil = time.Now().Add(time.Second)
			} else if f.parts[ref] == fp {
				f.appendFetched(fp, data, hw)
			}
			f.kick()
		})
		return
	}
	for len(data) >= shard.BatchHeaderSize {
		h, err := shard.ParseBatchHeader(data)
		if err != nil || h.Size() > len(data) {
			break // a partial last batch: fetched again next time
		}
		batch := data[:h.Size()]
		data = data[h.Size():]
		fp.pending++
		ref := fp.part.ref
		if err := l.AppendReplicated(batch, func(_ shard.AppendResult, err error) {
			fp.pending--
			if err != nil {
				f.appendFailed(fp, ref, err)
			}
			f.kick()
		}); err != nil {
			fp.pending--
			f.appendFailed(fp, ref, err)
			break
		}
	}
	if hw >= 0 {
		l.SetHighWatermark(shard.Offset(hw))
	}
}

// appendFailed: a batch that does not continue this log means the leader's
// log changed under it (a new epoch it has not heard of yet): check the
// divergence again. Anything else pauses the partition.
func (f *fetcher) appendFailed(fp *followed, ref wire.PartitionRef, err error) {
	if errors.Is(err, shard.ErrTruncated) {
		return
	}
	f.cs.node.replLog.Warn(f.cs.node.log, "replication: appending the leader's batch failed", "partition", ref, "err", err)
	fp.truncated = false
	fp.idleUntil = time.Now().Add(replicaRetry)
}

// partitionError handles a per-partition error from the leader: a fenced
// or changed leadership waits for the metadata to say who leads now; an
// offset out of range means the logs diverged in a way the epochs did not
// show, so the check runs again.
func (f *fetcher) partitionError(fp *followed, code int16) {
	fp.idleUntil = time.Now().Add(replicaRetry)
	if code == kerr.StaleBrokerEpoch.Code {
		// Leaders count a follower's fetches over its newest connection
		// only (replication.FollowerFetch's Incarnation): this one is
		// older than another this broker opened (a partition moved here
		// from a core that fetches from the same leader). A new
		// connection is newer than both.
		f.reconnect = true
		fp.idleUntil = time.Time{}
		return
	}
	if code == kerr.OffsetOutOfRange.Code {
		fp.truncated = false
		f.cs.node.replLog.Warn(f.cs.node.log, "replication: fetch offset out of the leader's range", "partition", fp.part.ref, "offset", fp.part.log.NextOffset())
	}
}

// run is the fetcher's socket goroutine: one request at a time, each
// answer posted to the core. It ends when the core closes calls.
func (f *fetcher) run(rt *reactor.Runtime, core reactor.CoreID) {
	var c net.Conn
	var connAddr string
	formatter := kmsg.NewRequestFormatter(kmsg.FormatterClientID("strand-replica-" + strconv.Itoa(int(f.cs.node.cfg.NodeID))))
	var corr int32
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	for call := range f.calls {
		if c != nil && (connAddr != call.addr || call.fresh) {
			c.Close()
			c = nil
		}
		var resp kmsg.Response
		var err error
		if c == nil {
			c, err = net.DialTimeout("tcp", call.addr, replicaDialTimeout)
			if err != nil {
				c = nil
			}
			connAddr = call.addr
		}
		if err == nil {
			corr++
			resp, err = roundTrip(c, formatter, call.req, corr)
			if err != nil {
				c.Close()
				c = nil
			}
		}
		done := call.done
		if rt.Post(core, func(*reactor.Core) { done(resp, err) }) != nil {
			return
		}
	}
}

// roundTrip sends req and reads its answer.
func roundTrip(c net.Conn, formatter *kmsg.RequestFormatter, req kmsg.Request, corr int32) (kmsg.Response, error) {
	_ = c.SetDeadline(time.Now().Add(replicaFetchMaxWait + 15*time.Second))
	if _, err := c.Write(formatter.AppendRequest(nil, req, corr)); err != nil {
		return nil, err
	}
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 256<<20 {
		return nil, fmt.Errorf("answer of %d bytes", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c, body); err != nil {
		return nil, err
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != corr {
		return nil, fmt.Errorf("correlation id %d, want %d", got, corr)
	}
	body = body[4:]
	resp := req.ResponseKind()
	if resp.IsFlexible() {
		// The response header's tagged fields (none are defined).
		var err error
		if body, err = skipTags(body); err != nil {
			return nil, err
		}
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, err
	}
	return resp, nil
}

func skipTags(b []byte) ([]byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, errors.New("bad tagged fields")
	}
	b = b[k:]
	for range n {
		_, k := binary.Uvarint(b)
		if k <= 0 {
			return nil, errors.New("bad tagged field")
		}
		b = b[k:]
		size, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < size {
			return nil, errors.New("bad tagged field")
		}
		b = b[k+int(size):]
	}
	return b, nil
}
