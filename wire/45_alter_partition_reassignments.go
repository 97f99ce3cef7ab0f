package wire

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleAlterPartitionAssignments starts or cancels reassignments
// (KIP-455). kmsg calls the API AlterPartitionAssignments; Kafka calls it
// AlterPartitionReassignments. Results keep the request's order.
func (c *conn) handleAlterPartitionAssignments(s *slot, req *kmsg.AlterPartitionAssignmentsRequest) {
	resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	var rs []Reassignment
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			rs = append(rs, Reassignment{PartitionRef: PartitionRef{Topic: t.Topic, Partition: p.Partition}, Replicas: p.Replicas})
		}
	}
	keepRF := req.Version >= 1 && !req.AllowReplicationFactorChange
	c.cb.AlterPartitionReassignments(rs, keepRF, func(out []PartitionResult) {
		defer c.recoverPanic()
		i := 0
		for _, t := range req.Topics {
			rt := kmsg.NewAlterPartitionAssignmentsResponseTopic()
			rt.Topic = t.Topic
			for range t.Partitions {
				rp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
				r := out[i]
				rp.Partition, rp.ErrorCode = r.Partition, r.ErrCode
				if r.Msg != "" {
					msg := r.Msg
					rp.ErrorMessage = &msg
				}
				rt.Partitions = append(rt.Partitions, rp)
				i++
			}
			resp.Topics = append(resp.Topics, rt)
		}
		c.complete(s, resp)
	})
}
