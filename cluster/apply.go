package cluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/strand-io/strand/cluster/metadata"
	"github.com/strand-io/strand/dma"
	"github.com/strand-io/strand/reactor"
	"github.com/twmb/franz-go/pkg/kerr"
)

// The metadata Raft group's applied state is the broker's authority.
// Every applied View reaches the controller core (core 0), which
// reconciles this broker with it: partitions placed here are opened on
// their cores, deleted ones dropped, changed configs applied, and then
// the cores' snapshot is published (see publish: a topic whose local
// partitions are still opening keeps its published form). Nothing but
// applied commands ever reaches the cores, whichever broker proposed them.
//
// An admin request is validated on the controller core against the
// newest reconciled snapshot, proposed from a goroutine (a proposal is a
// Raft round trip, possibly to another broker), and answered on the
// controller core once the command is applied and reconciled here, as a
// produce is answered after its fsync. The core never waits for Raft.

// defaultMetadataTimeout bounds one proposal (Config.MetadataTimeout);
// past it the outcome is unknown and the request is answered
// REQUEST_TIMED_OUT (the quorum is lost). Kafka's own CreateTopics
// default timeout is 30 s; clients retry sooner than that.
const defaultMetadataTimeout = 10 * time.Second

// defaultMetadataFreeBytes is the free space the data dir's file system
// must have for a metadata change to be proposed (Config.MetadataFreeBytes):
// Dragonboat stops the process when its log cannot be written, so a full
// disk refuses the change instead.
const defaultMetadataFreeBytes = 1 << 20

const defaultMaxBrokers = 64

// errMetadataFull: the data dir's disk has less than MetadataFreeBytes free.
var errMetadataFull = errors.New("disk full")

// checkMetadataSpace refuses a metadata change the disk has no room for.
func (n *Node) checkMetadataSpace() error {
	freeBytes := dma.OSFS().FreeBytes
	if h := n.cfg.hooks.freeBytes; h != nil {
		freeBytes = h
	}
	free, err := freeBytes(n.cfg.DataDir)
	if err != nil {
		return fmt.Errorf("could not persist metadata in %s: %w", n.cfg.DataDir, err)
	}
	if free < n.cfg.MetadataFreeBytes {
		return fmt.Errorf("could not persist metadata: disk full on %s: %d bytes free: %w", n.cfg.DataDir, free, errMetadataFull)
	}
	return nil
}

// proposeWait proposes c and waits until it is applied here. It runs on
// any goroutine but a core's.
//
// A single broker also writes its metadata.json export, before (a change
// it cannot write changes nothing, the contract it always had) and after
// the proposal, here off the cores.
func (n *Node) proposeWait(c metadata.Command) (metadata.Result, error) {
	return n.proposeCtx(context.Background(), c)
}

// proposeCtx is proposeWait that also ends with ctx.
func (n *Node) proposeCtx(ctx context.Context, c metadata.Command) (metadata.Result, error) {
	if err := n.exportMetadata(); err != nil {
		return metadata.Result{}, err
	}
	if err := n.checkMetadataSpace(); err != nil {
		return metadata.Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.MetadataTimeout)
	defer cancel()
	res, err := n.raft.Propose(ctx, c)
	if err == nil && res.Accepted() {
		if eerr := n.exportMetadata(); eerr != nil {
			n.log.Warn("writing the metadata.json export", "err", eerr)
		}
		if hook := n.cfg.hooks.afterProposal; hook != nil {
			err = hook(c)
		}
	}
	return res, err
}

// proposeAsync proposes c from a goroutine and runs done on the
// controller core with the outcome. If the cores are gone (shutdown), done
// never runs: the request ends with its connection.
func (n *Node) proposeAsync(c metadata.Command, done func(metadata.Result, error)) {
	go func() {
		res, err := n.proposeWait(c)
		_ = n.rt.Post(controller, func(*reactor.Core) { done(res, err) })
	}()
}

