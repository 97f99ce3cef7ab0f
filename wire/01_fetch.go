package wire

import (
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleFetch reads every requested partition and answers when MinBytes is
// satisfied, an error shows up, or MaxWait passes (the long-poll).
//
// Fetch sessions are declined: the response always carries session id 0,
// which makes clients send full fetches; an incremental fetch (epoch > 0)
// names a session we never made and gets FETCH_SESSION_ID_NOT_FOUND.
func (c *conn) handleFetch(s *slot, req *kmsg.FetchRequest) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	if req.Version >= 7 && req.SessionEpoch > 0 {
		resp.ErrorCode = errFetchSessionIDNotFound
		c.complete(s, resp)
		return
	}
	lim := &c.srv.cfg.Limits
	w := &fetchWait{
		c: c, s: s, resp: resp,
		minBytes: int(req.MinBytes),
		maxBytes: lim.FetchMaxBytes,
		maxWait:  time.Duration(max(req.MaxWaitMillis, 0)) * time.Millisecond,
	}
	if req.Version >= 3 {
		w.maxBytes = min(int(max(req.MaxBytes, 0)), lim.FetchMaxBytes)
	}
	w.replica = req.ReplicaID
	w.session = FetchSession{Conn: w.c.id, Request: w.c.reqs}
	if req.ReplicaID >= 0 {
		w.session.LogDirID = FollowerLogDir(req)
	}
	total := 0
	for i := range req.Topics {
		total += len(req.Topics[i].Partitions)
	}
	w.parts = make([]fetchPart, 0, total) // sized once: appending grew it by copies
	resp.Topics = make([]kmsg.FetchResponseTopic, len(req.Topics))
	for i := range req.Topics {
		t := &req.Topics[i]
		rt := &resp.Topics[i]
		*rt = kmsg.NewFetchResponseTopic()
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.FetchResponseTopicPartition, len(t.Partitions))
		nparts, exists := c.be.PartitionCount(t.Topic)
		var ti TopicInfo // a follower's fetch needs the replicas: once per topic
		if req.ReplicaID >= 0 && exists {
			ti, _ = c.be.Topic(t.Topic)
		}
		for j := range t.Partitions {
			p := &t.Partitions[j]
			rp := &rt.Partitions[j]
			*rp = kmsg.NewFetchResponseTopicPartition()
			rp.Partition, rp.HighWatermark = p.Partition, -1
			// Never null: librdkafka rejects a -1 record set size.
			rp.RecordBatches = []byte{}
			fp := fetchPart{
				ref:      PartitionRef{Topic: t.Topic, Partition: p.Partition},
				offset:   p.FetchOffset,
				maxBytes: min(max(p.PartitionMaxBytes, 0), int32(min(lim.MaxPartitionFetchBytes, math.MaxInt32))),
				rp:       rp,
			}
			switch {
			case !exists || p.Partition < 0 || p.Partition >= nparts:
				fp.res.ErrCode = errUnknownTopicOrPartition
			case req.ReplicaID >= 0:
				fp.follower = true
				current := p.CurrentLeaderEpoch
				if req.Version < 9 {
					current = -1
				}
				fp.res.ErrCode = checkFollower(ti, p.Partition, req.ReplicaID, current)
				fp.active = fp.res.ErrCode == errNone
			default:
				fp.active = true
			}
			w.parts = append(w.parts, fp)
			if fp.active {
				w.want = min(w.want+int(fp.maxBytes), w.maxBytes)
			}
		}
	}
	if len(c.budgetQ) == 0 && w.tryStart() {
		return
	}
	// The fetch memory budget is spent: wait, in order, without reading.
	c.srv.stats.budgetWaits.Add(1)
	c.srv.logBudget.log(c.log, slog.LevelInfo, "wire: fetch waits for fetch memory",
		"want", w.want, "in_use", c.srv.budget.used.Load(), "fetch_memory_bytes", c.srv.budget.max)
	c.budgetQ = append(c.budgetQ, w)
	c.retryBudget()
}

// tryStart reserves the fetch's memory and starts its reads; it reports
// false, reserving nothing, when the budget is spent. A fetch reserves
// once, for all its partitions: reads holding part of a fetch while
// waiting for the rest could deadlock the budget.
func (w *fetchWait) tryStart() bool {
	if w.want > 0 {
		got := w.c.srv.budget.reserve(w.want)
		if got == 0 {
			return false
		}
		w.c.fetchHeld += got
		w.budget = got
	}
	w.start()
	return true
}

// fetchPart is one partition of a fetch in progress.
type fetchPart struct {
	ref      PartitionRef
	offset   int64
	maxBytes int32
	held     int  // fetch memory for this partition: its read's limit, then len(res.Records)
	limit    int  // the last read's limit
	active   bool // the partition exists; it is read and watched
	follower bool // a replica's fetch: read up to the log end (FollowerFetch)
	reading  bool
	res      FetchResult
	cancel   func() // pending WatchAppend
	rp       *kmsg.FetchResponseTopicPartition
}

