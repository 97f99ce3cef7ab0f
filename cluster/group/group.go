package group

import (
	"crypto/rand"
	"fmt"
	"sort"
)

// State is a group's place in the rebalance protocol.
type State int

const (
	Empty State = iota
	PreparingRebalance
	CompletingRebalance
	Stable
	Dead
)

func (s State) String() string {
	return [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"}[s]
}

// Protocol is one assignor a member supports, with its opaque metadata.
type Protocol struct {
	Name     string
	Metadata []byte
}

// JoinRequest is a JoinGroup as the coordinator needs it.
type JoinRequest struct {
	MemberID           string
	InstanceID         *string // static membership (group.instance.id)
	ClientID           string
	ClientHost         string
	SessionTimeoutMs   int32
	RebalanceTimeoutMs int32 // -1 (v0): use the session timeout
	ProtocolType       string
	Protocols          []Protocol
	// RequireKnownMemberID is true from JoinGroup v4: a first join gets a
	// member id with MEMBER_ID_REQUIRED and must come back with it.
	RequireKnownMemberID bool
}

// JoinMember is one member as the leader sees it in its JoinGroup response.
type JoinMember struct {
	MemberID   string
	InstanceID *string
	Metadata   []byte
}

// JoinResult answers a JoinGroup.
type JoinResult struct {
	ErrCode      int16
	Generation   int32
	ProtocolType string
	Protocol     string
	LeaderID     string
	MemberID     string
	Members      []JoinMember // only for the leader
}

// SyncResult answers a SyncGroup.
type SyncResult struct {
	ErrCode      int16
	ProtocolType string
	Protocol     string
	Assignment   []byte
}

type member struct {
	id                 string
	instanceID         *string
	clientID, host     string
	sessionTimeoutMs   int32
	rebalanceTimeoutMs int32
	protocolType       string
	protocols          []Protocol
	assignment         []byte
	lastSeenMs         int64
	awaitingJoin       func(JoinResult)
	awaitingSync       func(SyncResult)
	isNew              bool // joined during this rebalance; expires faster if it never completes it
	restored           bool // read back from the log: protocols holds only the group's protocol
}

func (m *member) supports(name string) bool {
	for _, p := range m.protocols {
		if p.Name == name {
			return true
		}
	}
	return false
}

func (m *member) metadataFor(name string) []byte {
	for _, p := range m.protocols {
		if p.Name == name {
			return p.Metadata
		}
	}
	return nil
}

// Config holds the coordinator's timing rules (Kafka's broker settings).
type Config struct {
	MinSessionTimeoutMs     int32 // group.min.session.timeout.ms, default 6000
	MaxSessionTimeoutMs     int32 // group.max.session.timeout.ms, default 1800000
	InitialRebalanceDelayMs int64 // group.initial.rebalance.delay.ms, default 3000
	MaxSize                 int   // group.max.size, default unlimited
	NewMemberJoinTimeoutMs  int64 // how long a member that got MEMBER_ID_REQUIRED may take to come back, default 300000
	OffsetsRetentionMs      int64 // offsets.retention.minutes, default 7 days
	OffsetsRetentionCheckMs int64 // how often Tick looks for expired offsets, default 10 minutes
	MemberIDFunc            func(clientID string) string
}

func (c *Config) fill() {
	if c.MinSessionTimeoutMs == 0 {
		c.MinSessionTimeoutMs = 6000
	}
	if c.MaxSessionTimeoutMs == 0 {
		c.MaxSessionTimeoutMs = 1800000
	}
	if c.InitialRebalanceDelayMs < 0 {
		c.InitialRebalanceDelayMs = 0
	}
	if c.NewMemberJoinTimeoutMs == 0 {
		c.NewMemberJoinTimeoutMs = 300000
	}
	if c.OffsetsRetentionMs == 0 {
		c.OffsetsRetentionMs = 7 * 24 * 3600 * 1000
	}
	if c.OffsetsRetentionCheckMs == 0 {
		c.OffsetsRetentionCheckMs = 600000
	}
	if c.MemberIDFunc == nil {
		c.MemberIDFunc = randomMemberID
	}
}

// randomMemberID is Kafka's member id shape: the client id, a dash, a UUID.
func randomMemberID(clientID string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%x-%x-%x-%x-%x", clientID, b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// Group is one consumer group's membership state.
type Group struct {
	id           string
	cfg          *Config
	state        State
	generation   int32
	protocolType string
	protocol     string
	leader       string
	members      map[string]*member
	static       map[string]string // instance id -> member id
	pending      map[string]int64  // member ids handed out with MEMBER_ID_REQUIRED -> deadline
	// rebalanceDeadlineMs ends the join phase; 0 when not rebalancing.
	rebalanceDeadlineMs int64
	// delayedUntilMs holds the first rebalance of an empty group open so
	// that members starting together land in one generation.
	delayedUntilMs int64
	emptySinceMs   int64
	offsets        map[TopicPartition]CommittedOffset
	// lastMeta is the membership last written to (or read from) the log:
	// what a compaction of the log must keep.
	lastMeta *GroupMeta
	// onSettled persists the group's membership (set by the Coordinator).
	onSettled func(g *Group, nowMs int64)
}

func newGroup(id string, cfg *Config, nowMs int64) *Group {
	return &Group{id: id, cfg: cfg, members: map[string]*member{}, static: map[string]string{},
		pending: map[string]int64{}, offsets: map[TopicPartition]CommittedOffset{}, emptySinceMs: nowMs}
}

// ID is the group id.
func (g *Group) ID() string { return g.id }

// State is the group's current state.
func (g *Group) State() State { return g.state }

// Generation is the current generation id.
func (g *Group) Generation() int32 { return g.generation }

// Join handles a JoinGroup. done runs now or when the join phase ends.
func (g *Group) Join(req JoinRequest, nowMs int64, done func(JoinResult)) {
	fail := func(code int16) { done(JoinResult{ErrCode: code, Generation: -1, MemberID: req.MemberID}) }
	if g.state == Dead {
		fail(ErrCoordinatorNotAvailable)
		return
	}
	if req.SessionTimeoutMs < g.cfg.MinSessionTimeoutMs || req.SessionTimeoutMs > g.cfg.MaxSessionTimeoutMs {
		fail(ErrInvalidSessionTimeout)
		return
	}
	if req.RebalanceTimeoutMs <= 0 {
		req.RebalanceTimeoutMs = req.SessionTimeoutMs
	}
	if len(req.Protocols) == 0 || (g.protocolType != "" && len(g.members) > 0 && req.ProtocolType != g.protocolType) || !g.compatible(req.Protocols) {
		fail(ErrInconsistentProtocol)
		return
	}
	if req.MemberID == "" {
		g.joinNew(req, nowMs, done)
		return
	}
	if _, ok := g.pending[req.MemberID]; ok {
		delete(g.pending, req.MemberID)
		g.add(req, req.MemberID, nowMs, done)
		return
	}
	m := g.members[req.MemberID]
	if m == nil {
		fail(ErrUnknownMember)
		return
	}
	if req.InstanceID != nil && (m.instanceID == nil || *m.instanceID != *req.InstanceID) {
		fail(ErrFencedInstanceID)
		return
	}
	g.rejoin(m, req, nowMs, done)
}

func (g *Group) joinNew(req JoinRequest, nowMs int64, done func(JoinResult)) {
	if g.cfg.MaxSize > 0 && len(g.members) >= g.cfg.MaxSize {
		done(JoinResult{ErrCode: ErrGroupMaxSize, Generation: -1})
		return
	}
	id := g.cfg.MemberIDFunc(req.ClientID)
	if req.InstanceID != nil {
		if old, ok := g.static[*req.InstanceID]; ok {
			g.replaceStatic(old, id, req, nowMs, done)
			return
		}
	} else if req.RequireKnownMemberID {
		g.pending[id] = nowMs + g.cfg.NewMemberJoinTimeoutMs
		done(JoinResult{ErrCode: ErrMemberIDRequired, Generation: -1, MemberID: id})
		return
	}
	g.add(req, id, nowMs, done)
}

// replaceStatic gives a restarted static member a new member id. The old
// id is fenced. In a stable group nothing rebalances: the member keeps its
// assignment, as KIP-345 intends.
func (g *Group) replaceStatic(oldID, newID string, req JoinRequest, nowMs int64, done func(JoinResult)) {
	old := g.members[oldID]
	if old == nil {
		delete(g.static, *req.InstanceID)
		g.add(req, newID, nowMs, done)
		return
	}
	delete(g.members, oldID)
	if old.awaitingJoin != nil {
		old.awaitingJoin(JoinResult{ErrCode: ErrFencedInstanceID, Generation: -1, MemberID: oldID})
	}
	if old.awaitingSync != nil {
		old.awaitingSync(SyncResult{ErrCode: ErrFencedInstanceID})
	}
	m := *old
	m.id, m.awaitingJoin, m.awaitingSync = newID, nil, nil
	m.lastSeenMs = nowMs
	m.clientID, m.host = req.ClientID, req.ClientHost
	m.sessionTimeoutMs, m.rebalanceTimeoutMs = req.SessionTimeoutMs, req.RebalanceTimeoutMs
	g.members[newID] = &m
	g.static[*req.InstanceID] = newID
	if g.leader == oldID {
		g.leader = newID
	}
	if g.state == Stable && g.sameSubscription(old, req.Protocols) {
		g.settled(nowMs)
		done(g.joinResult(&m))
		return
	}
	m.restored = false
	m.protocols = req.Protocols
	m.awaitingJoin = done
	g.prepareRebalance(nowMs)
	g.maybeCompleteJoin(nowMs)
}

func samePro(a, b []Protocol) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || string(a[i].Metadata) != string(b[i].Metadata) {
			return false
		}
	}
	return true
}

