package group

import "sort"

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// CommittedOffset is one committed position.
type CommittedOffset struct {
	Offset            int64
	LeaderEpoch       int32
	Metadata          *string
	CommitTimestampMs int64
}

// Record is one change to the offsets log, as the Store persists it: a
// committed offset of TP (Offset nil deletes it: a tombstone), or, when
// IsMeta, the group's membership (Meta nil deletes the group).
type Record struct {
	Group  string
	TP     TopicPartition
	Offset *CommittedOffset
	IsMeta bool
	Meta   *GroupMeta
}

// Store persists offset records durably. Persist calls done (on the
// coordinator's core) once every record is on stable storage, or with the
// error that prevented it; the coordinator changes its state only then.
type Store interface {
	Persist(recs []Record, done func(err error))
}

// Coordinator owns the groups whose offsets live in one partition of the
// internal offsets topic.
type Coordinator struct {
	cfg    Config
	groups map[string]*Group
	store  Store
	// nextRetentionMs is when Tick next looks for expired offsets.
	nextRetentionMs int64
	// purging counts the deletions of each topic in progress (see
	// PurgeTopic); commits to it are refused meanwhile.
	purging map[string]int
}

// NewCoordinator returns an empty coordinator persisting through store.
func NewCoordinator(cfg Config, store Store) *Coordinator {
	cfg.fill()
	return &Coordinator{cfg: cfg, groups: map[string]*Group{}, store: store}
}

// Group returns a group, or nil.
func (c *Coordinator) Group(id string) *Group { return c.groups[id] }

func (c *Coordinator) getOrCreate(id string, nowMs int64) *Group {
	g := c.groups[id]
	if g == nil || g.state == Dead {
		g = newGroup(id, &c.cfg, nowMs)
		g.onSettled = c.persistMeta
		c.groups[id] = g
	}
	return g
}

// persistMeta writes g's settled membership to the log. Nothing waits for
// it: a crash that loses it only costs the members a rejoin, whereas a
// clean shutdown lets it reach the disk before the log closes.
func (c *Coordinator) persistMeta(g *Group, nowMs int64) {
	m := g.meta(nowMs)
	g.lastMeta = m
	c.store.Persist([]Record{{Group: g.id, IsMeta: true, Meta: m}}, func(error) {})
}

// FailWaiting answers every JoinGroup and SyncGroup still waiting for the
// rest of its group with code, so that a broker shutting down is not held
// by them. The groups' settled state stays as persisted.
func (c *Coordinator) FailWaiting(code int16) {
	for _, g := range c.groups {
		g.failWaiting(code)
	}
}

// Join handles JoinGroup, creating the group on first use.
func (c *Coordinator) Join(groupID string, req JoinRequest, nowMs int64, done func(JoinResult)) {
	if groupID == "" {
		done(JoinResult{ErrCode: ErrInvalidGroupID, Generation: -1})
		return
	}
	g := c.groups[groupID]
	if g == nil && req.MemberID != "" {
		done(JoinResult{ErrCode: ErrUnknownMember, Generation: -1, MemberID: req.MemberID})
		return
	}
	c.getOrCreate(groupID, nowMs).Join(req, nowMs, done)
}

// Sync handles SyncGroup.
func (c *Coordinator) Sync(groupID, memberID string, instanceID *string, generation int32, assignments map[string][]byte, nowMs int64, done func(SyncResult)) {
	g := c.groups[groupID]
	if g == nil {
		done(SyncResult{ErrCode: ErrUnknownMember})
		return
	}
	g.Sync(memberID, instanceID, generation, assignments, nowMs, done)
}

// Heartbeat handles Heartbeat.
func (c *Coordinator) Heartbeat(groupID, memberID string, instanceID *string, generation int32, nowMs int64) int16 {
	g := c.groups[groupID]
	if g == nil {
		return ErrUnknownMember
	}
	return g.Heartbeat(memberID, instanceID, generation, nowMs)
}

// Leave handles LeaveGroup.
func (c *Coordinator) Leave(groupID string, ms []LeaveMember, nowMs int64) (int16, []int16) {
	g := c.groups[groupID]
	if g == nil {
		codes := make([]int16, len(ms))
		for i := range codes {
			codes[i] = ErrUnknownMember
		}
		return ErrUnknownMember, codes
	}
	codes := g.Leave(ms, nowMs)
	return errNone, codes
}

