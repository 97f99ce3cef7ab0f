package wire

import (
	"github.com/strand-io/strand/cluster/metadata"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxTopicNameLen is Kafka's limit (255 minus room for partition suffixes).
// handleCreateTopics validates each topic here (name, counts, configs) and
// leaves existence and placement to the backend. Topics named twice in one
// request all fail with INVALID_REQUEST, as in Kafka.
func (c *conn) handleCreateTopics(s *slot, req *kmsg.CreateTopicsRequest) {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	counts := make(map[string]int, len(req.Topics))
	for _, t := range req.Topics {
		counts[t.Topic]++
	}
	fan := c.answerAfter(s, resp)
	resp.Topics = make([]kmsg.CreateTopicsResponseTopic, len(req.Topics))
	for i := range req.Topics {
		t := &req.Topics[i]
		rt := &resp.Topics[i]
		*rt = kmsg.NewCreateTopicsResponseTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = t.Topic, t.NumPartitions, t.ReplicationFactor
		code, msg := validateNewTopic(t, counts[t.Topic])
		var configs map[string]*string
		if code == errNone {
			configs, code, msg = validateConfigSet(len(t.Configs), func(j int) (string, *string) {
				return t.Configs[j].Name, t.Configs[j].Value
			})
		}
		if code != errNone {
			rt.ErrorCode, rt.ErrorMessage = code, kmsg.StringPtr(msg)
			continue
		}
		fan.add()
		nt := NewTopic{Name: t.Topic, Partitions: t.NumPartitions, ReplicationFactor: t.ReplicationFactor, Configs: configs,
			Assignments: replicaAssignment(t)}
		c.be.CreateTopic(nt, req.ValidateOnly, func(code int16, msg string) {
			defer c.recoverPanic()
			rt.ErrorCode = code
			if msg != "" {
				rt.ErrorMessage = kmsg.StringPtr(msg)
			}
			if code == errNone && !req.ValidateOnly {
				c.fillCreatedTopic(rt)
			}
			fan.done()
		})
	}
	fan.done()
}

func validateNewTopic(t *kmsg.CreateTopicsRequestTopic, seen int) (int16, string) {
	switch {
	case seen > 1:
		return errInvalidRequest, "topic named more than once in the request"
	case metadata.TopicNameProblem(t.Topic) != "":
		return errInvalidTopic, metadata.TopicNameProblem(t.Topic)
	case len(t.ReplicaAssignment) > 0 && (t.NumPartitions != -1 || t.ReplicationFactor != -1):
		return errInvalidRequest, "with a replica assignment, the number of partitions and the replication factor must be -1"
	case len(t.ReplicaAssignment) > 0 && replicaAssignment(t) == nil:
		return errInvalidReplicaAssignment, "the replica assignment must name each partition from 0 once, each with at least one replica"
	case t.NumPartitions == 0 || t.NumPartitions < -1:
		return errInvalidPartitions, "number of partitions must be positive (or -1 for the default)"
	case t.ReplicationFactor == 0 || t.ReplicationFactor < -1:
		return errInvalidReplicationFactor, "replication factor must be positive (or -1 for the default)"
	}
	return errNone, ""
}

// fillCreatedTopic reports what was really created (v5+ fields), since -1
// asks for broker defaults.
func (c *conn) fillCreatedTopic(rt *kmsg.CreateTopicsResponseTopic) {
	ti, ok := c.be.Topic(rt.Topic)
	if !ok {
		return
	}
	rt.TopicID = ti.ID
	rt.NumPartitions = int32(len(ti.Partitions))
	if len(ti.Partitions) > 0 {
		rt.ReplicationFactor = int16(len(ti.Partitions[0].Replicas))
	}
	entries, code := c.be.DescribeConfigs(rt.Topic, nil)
	if code != errNone {
		return
	}
	for _, e := range entries {
		rc := kmsg.NewCreateTopicsResponseTopicConfig()
		rc.Name, rc.Value, rc.ReadOnly, rc.IsSensitive = e.Name, e.Value, e.ReadOnly, e.Sensitive
		rc.Source = int8(configSources[e.Source])
		rt.Configs = append(rt.Configs, rc)
	}
}

// replicaAssignment is t's explicit replica lists indexed by partition, or
// nil if it has none or they do not name partitions 0..n-1 once each.
func replicaAssignment(t *kmsg.CreateTopicsRequestTopic) [][]int32 {
	n := len(t.ReplicaAssignment)
	if n == 0 {
		return nil
	}
	out := make([][]int32, n)
	for _, a := range t.ReplicaAssignment {
		if a.Partition < 0 || int(a.Partition) >= n || out[a.Partition] != nil || len(a.Replicas) == 0 {
			return nil
		}
		out[a.Partition] = a.Replicas
	}
	return out
}
