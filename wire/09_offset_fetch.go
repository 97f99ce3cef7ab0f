package wire

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleOffsetFetch reads committed offsets: of one group (v0-v7) or of
// several (v8+, KIP-709). A nil topic list asks for every committed offset
// of the group.
func (c *conn) handleOffsetFetch(s *slot, req *kmsg.OffsetFetchRequest, clientID []byte) {
	var groups []OffsetFetchGroup
	add := func(name string, all bool) *OffsetFetchGroup {
		g := OffsetFetchGroup{Group: name}
		if !all {
			g.Partitions = []PartitionRef{}
		}
		groups = append(groups, g)
		return &groups[len(groups)-1]
	}
	if req.Version < 8 {
		g := add(req.Group, req.Topics == nil)
		for _, t := range req.Topics {
			for _, p := range t.Partitions {
				g.Partitions = append(g.Partitions, PartitionRef{Topic: t.Topic, Partition: p})
			}
		}
	} else {
		for _, rg := range req.Groups {
			g := add(rg.Group, rg.Topics == nil)
			for _, t := range rg.Topics {
				for _, p := range t.Partitions {
					g.Partitions = append(g.Partitions, PartitionRef{Topic: t.Topic, Partition: p})
				}
			}
		}
	}
	c.gb.OffsetFetch(c.groupClient(s, clientID), groups, func(res []OffsetFetchResult) {
		defer c.recoverPanic()
		resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
		for i, g := range groups {
			r := answerAt(res, i)
			code := ErrorCode(r.Err)
			topics := fetchLayout(g.Partitions, r.Offsets)
			if req.Version < 8 {
				resp.ErrorCode = code
				for _, t := range topics {
					rt := kmsg.NewOffsetFetchResponseTopic()
					rt.Topic = t[0].Topic
					for _, o := range t {
						rp := kmsg.NewOffsetFetchResponseTopicPartition()
						rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata, rp.ErrorCode = o.Partition, o.Offset, o.LeaderEpoch, o.Metadata, code
						rt.Partitions = append(rt.Partitions, rp)
					}
					resp.Topics = append(resp.Topics, rt)
				}
				continue
			}
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group, rg.ErrorCode = g.Group, code
			for _, t := range topics {
				rt := kmsg.NewOffsetFetchResponseGroupTopic()
				rt.Topic = t[0].Topic
				for _, o := range t {
					rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = o.Partition, o.Offset, o.LeaderEpoch, o.Metadata
					rt.Partitions = append(rt.Partitions, rp)
				}
				rg.Topics = append(rg.Topics, rt)
			}
			resp.Groups = append(resp.Groups, rg)
		}
		c.complete(s, resp)
	})
}

// fetchLayout lays out one group's OffsetFetch answer as runs of the same
// topic: the asked partitions in the order asked (offset and leader epoch
// -1 where nothing is committed), or, when asked is nil, every committed
// offset sorted by topic and partition.
func fetchLayout(asked []PartitionRef, committed []CommitOffset) [][]CommitOffset {
	var list []CommitOffset
	if asked == nil {
		list = append(list, committed...)
		sort.Slice(list, func(i, j int) bool {
			if list[i].Topic != list[j].Topic {
				return list[i].Topic < list[j].Topic
			}
			return list[i].Partition < list[j].Partition
		})
	} else {
		got := make(map[PartitionRef]CommitOffset, len(committed))
		for _, o := range committed {
			got[o.PartitionRef] = o
		}
		for _, p := range asked {
			o, ok := got[p]
			if !ok {
				o = CommitOffset{PartitionRef: p, Offset: -1, LeaderEpoch: -1}
			}
			list = append(list, o)
		}
	}
	var out [][]CommitOffset
	for _, o := range list {
		if n := len(out); n == 0 || out[n-1][0].Topic != o.Topic {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], o)
	}
	return out
}
