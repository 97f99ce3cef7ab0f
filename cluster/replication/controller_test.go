package replication

import (
	"slices"
	"testing"
)

// The controller's tests run on both controllers: the model
// (replication.Controller) and the simulator's adapter over the brokers'
// cluster/metadata state machine (metaController).
type testController interface {
	simController
	Fenced(BrokerID) bool
	brokerEpoch(BrokerID) BrokerEpoch
}

func (c *Controller) brokerEpoch(b BrokerID) BrokerEpoch     { return c.brokers[b].epoch }
func (c *metaController) brokerEpoch(b BrokerID) BrokerEpoch { return c.brokers[b].epoch }

// eachController runs f on a fresh controller of each kind over one
// partition with replicas [1 2 3].
func eachController(t *testing.T, unclean bool, f func(t *testing.T, kind ctrlKind, c testController)) {
	for _, kind := range []ctrlKind{ctrlModel, ctrlMetadata} {
		t.Run(string(kind), func(t *testing.T) {
			f(t, kind, newSimController(kind, ControllerConfig{SessionTimeoutMs: 100, UncleanLeaderElection: unclean},
				[]PartitionState{{Partition: 0, Replicas: []BrokerID{1, 2, 3}}}).(testController))
		})
	}
}

func register(t *testing.T, c testController, b BrokerID, inc uint64, now Millis) BrokerEpoch {
	t.Helper()
	resp, _ := c.Register(RegisterRequest{Broker: b, Incarnation: inc}, now)
	if resp.Err != nil {
		t.Fatalf("register b%d inc %d: %v", b, inc, resp.Err)
	}
	return resp.BrokerEpoch
}

func TestControllerElectsFromISRAndBumpsEpochs(t *testing.T) {
	eachController(t, false, func(t *testing.T, kind ctrlKind, c testController) {
		register(t, c, 2, 1, 0)
		st := c.State(0)
		if st.Leader != 2 || st.LeaderEpoch != 1 {
			t.Fatalf("first registered in-sync replica should lead: %+v", st)
		}
		register(t, c, 1, 2, 0)
		register(t, c, 3, 3, 0)
		// b2's session expires: b1 (first in preference order, in sync) leads.
		for _, b := range []BrokerID{1, 3} {
			c.Heartbeat(Heartbeat{Broker: b, BrokerEpoch: c.brokerEpoch(b)}, 150)
		}
		changed := c.Tick(150)
		st = c.State(0)
		if len(changed) != 1 || st.Leader != 1 || st.LeaderEpoch != 2 || slices.Contains(st.ISR, 2) {
			t.Fatalf("after b2 fenced: %+v", st)
		}
	})
}

func TestControllerKeepsLastISRMemberAndWaitsForIt(t *testing.T) {
	eachController(t, false, func(t *testing.T, kind ctrlKind, c testController) {
		e1 := register(t, c, 1, 1, 0)
		e2 := register(t, c, 2, 2, 0)
		e3 := register(t, c, 3, 3, 0)
		// Leader b1 shrinks the ISR to itself.
		resp, _ := c.AlterPartition(AlterPartitionRequest{Partition: 0, Leader: 1, LeaderBrokerEpoch: e1,
			LeaderEpoch: 1, PartitionEpoch: c.State(0).PartitionEpoch, NewISR: []ISRMember{{Broker: 1, BrokerEpoch: e1}}})
		if resp.Err != nil {
			t.Fatal(resp.Err)
		}
		// b1 dies: nobody else holds every acknowledged record.
		c.Heartbeat(Heartbeat{Broker: 2, BrokerEpoch: e2}, 150)
		c.Heartbeat(Heartbeat{Broker: 3, BrokerEpoch: e3}, 150)
		c.Tick(150)
		st := c.State(0)
		if st.Leader != NoLeader || !slices.Equal(st.ISR, []BrokerID{1}) {
			t.Fatalf("clean election must leave the partition leaderless with ISR [1]: %+v", st)
		}
		// b1 comes back (a new incarnation) and leads again.
		register(t, c, 1, 4, 160)
		if st := c.State(0); st.Leader != 1 || st.LeaderEpoch != 3 {
			t.Fatalf("returning last in-sync replica should lead: %+v", st)
		}
	})
}

