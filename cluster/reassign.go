package cluster

import (
	"fmt"
	"slices"
	"sync"

	"github.com/strand-io/strand/cluster/metadata"
	"github.com/strand-io/strand/reactor"
	"github.com/strand-io/strand/wire"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Partition reassignment (KIP-455). The metadata state machine holds it
// (metadata/reassign.go): starting one makes the new replicas followers
// that catch up like any other, and the ChangePartition that brings the
// last of them into the in-sync set completes it. This file is the
// protocol edge's side: validating, picking the new replicas' cores, and
// proposing one ReassignPartition per partition.

// AlterPartitionReassignments proposes each partition's reassignment (or
// cancel) and answers on this core once every outcome is applied here.
func (b *backend) AlterPartitionReassignments(rs []wire.Reassignment, keepRF bool, cb func([]wire.PartitionResult)) {
	n := b.node
	origin := b.cs.core.ID()
	go func() {
		out := n.reassign(rs, keepRF)
		_ = n.rt.Post(origin, func(*reactor.Core) { cb(out) })
	}()
}

// reassign proposes rs (off the cores), a bounded number at once.
func (n *Node) reassign(rs []wire.Reassignment, keepRF bool) []wire.PartitionResult {
	out := make([]wire.PartitionResult, len(rs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32) // as ElectLeaders: fill Raft's batches, bound the goroutines
	for i, r := range rs {
		out[i].PartitionRef = r.PartitionRef
		cmd, code, msg := n.reassignCommand(r, keepRF)
		if code != 0 {
			out[i].ErrCode, out[i].Msg = code, msg
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			res, err := n.proposeWait(cmd)
			out[i].ErrCode, out[i].Msg = n.proposalCode("reassign partition", res, err)
			if out[i].ErrCode == 0 {
				n.log.Info("partition reassignment", "topic", r.Topic, "partition", r.Partition, "target", r.Replicas, "cancel", r.Replicas == nil)
			}
		}()
	}
	wg.Wait()
	return out
}

// reassignCommand validates r against the applied view as Kafka's
// controller does and builds its command, the new replicas' cores chosen
// as placement chooses them.
func (n *Node) reassignCommand(r wire.Reassignment, keepRF bool) (*metadata.ReassignPartition, int16, string) {
	v := n.raft.View()
	p, ok := v.Partition(r.Topic, r.Partition)
	if !ok {
		return nil, kerr.UnknownTopicOrPartition.Code, ""
	}
	cmd := &metadata.ReassignPartition{Topic: r.Topic, Partition: r.Partition}
	if r.Replicas == nil {
		return cmd, 0, ""
	}
	if len(r.Replicas) == 0 {
		return nil, kerr.InvalidReplicaAssignment.Code, "empty replica list"
	}
	if keepRF && len(r.Replicas) != len(p.Target()) {
		return nil, kerr.InvalidReplicationFactor.Code, fmt.Sprintf("%d replicas, the partition has %d (AllowReplicationFactorChange is false)", len(r.Replicas), len(p.Target()))
	}
	for i, id := range r.Replicas {
		if _, ok := v.Broker(metadata.BrokerID(id)); !ok {
			return nil, kerr.InvalidReplicaAssignment.Code, fmt.Sprintf("unknown broker %d", id)
		}
		if slices.Contains(r.Replicas[:i], id) {
			return nil, kerr.InvalidReplicaAssignment.Code, fmt.Sprintf("broker %d twice", id)
		}
		cmd.Target = append(cmd.Target, metadata.BrokerID(id))
	}
	cmd.Cores = metadata.CoresFor(v, cmd.Target)
	return cmd, 0, ""
}

// ListPartitionReassignments reads the applied view.
func (b *backend) ListPartitionReassignments(parts []wire.PartitionRef) []wire.ReassignmentStatus {
	v := b.node.raft.View()
	var out []wire.ReassignmentStatus
	add := func(name string, i int32, p *metadata.Partition) {
		if p.Reassigning() {
			out = append(out, wire.ReassignmentStatus{PartitionRef: wire.PartitionRef{Topic: name, Partition: i},
				Replicas: brokerIDs(p.Replicas), Adding: brokerIDs(p.Adding), Removing: brokerIDs(p.Removing)})
		}
	}
	if parts != nil {
		for _, r := range parts {
			if p, ok := v.Partition(r.Topic, r.Partition); ok {
				add(r.Topic, r.Partition, p)
			}
		}
		return out
	}
	for _, name := range v.TopicNames() {
		t, _ := v.Topic(name)
		for i := range t.Partitions {
			add(name, int32(i), &t.Partitions[i])
		}
	}
	return out
}
