package replication

import (
	"flag"
	"fmt"
	"slices"

	"github.com/strand-io/strand/cluster/metadata"
)

// metaController is the simulator's controller on the brokers' own
// metadata state machine: every decision about leaders, in-sync sets and
// fencing is metadata.State's, reached through the commands the brokers
// propose (cluster/raftmeta.go, liveness.go, replicas.go, election.go).
// The simulator thus checks what the brokers' metadata group decides.
//
// What stays here, because metadata has no notion of it, and is therefore
// NOT checked against the brokers' code:
//
//   - Incarnations and broker epochs (KRaft's). A RegisterRequest from an
//     older incarnation than the newest seen is refused
//     (ErrDuplicateRegistration); each accepted one gets a new broker
//     epoch. On brokers an older process cannot register late (its data
//     dir lock is gone with it), and the connection serial stands in for
//     the broker epoch in follower fetches.
//   - LeaderBrokerEpoch: the broker epoch the leader had when it was
//     granted its leader epoch, recorded here when the leader epoch
//     changes. A re-registration fences the previous incarnation through
//     RegisterBroker, so a grant never outlives the incarnation it named.
//   - AlterPartition's LeaderBrokerEpoch check (ErrStaleBrokerEpoch): a
//     proposal from an earlier incarnation of the leader.
//
// And one way this differs from the brokers: every process start here
// proposes RegisterBroker, which fences the previous process. A broker's
// registerSelf proposes it only when its address, rack, cores or log dir
// changed, so a broker restarted within its lease keeps its leaderships
// in the same leader epoch, which the simulated Replica refuses to do (a
// grant to an earlier incarnation is not its own). That path is not
// simulated.
//   - The proposal sequence number (Seq): a proposal not newer than the
//     last one decided for its leader epoch is refused, as the metadata
//     log (ordered, exactly once) makes the brokers' proposals.
//   - Liveness timing: when a session has expired (FenceBroker) and when a
//     heartbeat unfences (UnfenceBroker), as liveness.go decides them.
//
// AlterPartition's ISR members' broker epochs (KIP-903) are not checked
// here: ChangePartition carries none. What keeps a follower whose data
// dir was wiped from joining on its previous process's fetches is
// metadata's own check of the log dir ids the proposal names (ISRDirs,
// from the dirs the followers' fetches report).
type metaController struct {
	cfg   ControllerConfig
	st    *metadata.State
	topic string

	brokers         map[BrokerID]*metaBroker
	brokerIDs       []BrokerID // sorted
	lastBrokerEpoch BrokerEpoch
	order           proposalOrder

	// parts is the metadata's partitions as PartitionStates (index =
	// PartitionID), refreshed after every command.
	parts []PartitionState
}

// metaBroker is what the adapter keeps of a broker beyond metadata's
// record of it.
type metaBroker struct {
	incarnation   uint64
	epoch         BrokerEpoch
	lastHeartbeat Millis
}

const metaTopic = "sim"

// newMetaController starts with partitions 0..len(parts)-1 (each with an
// empty log on every replica) in one topic whose replicas' brokers are
// known but fenced: every replica is in sync and none leads until a
// broker registers, as with NewController.
func newMetaController(cfg ControllerConfig, parts []PartitionState) *metaController {
	c := &metaController{cfg: cfg, st: metadata.New(), topic: metaTopic, brokers: map[BrokerID]*metaBroker{},
		order: proposalOrder{}}
	var ids []BrokerID
	create := &metadata.CreateTopic{Name: c.topic, ID: metadata.TopicID{1}}
	if cfg.UncleanLeaderElection {
		create.Configs = map[string]string{metadata.UncleanKey: "true"}
	}
	for i, p := range parts {
		if p.Partition != PartitionID(i) {
			panic(fmt.Sprintf("metaController: partition %d at index %d", p.Partition, i))
		}
		a := metadata.Assignment{Replicas: metaIDs(p.Replicas), Cores: make([]metadata.CoreID, len(p.Replicas))}
		create.Partitions = append(create.Partitions, a)
		for _, b := range p.Replicas {
			if !slices.Contains(ids, b) {
				ids = append(ids, b)
			}
		}
	}
	slices.Sort(ids)
	// Known before the topic exists, as brokers are before an operator
	// creates one; a log dir id of 0 takes the first registration's.
	for _, b := range ids {
		c.mustApply(&metadata.RegisterBroker{ID: metadata.BrokerID(b), KafkaAddr: fmt.Sprintf("b%d:9092", b),
			RaftAddr: fmt.Sprintf("b%d:9093", b), Cores: 1})
		c.mustApply(&metadata.FenceBroker{ID: metadata.BrokerID(b)})
	}
	c.mustApply(create)
	c.parts = make([]PartitionState, len(parts))
	c.refresh()
	return c
}

