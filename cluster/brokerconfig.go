package cluster

import (
	"net"
	"strconv"

	"github.com/strand-io/strand/cluster/topicconfig"
)

// brokerSettings is what DescribeConfigs(BROKER) reports: the settings
// this node runs with, read from its Config after Start filled defaults.
func (n *Node) brokerSettings() topicconfig.BrokerSettings {
	static := make(map[string]bool, len(n.cfg.StaticConfigs))
	for _, name := range n.cfg.StaticConfigs {
		static[name] = true
	}
	adv := (&backend{node: n}).Brokers()[0]
	cfg := n.cfg.Log
	idx := cfg.IndexIntervalBytes
	if idx <= 0 {
		idx = 4096 // shard.Config's default
	}
	return topicconfig.BrokerSettings{
		NodeID:              n.cfg.NodeID,
		Listeners:           "PLAINTEXT://" + n.Addr(),
		AdvertisedListeners: "PLAINTEXT://" + net.JoinHostPort(adv.Host, strconv.Itoa(int(adv.Port))),
		LogDirs:             n.cfg.DataDir,
		NumPartitions:       n.cfg.DefaultPartitions,
		AutoCreateTopics:    n.cfg.AutoCreateTopics,
		SocketRequestBytes:  n.cfg.MaxRequestBytes,
		OffsetsPartitions:   n.cfg.OffsetsPartitions,
		IndexIntervalBytes:  idx,
		Preallocate:         cfg.Preallocate,
		Static:              static,
	}
}