func TestControllerUncleanElection(t *testing.T) {
	eachController(t, true, func(t *testing.T, kind ctrlKind, c testController) {
		e1 := register(t, c, 1, 1, 0)
		e2 := register(t, c, 2, 2, 0)
		c.AlterPartition(AlterPartitionRequest{Partition: 0, Leader: 1, LeaderBrokerEpoch: e1,
			LeaderEpoch: 1, PartitionEpoch: c.State(0).PartitionEpoch, NewISR: []ISRMember{{Broker: 1, BrokerEpoch: e1}}})
		c.Heartbeat(Heartbeat{Broker: 2, BrokerEpoch: e2}, 150)
		c.Tick(150)
		if st := c.State(0); st.Leader != 2 || !slices.Equal(st.ISR, []BrokerID{2}) {
			t.Fatalf("unclean election should pick the live out-of-sync replica: %+v", st)
		}
	})
}

func TestControllerAlterPartitionChecks(t *testing.T) {
	eachController(t, false, func(t *testing.T, kind ctrlKind, c testController) {
		e1 := register(t, c, 1, 1, 0)
		e2 := register(t, c, 2, 2, 0)
		pe := c.State(0).PartitionEpoch
		shrink := AlterPartitionRequest{Partition: 0, Leader: 1, LeaderBrokerEpoch: e1, LeaderEpoch: 1,
			PartitionEpoch: pe, NewISR: []ISRMember{{Broker: 1, BrokerEpoch: e1}, {Broker: 2, BrokerEpoch: e2}}}
		cases := []struct {
			name string
			mod  func(*AlterPartitionRequest)
			want error
		}{
			{"stale leader epoch", func(r *AlterPartitionRequest) { r.LeaderEpoch = 0 }, ErrFencedLeaderEpoch},
			{"old broker epoch", func(r *AlterPartitionRequest) { r.LeaderBrokerEpoch = e1 + 10 }, ErrStaleBrokerEpoch},
			{"stale partition epoch", func(r *AlterPartitionRequest) { r.PartitionEpoch = pe - 1 }, ErrInvalidUpdateVersion},
			{"leader left out", func(r *AlterPartitionRequest) { r.NewISR = []ISRMember{{Broker: 2, BrokerEpoch: e2}} }, ErrIneligibleReplica},
		}
		for _, tc := range cases {
			req := shrink
			req.NewISR = slices.Clone(shrink.NewISR)
			tc.mod(&req)
			resp, changed := c.AlterPartition(req)
			if resp.Err != tc.want || changed != nil {
				t.Errorf("%s: got %v (changed %v), want %v", tc.name, resp.Err, changed, tc.want)
			}
		}
		// Accepted: b3 (never registered) leaves. A retry of the same request
		// after it won changes nothing: the model answers it with success,
		// metadata's compare-and-set refuses it as stale (the leader then
		// waits for the state at the newer epoch, Leading.Answered).
		if resp, changed := c.AlterPartition(shrink); resp.Err != nil || len(changed) != 1 {
			t.Fatalf("shrink: %v %v", resp.Err, changed)
		}
		retryErr := map[ctrlKind]error{ctrlModel: nil, ctrlMetadata: ErrInvalidUpdateVersion}[kind]
		if resp, changed := c.AlterPartition(shrink); resp.Err != retryErr || changed != nil || resp.State.PartitionEpoch != pe+1 {
			t.Fatalf("retried shrink: %v %v at partition epoch %d", resp.Err, changed, resp.State.PartitionEpoch)
		}
		// Adding b3 back while it is fenced: the model refuses it
		// (KIP-903's member check); metadata has no such rule (KIP-841
		// is not metadata's) and takes it. Both refuse a member whose
		// data dir is not the one the leader counted (metadata through
		// the log dir ids the proposal names).
		grow := shrink
		grow.PartitionEpoch = c.State(0).PartitionEpoch
		grow.NewISR = append(slices.Clone(shrink.NewISR), ISRMember{Broker: 3})
		if kind == ctrlModel {
			if resp, _ := c.AlterPartition(grow); resp.Err != ErrIneligibleReplica {
				t.Fatalf("adding fenced b3: %v", resp.Err)
			}
			return
		}
		wiped, _ := c.Register(RegisterRequest{Broker: 3, Incarnation: 9, LogDirID: 77}, 0)
		resp, _ := c.Register(RegisterRequest{Broker: 3, Incarnation: 10, LogDirID: 78}, 0)
		grow.NewISR[2] = ISRMember{Broker: 3, BrokerEpoch: wiped.BrokerEpoch, LogDirID: 77}
		if resp, _ := c.AlterPartition(grow); resp.Err != ErrIneligibleReplica {
			t.Fatalf("adding b3 on fetches from its replaced data dir: %v", resp.Err)
		}
		grow.NewISR[2] = ISRMember{Broker: 3, BrokerEpoch: resp.BrokerEpoch, LogDirID: 78}
		if resp, changed := c.AlterPartition(grow); resp.Err != nil || len(changed) != 1 {
			t.Fatalf("adding b3 on fetches from its data dir: %v %v", resp.Err, changed)
		}
	})
}