// Commit handles OffsetCommit with Kafka's admission rules: a simple
// consumer (generation < 0) may commit only to a group with no members;
// group members must be current. The new offsets count once persisted.
func (c *Coordinator) Commit(groupID, memberID string, instanceID *string, generation int32, offsets map[TopicPartition]CommittedOffset, nowMs int64, done func(int16)) {
	if groupID == "" {
		done(ErrInvalidGroupID)
		return
	}
	g := c.groups[groupID]
	switch {
	case g == nil && generation < 0:
		g = c.getOrCreate(groupID, nowMs)
	case g == nil:
		done(ErrIllegalGeneration)
		return
	case generation < 0 && g.state == Empty:
	case g.state == CompletingRebalance:
		done(ErrRebalanceInProgress)
		return
	case g.members[memberID] == nil:
		done(ErrUnknownMember)
		return
	case instanceID != nil && (g.members[memberID].instanceID == nil || *g.members[memberID].instanceID != *instanceID):
		done(ErrFencedInstanceID)
		return
	case generation != g.generation:
		done(ErrIllegalGeneration)
		return
	default:
		g.members[memberID].lastSeenMs = nowMs
	}
	recs := make([]Record, 0, len(offsets))
	for tp, o := range offsets {
		o := o
		o.CommitTimestampMs = nowMs
		recs = append(recs, Record{Group: groupID, TP: tp, Offset: &o})
	}
	sort.Slice(recs, func(i, j int) bool { return lessTP(recs[i].TP, recs[j].TP) })
	c.store.Persist(recs, func(err error) {
		if err != nil {
			done(ErrCoordinatorNotAvailable)
			return
		}
		for _, r := range recs {
			g.offsets[r.TP] = *r.Offset
		}
		done(errNone)
	})
}

func lessTP(a, b TopicPartition) bool {
	if a.Topic != b.Topic {
		return a.Topic < b.Topic
	}
	return a.Partition < b.Partition
}

// Purging reports whether topic's offsets are being deleted: the host
// refuses commits to it (UNKNOWN_TOPIC_OR_PARTITION) until EndPurge.
func (c *Coordinator) Purging(topic string) bool { return c.purging[topic] > 0 }

// PurgeTopic deletes every group's committed offsets of topic, because
// the topic is being deleted: a topic re-created with that name must not
// inherit them. Commits to topic are refused from now until EndPurge,
// which the host calls once the topic is gone from the metadata. done runs
// once the tombstones are durable.
func (c *Coordinator) PurgeTopic(topic string, done func(error)) {
	if c.purging == nil {
		c.purging = map[string]int{}
	}
	c.purging[topic]++
	c.PurgeTopics(func(t string) bool { return t == topic }, done)
}

// EndPurge ends a PurgeTopic's refusal of commits.
func (c *Coordinator) EndPurge(topic string) {
	if c.purging[topic]--; c.purging[topic] <= 0 {
		delete(c.purging, topic)
	}
}

// PurgeTopics writes tombstones for every committed offset of the topics
// match selects, then forgets them; done runs once they are durable.
// Commits persisted before it but completing after its snapshot are caught
// by a second round (appends complete in order, so the round after the
// tombstones are durable sees every one of them).
func (c *Coordinator) PurgeTopics(match func(topic string) bool, done func(error)) {
	var recs []Record
	for id, g := range c.groups {
		for tp := range g.offsets {
			if match(tp.Topic) {
				recs = append(recs, Record{Group: id, TP: tp})
			}
		}
	}
	if len(recs) == 0 {
		done(nil)
		return
	}
	sort.Slice(recs, func(i, j int) bool {
		if recs[i].Group != recs[j].Group {
			return recs[i].Group < recs[j].Group
		}
		return lessTP(recs[i].TP, recs[j].TP)
	})
	c.store.Persist(recs, func(err error) {
		if err != nil {
			done(err)
			return
		}
		for _, r := range recs {
			if g := c.groups[r.Group]; g != nil {
				delete(g.offsets, r.TP)
			}
		}
		c.PurgeTopics(match, done)
	})
}

// Fetch returns committed offsets: for tps, or every one when tps is nil.
// Partitions without a commit are absent from the map.
func (c *Coordinator) Fetch(groupID string, tps []TopicPartition) map[TopicPartition]CommittedOffset {
	out := map[TopicPartition]CommittedOffset{}
	g := c.groups[groupID]
	if g == nil {
		return out
	}
	if tps == nil {
		for tp, o := range g.offsets {
			out[tp] = o
		}
		return out
	}
	for _, tp := range tps {
		if o, ok := g.offsets[tp]; ok {
			out[tp] = o
		}
	}
	return out
}

