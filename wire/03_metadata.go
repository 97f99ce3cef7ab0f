package wire

import "github.com/twmb/franz-go/pkg/kmsg"

// handleMetadata describes brokers and topics. Null topics (v1+) or an empty
// list at v0 mean every topic. Unknown topics are created first when the
// broker allows auto-creation and the request asks for it (always at v0-v3,
// AllowAutoTopicCreation from v4); the response waits for the creation so
// the client sees the new topic at once.
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
		if _, ok := c.be.Topic(*t.Topic); !ok && validTopicName(*t.Topic) == "" {
			missing = append(missing, *t.Topic)
		}
	}
	if len(missing) == 0 {
		c.complete(s, c.metadataResponse(req, false))
		return
	}
	pending := len(missing)
	for _, name := range missing {
		c.be.CreateTopic(NewTopic{Name: name, Partitions: -1, ReplicationFactor: -1}, false, func(code int16, msg string) {
			defer c.recoverPanic()
			if code != errNone && code != errTopicAlreadyExists {
				c.log.Warn("wire: auto-create failed", "topic", name, "err", errName(code), "msg", msg)
			}
			if pending--; pending == 0 {
				c.complete(s, c.metadataResponse(req, false))
			}
		})
	}
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
		case validTopicName(*rt.Topic) != "":
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