func (g *Group) add(req JoinRequest, id string, nowMs int64, done func(JoinResult)) {
	m := &member{id: id, instanceID: req.InstanceID, clientID: req.ClientID, host: req.ClientHost,
		sessionTimeoutMs: req.SessionTimeoutMs, rebalanceTimeoutMs: req.RebalanceTimeoutMs,
		protocolType: req.ProtocolType, protocols: req.Protocols, lastSeenMs: nowMs, awaitingJoin: done, isNew: true}
	g.members[id] = m
	if req.InstanceID != nil {
		g.static[*req.InstanceID] = id
	}
	if g.protocolType == "" || len(g.members) == 1 {
		g.protocolType = req.ProtocolType
	}
	g.prepareRebalance(nowMs)
	g.maybeCompleteJoin(nowMs)
}

func (g *Group) rejoin(m *member, req JoinRequest, nowMs int64, done func(JoinResult)) {
	m.lastSeenMs = nowMs
	if m.awaitingJoin != nil {
		// A retried join replaces the one still waiting.
		m.awaitingJoin(JoinResult{ErrCode: ErrRebalanceInProgress, Generation: -1, MemberID: m.id})
	}
	changed := !g.sameSubscription(m, req.Protocols)
	m.restored = false
	m.protocols, m.sessionTimeoutMs, m.rebalanceTimeoutMs = req.Protocols, req.SessionTimeoutMs, req.RebalanceTimeoutMs
	m.awaitingJoin = done
	switch g.state {
	case Stable, CompletingRebalance:
		if !changed && m.id != g.leader && g.state == Stable {
			// A follower re-joining with nothing new gets the current
			// generation back, as Kafka does, without a rebalance.
			m.awaitingJoin = nil
			done(g.joinResult(m))
			return
		}
		g.prepareRebalance(nowMs)
	case Empty:
		g.prepareRebalance(nowMs)
	}
	g.maybeCompleteJoin(nowMs)
}

