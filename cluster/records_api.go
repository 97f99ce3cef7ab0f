package cluster

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"golang.org/x/sys/unix"

	"github.com/strand-io/strand/reactor"
	"github.com/strand-io/strand/shard"
	"github.com/strand-io/strand/wire"
)

// The backend side of DeleteRecords, ListOffsets -3, DescribeLogDirs and
// DescribeProducers. Each runs on the partition's owning core, like Fetch.

func (b *backend) DeleteRecords(p wire.PartitionRef, offset int64, cb func(int64, int16)) {
	owner, code := b.owner(p)
	if code != 0 {
		cb(-1, code)
		return
	}
	b.onOwner(owner, p, func(part *partition, reply func(func())) {
		if part == nil {
			reply(func() { cb(-1, kerr.LeaderNotAvailable.Code) })
			return
		}
		low, err := part.log.DeleteRecordsBefore(shard.Offset(offset))
		if err != nil && !isOutOfRange(err) {
			part.owner.node.log.Warn("delete records failed", "topic", p.Topic, "partition", p.Partition, "offset", offset, "err", err)
		}
		res, code := int64(low), wire.ErrorCode(err)
		reply(func() { cb(res, code) })
	})
}

func isOutOfRange(err error) bool { return wire.ErrorCode(err) == kerr.OffsetOutOfRange.Code }

func (b *backend) MaxTimestamp(p wire.PartitionRef, cb func(wire.ListOffsetResult)) {
	owner, code := b.owner(p)
	if code != 0 {
		cb(wire.ListOffsetResult{Offset: -1, TimestampMs: -1, ErrCode: code})
		return
	}
	epoch := b.leaderEpoch(p)
	b.onOwner(owner, p, func(part *partition, reply func(func())) {
		r := wire.ListOffsetResult{Offset: -1, TimestampMs: -1, ErrCode: kerr.LeaderNotAvailable.Code}
		if part != nil {
			off, ts, err := part.log.MaxTimestamp()
			r = wire.ListOffsetResult{Offset: int64(off), TimestampMs: ts, LeaderEpoch: epoch, ErrCode: wire.ErrorCode(err)}
		}
		reply(func() { cb(r) })
	})
}

func (b *backend) Producers(p wire.PartitionRef, cb func([]wire.ProducerInfo, int16)) {
	owner, code := b.owner(p)
	if code != 0 {
		cb(nil, code)
		return
	}
	b.onOwner(owner, p, func(part *partition, reply func(func())) {
		if part == nil {
			reply(func() { cb(nil, kerr.LeaderNotAvailable.Code) })
			return
		}
		ps := part.log.Producers()
		out := make([]wire.ProducerInfo, len(ps))
		for i, s := range ps {
			// The log keeps no timestamps in its producer state.
			out[i] = wire.ProducerInfo{ProducerID: s.ProducerID, Epoch: s.Epoch, LastSequence: s.LastSequence, LastTimestamp: -1}
		}
		reply(func() { cb(out, 0) })
	})
}

// LogDirs asks every core for the sizes of the partitions it owns, then
// answers with the data directory as the one log directory. The sizes are
// the bytes of log data (what retention.bytes counts), not the space the
// files' preallocation reserves.
func (b *backend) LogDirs(cb func([]wire.LogDirInfo)) {
	origin := b.cs.core.ID()
	cores := b.node.cores
	sizes := make([][]wire.LogDirPartition, len(cores))
	pending := len(cores)
	finish := func() {
		d := wire.LogDirInfo{Path: b.node.cfg.DataDir, TotalBytes: -1, UsableBytes: -1}
		var st unix.Statfs_t
		if err := unix.Statfs(d.Path, &st); err == nil {
			d.TotalBytes = int64(st.Blocks) * int64(st.Bsize)
			d.UsableBytes = int64(st.Bavail) * int64(st.Bsize)
		} else {
			d.ErrCode = kerr.KafkaStorageError.Code
		}
		for _, s := range sizes {
			d.Partitions = append(d.Partitions, s...)
		}
		sort.Slice(d.Partitions, func(i, j int) bool {
			a, c := d.Partitions[i], d.Partitions[j]
			return a.Topic < c.Topic || a.Topic == c.Topic && a.Partition < c.Partition
		})
		cb([]wire.LogDirInfo{d})
	}
	for i, cs := range cores {
		collect := func() []wire.LogDirPartition {
			out := make([]wire.LogDirPartition, 0, len(cs.parts))
			for ref, part := range cs.parts {
				out = append(out, wire.LogDirPartition{PartitionRef: ref, SizeBytes: part.log.SizeBytes()})
			}
			return out
		}
		if cs.core.ID() == origin {
			sizes[i] = collect()
			if pending--; pending == 0 {
				finish()
			}
			continue
		}
		b.cs.core.Send(cs.core.ID(), func(oc *reactor.Core) {
			got := collect()
			oc.Send(origin, func(*reactor.Core) {
				sizes[i] = got
				if pending--; pending == 0 {
					finish()
				}
			})
		})
	}
}
