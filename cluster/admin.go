package cluster

import (
	"errors"
	"fmt"

	"github.com/strand-io/strand/cluster/metadata"
	"github.com/strand-io/strand/cluster/topicconfig"
	"github.com/strand-io/strand/reactor"
	"github.com/strand-io/strand/wire"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Admin operations run on the controller core (core 0), one at a time in
// message order, so they need no lock. The controller persists the new
// metadata first, then has each owning core open or drop its partitions,
// and publishes the snapshot only once they are ready; requests that race
// ahead see the old snapshot and get retriable errors, never a half-built
// topic.
const controller reactor.CoreID = 0

// maxPartitionsPerTopic bounds one topic, so a request cannot make the
// broker open millions of logs (the protocol allows 2^31).
const maxPartitionsPerTopic = 10000

// onController runs fn on the controller core; fn's reply runs back here.
func (b *backend) onController(fn func(ctl *coreState, reply func(func()))) {
	origin := b.cs.core.ID()
	if origin == controller {
		fn(b.cs, func(r func()) { r() })
		return
	}
	b.cs.core.Send(controller, func(c *reactor.Core) {
		fn(b.node.cores[controller], func(r func()) { c.Send(origin, func(*reactor.Core) { r() }) })
	})
}

// pending is the controller's newest metadata, which may not be published
// yet while its partitions open. Only the controller core touches it.
func (n *Node) pending() *snapshot {
	if n.ctlSnap == nil || n.ctlSnap.version < n.meta.Load().version {
		n.ctlSnap = n.meta.Load()
	}
	return n.ctlSnap
}

// commit persists next, a change to topic name, and then, once every owner
// core has finished prepare for its share of the topic (prepare calls
// ready, on that core, with the outcome), publishes it and calls done (on
// the controller). When prepare failed, done gets the error before the
// change is published, while the topic is still held in its published
// form (see publish), so that it can undo the change and what failed is
// never listed.
func (n *Node) commit(ctl *coreState, name string, next *snapshot, owners []reactor.CoreID, prepare func(cs *coreState, ready func(error)), done func(err error)) {
	got, err := n.persist(next)
	if err != nil {
		done(fmt.Errorf("persisting metadata: %w", err))
		return
	}
	n.ctlSnap = got
	set := map[reactor.CoreID]bool{}
	for _, o := range owners {
		set[o] = true
	}
	remaining := len(set)
	if remaining == 0 {
		n.publish()
		done(nil)
		return
	}
	n.unready[name]++
	var errs []error
	finish := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
		if remaining--; remaining > 0 {
			return
		}
		err = errors.Join(errs...)
		if err != nil {
			done(err)
		}
		if n.unready[name]--; n.unready[name] == 0 {
			delete(n.unready, name)
		}
		n.publish()
		if err == nil {
			done(nil)
		}
	}
	for o := range set {
		ctl.core.Send(o, func(c *reactor.Core) {
			prepare(n.cores[o], func(err error) { c.Send(controller, func(*reactor.Core) { finish(err) }) })
		})
	}
}

// publish makes the controller's metadata (ctlSnap) the one every core
// reads, except that a topic with a change still opening on its owners
// keeps its published form, unless it is deleted, which shows at once.
// Commits finish in any order: publishing whole snapshots as each finished
// would let an earlier one, finishing last, take back a later topic or a
// delete, and a later one, finishing first, show an earlier topic before
// its logs were open.
func (n *Node) publish() {
	next := n.ctlSnap
	if len(n.unready) > 0 {
		cur := n.meta.Load()
		topics := make(map[string]*Topic, len(next.topics))
		for k, v := range next.topics {
			topics[k] = v
		}
		for name := range n.unready {
			if _, live := next.topics[name]; !live {
				continue
			}
			if t, ok := cur.topics[name]; ok {
				topics[name] = t
			} else {
				delete(topics, name)
			}
		}
		// Same version as ctlSnap, so pending keeps the controller's
		// own; readers must not key caches on the version alone.
		ns := newSnapshot(next.version, topics)
		ns.pidLimit, ns.brokerConfigs = next.pidLimit, next.brokerConfigs
		next = ns
	}
	n.meta.Store(next)
}

func (b *backend) CreateTopic(t wire.NewTopic, validateOnly bool, cb func(int16, string)) {
	b.onController(func(ctl *coreState, reply func(func())) {
		answer := func(code int16, msg string) { reply(func() { cb(code, msg) }) }
		// A name being deleted is created again only once its old
		// directories are gone.
		b.node.whenDeleted(t.Name, func() { b.node.createTopic(ctl, t, validateOnly, answer) })
	})
}

