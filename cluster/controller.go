package cluster

import (
	"errors"
	"fmt"

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

// deleteTopic deletes topic name if it is still the incarnation id (any
// id when id is zero) and calls done on the controller with a Kafka error
// code and message once the removal is durable and published. removed, if
// not nil, runs once the directories are renamed away.
func (n *Node) deleteTopic(ctl *coreState, name string, id [16]byte, done func(code int16, msg string), removed func()) {
	s := n.pending()
	t := s.topics[name]
	if t == nil || (id != [16]byte{} && t.ID != id) {
		done(kerr.UnknownTopicOrPartition.Code, "")
		return
	}
	next, err := n.persist(s.with(name, nil))
	if err != nil {
		n.log.Error("deleting topic: persisting metadata", "topic", name, "err", err)
		done(kerr.KafkaStorageError.Code, fmt.Sprintf("deleting topic %q: persisting metadata: %v", name, err))
		return
	}
	n.ctlSnap = next
	n.beginDelete(name)
	n.publish() // no new request reaches the logs
	n.log.Info("topic deleted", "topic", name)
	done(0, "")
	n.removePartitions(ctl, t, 0, func(err error) {
		if err != nil {
			n.log.Error("deleting topic: its partitions' directories could not be removed; a re-created topic removes them first, and the next start does", "topic", name, "err", err)
		}
		n.endDelete(name)
		if removed != nil {
			removed()
		}
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
	remaining := len(t.Cores) - from
	if remaining <= 0 {
		done(nil)
		return
	}
	var errs []error
	for p := from; p < len(t.Cores); p++ {
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
