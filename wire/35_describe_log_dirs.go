package wire

import "github.com/twmb/franz-go/pkg/kmsg"

// handleDescribeLogDirs reports the broker's log directories (Strand has
// one: the data directory) and the size of each partition in it. Topics nil
// asks for every partition; otherwise only the named ones that exist are
// listed, as Kafka does. Strand keeps no future replicas and every replica
// is the leader's own log, so IsFuture is false and OffsetLag 0.
func (c *conn) handleDescribeLogDirs(s *slot, req *kmsg.DescribeLogDirsRequest) {
	var want map[PartitionRef]bool
	if req.Topics != nil {
		want = make(map[PartitionRef]bool)
		for _, t := range req.Topics {
			for _, p := range t.Partitions {
				want[PartitionRef{Topic: t.Topic, Partition: p}] = true
			}
		}
	}
	c.be.LogDirs(func(dirs []LogDirInfo) {
		defer c.recoverPanic()
		resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
		for _, d := range dirs {
			rd := kmsg.NewDescribeLogDirsResponseDir()
			rd.Dir, rd.ErrorCode = d.Path, d.ErrCode
			rd.TotalBytes, rd.UsableBytes = d.TotalBytes, d.UsableBytes
			byTopic := map[string]int{}
			for _, p := range d.Partitions {
				if want != nil && !want[p.PartitionRef] {
					continue
				}
				i, ok := byTopic[p.Topic]
				if !ok {
					i = len(rd.Topics)
					byTopic[p.Topic] = i
					rt := kmsg.NewDescribeLogDirsResponseDirTopic()
					rt.Topic = p.Topic
					rd.Topics = append(rd.Topics, rt)
				}
				rp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
				rp.Partition, rp.Size = p.Partition, p.SizeBytes
				rd.Topics[i].Partitions = append(rd.Topics[i].Partitions, rp)
			}
			resp.Dirs = append(resp.Dirs, rd)
		}
		c.complete(s, resp)
	})
}