func metaIDs(ids []BrokerID) []metadata.BrokerID {
	out := make([]metadata.BrokerID, len(ids))
	for i, b := range ids {
		out[i] = metadata.BrokerID(b)
	}
	return out
}

func replIDs(ids []metadata.BrokerID) []BrokerID {
	out := make([]BrokerID, len(ids))
	for i, b := range ids {
		out[i] = BrokerID(b)
	}
	return out
}

func (c *metaController) mustApply(cmd metadata.Command) {
	if r := c.st.Apply(cmd); !r.Accepted() {
		panic(fmt.Sprintf("metaController: %v refused: %s", cmd.Kind(), r.Message))
	}
}

// apply applies cmd and returns the partitions it changed.
func (c *metaController) apply(cmd metadata.Command) (metadata.Result, []PartitionState) {
	r := c.st.Apply(cmd)
	if !r.Accepted() {
		return r, nil
	}
	return r, c.refresh()
}

// refresh converts every partition whose partition epoch moved and
// returns those.
func (c *metaController) refresh() []PartitionState {
	t, _ := c.st.View().Topic(c.topic)
	var changed []PartitionState
	for i := range t.Partitions {
		p := &t.Partitions[i]
		old := &c.parts[i]
		if old.Replicas != nil && PartitionEpoch(p.PartitionEpoch) == old.PartitionEpoch {
			continue
		}
		s := PartitionState{Partition: PartitionID(i), Replicas: replIDs(p.Replicas), ISR: replIDs(p.ISR),
			Leader: BrokerID(p.Leader), LeaderBrokerEpoch: old.LeaderBrokerEpoch, LeaderEpoch: Epoch(p.LeaderEpoch),
			PartitionEpoch: PartitionEpoch(p.PartitionEpoch)}
		if s.LeaderEpoch != old.LeaderEpoch || old.Replicas == nil {
			s.LeaderBrokerEpoch = 0
			if bi := c.brokers[s.Leader]; bi != nil {
				s.LeaderBrokerEpoch = bi.epoch
			}
		}
		*old = s
		changed = append(changed, s.Clone())
	}
	return changed
}

// State is the metadata's record of partition p.
func (c *metaController) State(p PartitionID) PartitionState { return c.parts[p].Clone() }

// peek is State without the copy, for the simulator's read-only hot paths.
func (c *metaController) peek(p PartitionID) *PartitionState { return &c.parts[p] }

// States is every partition's record, in partition order.
func (c *metaController) States() []PartitionState {
	out := make([]PartitionState, len(c.parts))
	for i := range c.parts {
		out[i] = c.parts[i].Clone()
	}
	return out
}

// Fenced reports whether broker b is fenced in the metadata (or never
// registered a process).
func (c *metaController) Fenced(b BrokerID) bool {
	if c.brokers[b] == nil {
		return true
	}
	mb, ok := c.st.View().Broker(metadata.BrokerID(b))
	return !ok || mb.Fenced
}

// LogDirID is the log dir id the metadata holds for b.
func (c *metaController) LogDirID(b BrokerID) (uint64, bool) {
	if c.brokers[b] == nil {
		return 0, false
	}
	mb, ok := c.st.View().Broker(metadata.BrokerID(b))
	return mb.LogDirID, ok
}

