package wire

import (
	"github.com/strand-io/strand/cluster/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleMetadata describes brokers and topics. Null topics (v1+) or an empty
// list at v0 mean every topic. Unknown topics are created first when the
// broker allows auto-creation and the request asks for it (always at v0-v3,
// AllowAutoTopicCreation from v4); the response waits for the creation so
// the client sees the new topic at once. One request creates at most
// AutoCreateMaxPerRequest topics (the broker also bounds them per second):
// a request naming thousands of new topics would otherwise open thousands
// of logs and hold its answer for all of them. The topics left out, or
// refused by the rate limit, are answered LEADER_NOT_AVAILABLE, which
// clients retry, as Kafka answers a topic it is still creating.
func (c *conn) handleMetadata(s *slot, req *kmsg.MetadataRequest) {
	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	allowCreate := (req.Version < 4 || req.AllowAutoTopicCreation) && c.be.AutoCreateTopics()
	if all || !allowCreate {
		c.complete(s, c.metadataResponse(req, all))
		return
	}
	var missing []string
	for _, t := range req.Topics {
		if t.Topic == nil {
			continue
		}
		if _, ok := c.be.Topic(*t.Topic); !ok && metadata.TopicNameProblem(*t.Topic) == "" {
			missing = append(missing, *t.Topic)
		}
	}
	if len(missing) == 0 {
		c.complete(s, c.metadataResponse(req, false))
		return
	}
	var deferred map[string]bool // named but not created now
	if limit := c.srv.autoCreateMax(); limit >= 0 && len(missing) > limit {
		deferred = make(map[string]bool, len(missing)-limit)
		for _, name := range missing[limit:] {
			deferred[name] = true
		}
		autoCreateLog.warn(c.log, "wire: Metadata named more unknown topics than one request may create; the rest are answered LEADER_NOT_AVAILABLE",
			"named", len(missing), "created_max", limit, "flag", "--auto-create-max-per-request")
		missing = missing[:limit]
	}
	respond := func() {
		resp := c.metadataResponse(req, false)
		for i := range resp.Topics {
			rt := &resp.Topics[i]
			if rt.ErrorCode == errUnknownTopicOrPartition && rt.Topic != nil && deferred[*rt.Topic] {
				rt.ErrorCode = errLeaderNotAvailable
			}
		}
		c.complete(s, resp)
	}
	pending := len(missing) + 1 // released after the loop: callbacks may run inline
	release := func() {
		if pending--; pending == 0 {
			respond()
		}
	}
	for _, name := range missing {
		c.be.CreateTopic(NewTopic{Name: name, Partitions: -1, ReplicationFactor: -1, Implicit: true}, false, func(code int16, msg string) {
			defer c.recoverPanic()
			switch code {
			case errNone:
			case errTopicAlreadyExists, kerr.ThrottlingQuotaExceeded.Code:
				// Still being created by someone else (not listed until
				// its partitions are open), or past the rate limit, which
				// the broker logs itself: the client retries.
				if deferred == nil {
					deferred = map[string]bool{}
				}
				deferred[name] = true
			default:
				autoCreateFailLog.warn(c.log, "wire: auto-create failed", "topic", name, "err", errName(code), "msg", msg)
			}
			release()
		})
	}
	release()
}

func (c *conn) metadataResponse(req *kmsg.MetadataRequest, all bool) *kmsg.MetadataResponse {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	brokers := c.be.Brokers()
	if len(brokers) == 0 { // single node without cluster metadata yet
		cfg := c.srv.cfg
		brokers = []BrokerInfo{{NodeID: cfg.NodeID, Host: cfg.AdvertisedHost, Port: cfg.AdvertisedPort}}
	}
	for _, b := range brokers {
		rb := kmsg.NewMetadataResponseBroker()
		rb.NodeID, rb.Host, rb.Port, rb.Rack = b.NodeID, b.Host, b.Port, b.Rack
		resp.Brokers = append(resp.Brokers, rb)
	}
	resp.ClusterID = kmsg.StringPtr(c.srv.cfg.ClusterID)
	resp.ControllerID = c.be.ControllerID()
	if all {
		for _, t := range c.be.Topics() {
			resp.Topics = append(resp.Topics, metadataTopic(t))
		}
		return resp
	}
	var byID map[[16]byte]TopicInfo
	for _, rt := range req.Topics {
		var (
			t  TopicInfo
			ok bool
		)
		switch {
		case rt.Topic != nil:
			t, ok = c.be.Topic(*rt.Topic)
		case rt.TopicID != [16]byte{}:
			if byID == nil {
				byID = make(map[[16]byte]TopicInfo)
				for _, t := range c.be.Topics() {
					byID[t.ID] = t
				}
			}
			t, ok = byID[rt.TopicID]
		}
		if ok {
			resp.Topics = append(resp.Topics, metadataTopic(t))
			continue
		}
		mt := kmsg.NewMetadataResponseTopic()
		mt.Topic, mt.TopicID = rt.Topic, rt.TopicID
		switch {
		case rt.Topic == nil:
			mt.ErrorCode = errUnknownTopicID
		case metadata.TopicNameProblem(*rt.Topic) != "":
			mt.ErrorCode = errInvalidTopic
		default:
			mt.ErrorCode = errUnknownTopicOrPartition
		}
		resp.Topics = append(resp.Topics, mt)
	}
	return resp
}

func metadataTopic(t TopicInfo) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	mt.Topic, mt.TopicID, mt.IsInternal = kmsg.StringPtr(t.Name), t.ID, t.Internal
	mt.Partitions = make([]kmsg.MetadataResponseTopicPartition, 0, len(t.Partitions))
	for _, p := range t.Partitions {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition, mp.Leader, mp.LeaderEpoch = p.ID, p.Leader, p.LeaderEpoch
		mp.Replicas, mp.ISR = p.Replicas, p.ISR
		if mp.Replicas == nil {
			mp.Replicas = []int32{}
		}
		if mp.ISR == nil {
			mp.ISR = []int32{}
		}
		mp.OfflineReplicas = []int32{}
		if p.Leader < 0 {
			mp.ErrorCode = errLeaderNotAvailable
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}