// fetchWait is the state of one fetch from the first reads to the response.
//
//	start -> read all -> decide -+-> finish (min bytes met, error, no wait)
//	                             +-> wait: timer(maxWait) + WatchAppend(each)
//	                                   watch fires -> re-read that partition
//	                                     -> min bytes met ? finish : watch again
//	                                   timer fires -> finish with what we have
type fetchWait struct {
	c        *conn
	s        *slot
	resp     *kmsg.FetchResponse
	parts    []fetchPart
	minBytes int
	maxBytes int
	want     int // fetch memory asked for: min(maxBytes, sum of partition limits)
	budget   int // fetch memory held, the sum of parts' held (counted in conn.fetchHeld)
	maxWait  time.Duration
	replica  int32 // the follower's broker id, or -1 for a consumer
	session  FetchSession
	reading  int
	waiting  bool
	toppedUp bool // the second round of reads (topUp) was issued
	finished bool
	timer    func()
}

func (w *fetchWait) start() {
	// The reservation is shared out in partition order, as Kafka fills a
	// response; a partition left with nothing still reads its first batch
	// (KIP-74), counted when it arrives.
	rest := w.budget
	for i := range w.parts {
		if p := &w.parts[i]; p.active {
			p.held = min(int(p.maxBytes), rest)
			rest -= p.held
		}
	}
	w.give(rest)
	w.reading = 1 // held until every read is issued: callbacks may be synchronous
	for i := range w.parts {
		if p := &w.parts[i]; p.active {
			w.read(i, p.held)
		}
	}
	w.readDone()
}

// topUp gives partitions that the first round squeezed (the reservation
// ran out before their turn) what the others left unused, in partition
// order, as Kafka fills a response; then readDone runs again.
func (w *fetchWait) topUp() {
	room := w.maxBytes
	for i := range w.parts {
		room -= len(w.parts[i].res.Records)
	}
	w.reading = 1
	for i := range w.parts {
		p := &w.parts[i]
		if room <= 0 || w.finished || w.c.closed {
			break
		}
		if !p.active || p.res.ErrCode != errNone || p.limit >= int(p.maxBytes) || len(p.res.Records) == 0 {
			continue
		}
		want := min(int(p.maxBytes), len(p.res.Records)+room) - p.held
		if want <= 0 {
			continue
		}
		got := w.c.srv.budget.reserve(want)
		if got == 0 {
			break
		}
		w.budget += got
		w.c.fetchHeld += got
		p.held += got
		room -= got
		w.read(i, p.held)
	}
	w.readDone()
}

// take and give move fetch memory into and out of this fetch.
func (w *fetchWait) take(n int) {
	if n > 0 && !w.c.closed {
		w.budget += n
		w.c.hold(n)
	}
}

func (w *fetchWait) give(n int) {
	if n > 0 && !w.c.closed {
		w.budget -= n
		w.c.hold(-n)
	}
}

// reread reads partition i again after its watch fired, with what memory
// the budget can add to what it holds.
func (w *fetchWait) reread(i int) {
	p := &w.parts[i]
	if want := int(p.maxBytes) - p.held; want > 0 {
		got := w.c.srv.budget.reserve(want)
		if got > 0 && !w.c.closed {
			w.budget += got
			w.c.fetchHeld += got
			p.held += got
		} else {
			w.c.srv.budget.release(got)
		}
	}
	w.read(i, p.held)
}

func (w *fetchWait) read(i, limit int) {
	p := &w.parts[i]
	p.reading, p.limit = true, limit
	w.reading++
	fetch := w.c.be.Fetch
	if p.follower {
		fetch = func(ref PartitionRef, offset int64, maxBytes int32, cb func(FetchResult)) {
			w.c.be.FollowerFetch(ref, w.replica, w.session, offset, maxBytes, cb)
		}
	}
	fetch(p.ref, p.offset, int32(max(limit, 1)), func(r FetchResult) {
		defer w.c.recoverPanic()
		if w.finished {
			return
		}
		// Count what came back, not what was asked for.
		if d := len(r.Records) - p.held; d > 0 {
			w.take(d)
		} else {
			w.give(-d)
		}
		p.held = len(r.Records)
		p.reading, p.res = false, r
		if w.waiting {
			w.reading--
			if w.ready() {
				w.finish()
			} else {
				w.watch(i)
			}
			return
		}
		w.readDone()
	})
}

