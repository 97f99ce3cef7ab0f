package cluster

import (
	"errors"
	"fmt"
	"maps"

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

// publish makes the controller's metadata (ctlSnap) the one every core
// reads, except that a topic with a local change still in progress (or
// held back after a failed open, see opened) keeps its published form, or
// stays unlisted if that was another incarnation, unless it is deleted,
// which shows at once. Changes finish in any order: publishing whole
// snapshots as each finished would let an earlier one, finishing last,
// take back a later topic or a delete, and a later one, finishing first,
// show an earlier topic before its logs were open.
func (n *Node) publish() {
	next := n.ctlSnap
	if len(n.unready) > 0 || len(n.held) > 0 {
		cur := n.meta.Load()
		topics := make(map[string]*Topic, len(next.topics))
		for k, v := range next.topics {
			topics[k] = v
		}
		hold := func(name string) {
			nt, live := next.topics[name]
			if !live {
				return
			}
			if t, ok := cur.topics[name]; ok && t.ID == nt.ID {
				topics[name] = t
			} else {
				delete(topics, name)
			}
		}
		for name := range n.unready {
			hold(name)
		}
		for name := range n.held {
			hold(name)
		}
		// Same version as ctlSnap, so pending keeps the controller's
		// own; readers must not key caches on the version alone.
		ns := newSnapshot(next.version, topics)
		ns.pidLimit, ns.brokerConfigs = next.pidLimit, next.brokerConfigs
		ns.brokers = next.brokers
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
	if len(t.Assignments) > 0 {
		parts = int32(len(t.Assignments))
	}
	rf := t.ReplicationFactor
	if rf == -1 {
		rf = n.cfg.DefaultReplicationFactor
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
	case len(t.Assignments) == 0 && rf < 1:
		answer(errInvalidReplication, fmt.Sprintf("replication factor %d: must be at least 1", rf))
		return
	case len(t.Assignments) == 0 && int(rf) > len(s.brokers) && len(s.brokers) > 0:
		answer(errInvalidReplication, fmt.Sprintf("replication factor %d is larger than the %d live brokers", rf, len(s.brokers)))
		return
	}
	pins := map[string]string{}
	for k, v := range t.Configs {
		if v != nil {
			pins[k] = *v
		}
	}
	if err := n.checkWithInherited(s, pins); err != nil {
		answer(kerr.InvalidConfig.Code, err.Error())
		return
	}
	if msg := pinProblem(pins, len(n.cores)); msg != "" {
		answer(errInvalidConfig, msg)
		return
	}
	assign, err := n.placeTopic(s, t, parts, rf)
	if err != nil {
		answer(placeErrorCode(err), err.Error())
		return
	}
	local := n.localCount(assign)
	if msg := n.overBudget(s, local); msg != "" {
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
	if validateOnly {
		answer(0, "")
		return
	}
	release := n.reserveParts(local)
	cmd := &metadata.CreateTopic{Name: t.Name, ID: metadata.TopicID(newTopicID()), Partitions: assign}
	for k, v := range t.Configs {
		if v != nil {
			if cmd.Configs == nil {
				cmd.Configs = map[string]string{}
			}
			cmd.Configs[k] = *v
		}
	}
	n.beginProposal(t.Name)
	op := fmt.Sprintf("creating topic %q", t.Name)
	n.proposeAsync(cmd, func(res metadata.Result, err error) {
		if code, msg := n.proposalCode(op, res, err); code != 0 {
			release()
			n.endProposal(t.Name)
			answer(code, msg)
			return
		}
		n.whenSettled(t.Name, res.Version, func() {
			release()
			ferr := n.takeFailure(t.Name, cmd.ID)
			if ferr == nil {
				n.endProposal(t.Name)
				n.log.Info("topic created", "topic", t.Name, "partitions", parts)
				answer(0, "")
				return
			}
			// Undo the whole topic: it was never published here, and a
			// create answers all or nothing.
			n.log.Error("creating topic failed; anything of it is undone", "topic", t.Name, "err", ferr)
			msg := fmt.Sprintf("creating topic %q: %v", t.Name, ferr)
			n.proposeAsync(&metadata.DeleteTopic{Name: t.Name, ID: cmd.ID}, func(res metadata.Result, err error) {
				n.endProposal(t.Name)
				if err != nil || !res.Accepted() {
					n.log.Error("undoing a failed create: the delete was not applied; the topic stays unlisted here until a restart", "topic", t.Name, "err", err, "result", res.Code)
				}
				answer(kerr.KafkaStorageError.Code, msg)
			})
		})
	})
}

// placeTopic places a new topic's partitions: rf replicas each over the
// live brokers by metadata.Place (distinct brokers, preferred leaders and
// replicas spread evenly; an explicit assignment as given), and, for this
// broker's replicas, on its cores least-loaded first as before
// (cluster/placement.go), so a single broker places exactly as it always
// has.
func (n *Node) placeTopic(s *snapshot, t wire.NewTopic, parts int32, rf int16) ([]metadata.Assignment, error) {
	v := n.raft.View()
	req := metadata.PlaceRequest{Partitions: int(parts), ReplicationFactor: int(rf)}
	if len(t.Assignments) > 0 {
		req.Partitions = len(t.Assignments)
		for _, a := range t.Assignments {
			ids := make([]metadata.BrokerID, len(a))
			for i, b := range a {
				ids[i] = metadata.BrokerID(b)
			}
			req.Explicit = append(req.Explicit, ids)
		}
	}
	assign, err := metadata.Place(v, req)
	if err != nil {
		return nil, err
	}
	configs := map[string]string{}
	for k, val := range t.Configs {
		if val != nil {
			configs[k] = *val
		}
	}
	n.placeLocalCores(s, assign, configs)
	return assign, nil
}

// placeErrorCode is the Kafka error for a metadata.Place refusal.
func placeErrorCode(err error) int16 {
	switch {
	case errors.Is(err, metadata.ErrInvalidReplicationFactor):
		return kerr.InvalidReplicationFactor.Code
	case errors.Is(err, metadata.ErrInvalidPartitions):
		return kerr.InvalidPartitions.Code
	}
	return kerr.InvalidReplicaAssignment.Code
}

// replicationFactor is topic name's replication factor in v: its first
// partition's target replicas (a reassignment's removed ones left out; 1
// when the topic is gone, which the proposal then finds).
func replicationFactor(v *metadata.View, name string) int {
	t, ok := v.Topic(name)
	if !ok || len(t.Partitions) == 0 {
		return 1
	}
	return len(t.Partitions[0].Target())
}

// localCount is how many of assign's replicas are on this broker: what
// this broker's partition budget is checked against.
func (n *Node) localCount(assign []metadata.Assignment) int32 {
	var k int32
	for _, a := range assign {
		for _, b := range a.Replicas {
			if b == n.brokerID() {
				k++
			}
		}
	}
	return k
}

// reserveParts counts k partitions as taken until the proposal adding them
// is settled (the returned func, called once), so that requests validated
// meanwhile see them in the budget (controller core).
func (n *Node) reserveParts(k int32) func() {
	n.inflightParts += int(k)
	return func() { n.inflightParts -= int(k) }
}

// placeLocalCores puts this broker's replicas in assign on its cores
// least-loaded first, given s's load and the topic's pinned cores.
func (n *Node) placeLocalCores(s *snapshot, assign []metadata.Assignment, configs map[string]string) {
	me := n.brokerID()
	var mine []int
	for i, a := range assign {
		for j, b := range a.Replicas {
			if b == me {
				mine = append(mine, i*64+j)
			}
		}
	}
	cores := n.placeNewByLoad(s, int32(len(mine)), configs)
	for k, ij := range mine {
		assign[ij/64].Cores[ij%64] = metadata.CoreID(cores[k])
	}
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
		b.node.deleteTopic(ctl, name, [16]byte{}, func(code int16, msg string) { reply(func() { cb(code, msg) }) })
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
		v := n.raft.View()
		assign, err := metadata.Place(v, metadata.PlaceRequest{Partitions: int(total - t.Partitions()), ReplicationFactor: replicationFactor(v, name)})
		if err != nil {
			answer(placeErrorCode(err), err.Error())
			return
		}
		n.placeLocalCores(s, assign, t.Configs)
		local := n.localCount(assign)
		if msg := n.overBudget(s, local); msg != "" {
			n.partsRefused.Add(1)
			n.budgetLog.Warn(n.log, "refusing partitions: partition budget exhausted", "topic", name, "partitions", total-t.Partitions(), "why", msg)
			answer(kerr.PolicyViolation.Code, msg)
			return
		}
		if validateOnly {
			answer(0, "")
			return
		}
		release := n.reserveParts(local)
		from := int32(len(t.Cores))
		n.beginProposal(name)
		op := fmt.Sprintf("adding partitions to %q", name)
		n.proposeAsync(&metadata.CreatePartitions{Name: name, ID: metadata.TopicID(t.ID), Partitions: assign}, func(res metadata.Result, err error) {
			if code, msg := n.proposalCode(op, res, err); code != 0 {
				release()
				n.endProposal(name)
				answer(code, msg)
				return
			}
			n.whenSettled(name, res.Version, func() {
				release()
				ferr := n.takeFailure(name, t.ID)
				if ferr == nil {
					n.endProposal(name)
					answer(0, "")
					return
				}
				n.log.Error("adding partitions failed; anything of them is undone", "topic", name, "err", ferr)
				msg := fmt.Sprintf("%s: %v", op, ferr)
				// One command, so no crash can land inside the undo.
				n.proposeAsync(&metadata.ShrinkPartitions{Topic: name, ID: metadata.TopicID(t.ID), Count: from}, func(res metadata.Result, err error) {
					if err != nil || !res.Accepted() {
						n.endProposal(name)
						n.log.Error("undoing partitions: the shrink was not applied; the topic stays in its old form here until a restart", "topic", name, "err", err, "result", res.Code)
						answer(kerr.KafkaStorageError.Code, msg)
						return
					}
					n.whenSettled(name, res.Version, func() {
						if n.held[name] == t.ID {
							delete(n.held, name)
						}
						n.endProposal(name)
						n.publish()
						answer(kerr.KafkaStorageError.Code, msg)
					})
				})
			})
		})
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
		n.commitTopicConfigs(ctl, t, configs, func(code int16, _ string) { reply(func() { cb(code) }) })
	})
}

// commitTopicConfigs proposes configs as t's overrides (off the core) and
// calls done on the controller with a Kafka error code and message once
// the change is applied and this broker's partitions are reconfigured
// (reconcile does that).
func (n *Node) commitTopicConfigs(ctl *coreState, t *Topic, configs map[string]string, done func(int16, string)) {
	cmd := &metadata.AlterTopicConfigs{Name: t.Name, Replace: true}
	if len(configs) > 0 {
		cmd.Set = maps.Clone(configs)
	}
	n.beginProposal(t.Name)
	op := "alter configs of " + t.Name
	n.proposeAsync(cmd, func(res metadata.Result, err error) {
		if code, msg := n.proposalCode(op, res, err); code != 0 {
			n.endProposal(t.Name)
			done(code, msg)
			return
		}
		n.whenSettled(t.Name, res.Version, func() {
			n.endProposal(t.Name)
			done(0, "")
		})
	})
}
