package metadata

import (
	"slices"
	"strings"
)

// Leader election. Every election is a pure function of the state (the
// partition, the brokers' fencing and the configs), so every replica of
// the metadata elects the same leader.

// UncleanKey is the topic config (and dynamic broker default) that lets a
// replica outside the in-sync set lead when no in-sync replica can.
const UncleanKey = "unclean.leader.election.enable"

// uncleanEnabled reports whether t allows unclean election: its own
// override, else the cluster-wide dynamic broker default, else Kafka's
// default, false. Per-broker overrides do not count: every replica of the
// state must decide alike, whichever broker proposed the command.
func (s *State) uncleanEnabled(t *Topic) bool {
	if v, ok := t.Configs[UncleanKey]; ok {
		return strings.EqualFold(v, "true")
	}
	if v, ok := s.brokerConfigs[""][UncleanKey]; ok {
		return strings.EqualFold(v, "true")
	}
	return false
}

// live reports whether broker b is registered and unfenced.
func (s *State) live(b BrokerID) bool {
	br, ok := s.brokers[b]
	return ok && !br.Fenced
}

// cleanCandidate is the first unfenced in-sync replica other than not, in
// preference order, or NoLeader.
func (s *State) cleanCandidate(p *Partition, not BrokerID) BrokerID {
	for _, r := range p.Replicas {
		if r != not && slices.Contains(p.ISR, r) && s.live(r) {
			return r
		}
	}
	return NoLeader
}

// uncleanCandidate is the first unfenced replica other than not, in
// preference order, or NoLeader.
func (s *State) uncleanCandidate(p *Partition, not BrokerID) BrokerID {
	for _, r := range p.Replicas {
		if r != not && s.live(r) {
			return r
		}
	}
	return NoLeader
}

// reelect gives p (whose leader is gone or going) a new leader: the first
// unfenced in-sync replica other than not, else, when t allows it, the
// first unfenced replica, which becomes the whole in-sync set (it may
// lack acknowledged records: the proposer logs such elections, see
// UncleanElections). The leader epoch grows by one.
func (s *State) reelect(t *Topic, p *Partition, not BrokerID) {
	p.Leader = s.cleanCandidate(p, not)
	if p.Leader == NoLeader && s.uncleanEnabled(t) {
		if r := s.uncleanCandidate(p, not); r != NoLeader {
			p.Leader, p.ISR = r, []BrokerID{r}
		}
	}
	p.LeaderEpoch++
}

// uncleanSweep elects a leader, uncleanly, for every leaderless partition
// of a topic that allows it, whose in-sync replicas are all fenced (or
// gone) and which has an unfenced replica. Commands that can make such a
// partition electable (a broker unfenced, the config turned on) end with
// it. A partition without epoch room stays as it is rather than failing
// the command that merely made the election possible.
func (s *State) uncleanSweep() {
	s.changePartitions(func(t *Topic, p *Partition) bool {
		if p.Leader != NoLeader || !s.uncleanEnabled(t) || s.cleanCandidate(p, NoLeader) != NoLeader ||
			p.LeaderEpoch == maxEpoch || p.PartitionEpoch == maxEpoch {
			return false
		}
		r := s.uncleanCandidate(p, NoLeader)
		if r == NoLeader {
			return false
		}
		p.Leader, p.ISR = r, []BrokerID{r}
		p.LeaderEpoch++
		return true
	})
}

// UncleanElection is a partition whose new leader was not in its in-sync
// set before: it may lack records that were acknowledged.
type UncleanElection struct {
	Topic     string
	Partition int32
	Leader    BrokerID
	Epoch     Epoch
}

// UncleanElections lists the unclean elections between two views of the
// same state, for the proposer to log (the state machine has no log).
func UncleanElections(before, after *View) []UncleanElection {
	var out []UncleanElection
	for _, n := range after.names {
		t, ot := after.topics[n], before.topics[n]
		if ot == nil || ot.ID != t.ID || ot == t {
			continue
		}
		for i := range min(len(t.Partitions), len(ot.Partitions)) {
			p, op := &t.Partitions[i], &ot.Partitions[i]
			if p.Leader != NoLeader && p.LeaderEpoch != op.LeaderEpoch && !slices.Contains(op.ISR, p.Leader) {
				out = append(out, UncleanElection{Topic: n, Partition: int32(i), Leader: p.Leader, Epoch: p.LeaderEpoch})
			}
		}
	}
	return out
}

// electLeader is the ElectLeader command.
func (s *State) electLeader(c *ElectLeader) Result {
	t, r, ok := s.lookupPartition(c.Topic, c.Partition)
	if !ok {
		return r
	}
	cur := &t.Partitions[c.Partition]
	leader, isr := NoLeader, cur.ISR
	if c.Unclean {
		if cur.Leader != NoLeader {
			return reject(ErrElectionNotNeeded, "%s-%d: led by %d", c.Topic, c.Partition, cur.Leader)
		}
		if leader = s.cleanCandidate(cur, NoLeader); leader == NoLeader {
			if leader = s.uncleanCandidate(cur, NoLeader); leader == NoLeader {
				return reject(ErrEligibleNotAvailable, "%s-%d: no replica of %v is live", c.Topic, c.Partition, cur.Replicas)
			}
			isr = []BrokerID{leader}
		}
	} else {
		pref := s.preferred(cur)
		switch {
		case cur.Leader == pref:
			return reject(ErrElectionNotNeeded, "%s-%d: preferred replica %d leads", c.Topic, c.Partition, pref)
		case !slices.Contains(cur.ISR, pref) || !s.live(pref):
			return reject(ErrPreferredNotAvailable, "%s-%d: preferred replica %d is not live and in sync (isr %v)", c.Topic, c.Partition, pref, cur.ISR)
		}
		leader = pref
	}
	if cur.LeaderEpoch == maxEpoch || cur.PartitionEpoch == maxEpoch {
		return reject(ErrExhausted, "%s-%d: epoch exhausted", c.Topic, c.Partition)
	}
	p := cur.clone()
	p.Leader, p.ISR = leader, slices.Clone(isr)
	p.LeaderEpoch++
	p.PartitionEpoch++
	nt := t.withPartitions()
	nt.Partitions[c.Partition] = p
	s.putTopic(nt)
	return Result{}
}

// preferred is p's preferred leader: its first replica.
func (s *State) preferred(p *Partition) BrokerID { return p.Replicas[0] }

// PreferredElectable reports whether a preferred ElectLeader on p would
// be accepted in view v: the preferred replica is live, in sync and not
// the leader. The controller's automatic rebalance proposes exactly these.
func (v *View) PreferredElectable(p *Partition) bool {
	pref := p.Replicas[0]
	b, ok := v.brokers[pref]
	return p.Leader != pref && ok && !b.Fenced && slices.Contains(p.ISR, pref)
}
