package cluster

import (
	"github.com/strand-io/strand/cluster/metadata"
)

// Leader elections are decided by the metadata state machine
// (cluster/metadata/election.go); this file is the broker's side of them.

// logUncleanElections warns, on the broker that now leads, about every
// partition whose new leader was not in sync between two applied views:
// records acknowledged by the old in-sync replicas may be gone
// (unclean.leader.election.enable). Off the cores (watchViews).
func (n *Node) logUncleanElections(before, after *metadata.View) {
	if before == nil {
		return
	}
	for _, e := range metadata.UncleanElections(before, after) {
		if e.Leader != n.brokerID() {
			continue
		}
		n.log.Warn("unclean leader election: this broker leads a partition it was not in sync for; records acknowledged before may be lost",
			"topic", e.Topic, "partition", e.Partition, "leader_epoch", e.Epoch)
	}
}
