package wire

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleElectLeaders runs leader elections (KIP-460): type 0 preferred
// (v0 knows no other), 1 unclean. Null topics ask for every partition.
// The answer groups the partitions by topic in the order the backend
// gives them.
func (c *conn) handleElectLeaders(s *slot, req *kmsg.ElectLeadersRequest) {
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	unclean := false
	if req.Version >= 1 {
		switch req.ElectionType {
		case 0:
		case 1:
			unclean = true
		default:
			resp.ErrorCode = kerr.InvalidRequest.Code
			c.complete(s, resp)
			return
		}
	}
	var parts []PartitionRef
	if req.Topics != nil {
		parts = []PartitionRef{} // named, though maybe none
		for _, t := range req.Topics {
			for _, p := range t.Partitions {
				parts = append(parts, PartitionRef{Topic: t.Topic, Partition: p})
			}
		}
	}
	c.cb.ElectLeaders(unclean, parts, func(rs []PartitionResult) {
		defer c.recoverPanic()
		at := map[string]int{}
		for _, r := range rs {
			i, ok := at[r.Topic]
			if !ok {
				i = len(resp.Topics)
				at[r.Topic] = i
				rt := kmsg.NewElectLeadersResponseTopic()
				rt.Topic = r.Topic
				resp.Topics = append(resp.Topics, rt)
			}
			rp := kmsg.NewElectLeadersResponseTopicPartition()
			rp.Partition, rp.ErrorCode = r.Partition, r.ErrCode
			if r.Msg != "" {
				msg := r.Msg
				rp.ErrorMessage = &msg
			}
			resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, rp)
		}
		c.complete(s, resp)
	})
}
