package metadata

// View is an immutable copy of the metadata at one Version. It is what the
// broker publishes to its cores behind an atomic pointer: any goroutine may
// read it without locks. Nothing reachable from a View may be modified.
//
// Views share unchanged maps and topics with the State that made them; the
// State copies a map before its first change after handing out a View.
type View struct {
	version        uint64
	nextProducerID int64
	brokers        map[BrokerID]*Broker
	brokerIDs      []BrokerID // sorted
	topics         map[string]*Topic
	names          []string // sorted
	byID           map[TopicID]string
	brokerConfigs  map[string]map[string]string
}

var emptyView = &View{}

// Version is the number of commands applied to reach this view.
func (v *View) Version() uint64 { return v.version }

// NextProducerID is the first producer id not yet handed out.
func (v *View) NextProducerID() int64 { return v.nextProducerID }

// Broker returns broker id.
func (v *View) Broker(id BrokerID) (*Broker, bool) {
	b, ok := v.brokers[id]
	return b, ok
}

// BrokerIDs returns every registered broker id in ascending order. The
// slice is shared: do not modify it.
func (v *View) BrokerIDs() []BrokerID { return v.brokerIDs }

// NumBrokers is the number of registered brokers.
func (v *View) NumBrokers() int { return len(v.brokerIDs) }

// Topic returns the topic called name.
func (v *View) Topic(name string) (*Topic, bool) {
	t, ok := v.topics[name]
	return t, ok
}

// TopicByID returns the topic whose id is id.
func (v *View) TopicByID(id TopicID) (*Topic, bool) {
	n, ok := v.byID[id]
	if !ok {
		return nil, false
	}
	return v.topics[n], true
}

// TopicNames returns every topic name in ascending order. The slice is
// shared: do not modify it.
func (v *View) TopicNames() []string { return v.names }

// NumTopics is the number of topics.
func (v *View) NumTopics() int { return len(v.names) }

// Partition returns one partition of a topic.
func (v *View) Partition(topic string, partition int32) (*Partition, bool) {
	t, ok := v.topics[topic]
	if !ok || partition < 0 || int(partition) >= len(t.Partitions) {
		return nil, false
	}
	return &t.Partitions[partition], true
}