// compatible reports whether protos shares a protocol with every member.
func (g *Group) compatible(protos []Protocol) bool {
	if len(g.members) == 0 {
		return true
	}
	for _, p := range protos {
		if g.allSupport(p.Name) {
			return true
		}
	}
	return false
}

// allSupport reports whether every member lists protocol name.
func (g *Group) allSupport(name string) bool {
	for _, m := range g.members {
		if !m.supports(name) {
			return false
		}
	}
	return true
}

func (g *Group) prepareRebalance(nowMs int64) {
	if g.state == PreparingRebalance {
		return
	}
	if g.state == CompletingRebalance {
		// The assignment being synced is void: waiting syncs must rejoin.
		for _, m := range g.members {
			if m.awaitingSync != nil {
				m.awaitingSync(SyncResult{ErrCode: ErrRebalanceInProgress})
				m.awaitingSync = nil
			}
		}
	}
	wasEmpty := g.state == Empty
	g.state = PreparingRebalance
	var maxRebalance int64
	for _, m := range g.members {
		maxRebalance = max(maxRebalance, int64(m.rebalanceTimeoutMs))
	}
	g.rebalanceDeadlineMs = nowMs + maxRebalance
	if wasEmpty && g.cfg.InitialRebalanceDelayMs > 0 {
		g.delayedUntilMs = nowMs + g.cfg.InitialRebalanceDelayMs
	}
}

// maybeCompleteJoin ends the join phase once every member has (re)joined,
// unless the initial delay still holds it open.
func (g *Group) maybeCompleteJoin(nowMs int64) {
	if g.state != PreparingRebalance || nowMs < g.delayedUntilMs {
		return
	}
	for _, m := range g.members {
		if m.awaitingJoin == nil {
			return
		}
	}
	g.completeJoin(nowMs)
}