func (n *Node) createTopic(ctl *coreState, t wire.NewTopic, validateOnly bool, answer func(int16, string)) {
	s := n.pending()
	parts := t.Partitions
	if parts == -1 {
		parts = n.cfg.DefaultPartitions
	}
	switch {
	case !metadata.ValidTopicName(t.Name):
		answer(errInvalidTopic, fmt.Sprintf("invalid topic name %q", t.Name))
		return
	case s.topics[t.Name] != nil:
		answer(errTopicExists, fmt.Sprintf("topic %q already exists", t.Name))
		return
	case parts <= 0 || parts > maxPartitionsPerTopic:
		answer(errInvalidPartitions, fmt.Sprintf("partitions must be between 1 and %d", maxPartitionsPerTopic))
		return
	case t.ReplicationFactor != -1 && t.ReplicationFactor != 1:
		answer(errInvalidReplication, fmt.Sprintf("replication factor %d: this cluster has 1 broker", t.ReplicationFactor))
		return
	}
	configs := map[string]string{}
	for k, v := range t.Configs {
		if v != nil {
			configs[k] = *v
		}
	}
	if err := n.checkWithInherited(s, configs); err != nil {
		answer(kerr.InvalidConfig.Code, err.Error())
		return
	}
	if msg := n.overBudget(s, parts); msg != "" {
		n.partsRefused.Add(1)
		n.budgetLog.Warn(n.log, "refusing topic: partition budget exhausted", "topic", t.Name, "partitions", parts, "why", msg)
		answer(kerr.PolicyViolation.Code, msg)
		return
	}
	// Only a topic about to be created takes a token: clients retrying
	// while it opens do not use up the rate.
	if t.Implicit && !validateOnly {
		if ok, msg := n.takeAutoCreate(); !ok {
			answer(kerr.ThrottlingQuotaExceeded.Code, msg)
			return
		}
	}
	topic := &Topic{Name: t.Name, ID: newTopicID(), Configs: configs}
	if msg := pinProblem(topic.Configs, len(n.cores)); msg != "" {
		answer(errInvalidConfig, msg)
		return
	}
	if validateOnly {
		answer(0, "")
		return
	}
	topic.Cores = n.placeNewByLoad(s, parts, topic.Configs)
	n.commit(ctl, t.Name, s.with(t.Name, topic), topic.Cores, func(cs *coreState, ready func(error)) {
		openOwned(cs, topic, 0, ready)
	}, func(err error) {
		if err == nil {
			n.log.Info("topic created", "topic", t.Name, "partitions", parts)
			answer(0, "")
			return
		}
		n.log.Error("creating topic failed; anything of it is undone", "topic", t.Name, "err", err)
		msg := fmt.Sprintf("creating topic %q: %v", t.Name, err)
		if n.pending().topics[t.Name] == nil { // metadata never persisted
			answer(kerr.KafkaStorageError.Code, msg)
			return
		}
		// Undo the whole topic: it was never published, and a create
		// answers all or nothing.
		n.deleteTopic(ctl, t.Name, topic.ID, func(code int16, _ string) {
			if code != 0 { // deleted already, or the undo could not be persisted
				answer(kerr.KafkaStorageError.Code, msg)
			}
		}, func() { answer(kerr.KafkaStorageError.Code, msg) })
	})
}

// openOwned opens, off the core, the new partitions of t from index
// `from` that cs owns, and calls ready on cs when all are open, with what
// failed.
func openOwned(cs *coreState, t *Topic, from int, ready func(error)) {
	pending := 1
	var errs []error
	release := func() {
		if pending--; pending == 0 {
			ready(errors.Join(errs...))
		}
	}
	for p := from; p < len(t.Cores); p++ {
		if t.Cores[p] == cs.core.ID() {
			pending++
			cs.openAsync(t, int32(p), true, func(err error) {
				if err != nil {
					cs.node.log.Error("opening partition", "err", err)
					errs = append(errs, err)
				}
				release()
			})
		}
	}
	release()
}

// deleteTopic is DeleteTopic once the topic's committed offsets are gone
// (see purgeOffsets).
func (b *backend) deleteTopic(name string, cb func(int16, string)) {
	b.onController(func(ctl *coreState, reply func(func())) {
		b.node.deleteTopic(ctl, name, [16]byte{}, func(code int16, msg string) { reply(func() { cb(code, msg) }) }, nil)
	})
}

func (b *backend) CreatePartitions(name string, total int32, validateOnly bool, cb func(int16, string)) {
	b.onController(func(ctl *coreState, reply func(func())) {
		n := b.node
		answer := func(code int16, msg string) { reply(func() { cb(code, msg) }) }
		s := n.pending()
		t := s.topics[name]
		switch {
		case t == nil:
			answer(errUnknownTopic, "")
			return
		case total <= t.Partitions():
			answer(errInvalidPartitions, fmt.Sprintf("topic has %d partitions; the new count must be larger", t.Partitions()))
			return
		case total > maxPartitionsPerTopic:
			answer(errInvalidPartitions, fmt.Sprintf("at most %d partitions per topic", maxPartitionsPerTopic))
			return
		}
		if msg := n.overBudget(s, total-t.Partitions()); msg != "" {
			n.partsRefused.Add(1)
			n.budgetLog.Warn(n.log, "refusing partitions: partition budget exhausted", "topic", name, "partitions", total-t.Partitions(), "why", msg)
			answer(kerr.PolicyViolation.Code, msg)
			return
		}
		if validateOnly {
			answer(0, "")
			return
		}
		nt := *t
		from := len(t.Cores)
		nt.Cores = append(append([]reactor.CoreID(nil), t.Cores...), n.placeNewByLoad(s, total-t.Partitions(), t.Configs)...)
		n.commit(ctl, name, s.with(name, &nt), nt.Cores[from:], func(cs *coreState, ready func(error)) { openOwned(cs, &nt, from, ready) }, func(err error) {
			if err == nil {
				answer(0, "")
				return
			}
			n.log.Error("adding partitions failed; anything of them is undone", "topic", name, "err", err)
			msg := fmt.Sprintf("adding partitions to %q: %v", name, err)
			cur := n.pending().topics[name]
			if cur == nil || cur.ID != nt.ID || len(cur.Cores) != len(nt.Cores) {
				// Persisting failed, or the topic changed since: nothing
				// of this request is left to undo.
				answer(kerr.KafkaStorageError.Code, msg)
				return
			}
			n.shrinkTopic(ctl, cur, from, func() { answer(kerr.KafkaStorageError.Code, msg) })
		})
	})
}

