package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/strand-io/strand/cluster/metadata"
	"github.com/strand-io/strand/wire"
)

// The leadership lease. A partition leader that was paused (SIGSTOP, a
// stalled VM) or cut off from the controller may have been fenced and
// replaced while it could not tell; acks=all cannot be acknowledged then
// (its in-sync set holds the new leader, which no longer fetches from
// it), but acks=1 needs no follower. So a broker acknowledges produces to
// its replicated partitions only while it holds a lease:
//
//   - The controller fences a broker only after it has answered no probe
//     for --broker-lease, counted from when the answered probe was sent
//     (liveness.go). A probe names that send time and the controller's
//     metadata version; a broker that answers one may lead until the send
//     time plus the lease, less a margin for the two clocks (the same
//     host's in tests; NTP-synchronised ones across hosts).
//   - The lease counts only on a core that has applied the metadata
//     version the probe named: every fencing the controller had made by
//     then is known there, so a deposed leader renews nothing until it
//     knows it was deposed. A probe read late (say, from a socket buffer
//     after SIGCONT) names an old send time, and its lease has run out.
//   - The controller leads on its own lease: a quorum-confirmed read of
//     the metadata at the start of each liveness round.
//
// A broker without a lease answers NOT_LEADER_OR_FOLLOWER, which clients
// retry after refreshing their metadata.

// leaseSoftware is the ClientSoftwareName of the controller's probes.
const leaseSoftware = wire.LivenessSoftware

// lease is what a broker may lead on: until (unix ms) for cores that
// have applied metadata version.
type lease struct {
	until   int64
	version uint64
}

func formatLeaseProbe(version uint64, sent time.Time) string {
	return fmt.Sprintf("%d-%d", version, sent.UnixMilli())
}

func parseLeaseProbe(s string) (version uint64, sentMs int64, ok bool) {
	if _, err := fmt.Sscanf(s, "%d-%d", &version, &sentMs); err != nil {
		return 0, 0, false
	}
	return version, sentMs, true
}

// leaseMargin is what the lease keeps back for the two clocks.
func (n *Node) leaseMargin() time.Duration { return n.cfg.BrokerLease / 5 }

// renewLease extends the lease to sent plus the broker lease (less the
// margin) for cores at metadata version or later. Leases only grow: a
// renewal that would end sooner changes nothing.
func (n *Node) renewLease(sent time.Time, version uint64) {
	until := sent.Add(n.cfg.BrokerLease - n.leaseMargin()).UnixMilli()
	next := &lease{until: until, version: version}
	for {
		cur := n.lease.Load()
		if cur != nil && cur.until >= until {
			return
		}
		if n.lease.CompareAndSwap(cur, next) {
			return
		}
	}
}

// leaseValid reports whether this core may acknowledge produces to the
// replicated partitions it leads at now.
func (cs *coreState) leaseValid(now time.Time) bool {
	l := cs.node.lease.Load()
	return l != nil && now.UnixMilli() < l.until && cs.appliedVersion >= l.version
}

// LivenessProbed renews the lease from a controller probe (wire calls it
// for an ApiVersions whose ClientSoftwareName is leaseSoftware).
func (b *backend) LivenessProbed(softwareVersion string) {
	version, sentMs, ok := parseLeaseProbe(softwareVersion)
	if !ok {
		return
	}
	b.node.renewLease(time.UnixMilli(sentMs), version)
}

// handOver is a controlled shutdown's first step: a broker leading
// replicated partitions fences itself through the metadata group, which
// elects new leaders from the rest of their in-sync sets at once, instead
// of a lease after the process is gone (Kafka's controlled shutdown). New
// connections are refused from here on, so no liveness probe unfences it
// again before it stops; it is unfenced when it answers after its
// restart. A failure (no quorum) is logged and the shutdown goes on: the
// lease then moves leadership.
func (n *Node) handOver(ctx context.Context) {
	if !n.serving.Load() {
		return
	}
	v := n.raft.View()
	me := n.brokerID()
	leads := false
	for _, name := range v.TopicNames() {
		t, _ := v.Topic(name)
		for i := range t.Partitions {
			p := &t.Partitions[i]
			if p.Leader == me && len(p.ISR) > 1 {
				leads = true
				break
			}
		}
		if leads {
			break
		}
	}
	if !leads {
		return
	}
	n.rt.StopAccepting()
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, err := n.proposeCtx(cctx, &metadata.FenceBroker{ID: me})
	if err != nil || !res.Accepted() {
		n.log.Warn("shutdown: handing leadership over failed; it moves when the broker lease runs out", "err", err, "result", res.Message)
		return
	}
	n.log.Info("shutdown: leadership handed over to the other in-sync replicas", "took", time.Since(start).Round(time.Millisecond))
}