func (g *Group) completeJoin(nowMs int64) {
	// Members that did not rejoin in time leave the group.
	for id, m := range g.members {
		if m.awaitingJoin == nil {
			g.remove(id)
		}
	}
	g.rebalanceDeadlineMs, g.delayedUntilMs = 0, 0
	if len(g.members) == 0 {
		g.toEmpty(nowMs)
		return
	}
	g.generation++
	g.protocol = g.selectProtocol()
	if _, ok := g.members[g.leader]; !ok {
		g.leader = g.firstMember()
	}
	g.state = CompletingRebalance
	ids := g.sortedIDs()
	for _, id := range ids {
		m := g.members[id]
		m.isNew = false
		m.lastSeenMs = nowMs
		done := m.awaitingJoin
		m.awaitingJoin = nil
		m.assignment = nil
		done(g.joinResult(m))
	}
}

func (g *Group) joinResult(m *member) JoinResult {
	r := JoinResult{Generation: g.generation, ProtocolType: g.protocolType, Protocol: g.protocol, LeaderID: g.leader, MemberID: m.id}
	if m.id == g.leader {
		for _, id := range g.sortedIDs() {
			o := g.members[id]
			r.Members = append(r.Members, JoinMember{MemberID: o.id, InstanceID: o.instanceID, Metadata: o.metadataFor(g.protocol)})
		}
	}
	return r
}