// DeleteOffsets handles OffsetDelete: allowed only while the group has no
// members (Kafka also allows it for topics the members do not consume;
// Strand does not parse member subscriptions).
func (c *Coordinator) DeleteOffsets(groupID string, tps []TopicPartition, done func(int16)) {
	g := c.groups[groupID]
	switch {
	case g == nil:
		done(ErrGroupIDNotFound)
		return
	case len(g.members) > 0:
		done(ErrGroupSubscribedToTopic)
		return
	}
	var recs []Record
	for _, tp := range tps {
		if _, ok := g.offsets[tp]; ok {
			recs = append(recs, Record{Group: groupID, TP: tp})
		}
	}
	c.persistDeletes(g, recs, func(err error) {
		if err != nil {
			done(ErrCoordinatorNotAvailable)
			return
		}
		done(errNone)
	})
}

func (c *Coordinator) persistDeletes(g *Group, recs []Record, done func(error)) {
	if len(recs) == 0 {
		done(nil)
		return
	}
	c.store.Persist(recs, func(err error) {
		if err == nil {
			for _, r := range recs {
				if !r.IsMeta {
					delete(g.offsets, r.TP)
				}
			}
		}
		done(err)
	})
}

// DeleteGroup handles DeleteGroups for one group.
func (c *Coordinator) DeleteGroup(groupID string, done func(int16)) {
	g := c.groups[groupID]
	switch {
	case g == nil || g.state == Dead:
		done(ErrGroupIDNotFound)
		return
	case g.state != Empty:
		done(ErrNonEmptyGroup)
		return
	}
	g.state = Dead
	var recs []Record
	for tp := range g.offsets {
		recs = append(recs, Record{Group: groupID, TP: tp})
	}
	if g.lastMeta != nil {
		recs = append(recs, Record{Group: groupID, IsMeta: true})
	}
	c.persistDeletes(g, recs, func(err error) {
		if err != nil {
			g.state = Empty
			done(ErrCoordinatorNotAvailable)
			return
		}
		delete(c.groups, groupID)
		done(errNone)
	})
}

// Listing is one group in ListGroups.
type Listing struct {
	ID, ProtocolType, State string
}

// List returns every live group, sorted by id.
func (c *Coordinator) List() []Listing {
	out := make([]Listing, 0, len(c.groups))
	for id, g := range c.groups {
		if g.state != Dead {
			out = append(out, Listing{ID: id, ProtocolType: g.protocolType, State: g.state.String()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Load applies a record read back from the offsets log at start-up.
func (c *Coordinator) Load(r Record, nowMs int64) {
	if r.IsMeta && r.Meta == nil {
		if g := c.groups[r.Group]; g != nil {
			g.restore(&GroupMeta{}, nowMs)
			g.lastMeta = nil
			if len(g.offsets) == 0 {
				delete(c.groups, r.Group)
			}
		}
		return
	}
	g := c.getOrCreate(r.Group, nowMs)
	if r.IsMeta {
		g.restore(r.Meta, nowMs)
		return
	}
	if r.Offset == nil {
		delete(g.offsets, r.TP)
		if len(g.offsets) == 0 && len(g.members) == 0 && g.lastMeta == nil {
			delete(c.groups, r.Group)
		}
		return
	}
	g.offsets[r.TP] = *r.Offset
}

// Tick runs every group's timers and offset retention, and returns when it
// next needs to run (0: nothing scheduled).
func (c *Coordinator) Tick(nowMs int64) int64 {
	var next int64
	for _, g := range c.groups {
		if t := g.Tick(nowMs); t > 0 && (next == 0 || t < next) {
			next = t
		}
	}
	if nowMs >= c.nextRetentionMs {
		c.nextRetentionMs = nowMs + c.cfg.OffsetsRetentionCheckMs
		c.expireOffsets(nowMs)
	}
	if next == 0 || c.nextRetentionMs < next {
		next = c.nextRetentionMs
	}
	return next
}

// expireOffsets drops the offsets of groups that have had no members for
// longer than the retention (Kafka's rule for groups without members).
func (c *Coordinator) expireOffsets(nowMs int64) {
	for id, g := range c.groups {
		if g.state != Empty || nowMs-g.emptySinceMs < c.cfg.OffsetsRetentionMs {
			continue
		}
		var recs []Record
		for tp := range g.offsets {
			recs = append(recs, Record{Group: id, TP: tp})
		}
		if g.lastMeta != nil {
			recs = append(recs, Record{Group: id, IsMeta: true})
		}
		if len(recs) == 0 {
			delete(c.groups, id)
			continue
		}
		g, id := g, id
		c.persistDeletes(g, recs, func(err error) {
			if err == nil && len(g.members) == 0 && len(g.offsets) == 0 {
				delete(c.groups, id)
			}
		})
	}
}