// proposalCode maps a proposal's outcome to a Kafka error code and message.
func (n *Node) proposalCode(op string, res metadata.Result, err error) (int16, string) {
	switch {
	case err != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)):
		n.metaLog.Warn(n.log, "metadata change timed out: no metadata quorum answered (--metadata-timeout)", "op", op, "timeout", n.cfg.MetadataTimeout)
		return kerr.RequestTimedOut.Code, fmt.Sprintf("%s: the metadata quorum did not answer in %v", op, n.cfg.MetadataTimeout)
	case err != nil:
		n.metaLog.Warn(n.log, "metadata change refused: it could not be persisted", "op", op, "err", err)
		return kerr.KafkaStorageError.Code, fmt.Sprintf("%s: %v", op, err)
	}
	switch res.Code {
	case metadata.OK:
		return 0, ""
	case metadata.ErrTopicExists:
		return errTopicExists, res.Message
	case metadata.ErrUnknownTopic, metadata.ErrUnknownPartition:
		return errUnknownTopic, res.Message
	case metadata.ErrInvalidReplicas, metadata.ErrInvalidISR:
		return kerr.InvalidReplicaAssignment.Code, res.Message
	case metadata.ErrInvalidArgument:
		return errInvalidRequest, res.Message
	case metadata.ErrElectionNotNeeded:
		return kerr.ElectionNotNeeded.Code, res.Message
	case metadata.ErrPreferredNotAvailable:
		return kerr.PreferredLeaderNotAvailable.Code, res.Message
	case metadata.ErrEligibleNotAvailable:
		return kerr.EligibleLeadersNotAvailable.Code, res.Message
	case metadata.ErrNoReassignment:
		return kerr.NoReassignmentInProgress.Code, res.Message
	}
	return kerr.KafkaStorageError.Code, fmt.Sprintf("%s: %s: %s", op, res.Code, res.Message)
}

// watchViews hands every applied View to the controller core; applies in
// a burst are coalesced into the newest.
func (n *Node) watchViews() {
	defer close(n.watchDone)
	var prev *metadata.View
	for {
		select {
		case <-n.watchStop:
			return
		case <-n.viewKick:
		}
		v := n.raft.View()
		n.logUncleanElections(prev, v)
		prev = v
		if err := n.rt.Post(controller, func(*reactor.Core) { n.reconcile(v) }); err != nil {
			return
		}
	}
}

// kickViews is the metadata group's OnApply: it must not block.
func (n *Node) kickViews() {
	select {
	case n.viewKick <- struct{}{}:
	default:
	}
}

// failure is a local open that failed for a change this broker proposed,
// kept for the request that waits for it (see opened).
type failure struct {
	id  [16]byte
	err error
}

// waiter is an admin request waiting for its change to be reconciled.
type waiter struct {
	name    string
	version uint64
	fn      func()
}

// reconcile brings this broker to v (controller core).
func (n *Node) reconcile(v *metadata.View) {
	cur := n.ctlSnap
	if n.closed.Load() || v.Version() <= cur.version {
		return
	}
	next := snapshotOf(v, n.brokerID())
	n.ctlSnap = next
	ctl := n.cores[controller]
	for _, name := range cur.names {
		ct, nt := cur.topics[name], next.topics[name]
		switch {
		case nt == nil || nt.ID != ct.ID:
			n.dropTopic(ctl, ct)
		case len(nt.Cores) < len(ct.Cores):
			n.removePartitions(ctl, ct, len(nt.Cores), func(err error) {
				if err != nil {
					n.log.Error("removing partitions: their directories could not be removed; the next start does", "topic", name, "err", err)
				}
			})
		}
	}
	for _, name := range next.names {
		nt, ct := next.topics[name], cur.topics[name]
		if ct != nil && ct.ID != nt.ID {
			ct = nil
		}
		from := 0
		if ct != nil {
			from = len(ct.Cores)
		}
		if from < len(nt.Cores) {
			n.openLocal(ctl, nt, from)
		}
		if ct != nil && !slices.Equal(ct.Cores, nt.Cores) {
			n.reconcileReplicaSets(ctl, ct, nt)
		}
		if ct != nil && !maps.Equal(ct.Configs, nt.Configs) {
			n.reconfigureLocal(ctl, nt)
		}
	}
	if !maps.EqualFunc(cur.brokerConfigs, next.brokerConfigs, maps.Equal) {
		// Every topic inherits them: published now, so that a partition
		// opened from here on reads them, and applied to the open ones.
		n.unready[brokerConfigsKey]++
		n.reconfigureAll(ctl, next, func() { n.opened(&Topic{Name: brokerConfigsKey}, nil) })
	}
	n.publish()
	n.sendReplicaStates(v, next, !maps.EqualFunc(cur.brokerConfigs, next.brokerConfigs, maps.Equal))
	n.settle()
}