// selectProtocol picks the protocol every member supports that most
// members list first, the way Kafka's vote does.
func (g *Group) selectProtocol() string {
	votes := map[string]int{}
	for _, m := range g.members {
		for _, p := range m.protocols {
			if g.allSupport(p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best, n := "", -1
	for name, v := range votes {
		if v > n || v == n && name < best {
			best, n = name, v
		}
	}
	return best
}

func (g *Group) firstMember() string {
	ids := g.sortedIDs()
	return ids[0]
}

func (g *Group) sortedIDs() []string {
	ids := make([]string, 0, len(g.members))
	for id := range g.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Sync handles a SyncGroup. The leader's assignments complete the
// rebalance; other members wait for them.
func (g *Group) Sync(memberID string, instanceID *string, generation int32, assignments map[string][]byte, nowMs int64, done func(SyncResult)) {
	m := g.members[memberID]
	switch {
	case m == nil:
		done(SyncResult{ErrCode: ErrUnknownMember})
		return
	case instanceID != nil && (m.instanceID == nil || *m.instanceID != *instanceID):
		done(SyncResult{ErrCode: ErrFencedInstanceID})
		return
	case generation != g.generation:
		done(SyncResult{ErrCode: ErrIllegalGeneration})
		return
	}
	m.lastSeenMs = nowMs
	switch g.state {
	case PreparingRebalance:
		done(SyncResult{ErrCode: ErrRebalanceInProgress})
	case Stable:
		done(SyncResult{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: m.assignment})
	case CompletingRebalance:
		if m.awaitingSync != nil {
			m.awaitingSync(SyncResult{ErrCode: ErrRebalanceInProgress})
		}
		m.awaitingSync = done
		if memberID != g.leader {
			return
		}
		for id, o := range g.members {
			o.assignment = assignments[id]
		}
		g.state = Stable
		g.settled(nowMs)
		for _, id := range g.sortedIDs() {
			o := g.members[id]
			if o.awaitingSync != nil {
				cb := o.awaitingSync
				o.awaitingSync = nil
				cb(SyncResult{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: o.assignment})
			}
		}
	default:
		done(SyncResult{ErrCode: ErrUnknownMember})
	}
}

// Heartbeat keeps a member alive and tells it whether to rejoin.
func (g *Group) Heartbeat(memberID string, instanceID *string, generation int32, nowMs int64) int16 {
	m := g.members[memberID]
	switch {
	case m == nil:
		return ErrUnknownMember
	case instanceID != nil && (m.instanceID == nil || *m.instanceID != *instanceID):
		return ErrFencedInstanceID
	}
	m.lastSeenMs = nowMs
	switch {
	case g.state == PreparingRebalance:
		return ErrRebalanceInProgress
	case generation != g.generation:
		return ErrIllegalGeneration
	case g.state == CompletingRebalance:
		return ErrRebalanceInProgress
	}
	return errNone
}

// LeaveMember is one member leaving (by member id, or by instance id for
// static members, LeaveGroup v3+).
type LeaveMember struct {
	MemberID   string
	InstanceID *string
}

// Leave removes members and rebalances the rest. It returns an error code
// per member.
func (g *Group) Leave(ms []LeaveMember, nowMs int64) []int16 {
	codes := make([]int16, len(ms))
	left := false
	for i, lm := range ms {
		id := lm.MemberID
		if lm.InstanceID != nil {
			known, ok := g.static[*lm.InstanceID]
			if !ok || id != "" && known != id {
				codes[i] = ErrFencedInstanceID
				if !ok {
					codes[i] = ErrUnknownMember
				}
				continue
			}
			id = known
		}
		m := g.members[id]
		if m == nil {
			codes[i] = ErrUnknownMember
			continue
		}
		if m.awaitingJoin != nil {
			m.awaitingJoin(JoinResult{ErrCode: ErrUnknownMember, Generation: -1, MemberID: id})
		}
		if m.awaitingSync != nil {
			m.awaitingSync(SyncResult{ErrCode: ErrUnknownMember})
		}
		g.remove(id)
		left = true
	}
	if left {
		g.membersChanged(nowMs)
	}
	return codes
}

func (g *Group) remove(id string) {
	m := g.members[id]
	if m == nil {
		return
	}
	delete(g.members, id)
	if m.instanceID != nil && g.static[*m.instanceID] == id {
		delete(g.static, *m.instanceID)
	}
	if g.leader == id {
		g.leader = ""
	}
}

// membersChanged rebalances (or empties) the group after departures.
func (g *Group) membersChanged(nowMs int64) {
	if len(g.members) == 0 {
		if g.state == PreparingRebalance || g.state == CompletingRebalance || g.state == Stable {
			g.toEmpty(nowMs)
		}
		return
	}
	switch g.state {
	case Stable, CompletingRebalance:
		g.prepareRebalance(nowMs)
	}
	g.maybeCompleteJoin(nowMs)
}

func (g *Group) toEmpty(nowMs int64) {
	g.state = Empty
	g.generation++ // members of the old generation can no longer commit
	g.leader, g.protocol = "", ""
	g.rebalanceDeadlineMs, g.delayedUntilMs = 0, 0
	g.emptySinceMs = nowMs
	g.settled(nowMs)
}

// Tick expires members whose session lapsed, ends a join phase past its
// deadline, and returns the next time Tick needs to run (0: no timer).
func (g *Group) Tick(nowMs int64) int64 {
	for id, deadline := range g.pending {
		if nowMs >= deadline {
			delete(g.pending, id)
		}
	}
	expired := false
	for id, m := range g.members {
		if m.awaitingJoin != nil {
			continue // waiting on us, not the other way round
		}
		if nowMs-m.lastSeenMs >= int64(m.sessionTimeoutMs) {
			if m.awaitingSync != nil {
				m.awaitingSync(SyncResult{ErrCode: ErrUnknownMember})
			}
			g.remove(id)
			expired = true
		}
	}
	if expired {
		g.membersChanged(nowMs)
	}
	if g.state == PreparingRebalance {
		if nowMs >= g.rebalanceDeadlineMs && nowMs >= g.delayedUntilMs {
			g.completeJoin(nowMs)
		} else {
			g.maybeCompleteJoin(nowMs)
		}
	}
	return g.nextDeadline()
}

func (g *Group) nextDeadline() int64 {
	var next int64
	at := func(t int64) {
		if t > 0 && (next == 0 || t < next) {
			next = t
		}
	}
	for _, m := range g.members {
		if m.awaitingJoin == nil {
			at(m.lastSeenMs + int64(m.sessionTimeoutMs))
		}
	}
	for _, d := range g.pending {
		at(d)
	}
	if g.state == PreparingRebalance {
		at(max(g.rebalanceDeadlineMs, g.delayedUntilMs))
		if g.delayedUntilMs > 0 {
			at(g.delayedUntilMs)
		}
	}
	return next
}

// Description is a group as DescribeGroups reports it.
type Description struct {
	ID, State, ProtocolType, Protocol string
	Members                           []MemberDescription
}

// MemberDescription is one member in a Description.
type MemberDescription struct {
	MemberID, ClientID, ClientHost string
	InstanceID                     *string
	Metadata, Assignment           []byte
}

// Describe reports the group for DescribeGroups.
func (g *Group) Describe() Description {
	d := Description{ID: g.id, State: g.state.String(), ProtocolType: g.protocolType, Protocol: g.protocol}
	for _, id := range g.sortedIDs() {
		m := g.members[id]
		d.Members = append(d.Members, MemberDescription{MemberID: m.id, ClientID: m.clientID, ClientHost: m.host,
			InstanceID: m.instanceID, Metadata: m.metadataFor(g.protocol), Assignment: m.assignment})
	}
	return d
}

func (g *Group) String() string {
	return fmt.Sprintf("group %s %s gen %d members %d", g.id, g.state, g.generation, len(g.members))
}