// shrinkTopic undoes a failed CreatePartitions: t goes back to its first
// `from` partitions and the new ones are dropped and removed.
func (n *Node) shrinkTopic(ctl *coreState, t *Topic, from int, done func()) {
	old := *t
	old.Cores = t.Cores[:from:from]
	got, err := n.persist(n.pending().with(t.Name, &old))
	if err != nil {
		n.log.Error("undoing partitions: persisting metadata", "topic", t.Name, "err", err)
		done()
		return
	}
	n.ctlSnap = got
	n.publish()
	n.removePartitions(ctl, t, from, func(err error) {
		if err != nil {
			n.log.Error("undoing partitions: removing them", "topic", t.Name, "err", err)
		}
		done()
	})
}

func (b *backend) DescribeConfigs(topic string, keys []string) ([]wire.ConfigEntry, int16) {
	s := b.node.meta.Load()
	t, ok := s.topics[topic]
	if !ok {
		return nil, errUnknownTopic
	}
	return configEntries(topicconfig.Describe(t.Configs, b.node.inherited(s), keys)), 0
}

// DescribeBrokerConfigs answers for this broker only, by its node id, as
// Kafka does; an empty name asks for the cluster-wide dynamic defaults.
func (b *backend) DescribeBrokerConfigs(name string, keys []string) ([]wire.ConfigEntry, int16) {
	switch name {
	case "":
		return configEntries(topicconfig.BrokerDefaults(b.node.meta.Load().brokerConfigs[""], keys)), 0
	case b.node.brokerResource():
		return configEntries(topicconfig.Broker(b.node.brokerSettings(), keys)), 0
	}
	return nil, errInvalidRequest
}

func configEntries(es []topicconfig.Entry) []wire.ConfigEntry {
	out := make([]wire.ConfigEntry, len(es))
	for i, e := range es {
		v := e.Value
		out[i] = wire.ConfigEntry{Name: e.Name, Value: &v, Source: e.Source, ReadOnly: e.ReadOnly, Type: e.Type, Doc: e.Doc, Synonyms: e.Synonyms}
	}
	return out
}

func (b *backend) AlterConfigs(topic string, set map[string]*string, validateOnly bool, cb func(int16)) {
	b.onController(func(ctl *coreState, reply func(func())) {
		n := b.node
		s := n.pending()
		t := s.topics[topic]
		if t == nil {
			reply(func() { cb(errUnknownTopic) })
			return
		}
		configs := map[string]string{}
		for k, v := range set {
			if v != nil {
				configs[k] = *v
			}
		}
		if pinProblem(configs, len(n.cores)) != "" {
			reply(func() { cb(errInvalidConfig) })
			return
		}
		if err := n.checkWithInherited(s, configs); err != nil {
			reply(func() { cb(kerr.InvalidConfig.Code) })
			return
		}
		if validateOnly {
			reply(func() { cb(0) })
			return
		}
		n.commitTopicConfigs(ctl, t, configs, func(err error) {
			if err != nil {
				code := n.metadataFailed("alter configs of "+topic, err)
				reply(func() { cb(code) })
				return
			}
			reply(func() { cb(0) })
		})
	})
}

// commitTopicConfigs makes configs t's overrides and reconfigures its open
// partitions; done runs on the controller, with the error if the metadata
// could not be persisted.
func (n *Node) commitTopicConfigs(ctl *coreState, t *Topic, configs map[string]string, done func(error)) {
	nt := *t
	nt.Configs = configs
	n.commit(ctl, t.Name, n.pending().with(t.Name, &nt), nt.Cores, func(cs *coreState, ready func(error)) {
		// Behind any open still in progress, which used the old configs.
		pending := 1
		release := func() {
			if pending--; pending == 0 {
				ready(nil)
			}
		}
		for p, c := range nt.Cores {
			if c != cs.core.ID() {
				continue
			}
			pending++
			cs.reconfigure(&nt, int32(p), release)
		}
		release()
	}, done)
}
