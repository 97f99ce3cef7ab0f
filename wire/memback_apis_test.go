package wire

import (
	"sort"

	"github.com/strand-io/strand/shard"
	"github.com/twmb/franz-go/pkg/kerr"
)

// The test backend's side of DeleteRecords, ListOffsets -3,
// DescribeLogDirs and DescribeProducers.

func (s *memSession) DeleteRecords(p PartitionRef, offset int64, cb func(int64, int16)) {
	s.b.mu.Lock()
	mp, ok := s.b.part(p)
	if !ok {
		s.b.mu.Unlock()
		cb(-1, kerr.UnknownTopicOrPartition.Code)
		return
	}
	if offset == -1 {
		offset = mp.hwm
	}
	if offset < -1 || offset > mp.hwm {
		s.b.mu.Unlock()
		cb(-1, kerr.OffsetOutOfRange.Code)
		return
	}
	mp.logStart = max(mp.logStart, offset)
	low := mp.logStart
	s.b.mu.Unlock()
	cb(low, 0)
}

func (s *memSession) MaxTimestamp(p PartitionRef, cb func(ListOffsetResult)) {
	s.b.mu.Lock()
	mp, ok := s.b.part(p)
	if !ok {
		s.b.mu.Unlock()
		cb(ListOffsetResult{Offset: -1, TimestampMs: -1, ErrCode: kerr.UnknownTopicOrPartition.Code})
		return
	}
	r := ListOffsetResult{Offset: -1, TimestampMs: -1, LeaderEpoch: s.b.leaderEpoch}
	for i, b := range mp.batches {
		if h, _ := shard.ParseBatchHeader(b); h.MaxTimestamp > r.TimestampMs {
			r.Offset, r.TimestampMs = max(mp.bases[i], mp.logStart), h.MaxTimestamp
		}
	}
	s.b.mu.Unlock()
	cb(r)
}

func (s *memSession) LogDirs(cb func([]LogDirInfo)) {
	s.b.mu.Lock()
	d := LogDirInfo{Path: "/mem", TotalBytes: 1 << 30, UsableBytes: 1 << 29}
	names := make([]string, 0, len(s.b.topics))
	for n := range s.b.topics {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for i, mp := range s.b.topics[n].parts {
			var size int64
			for _, b := range mp.batches {
				size += int64(len(b))
			}
			d.Partitions = append(d.Partitions, LogDirPartition{PartitionRef: PartitionRef{Topic: n, Partition: int32(i)}, SizeBytes: size})
		}
	}
	s.b.mu.Unlock()
	cb([]LogDirInfo{d})
}

func (s *memSession) Producers(p PartitionRef, cb func([]ProducerInfo, int16)) {
	s.b.mu.Lock()
	mp, ok := s.b.part(p)
	if !ok {
		s.b.mu.Unlock()
		cb(nil, kerr.UnknownTopicOrPartition.Code)
		return
	}
	byID := map[int64]ProducerInfo{}
	for _, b := range mp.batches {
		h, _ := shard.ParseBatchHeader(b)
		if h.ProducerID < 0 || h.BaseSequence < 0 {
			continue
		}
		byID[h.ProducerID] = ProducerInfo{ProducerID: h.ProducerID, Epoch: h.ProducerEpoch,
			LastSequence: h.BaseSequence + h.LastOffsetDelta, LastTimestamp: h.MaxTimestamp}
	}
	s.b.mu.Unlock()
	out := make([]ProducerInfo, 0, len(byID))
	for _, v := range byID {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ProducerID < out[j].ProducerID })
	cb(out, 0)
}

// EndOffsetForEpoch: the test broker's partitions have had one leader
// epoch, the one their metadata names, since offset 0.
func (s *memSession) EndOffsetForEpoch(p PartitionRef, leaderEpoch int32, cb func(EpochEndOffset)) {
	s.b.mu.Lock()
	mp, ok := s.b.part(p)
	if !ok {
		s.b.mu.Unlock()
		cb(EpochEndOffset{LeaderEpoch: -1, EndOffset: -1, ErrCode: kerr.UnknownTopicOrPartition.Code})
		return
	}
	current := s.b.topics[p.Topic].info.Partitions[p.Partition].LeaderEpoch
	r := EpochEndOffset{LeaderEpoch: -1, EndOffset: -1}
	switch {
	case leaderEpoch == current:
		r.LeaderEpoch, r.EndOffset = current, mp.hwm
	case leaderEpoch >= 0 && leaderEpoch < current:
		r.LeaderEpoch, r.EndOffset = leaderEpoch, 0
	}
	s.b.mu.Unlock()
	cb(r)
}

// FollowerFetch: the test broker's log has no volatile tail, so a
// follower reads what a consumer does.
func (s *memSession) FollowerFetch(p PartitionRef, _ int32, _ FetchSession, offset int64, maxBytes int32, cb func(FetchResult)) {
	s.b.mu.Lock()
	s.b.followerFetches++
	s.b.mu.Unlock()
	s.Fetch(p, offset, maxBytes, cb)
}

// LivenessProbed: the test broker has no leases.
func (s *memSession) LivenessProbed(string) {}

// WatchLogEnd: the log end is the high watermark here.
func (s *memSession) WatchLogEnd(p PartitionRef, offset int64, cb func()) func() {
	return s.WatchAppend(p, offset, cb)
}
