package cluster

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"time"

	"github.com/strand-io/strand/cluster/metadata"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Broker liveness. The controller (the broker leading the metadata group)
// probes every registered broker's Kafka listener with an ApiVersions
// round trip, a heartbeat it drives itself, so liveness costs the Raft log
// nothing while brokers are healthy (KRaft also keeps heartbeats out of
// its log). A broker that has not answered for the lease is fenced
// (FenceBroker: its partitions become leaderless, clients get
// LEADER_NOT_AVAILABLE); a fenced broker that answers again is unfenced
// (UnfenceBroker: it leads its partitions again). A broker answers only
// once it serves (its logs are open), so a restarted broker is never
// unfenced before its partitions can be read. A new controller gives every
// broker a whole lease before fencing it. The role moves with Raft
// leadership: only the leader's tracker acts.

// defaultBrokerLease is long enough for a loaded two-core machine's
// scheduling stalls, short enough that clients of a dead broker are told
// within seconds.
const defaultBrokerLease = 3 * time.Second

// probeTimeout bounds one probe.
const probeTimeout = time.Second

type liveness struct {
	n        *Node
	stopOnce sync.Once
	stopCh   chan struct{}
	done     chan struct{}
	// lastOK is when each broker last answered (tracker goroutine only);
	// leading is whether this tracker acted as controller last round.
	lastOK  map[metadata.BrokerID]time.Time
	leading bool
	leaders *leaderRebalance
}

func startLiveness(n *Node) *liveness {
	l := &liveness{n: n, stopCh: make(chan struct{}), done: make(chan struct{}), lastOK: map[metadata.BrokerID]time.Time{},
		leaders: &leaderRebalance{n: n, delay: n.cfg.LeaderRebalanceDelay, unfencedSince: map[metadata.BrokerID]time.Time{}}}
	go l.run()
	return l
}

func (l *liveness) stop() {
	if l == nil {
		return
	}
	l.stopOnce.Do(func() { close(l.stopCh) })
	<-l.done
}

func (l *liveness) run() {
	defer close(l.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-l.stopCh:
			cancel()
		case <-ctx.Done():
		}
	}()
	every := l.n.cfg.BrokerLease / 4
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		// A round at once, then every quarter lease: a started
		// controller grants leadership leases (lease.go) without
		// waiting a quarter lease first.
		l.round(ctx, time.Now())
		select {
		case <-l.stopCh:
			return
		case <-t.C:
		}
	}
}

// round probes every broker once and fences or unfences on the outcome.
func (l *liveness) round(ctx context.Context, now time.Time) {
	n := l.n
	if !n.raft.IsLeader() {
		l.leading = false
		return
	}
	v := n.raft.View()
	if !l.leading { // a new controller: everyone gets a whole lease
		l.leading = true
		l.leaders.reset()
		clear(l.lastOK)
		for _, id := range v.BrokerIDs() {
			l.lastOK[id] = now
		}
	}
	ids := v.BrokerIDs()
	alive := make([]bool, len(ids))
	sent := make([]time.Time, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		b, _ := v.Broker(id)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if id == n.brokerID() {
				// The controller's own lease: a quorum-confirmed read
				// proves it still leads the metadata group after now,
				// so a successor's fencing of it is a whole lease away.
				if lv, err := n.raft.LinearizableView(ctx); err == nil {
					n.renewLease(now, lv.Version())
				}
				alive[i], sent[i] = true, now
				return
			}
			sent[i] = time.Now()
			alive[i] = probe(b.KafkaAddr, v.Version(), sent[i])
		}()
	}
	wg.Wait()
	for i, id := range ids {
		b, _ := v.Broker(id)
		if _, known := l.lastOK[id]; !known {
			l.lastOK[id] = now // registered since: a whole lease from now
		}
		if alive[i] {
			// From when the probe was sent, the time it names: the broker
			// leads on the strength of it until then plus the lease
			// (lease.go), and is never fenced before.
			l.lastOK[id] = sent[i]
		}
		switch {
		case !b.Fenced && now.Sub(l.lastOK[id]) > n.cfg.BrokerLease:
			n.log.Warn("fencing a broker that has not answered for its lease: its partitions are leaderless until it returns",
				"node_id", id, "addr", b.KafkaAddr, "lease", n.cfg.BrokerLease)
			if _, err := n.proposeCtx(ctx, &metadata.FenceBroker{ID: id}); err != nil {
				n.log.Warn("fencing a broker", "node_id", id, "err", err)
			}
		case b.Fenced && alive[i] && id != n.brokerID():
			n.log.Info("unfencing a broker that answers again", "node_id", id, "addr", b.KafkaAddr)
			if _, err := n.proposeCtx(ctx, &metadata.UnfenceBroker{ID: id}); err != nil {
				n.log.Warn("unfencing a broker", "node_id", id, "err", err)
			}
		}
	}
	l.leaders.round(n.raft.View(), now)
}

// probe reports whether the broker at addr answers an ApiVersions request.
// The request names the controller's metadata version and the probe's
// send time (ClientSoftwareVersion, under the ClientSoftwareName
// leaseSoftware), from which the broker renews its leadership lease.
func probe(addr string, version uint64, sent time.Time) bool {
	c, err := net.DialTimeout("tcp", addr, probeTimeout)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(probeTimeout))
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName = leaseSoftware
	req.ClientSoftwareVersion = formatLeaseProbe(version, sent)
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("strand-liveness")).AppendRequest(nil, req, 1)
	if _, err := c.Write(frame); err != nil {
		return false
	}
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return false
	}
	body := make([]byte, min(binary.BigEndian.Uint32(size[:]), 1<<20))
	_, err = io.ReadFull(c, body)
	return err == nil
}
