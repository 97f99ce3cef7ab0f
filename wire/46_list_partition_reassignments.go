package wire

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleListPartitionReassignments lists the reassignments in progress
// among the partitions named (null topics: all); partitions not being
// reassigned, or unknown, are left out, as Kafka does.
func (c *conn) handleListPartitionReassignments(s *slot, req *kmsg.ListPartitionReassignmentsRequest) {
	resp := req.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	var parts []PartitionRef
	if req.Topics != nil {
		parts = []PartitionRef{}
		for _, t := range req.Topics {
			for _, p := range t.Partitions {
				parts = append(parts, PartitionRef{Topic: t.Topic, Partition: p})
			}
		}
	}
	at := map[string]int{}
	for _, st := range c.cb.ListPartitionReassignments(parts) {
		i, ok := at[st.Topic]
		if !ok {
			i = len(resp.Topics)
			at[st.Topic] = i
			rt := kmsg.NewListPartitionReassignmentsResponseTopic()
			rt.Topic = st.Topic
			resp.Topics = append(resp.Topics, rt)
		}
		rp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
		rp.Partition, rp.Replicas, rp.AddingReplicas, rp.RemovingReplicas = st.Partition, st.Replicas, st.Adding, st.Removing
		resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, rp)
	}
	c.complete(s, resp)
}
