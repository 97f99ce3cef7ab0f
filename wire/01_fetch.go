package wire

import (
	"math"
	"time"

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
	w := &fetchWait{
		c: c, s: s, resp: resp,
		minBytes: int(req.MinBytes),
		maxBytes: math.MaxInt32,
		maxWait:  time.Duration(max(req.MaxWaitMillis, 0)) * time.Millisecond,
	}
	if req.Version >= 3 {
		w.maxBytes = int(max(req.MaxBytes, 0))
	}
	resp.Topics = make([]kmsg.FetchResponseTopic, len(req.Topics))
	for i := range req.Topics {
		t := &req.Topics[i]
		rt := &resp.Topics[i]
		*rt = kmsg.NewFetchResponseTopic()
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.FetchResponseTopicPartition, len(t.Partitions))
		ti, exists := c.be.Topic(t.Topic)
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
				maxBytes: max(p.PartitionMaxBytes, 0),
				rp:       rp,
			}
			if !exists || p.Partition < 0 || int(p.Partition) >= len(ti.Partitions) {
				fp.res.ErrCode = errUnknownTopicOrPartition
			} else {
				fp.active = true
			}
			w.parts = append(w.parts, fp)
		}
	}
	w.start()
}

// fetchPart is one partition of a fetch in progress.
type fetchPart struct {
	ref      PartitionRef
	offset   int64
	maxBytes int32
	active   bool // the partition exists; it is read and watched
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
	maxWait  time.Duration
	reading  int
	waiting  bool
	finished bool
	timer    func()
}

func (w *fetchWait) start() {
	w.reading = 1 // held until every read is issued: callbacks may be synchronous
	for i := range w.parts {
		if w.parts[i].active {
			w.read(i)
		}
	}
	w.readDone()
}

func (w *fetchWait) read(i int) {
	p := &w.parts[i]
	p.reading = true
	w.reading++
	w.c.be.Fetch(p.ref, p.offset, p.maxBytes, func(r FetchResult) {
		defer w.c.recoverPanic()
		if w.finished {
			return
		}
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
	at := max(p.offset, p.res.HighWatermark)
	cancel := w.c.be.WatchAppend(p.ref, at, func() {
		defer w.c.recoverPanic()
		p.cancel = nil
		if !w.finished && !p.reading {
			w.read(i)
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
	w.c.completeSized(w.s, w.resp, used+64*len(w.parts))
}
