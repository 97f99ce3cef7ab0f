package cluster

import (
	"github.com/strand-io/strand/reactor"
	"github.com/strand-io/strand/shard"
	"github.com/strand-io/strand/wire"
)

// reconcileReplicaSets opens the replicas a reassignment placed on this
// broker and removes those it took away (controller core, from
// reconcile), for partitions that exist in both ct and nt (the same
// topic). A new replica starts empty, out of the in-sync set, and fetches
// from the leader (fetcher.go) once its log is open; until then requests
// for it find no partition (LEADER_NOT_AVAILABLE). A removed one is no
// longer listed, so nothing asks for it; its log closes and its directory
// goes.
func (n *Node) reconcileReplicaSets(ctl *coreState, ct, nt *Topic) {
	for p := range min(len(ct.Cores), len(nt.Cores)) {
		ref := wire.PartitionRef{Topic: nt.Name, Partition: int32(p)}
		switch was, is := ct.local(p), nt.local(p); {
		case !was && is:
			o := nt.Cores[p]
			n.log.Info("replication: a replica was assigned here; opening it", "partition", ref, "core", o)
			ctl.core.Send(o, func(*reactor.Core) {
				cs := n.cores[o]
				cs.openAsync(nt, int32(p), true, func(err error) {
					if err != nil {
						n.log.Error("replication: opening an assigned replica failed", "partition", ref, "err", err)
					}
				})
			})
		case was && !is:
			o := ct.Cores[p]
			n.log.Info("replication: the replica here was reassigned away; removing it", "partition", ref)
			ctl.core.Send(o, func(*reactor.Core) {
				cs := n.cores[o]
				cs.drop(ref, func(*shard.Log) {
					if err := cs.removeDir(ref); err != nil {
						n.log.Error("replication: removing a reassigned replica's directory failed", "partition", ref, "err", err)
					}
				})
			})
		}
	}
}
