package cluster

import (
	"github.com/strand-io/strand/shard"
	"github.com/strand-io/strand/wire"
)

// The backend side of replication's two protocol calls that a broker can
// answer from its own logs: OffsetForLeaderEpoch (from the partition's
// leader-epoch cache) and a follower's Fetch (up to the log end). Both run
// on the partition's owning core, like Fetch. The wire layer has done the
// protocol checks (leader epoch fencing, whether the replica is a
// follower).

func (b *backend) EndOffsetForEpoch(p wire.PartitionRef, leaderEpoch int32, cb func(wire.EpochEndOffset)) {
	owner, code := b.owner(p)
	if code != 0 {
		cb(wire.EpochEndOffset{LeaderEpoch: -1, EndOffset: -1, ErrCode: code})
		return
	}
	b.onOwner(owner, p, func(part *partition, reply func(func())) {
		r := wire.EpochEndOffset{LeaderEpoch: -1, EndOffset: -1, ErrCode: errLeaderNotAvailable}
		if part != nil {
			e, off := part.log.EndOffsetForEpoch(shard.Epoch(leaderEpoch))
			r = wire.EpochEndOffset{LeaderEpoch: int32(e), EndOffset: int64(off)}
		}
		reply(func() { cb(r) })
	})
}

func (b *backend) FollowerFetch(p wire.PartitionRef, replica int32, session wire.FetchSession, offset int64, maxBytes int32, cb func(wire.FetchResult)) {
	owner, code := b.owner(p)
	if code != 0 {
		cb(wire.FetchResult{HighWatermark: -1, LastStable: -1, LogStartOffset: -1, ErrCode: code})
		return
	}
	b.onOwner(owner, p, func(part *partition, reply func(func())) {
		if part == nil {
			reply(func() {
				cb(wire.FetchResult{HighWatermark: -1, LastStable: -1, LogStartOffset: -1, ErrCode: errLeaderNotAvailable})
			})
			return
		}
		// The fetch offset is the follower's durable end: the high
		// watermark and the in-sync set move with it before the read. A
		// partition whose role is not known here yet answers as a
		// non-leader (re-reading it would spin the long-poll).
		code := errLeaderNotAvailable
		if part.repl != nil {
			code = part.repl.followerFetched(replica, session, offset)
		}
		if code != 0 {
			reply(func() {
				cb(wire.FetchResult{HighWatermark: -1, LastStable: -1, LogStartOffset: -1, ErrCode: code})
			})
			return
		}
		part.log.ReadToEnd(shard.Offset(offset), int(maxBytes), func(r shard.ReadResult, err error) {
			res := wire.FetchResult{Records: r.Data, HighWatermark: int64(r.HighWatermark), LastStable: int64(r.HighWatermark),
				LogStartOffset: int64(r.LogStartOffset), ErrCode: wire.ErrorCode(err)}
			reply(func() { cb(res) })
		})
	})
}

func (b *backend) WatchLogEnd(p wire.PartitionRef, offset int64, cb func()) (cancel func()) {
	return b.watchOn(p, offset, cb, func(part *partition) *[]*watch {
		if part.repl == nil || !part.repl.leading || int64(part.log.NextOffset()) > offset {
			return nil
		}
		return &part.repl.endWatch
	})
}
