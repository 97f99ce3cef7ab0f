package cluster

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"

	"github.com/strand-io/strand/cluster/metadata"
	"github.com/strand-io/strand/cluster/topicconfig"
	"github.com/strand-io/strand/reactor"
	"github.com/strand-io/strand/wire"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Dynamic broker configs (IncrementalAlterConfigs or AlterConfigs on a
// BROKER resource) live in the replicated metadata, as Kafka keeps them in
// its KRaft ConfigRecords: per broker id, and "" for the cluster default.
// A topic inherits them for every key it does not override
// (topicconfig.TopicDefaults); a change publishes at once and then
// reconfigures every open partition, each behind its earlier steps.

// brokerResource is this broker's BROKER resource name.
func (n *Node) brokerResource() string { return strconv.Itoa(int(n.cfg.NodeID)) }

// inherited is what topics take from s's dynamic broker configs.
func (n *Node) inherited(s *snapshot) map[string]topicconfig.Inherited {
	return topicconfig.TopicDefaults(s.brokerConfigs[n.brokerResource()], s.brokerConfigs[""])
}

// checkWithInherited checks the rules that span keys on a topic's
// overrides together with what it inherits from s's dynamic broker configs,
// as Kafka validates topic configs merged with the broker's (wire checked
// the overrides alone).
func (n *Node) checkWithInherited(s *snapshot, overrides map[string]string) error {
	return topicconfig.ValidateSet(topicconfig.Merge(n.inherited(s), overrides))
}

// brokerSettings is what DescribeConfigs(BROKER) reports: the settings
// this node runs with, read from its Config after Start filled defaults,
// and its dynamic configs.
func (n *Node) brokerSettings() topicconfig.BrokerSettings {
	static := make(map[string]bool, len(n.cfg.StaticConfigs))
	for _, name := range n.cfg.StaticConfigs {
		static[name] = true
	}
	adv := n.self()
	cfg := n.cfg.Log
	idx := cfg.IndexIntervalBytes
	if idx <= 0 {
		idx = 4096 // shard.Config's default
	}
	s := n.meta.Load()
	return topicconfig.BrokerSettings{
		NodeID:              n.cfg.NodeID,
		Rack:                n.cfg.Rack,
		Listeners:           "PLAINTEXT://" + n.Addr(),
		AdvertisedListeners: "PLAINTEXT://" + net.JoinHostPort(adv.Host, strconv.Itoa(int(adv.Port))),
		LogDirs:             n.cfg.DataDir,
		NumPartitions:       n.cfg.DefaultPartitions,
		ReplicationFactor:   n.cfg.DefaultReplicationFactor,
		AutoCreateTopics:    n.cfg.AutoCreateTopics,
		SocketRequestBytes:  n.cfg.MaxRequestBytes,
		OffsetsPartitions:   n.cfg.OffsetsPartitions,
		IndexIntervalBytes:  idx,
		Preallocate:         cfg.Preallocate,
		Static:              static,
		Dynamic:             s.brokerConfigs[n.brokerResource()],
		DynamicDefault:      s.brokerConfigs[""],
	}
}

// AlterConfigOps applies one resource of an IncrementalAlterConfigs (or a
// broker's AlterConfigs) on the controller, against its newest metadata.
func (b *backend) AlterConfigOps(a wire.ConfigAlteration, cb func(error)) {
	b.onController(func(ctl *coreState, reply func(func())) {
		answer := func(err error) { reply(func() { cb(err) }) }
		if a.Broker {
			b.node.alterBrokerConfigs(ctl, a, answer)
			return
		}
		b.node.alterTopicConfigOps(ctl, a, answer)
	})
}

func (n *Node) alterTopicConfigOps(ctl *coreState, a wire.ConfigAlteration, answer func(error)) {
	s := n.pending()
	t := s.topics[a.Name]
	if t == nil {
		answer(kerr.UnknownTopicOrPartition)
		return
	}
	next, err := topicconfig.ApplyTopicOps(t.Configs, n.inherited(s), a.Ops)
	if msg := pinProblem(next, len(n.cores)); err == nil && msg != "" {
		err = fmt.Errorf("%w: %s", kerr.InvalidConfig, msg)
	}
	if err != nil || a.ValidateOnly || maps.Equal(next, t.Configs) {
		answer(err)
		return
	}
	n.commitTopicConfigs(ctl, t, next, func(code int16, msg string) {
		if code != 0 {
			answer(fmt.Errorf("%w: %s", kerr.ErrorForCode(code), msg))
			return
		}
		answer(nil)
	})
}

func (n *Node) alterBrokerConfigs(ctl *coreState, a wire.ConfigAlteration, answer func(error)) {
	if a.Name != "" && a.Name != n.brokerResource() {
		answer(fmt.Errorf("%w: unexpected broker id %q; this is broker %s", kerr.InvalidRequest, a.Name, n.brokerResource()))
		return
	}
	s := n.pending()
	cur := s.brokerConfigs[a.Name]
	next, err := topicconfig.ApplyBrokerOps(cur, a.Ops, a.Replace)
	ns := s.withBrokerConfigs(a.Name, next)
	if err == nil {
		// The defaults must hold together on their own: a topic without
		// overrides (an auto-created one) takes them as they are.
		err = n.checkWithInherited(ns, nil)
	}
	if err != nil || a.ValidateOnly || maps.Equal(next, cur) {
		answer(err)
		return
	}
	// Proposed off the core; once applied, reconcile publishes the new
	// defaults (a partition opened from then on sees them) and
	// reconfigures every partition (reconfigureAll) before this answers.
	cmd := &metadata.AlterBrokerConfigs{Resource: a.Name, Replace: true}
	if len(next) > 0 {
		cmd.Set = maps.Clone(next)
	}
	n.proposeAsync(cmd, func(res metadata.Result, err error) {
		if code, msg := n.proposalCode("alter broker configs", res, err); code != 0 {
			answer(fmt.Errorf("%w: %s", kerr.ErrorForCode(code), msg))
			return
		}
		n.whenSettled(brokerConfigsKey, res.Version, func() {
			n.log.Info("dynamic broker configs changed", "resource", a.Name, "configs", next)
			answer(nil)
		})
	})
}

// brokerConfigsKey stands, in unready and whenSettled, for the
// reconfiguration of every partition after the broker configs changed (a
// name no topic can have).
const brokerConfigsKey = "\x00broker-configs"

// reconfigureAll reconfigures every partition of s on every core, each
// behind the steps already queued for it (an open queued earlier read the
// old defaults; one queued later reads the published new ones), then runs
// done on the controller.
func (n *Node) reconfigureAll(ctl *coreState, s *snapshot, done func()) {
	remaining := len(n.cores)
	finish := func() {
		if remaining--; remaining == 0 {
			done()
		}
	}
	for _, cs := range n.cores {
		ctl.core.Send(cs.core.ID(), func(c *reactor.Core) {
			pending := 1
			release := func() {
				if pending--; pending == 0 {
					c.Send(controller, func(*reactor.Core) { finish() })
				}
			}
			for _, name := range s.names {
				t := s.topics[name]
				for p, o := range t.Cores {
					if o == cs.core.ID() {
						pending++
						cs.reconfigure(t, int32(p), release)
					}
				}
			}
			release()
		})
	}
}

// reconfigure applies t's effective configs (its overrides over what it
// inherits from the newest published broker configs) to partition p's
// open log, behind every step already queued for it.
func (cs *coreState) reconfigure(t *Topic, p int32, done func()) {
	ref := wire.PartitionRef{Topic: t.Name, Partition: p}
	n := cs.node
	cs.serially(ref, func(next func()) {
		if part := cs.parts[ref]; part != nil {
			eff := topicconfig.Merge(n.inherited(n.meta.Load()), t.Configs)
			part.log.Reconfigure(topicconfig.LogConfig(n.cfg.Log, part.log.Dir(), eff))
		}
		next()
		done()
	})
}

// withBrokerConfigs returns a copy of s with resource's dynamic configs
// set to m (empty m removes them).
func (s *snapshot) withBrokerConfigs(resource string, m map[string]string) *snapshot {
	ns := newSnapshot(s.version+1, s.topics)
	ns.pidLimit = s.pidLimit
	ns.brokerConfigs = maps.Clone(s.brokerConfigs)
	if ns.brokerConfigs == nil {
		ns.brokerConfigs = map[string]map[string]string{}
	}
	if len(m) == 0 {
		delete(ns.brokerConfigs, resource)
	} else {
		ns.brokerConfigs[resource] = m
	}
	return ns
}

// brokerConfigsOf copies v's dynamic broker configs (nil if none).
func brokerConfigsOf(v *metadata.View) map[string]map[string]string {
	rs := v.BrokerConfigResources()
	if len(rs) == 0 {
		return nil
	}
	out := make(map[string]map[string]string, len(rs))
	for _, r := range rs {
		out[r] = maps.Clone(v.BrokerConfigs(r))
	}
	return out
}

// brokerConfigCommands are the commands that take v's dynamic broker
// configs to next's: one replace per resource that differs.
func brokerConfigCommands(v *metadata.View, next *snapshot) []metadata.Command {
	var cmds []metadata.Command
	for _, r := range v.BrokerConfigResources() {
		if _, ok := next.brokerConfigs[r]; !ok {
			cmds = append(cmds, &metadata.AlterBrokerConfigs{Resource: r, Replace: true})
		}
	}
	for _, r := range slices.Sorted(maps.Keys(next.brokerConfigs)) {
		if m := next.brokerConfigs[r]; !maps.Equal(v.BrokerConfigs(r), m) {
			cmds = append(cmds, &metadata.AlterBrokerConfigs{Resource: r, Replace: true, Set: maps.Clone(m)})
		}
	}
	return cmds
}
