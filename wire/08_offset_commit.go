package wire

import "github.com/twmb/franz-go/pkg/kmsg"

// handleOffsetCommit commits a group's positions. v0 commits outside any
// generation; leader epochs arrive from v6.
func (c *conn) handleOffsetCommit(s *slot, req *kmsg.OffsetCommitRequest, clientID []byte) {
	r := OffsetCommitRequest{Group: req.Group, MemberID: req.MemberID, InstanceID: req.InstanceID, Generation: req.Generation}
	if req.Version == 0 {
		r.Generation, r.MemberID = -1, ""
	}
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			epoch := p.LeaderEpoch
			if req.Version < 6 {
				epoch = -1
			}
			r.Offsets = append(r.Offsets, CommitOffset{PartitionRef: PartitionRef{Topic: t.Topic, Partition: p.Partition},
				Offset: p.Offset, LeaderEpoch: epoch, Metadata: p.Metadata})
		}
	}
	c.gb.OffsetCommit(c.groupClient(s, clientID), r, func(errs []error) {
		defer c.recoverPanic()
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		i := 0
		for _, t := range req.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = ErrorCode(answerAt(errs, i))
				i++
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		c.complete(s, resp)
	})
}