// dropTopic drops a deleted topic's local partitions and removes their
// directories; a re-create of the name waits for that (whenDeleted).
func (n *Node) dropTopic(ctl *coreState, t *Topic) {
	name := t.Name
	if f, ok := n.failed[name]; ok && f.id == t.ID {
		delete(n.failed, name)
	}
	if n.held[name] == t.ID {
		delete(n.held, name)
	}
	n.beginDelete(name)
	n.log.Info("topic deleted", "topic", name)
	n.removePartitions(ctl, t, 0, func(err error) {
		if err != nil {
			n.log.Error("deleting topic: its partitions' directories could not be removed; a re-created topic removes them first, and the next start does", "topic", name, "err", err)
		}
		n.endDelete(name)
	})
}

// openLocal opens t's partitions from index from that are placed on this
// broker. The topic keeps its published form until they are open.
func (n *Node) openLocal(ctl *coreState, t *Topic, from int) {
	owners := localOwners(t, from)
	if len(owners) == 0 {
		return
	}
	n.unready[t.Name]++
	n.whenDeleted(t.Name, func() {
		remaining := len(owners)
		var errs []error
		finish := func(err error) {
			if err != nil {
				errs = append(errs, err)
			}
			if remaining--; remaining == 0 {
				n.opened(t, errors.Join(errs...))
			}
		}
		for o := range owners {
			ctl.core.Send(o, func(c *reactor.Core) {
				cs := n.cores[o]
				openOwned(cs, t, from, func(err error) {
					if t.Name == OffsetsTopic {
						cs.hostCoordinators()
					}
					c.Send(controller, func(*reactor.Core) { finish(err) })
				})
			})
		}
	})
}

// reconfigureLocal applies t's configs to its local partitions, behind
// any open still in progress (which used the old configs).
func (n *Node) reconfigureLocal(ctl *coreState, t *Topic) {
	owners := localOwners(t, 0)
	if len(owners) == 0 {
		return
	}
	n.unready[t.Name]++
	remaining := len(owners)
	for o := range owners {
		ctl.core.Send(o, func(c *reactor.Core) {
			cs := n.cores[o]
			pending := 1
			release := func() {
				if pending--; pending == 0 {
					c.Send(controller, func(*reactor.Core) {
						if remaining--; remaining == 0 {
							n.opened(t, nil)
						}
					})
				}
			}
			for p, core := range t.Cores {
				if core != o {
					continue
				}
				pending++
				cs.reconfigure(t, int32(p), release)
			}
			release()
		})
	}
}

func localOwners(t *Topic, from int) map[reactor.CoreID]bool {
	owners := map[reactor.CoreID]bool{}
	for p := from; p < len(t.Cores); p++ {
		if t.local(p) {
			owners[t.Cores[p]] = true
		}
	}
	return owners
}

// opened ends a local change of t (controller core). A failed open of a
// change this broker proposed holds the topic back (never published) for
// the waiting request, which undoes the change; any other failure leaves
// the partitions unavailable here, and is logged.
func (n *Node) opened(t *Topic, err error) {
	if n.unready[t.Name]--; n.unready[t.Name] <= 0 {
		delete(n.unready, t.Name)
	}
	if err != nil {
		if n.proposing[t.Name] > 0 {
			n.held[t.Name] = t.ID
			n.failed[t.Name] = failure{id: t.ID, err: err}
		} else {
			n.log.Error("opening partitions placed on this broker failed; they stay unavailable here until a restart", "topic", t.Name, "err", err)
		}
	}
	n.publish()
	n.settle()
}

// takeFailure returns and forgets the failed open of topic incarnation id.
func (n *Node) takeFailure(name string, id [16]byte) error {
	f, ok := n.failed[name]
	if !ok || f.id != id {
		return nil
	}
	delete(n.failed, name)
	return f.err
}

// whenSettled runs fn on the controller once this broker has reconciled
// version and no local change of name is in progress.
func (n *Node) whenSettled(name string, version uint64, fn func()) {
	n.waiters = append(n.waiters, waiter{name: name, version: version, fn: fn})
	n.settle()
}

func (n *Node) settle() {
	ws := n.waiters
	n.waiters = nil
	var ready []waiter
	for _, w := range ws {
		if n.ctlSnap.version >= w.version && n.unready[w.name] == 0 {
			ready = append(ready, w)
		} else {
			n.waiters = append(n.waiters, w)
		}
	}
	for _, w := range ready {
		w.fn()
	}
}

// beginProposal and endProposal bracket an admin request of topic name
// (see opened).
func (n *Node) beginProposal(name string) { n.proposing[name]++ }

func (n *Node) endProposal(name string) {
	if n.proposing[name]--; n.proposing[name] <= 0 {
		delete(n.proposing, name)
	}
}
