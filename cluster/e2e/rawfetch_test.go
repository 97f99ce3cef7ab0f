package e2e

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A consumer that speaks the protocol the way kcat (librdkafka 2.0.2) does,
// over one raw connection: ApiVersions v3, Metadata v4, then full Fetch v11
// requests (session id 0, epoch -1, max wait 500 ms, 1 MiB per partition,
// 50 MiB per response) until every partition reaches its target. Every
// response must arrive within respWait; a missing response is the bug this
// hunts, so the error says exactly which request went unanswered.

type rawReadStats struct {
	fetches int
	empty   int
	bytes   int
	slowest time.Duration // longest wait for a fetch response
}

// rawReadAll reads partitions 0..len(want)-1 of topic from offset 0 up to
// want[p] and checks every record's key and value (recKey/recValue).
func rawReadAll(r *rawConn, topic string, want []int64, respWait time.Duration) (rawReadStats, error) {
	var st rawReadStats
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	av.ClientSoftwareName, av.ClientSoftwareVersion = "strand-e2e", "1.0"
	resp, err := r.roundTrip(av, respWait)
	if err != nil {
		return st, err
	}
	if code := resp.(*kmsg.ApiVersionsResponse).ErrorCode; code != 0 {
		return st, fmt.Errorf("ApiVersions: %v", kerr.ErrorForCode(code))
	}
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 4
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	md.Topics = append(md.Topics, mt)
	if resp, err = r.roundTrip(md, respWait); err != nil {
		return st, err
	}
	if mr := resp.(*kmsg.MetadataResponse); len(mr.Topics) != 1 || mr.Topics[0].ErrorCode != 0 || len(mr.Topics[0].Partitions) < len(want) {
		return st, fmt.Errorf("metadata for %s: %+v", topic, mr.Topics)
	}

	next := make([]int64, len(want))
	for {
		req := kmsg.NewPtrFetchRequest()
		req.Version = 11
		req.ReplicaID = -1
		req.MaxWaitMillis = 500
		req.MinBytes = 1
		req.MaxBytes = 50 << 20
		req.IsolationLevel = 1
		req.SessionID, req.SessionEpoch = 0, -1
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = topic
		for p := range want {
			if next[p] >= want[p] {
				continue
			}
			fp := kmsg.NewFetchRequestTopicPartition()
			fp.Partition, fp.CurrentLeaderEpoch, fp.FetchOffset, fp.LogStartOffset, fp.PartitionMaxBytes = int32(p), -1, next[p], -1, 1<<20
			ft.Partitions = append(ft.Partitions, fp)
		}
		if len(ft.Partitions) == 0 {
			return st, nil
		}
		req.Topics = append(req.Topics, ft)
		st.fetches++
		sent := time.Now()
		resp, err := r.roundTrip(req, respWait)
		if err != nil {
			return st, fmt.Errorf("fetch #%d (partition offsets %v) unanswered after %v: %w", st.fetches, next, time.Since(sent).Round(time.Millisecond), err)
		}
		st.slowest = max(st.slowest, time.Since(sent))
		fr := resp.(*kmsg.FetchResponse)
		if fr.ErrorCode != 0 {
			return st, fmt.Errorf("fetch: %v", kerr.ErrorForCode(fr.ErrorCode))
		}
		got := 0
		for _, tp := range fr.Topics {
			for _, p := range tp.Partitions {
				if p.ErrorCode != 0 {
					err := kerr.ErrorForCode(p.ErrorCode)
					if kerr.IsRetriable(err) {
						continue // e.g. still opening right after start
					}
					return st, fmt.Errorf("fetch %s/%d at %d: %v", topic, p.Partition, next[p.Partition], err)
				}
				if p.HighWatermark < want[p.Partition] {
					return st, fmt.Errorf("%s/%d: high watermark %d, want >= %d", topic, p.Partition, p.HighWatermark, want[p.Partition])
				}
				n, err := checkBatches(p.RecordBatches, p.Partition, next[p.Partition], want[p.Partition])
				if err != nil {
					return st, fmt.Errorf("fetch %s/%d at %d: %w", topic, p.Partition, next[p.Partition], err)
				}
				next[p.Partition] = n
				got += len(p.RecordBatches)
			}
		}
		st.bytes += got
		if got == 0 {
			st.empty++
			if st.empty > 200 {
				return st, fmt.Errorf("200 fetches came back empty at offsets %v (want %v)", next, want)
			}
		}
	}
}

// checkBatches checks the uncompressed v2 batches in b, whose records
// must be the deterministic records of partition p from offset `from`, and
// returns the offset after the last one (capped at want).
func checkBatches(b []byte, p int32, from, want int64) (int64, error) {
	next := from
	for len(b) > 0 {
		if len(b) < 61 {
			break // a partial batch at the end is allowed
		}
		size := 12 + int(binary.BigEndian.Uint32(b[8:]))
		if size > len(b) {
			break
		}
		batch := b[:size]
		b = b[size:]
		if crc32.Checksum(batch[21:], castagnoli) != binary.BigEndian.Uint32(batch[17:]) {
			return next, errors.New("batch CRC mismatch")
		}
		if attrs := binary.BigEndian.Uint16(batch[21:]); attrs&7 != 0 {
			return next, fmt.Errorf("compressed batch (attributes %#x): produce with compression off", attrs)
		}
		base := int64(binary.BigEndian.Uint64(batch))
		n := int(binary.BigEndian.Uint32(batch[57:]))
		recs := batch[61:]
		for i := 0; i < n; i++ {
			off, key, val, rest, err := decodeRecord(recs, base)
			if err != nil {
				return next, fmt.Errorf("batch at %d record %d: %w", base, i, err)
			}
			recs = rest
			if off < next {
				continue // the batch holding the fetch offset starts before it
			}
			if off != next {
				return next, fmt.Errorf("offset %d, want %d", off, next)
			}
			if off >= want {
				return next, nil
			}
			if !bytes.Equal(key, recKey(p, off)) || !bytes.Equal(val, recValue(p, off)) {
				return next, fmt.Errorf("record at offset %d differs from what was produced", off)
			}
			next++
		}
	}
	return next, nil
}

// decodeRecord decodes one v2 record.
func decodeRecord(b []byte, base int64) (off int64, key, val, rest []byte, err error) {
	ln, n := binary.Varint(b)
	if n <= 0 || int(ln) > len(b)-n || ln < 0 {
		return 0, nil, nil, nil, errors.New("bad record length")
	}
	r := b[n : n+int(ln)]
	rest = b[n+int(ln):]
	next := func() int64 {
		v, n := binary.Varint(r)
		if n <= 0 {
			err = errors.New("bad varint")
			return 0
		}
		r = r[n:]
		return v
	}
	bytesField := func() []byte {
		l := next()
		if err != nil || l < 0 {
			return nil
		}
		if int(l) > len(r) {
			err = errors.New("field overruns record")
			return nil
		}
		f := r[:l]
		r = r[l:]
		return f
	}
	if len(r) < 1 {
		return 0, nil, nil, nil, errors.New("empty record")
	}
	r = r[1:] // attributes
	next()    // timestamp delta
	off = base + next()
	key = bytesField()
	val = bytesField()
	return off, key, val, rest, err
}