func TestControllerPreferredElection(t *testing.T) {
	eachController(t, false, func(t *testing.T, kind ctrlKind, c testController) {
		register(t, c, 2, 1, 0)
		register(t, c, 1, 2, 0)
		if _, err := c.ElectPreferred(0); err != nil {
			t.Fatal(err)
		}
		if st := c.State(0); st.Leader != 1 || st.LeaderEpoch != 2 {
			t.Fatalf("preferred election: %+v", st)
		}
		if _, err := c.ElectPreferred(0); err != ErrElectionNotNeeded {
			t.Fatalf("second preferred election: %v", err)
		}
	})
}

// A registration delayed in the network from a process that has since
// restarted must not fence the newer process (simulation seed 26174 found
// the broker then heartbeating with an epoch the controller had replaced,
// fenced for good).
func TestControllerRefusesLateRegistrationOfReplacedIncarnation(t *testing.T) {
	eachController(t, false, func(t *testing.T, kind ctrlKind, c testController) {
		register(t, c, 1, 1, 0)
		newer := register(t, c, 1, 5, 10)
		resp, changed := c.Register(RegisterRequest{Broker: 1, Incarnation: 3}, 20)
		if resp.Err != ErrDuplicateRegistration || changed != nil {
			t.Fatalf("late registration of incarnation 3 after 5: %+v, changed %v", resp, changed)
		}
		if c.Fenced(1) || c.brokerEpoch(1) != newer {
			t.Fatalf("incarnation 5 lost its registration: epoch %d, want %d", c.brokerEpoch(1), newer)
		}
	})
}

// A broker that returns with a new (wiped) log directory was the last
// in-sync replica: electing it would drop every acknowledged record, so
// the partition stays without a leader. Simulation seed 591 loses
// acknowledged records without this rule.
func TestControllerDoesNotElectWipedLastISRMember(t *testing.T) {
	for _, wiped := range []bool{false, true} {
		eachController(t, false, func(t *testing.T, kind ctrlKind, c testController) {
			resp, _ := c.Register(RegisterRequest{Broker: 1, Incarnation: 1, LogDirID: 10}, 0)
			e1 := resp.BrokerEpoch
			c.AlterPartition(AlterPartitionRequest{Partition: 0, Leader: 1, LeaderBrokerEpoch: e1,
				LeaderEpoch: 1, PartitionEpoch: c.State(0).PartitionEpoch, NewISR: []ISRMember{{Broker: 1, BrokerEpoch: e1}}})
			c.Tick(150) // b1's session expires: leaderless, ISR [1]
			dir := uint64(10)
			if wiped {
				dir = 11
			}
			c.Register(RegisterRequest{Broker: 1, Incarnation: 2, LogDirID: dir}, 160)
			st := c.State(0)
			if wiped && (st.Leader != NoLeader || len(st.ISR) != 0) {
				t.Fatalf("wiped last in-sync replica: %+v", st)
			}
			if !wiped && st.Leader != 1 {
				t.Fatalf("returning last in-sync replica with its log should lead: %+v", st)
			}
		})
	}
}
