package cluster

import (
	"fmt"
	"sort"

	"github.com/strand-io/strand/reactor"
	"github.com/strand-io/strand/shard"
	"github.com/strand-io/strand/wire"
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
// ready, on that core, when it has), publishes it and calls done (on the
// controller).
func (n *Node) commit(ctl *coreState, name string, next *snapshot, owners []reactor.CoreID, prepare func(cs *coreState, ready func()), done func(err error)) {
	if err := saveMetadata(n.cfg.DataDir, next); err != nil {
		done(err)
		return
	}
	n.ctlSnap = next
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
	finish := func() {
		if remaining--; remaining == 0 {
			if n.unready[name]--; n.unready[name] == 0 {
				delete(n.unready, name)
			}
			n.publish()
			done(nil)
		}
	}
	for o := range set {
		o := o
		ctl.core.Send(o, func(c *reactor.Core) {
			prepare(n.cores[o], func() { c.Send(controller, func(*reactor.Core) { finish() }) })
		})
	}
}

// publish makes the controller's metadata (ctlSnap) the one every core
// reads, except that a topic with a change still opening on its owners
// keeps its published form. Commits finish in any order: publishing
// whole snapshots as each finished would let an earlier one, finishing
// last, take back a later topic or a delete, and a later one, finishing
// first, show an earlier topic before its logs were open.
func (n *Node) publish() {
	next := n.ctlSnap
	if len(n.unready) > 0 {
		cur := n.meta.Load()
		topics := make(map[string]*Topic, len(next.topics))
		for k, v := range next.topics {
			topics[k] = v
		}
		for name := range n.unready {
			if t, ok := cur.topics[name]; ok {
				topics[name] = t
			} else {
				delete(topics, name)
			}
		}
		// Same version as ctlSnap, so pending keeps the controller's
		// own; readers must not key caches on the version alone.
		ns := newSnapshot(next.version, topics)
		ns.pidLimit = next.pidLimit
		next = ns
	}
	n.meta.Store(next)
}

func validTopicName(name string) bool {
	if name == "" || name == "." || name == ".." || len(name) > 249 {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func (b *backend) CreateTopic(t wire.NewTopic, validateOnly bool, cb func(int16, string)) {
	b.onController(func(ctl *coreState, reply func(func())) {
		n := b.node
		answer := func(code int16, msg string) { reply(func() { cb(code, msg) }) }
		s := n.pending()
		parts := t.Partitions
		if parts == -1 {
			parts = n.cfg.DefaultPartitions
		}
		switch {
		case !validTopicName(t.Name):
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
		case validateOnly:
			answer(0, "")
			return
		}
		topic := &Topic{Name: t.Name, ID: newTopicID(), Configs: map[string]string{}, Cores: placeNew(s, len(n.cores), parts)}
		for k, v := range t.Configs {
			if v != nil {
				topic.Configs[k] = *v
			}
		}
		n.commit(ctl, t.Name, s.with(t.Name, topic), topic.Cores, func(cs *coreState, ready func()) {
			openOwned(cs, topic, 0, ready)
		}, func(err error) {
			if err != nil {
				answer(errInvalidConfig, err.Error())
				return
			}
			n.log.Info("topic created", "topic", t.Name, "partitions", parts)
			answer(0, "")
		})
	})
}

// openOwned opens, off the core, the partitions of t from index `from`
// that cs owns, and calls ready on cs when all are open.
func openOwned(cs *coreState, t *Topic, from int, ready func()) {
	pending := 1
	release := func() {
		if pending--; pending == 0 {
			ready()
		}
	}
	for p := from; p < len(t.Cores); p++ {
		if t.Cores[p] == cs.core.ID() {
			pending++
			cs.openAsync(t, int32(p), func(err error) {
				if err != nil {
					cs.node.log.Error("opening partition", "err", err)
				}
				release()
			})
		}
	}
	release()
}

// deleteTopic is DeleteTopic once the topic's committed offsets are gone
// (see purgeOffsets).
func (b *backend) deleteTopic(name string, cb func(int16)) {
	b.onController(func(ctl *coreState, reply func(func())) {
		n := b.node
		s := n.pending()
		t := s.topics[name]
		if t == nil {
			reply(func() { cb(errUnknownTopic) })
			return
		}
		// Publish the removal first so no new request reaches the logs,
		// then each owner drops and deletes its partitions.
		next := s.with(name, nil)
		if err := saveMetadata(n.cfg.DataDir, next); err != nil {
			reply(func() { cb(errInvalidRequest) })
			return
		}
		n.ctlSnap = next
		n.publish()
		for p, c := range t.Cores {
			ref := wire.PartitionRef{Topic: name, Partition: int32(p)}
			ctl.core.Send(c, func(*reactor.Core) {
				cs := n.cores[c]
				cs.drop(ref, func(*shard.Log) { cs.removeDir(ref) })
			})
		}
		n.log.Info("topic deleted", "topic", name)
		reply(func() { cb(0) })
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
		case validateOnly:
			answer(0, "")
			return
		}
		nt := *t
		from := len(t.Cores)
		nt.Cores = append(append([]reactor.CoreID(nil), t.Cores...), placeNew(s, len(n.cores), total-t.Partitions())...)
		n.commit(ctl, name, s.with(name, &nt), nt.Cores[from:], func(cs *coreState, ready func()) { openOwned(cs, &nt, from, ready) }, func(err error) {
			if err != nil {
				answer(errInvalidRequest, err.Error())
				return
			}
			answer(0, "")
		})
	})
}

func (b *backend) DescribeConfigs(topic string, keys []string) ([]wire.ConfigEntry, int16) {
	t, ok := b.node.meta.Load().topics[topic]
	if !ok {
		return nil, errUnknownTopic
	}
	if keys == nil {
		keys = wire.TopicConfigKeys()
	}
	out := make([]wire.ConfigEntry, 0, len(keys))
	for _, k := range keys {
		def, known := configDefaults[k]
		if !known {
			continue
		}
		v, set := t.Configs[k]
		if !set {
			v = def
		}
		out = append(out, wire.ConfigEntry{Name: k, Value: &v, IsDefault: !set})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, 0
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
		if validateOnly {
			reply(func() { cb(0) })
			return
		}
		nt := *t
		nt.Configs = map[string]string{}
		for k, v := range set {
			if v != nil {
				nt.Configs[k] = *v
			}
		}
		n.commit(ctl, topic, s.with(topic, &nt), nt.Cores, func(cs *coreState, ready func()) {
			// Behind any open still in progress, which used the old configs.
			pending := 1
			release := func() {
				if pending--; pending == 0 {
					ready()
				}
			}
			for p, c := range nt.Cores {
				if c != cs.core.ID() {
					continue
				}
				ref := wire.PartitionRef{Topic: topic, Partition: int32(p)}
				pending++
				cs.serially(ref, func(next func()) {
					if part := cs.parts[ref]; part != nil {
						part.log.Reconfigure(logConfig(n.cfg.Log, part.log.Dir(), nt.Configs))
					}
					next()
					release()
				})
			}
			release()
		}, func(err error) {
			if err != nil {
				reply(func() { cb(errInvalidRequest) })
				return
			}
			reply(func() { cb(0) })
		})
	})
}