// Register is a process start: RegisterBroker with the broker's log dir
// id (which fences the previous process and, for a new log dir, takes
// the broker out of every in-sync set), then UnfenceBroker, as a broker's
// registerSelf proposes them.
func (c *metaController) Register(req RegisterRequest, now Millis) (RegisterResponse, []PartitionState) {
	bi := c.brokers[req.Broker]
	if bi != nil && req.Incarnation < bi.incarnation {
		return RegisterResponse{Broker: req.Broker, Incarnation: req.Incarnation, Err: ErrDuplicateRegistration}, nil
	}
	var changed []PartitionState
	if bi == nil || bi.incarnation != req.Incarnation {
		_, ch := c.apply(&metadata.RegisterBroker{ID: metadata.BrokerID(req.Broker),
			KafkaAddr: fmt.Sprintf("b%d:9092", req.Broker), RaftAddr: fmt.Sprintf("b%d:9093", req.Broker),
			Cores: 1, NowMs: int64(now), LogDirID: req.LogDirID})
		changed = append(changed, ch...)
		if bi == nil {
			c.brokerIDs = append(c.brokerIDs, req.Broker)
			slices.Sort(c.brokerIDs)
		}
		c.lastBrokerEpoch++
		bi = &metaBroker{incarnation: req.Incarnation, epoch: c.lastBrokerEpoch, lastHeartbeat: now}
		c.brokers[req.Broker] = bi
		_, ch = c.apply(&metadata.UnfenceBroker{ID: metadata.BrokerID(req.Broker)})
		changed = mergeChanged(changed, ch)
	}
	resp := RegisterResponse{Broker: req.Broker, Incarnation: req.Incarnation, BrokerEpoch: bi.epoch}
	for i := range c.parts {
		if contains(c.parts[i].Replicas, req.Broker) {
			resp.States = append(resp.States, c.parts[i].Clone())
		}
	}
	return resp, changed
}

// mergeChanged appends later to earlier, keeping one (the newest) state
// per partition.
func mergeChanged(earlier, later []PartitionState) []PartitionState {
	for _, s := range later {
		earlier = slices.DeleteFunc(earlier, func(o PartitionState) bool { return o.Partition == s.Partition })
		earlier = append(earlier, s)
	}
	return earlier
}

// Heartbeat is a liveness probe answered by b's current process: it
// renews the session and unfences a broker fenced for silence
// (liveness.go's UnfenceBroker).
func (c *metaController) Heartbeat(hb Heartbeat, now Millis) []PartitionState {
	bi := c.brokers[hb.Broker]
	if bi == nil || bi.epoch != hb.BrokerEpoch {
		return nil
	}
	bi.lastHeartbeat = now
	if c.Fenced(hb.Broker) {
		_, ch := c.apply(&metadata.UnfenceBroker{ID: metadata.BrokerID(hb.Broker)})
		return ch
	}
	return nil
}

// Tick fences every unfenced broker whose session expired (liveness.go's
// FenceBroker).
func (c *metaController) Tick(now Millis) []PartitionState {
	var changed []PartitionState
	for _, b := range c.brokerIDs {
		if !c.Fenced(b) && now-c.brokers[b].lastHeartbeat > c.cfg.SessionTimeoutMs {
			_, ch := c.apply(&metadata.FenceBroker{ID: metadata.BrokerID(b)})
			changed = mergeChanged(changed, ch)
		}
	}
	return changed
}

// ElectPreferred is ElectLeaders with PREFERRED for p: metadata's
// ElectLeader, as election.go and the automatic rebalance propose it.
func (c *metaController) ElectPreferred(p PartitionID) ([]PartitionState, error) {
	r, ch := c.apply(&metadata.ElectLeader{Topic: c.topic, Partition: int32(p)})
	switch r.Code {
	case metadata.OK:
		return ch, nil
	case metadata.ErrElectionNotNeeded:
		return nil, ErrElectionNotNeeded
	case metadata.ErrPreferredNotAvailable:
		return nil, ErrPreferredNotAvailable
	}
	return nil, r.Err()
}