// readDone ends the first round of reads.
func (w *fetchWait) readDone() {
	if w.reading--; w.reading > 0 || w.finished {
		return
	}
	if !w.toppedUp {
		w.toppedUp = true
		w.topUp()
		return
	}
	if w.ready() || w.maxWait <= 0 || w.c.closed || w.c.srv.drain.on.Load() {
		w.finish()
		return
	}
	w.waiting = true
	if w.c.waits == nil {
		w.c.waits = make(map[*fetchWait]struct{})
	}
	w.c.waits[w] = struct{}{}
	w.timer = w.c.be.After(w.maxWait, func() {
		defer w.c.recoverPanic()
		w.timer = nil
		if !w.finished {
			w.finish()
		}
	})
	for i := range w.parts {
		if w.parts[i].active && !w.finished {
			w.watch(i)
		}
	}
}

// watch waits for data past what partition i has shown so far.
func (w *fetchWait) watch(i int) {
	p := &w.parts[i]
	// A follower waits for the log end to pass its fetch offset (the high
	// watermark cannot pass it before the follower has fetched it); a
	// consumer for the high watermark to pass what it saw.
	watch, at := w.c.be.WatchAppend, max(p.offset, p.res.HighWatermark)
	if p.follower {
		watch, at = w.c.be.WatchLogEnd, p.offset
	}
	cancel := watch(p.ref, at, func() {
		defer w.c.recoverPanic()
		p.cancel = nil
		if !w.finished && !p.reading {
			w.reread(i)
		}
	})
	if !w.finished && !p.reading {
		p.cancel = cancel
	} else {
		cancel() // fired synchronously: a no-op, kept for safety
	}
}

// ready reports whether the fetch should answer now: enough bytes, or an
// error a client must see at once (as in Kafka).
func (w *fetchWait) ready() bool {
	total := 0
	for i := range w.parts {
		if w.parts[i].res.ErrCode != errNone {
			return true
		}
		total += len(w.parts[i].res.Records)
	}
	return total >= w.minBytes
}

// stop cancels the timer and every watch; nothing is sent.
func (w *fetchWait) stop() {
	w.finished = true
	if w.timer != nil {
		w.timer()
		w.timer = nil
	}
	for i := range w.parts {
		if p := &w.parts[i]; p.cancel != nil {
			p.cancel()
			p.cancel = nil
		}
	}
}

// finish builds the response: partitions in request order, whole batches
// only, each within its partition limit and all within the response limit,
// except that the first batch of the first partition with data is always
// whole (KIP-74) so that a consumer can pass an oversized batch.
func (w *fetchWait) finish() {
	w.stop()
	delete(w.c.waits, w)
	used := 0
	for i := range w.parts {
		p := &w.parts[i]
		rp := p.rp
		rp.ErrorCode = p.res.ErrCode
		if p.follower && p.res.ErrCode == kerr.OffsetOutOfRange.Code {
			// A follower behind the log start resets its log to it (as
			// Kafka's asks with ListOffsets): the one answer it needs.
			rp.LogStartOffset = p.res.LogStartOffset
		}
		if !p.active || p.res.ErrCode != errNone {
			continue
		}
		rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = p.res.HighWatermark, p.res.LastStable, p.res.LogStartOffset
		limit := min(int(p.maxBytes), w.maxBytes-used)
		if recs := trimBatches(p.res.Records, limit, used == 0); len(recs) > 0 {
			rp.RecordBatches = recs
		}
		used += len(rp.RecordBatches)
	}
	// The response keeps what it carries until it is written; the rest of
	// the reservation goes back now.
	w.give(w.budget - used)
	w.s.budget, w.budget = w.budget, 0
	w.c.completeSized(w.s, w.resp, used+64*len(w.parts))
}

// checkFollower decides whether a Fetch with replica id replica may read
// the partition as a follower, in Kafka's order (Partition.fetchRecords):
// first KIP-320's fencing of the leader epoch the follower names (current,
// -1 for none), then the replica must be one of the partition's followers.
// For a replica the leader does not know, Kafka answers
// UNKNOWN_LEADER_EPOCH when the request names an epoch (the pair of
// replica and epoch is not known yet: a reassignment in flight, say) and
// NOT_LEADER_OR_FOLLOWER when it does not (an old follower; it retries
// after refreshing metadata). The leader itself is not its own follower.
// Until partitions have replicas on other brokers, every replica id gets
// one of those two answers.
func checkFollower(ti TopicInfo, partition, replica, current int32) int16 {
	if int(partition) >= len(ti.Partitions) {
		return errUnknownTopicOrPartition
	}
	pi := ti.Partitions[partition]
	if code := checkLeaderEpoch(current, pi.LeaderEpoch); code != 0 {
		return code
	}
	if replica != pi.Leader && slices.Contains(pi.Replicas, replica) {
		return errNone
	}
	if current >= 0 {
		return kerr.UnknownLeaderEpoch.Code
	}
	return kerr.NotLeaderForPartition.Code
}
