package cluster

import (
	"errors"
	"fmt"

	"github.com/strand-io/strand/cluster/metadata"
	"github.com/strand-io/strand/reactor"
	"github.com/strand-io/strand/shard"
	"github.com/strand-io/strand/wire"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Deletion. The removal is persisted first and then published at once
// (publish shows a deletion even while a create or reconfiguration of the
// topic still waits for its partitions). Then DeleteTopics is answered
// (with an error and its message only if the metadata could not be
// written), and every owner drops its partitions and renames their
// directories to short tombstone names (a name that fits whatever the
// topic name's length), which are removed in the background. The deleted
// data cannot be served again whatever happens next: a crash anywhere
// leaves directories that the metadata no longer names, and Start removes
// every such directory and every tombstone before it opens anything
// (sweepDataDir); a create of a name whose deletion is still running
// waits for it; and a new partition never adopts a directory it finds
// (openAsync with fresh), should a rename have failed.

// deleteTopic proposes the deletion of topic name if it is still the
// incarnation id (any id when id is zero) and calls done on the
// controller with a Kafka error code and message once the removal is
// applied and published here (reconcile drops the partitions).
func (n *Node) deleteTopic(ctl *coreState, name string, id [16]byte, done func(code int16, msg string)) {
	t := n.pending().topics[name]
	if t == nil || (id != [16]byte{} && t.ID != id) {
		done(kerr.UnknownTopicOrPartition.Code, "")
		return
	}
	op := fmt.Sprintf("deleting topic %q", name)
	n.proposeAsync(&metadata.DeleteTopic{Name: name, ID: metadata.TopicID(t.ID)}, func(res metadata.Result, err error) {
		if code, msg := n.proposalCode(op, res, err); code != 0 {
			done(code, msg)
			return
		}
		n.whenSettled("", res.Version, func() { done(0, "") })
	})
}

func (n *Node) beginDelete(name string) {
	if n.deleting == nil {
		n.deleting = map[string]int{}
	}
	n.deleting[name]++
}

// endDelete runs the creates that waited for the deletions of name.
func (n *Node) endDelete(name string) {
	if n.deleting[name]--; n.deleting[name] > 0 {
		return
	}
	delete(n.deleting, name)
	waiting := n.afterDelete[name]
	delete(n.afterDelete, name)
	for _, fn := range waiting {
		fn()
	}
}

// whenDeleted runs fn on the controller once no deletion of name is in
// progress, at once if none is.
func (n *Node) whenDeleted(name string, fn func()) {
	if n.deleting[name] == 0 {
		fn()
		return
	}
	if n.afterDelete == nil {
		n.afterDelete = map[string][]func(){}
	}
	n.afterDelete[name] = append(n.afterDelete[name], fn)
}

// removePartitions drops t's partitions from index from on their owners
// and renames their directories away, then calls done on the controller
// with what failed.
func (n *Node) removePartitions(ctl *coreState, t *Topic, from int, done func(error)) {
	remaining := 0
	for p := from; p < len(t.Cores); p++ {
		if t.local(p) {
			remaining++
		}
	}
	if remaining == 0 {
		done(nil)
		return
	}
	var errs []error
	for p := from; p < len(t.Cores); p++ {
		if !t.local(p) {
			continue
		}
		ref := wire.PartitionRef{Topic: t.Name, Partition: int32(p)}
		o := t.Cores[p]
		ctl.core.Send(o, func(c *reactor.Core) {
			cs := n.cores[o]
			cs.drop(ref, func(*shard.Log) {
				err := cs.removeDir(ref)
				c.Send(controller, func(*reactor.Core) {
					if err != nil {
						errs = append(errs, err)
					}
					if remaining--; remaining == 0 {
						done(errors.Join(errs...))
					}
				})
			})
		})
	}
}
