package group

import "bytes"

// GroupMeta is a group's membership as the offsets log keeps it (Kafka's
// group metadata record): written whenever a generation is settled (the
// leader's assignment is in, or the group became empty), replayed at start
// so that a broker restart keeps every member, its generation and its
// assignment, and the members' next heartbeats are simply accepted.
type GroupMeta struct {
	ProtocolType     string
	Generation       int32
	Protocol         string
	Leader           string
	StateTimestampMs int64
	Members          []MemberMeta
}

// MemberMeta is one member in a GroupMeta. Subscription is its metadata for
// the group's protocol only, as in Kafka.
type MemberMeta struct {
	MemberID           string
	InstanceID         *string
	ClientID           string
	ClientHost         string
	RebalanceTimeoutMs int32
	SessionTimeoutMs   int32
	Subscription       []byte
	Assignment         []byte
}

// meta snapshots the group's settled state.
func (g *Group) meta(nowMs int64) *GroupMeta {
	m := &GroupMeta{ProtocolType: g.protocolType, Generation: g.generation, Protocol: g.protocol,
		Leader: g.leader, StateTimestampMs: nowMs}
	for _, id := range g.sortedIDs() {
		o := g.members[id]
		m.Members = append(m.Members, MemberMeta{MemberID: o.id, InstanceID: o.instanceID, ClientID: o.clientID,
			ClientHost: o.host, RebalanceTimeoutMs: o.rebalanceTimeoutMs, SessionTimeoutMs: o.sessionTimeoutMs,
			Subscription: o.metadataFor(g.protocol), Assignment: o.assignment})
	}
	return m
}

// restore replaces the group's membership with m, read back from the log.
// Members get a fresh session from nowMs: they could not heartbeat while
// the broker was down.
func (g *Group) restore(m *GroupMeta, nowMs int64) {
	g.members, g.static, g.pending = map[string]*member{}, map[string]string{}, map[string]int64{}
	g.generation, g.protocolType, g.protocol, g.leader = m.Generation, m.ProtocolType, m.Protocol, m.Leader
	g.rebalanceDeadlineMs, g.delayedUntilMs = 0, 0
	for _, mm := range m.Members {
		g.members[mm.MemberID] = &member{id: mm.MemberID, instanceID: mm.InstanceID, clientID: mm.ClientID, host: mm.ClientHost,
			sessionTimeoutMs: mm.SessionTimeoutMs, rebalanceTimeoutMs: mm.RebalanceTimeoutMs, protocolType: m.ProtocolType,
			protocols: []Protocol{{Name: m.Protocol, Metadata: mm.Subscription}}, assignment: mm.Assignment,
			lastSeenMs: nowMs, restored: true}
		if mm.InstanceID != nil {
			g.static[*mm.InstanceID] = mm.MemberID
		}
	}
	if len(g.members) == 0 {
		g.state, g.leader, g.protocol = Empty, "", ""
		g.emptySinceMs = nowMs
		if m.StateTimestampMs > 0 && m.StateTimestampMs < nowMs {
			g.emptySinceMs = m.StateTimestampMs
		}
	} else {
		g.state = Stable
		if g.members[g.leader] == nil {
			g.leader = g.firstMember()
		}
	}
	g.lastMeta = m
}

// sameSubscription reports whether protos changes nothing for m. A member
// restored from the log knows only its metadata for the group's protocol,
// so only that is compared (once: the rejoin stores the full list).
func (g *Group) sameSubscription(m *member, protos []Protocol) bool {
	if !m.restored {
		return samePro(m.protocols, protos)
	}
	for _, p := range protos {
		if p.Name == g.protocol {
			return bytes.Equal(p.Metadata, m.metadataFor(g.protocol))
		}
	}
	return false
}

// settled records the group's new settled state in the log.
func (g *Group) settled(nowMs int64) {
	if g.onSettled != nil {
		g.onSettled(g, nowMs)
	}
}

// failWaiting answers every join and sync still waiting with code.
func (g *Group) failWaiting(code int16) {
	for _, id := range g.sortedIDs() {
		m := g.members[id]
		if m.awaitingJoin != nil {
			done := m.awaitingJoin
			m.awaitingJoin = nil
			done(JoinResult{ErrCode: code, Generation: -1, MemberID: m.id})
		}
		if m.awaitingSync != nil {
			done := m.awaitingSync
			m.awaitingSync = nil
			done(SyncResult{ErrCode: code})
		}
	}
}