// AlterPartition is a leader's in-sync set proposal: after the adapter's
// own checks (Seq, the leader's broker epoch), metadata's ChangePartition
// as replicas.go proposes it, a compare-and-set on both epochs.
func (c *metaController) AlterPartition(req AlterPartitionRequest) (AlterPartitionResponse, []PartitionState) {
	s := &c.parts[req.Partition]
	reject := func(err error) (AlterPartitionResponse, []PartitionState) {
		return AlterPartitionResponse{Partition: req.Partition, LeaderEpoch: req.LeaderEpoch, Seq: req.Seq, Err: err, State: s.Clone()}, nil
	}
	if c.order.stale(req, s.LeaderEpoch) {
		return reject(ErrInvalidUpdateVersion)
	}
	if bi := c.brokers[req.Leader]; bi == nil || bi.epoch != req.LeaderBrokerEpoch {
		return reject(ErrStaleBrokerEpoch)
	}
	cmd := &metadata.ChangePartition{Topic: c.topic, Partition: int32(req.Partition), LeaderEpoch: metadata.Epoch(req.LeaderEpoch),
		PartitionEpoch: int32(req.PartitionEpoch), Leader: metadata.BrokerID(req.Leader), ISR: make([]metadata.BrokerID, len(req.NewISR))}
	for i, m := range req.NewISR {
		cmd.ISR[i] = metadata.BrokerID(m.Broker)
		if m.LogDirID != 0 {
			if cmd.ISRDirs == nil {
				cmd.ISRDirs = make([]uint64, len(req.NewISR))
			}
			cmd.ISRDirs[i] = m.LogDirID
		}
	}
	r, ch := c.apply(cmd)
	switch r.Code {
	case metadata.OK:
		return AlterPartitionResponse{Partition: req.Partition, LeaderEpoch: req.LeaderEpoch, Seq: req.Seq, State: s.Clone()}, ch
	case metadata.ErrStaleEpoch:
		if req.LeaderEpoch != s.LeaderEpoch {
			return reject(ErrFencedLeaderEpoch)
		}
		return reject(ErrInvalidUpdateVersion)
	case metadata.ErrInvalidISR:
		return reject(ErrIneligibleReplica)
	}
	panic(fmt.Sprintf("metaController: ChangePartition refused: %s", r.Message))
}

// simController is what the simulator asks of its controller.
type simController interface {
	Register(RegisterRequest, Millis) (RegisterResponse, []PartitionState)
	Heartbeat(Heartbeat, Millis) []PartitionState
	Tick(Millis) []PartitionState
	AlterPartition(AlterPartitionRequest) (AlterPartitionResponse, []PartitionState)
	ElectPreferred(PartitionID) ([]PartitionState, error)
	State(PartitionID) PartitionState
	States() []PartitionState
	peek(PartitionID) *PartitionState
	LogDirID(BrokerID) (uint64, bool)
}

// ctrlKind selects the simulator's controller.
type ctrlKind string

const (
	// ctrlMetadata: cluster/metadata's state machine through
	// metaController.
	ctrlMetadata ctrlKind = "metadata"
	// ctrlMetadataNoDirs: the same, with followers that report no data
	// dir id in their fetches, as brokers' fetches do not yet
	// (TestSimulationFindsLossWithoutDirIDs).
	ctrlMetadataNoDirs ctrlKind = "metadata-nodirs"
	// ctrlModel: replication.Controller, the model the brokers never ran.
	ctrlModel ctrlKind = "model"
)

var flagController = flag.String("controller", string(ctrlMetadata),
	"the simulator's controller: metadata (cluster/metadata, what brokers run), metadata-nodirs (followers report no data dir id, as brokers' fetches do not yet) or model (replication.Controller)")

func newSimController(kind ctrlKind, cfg ControllerConfig, parts []PartitionState) simController {
	switch kind {
	case ctrlModel:
		return NewController(cfg, parts)
	case ctrlMetadata, ctrlMetadataNoDirs:
		return newMetaController(cfg, parts)
	}
	panic(fmt.Sprintf("sim: unknown controller %q", kind))
}

func (c *Controller) peek(p PartitionID) *PartitionState { return c.parts[p] }

func (c *Controller) LogDirID(b BrokerID) (uint64, bool) {
	bi := c.brokers[b]
	if bi == nil {
		return 0, false
	}
	return bi.logDirID, true
}
