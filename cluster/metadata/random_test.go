package metadata

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestRandomCommands applies random command sequences, built mostly from
// the current state so that many are accepted, and checks after every step
// what apply promises (invariants, version, rejected = untouched), that
// the encoding round-trips, that a snapshot recovers to identical bytes,
// and that views handed out earlier never change. A failure prints the
// seed; rerun it with -run 'TestRandomCommands/seed=N'.
func TestRandomCommands(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 5
	}
	total := map[Kind]int{}
	for seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			for k, n := range randomRun(t, uint64(seed), 400) {
				total[k] += n
			}
		})
	}
	// Rarer kinds need a topic in the right shape: not every seed gets one
	// accepted, but the runs together must.
	for _, k := range []Kind{KindCreatePartitions, KindShrinkPartitions, KindDeleteTopic, KindReassignPartition, KindElectLeader} {
		if total[k] == 0 {
			t.Errorf("no %v accepted in %d seeds (%v)", k, seeds, total)
		}
	}
}

func randomRun(t *testing.T, seed uint64, steps int) map[Kind]int {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	s := New()
	type held struct {
		v *View
		b []byte
	}
	var views []held
	accepted := map[Kind]int{}
	for step := 0; step < steps; step++ {
		c := randomCommand(rng, s.View())
		enc := Encode(c)
		dec, err := DecodeCommand(enc)
		if err != nil || !bytes.Equal(Encode(dec), enc) {
			t.Fatalf("step %d: %+v does not round-trip: %v", step, c, err)
		}
		if r := apply(t, s, dec); r.Accepted() {
			accepted[c.Kind()]++
		}
		if step%25 == 0 {
			v := s.View()
			views = append(views, held{v, v.AppendSnapshot(nil)})
			b := snap(t, s)
			s2 := New()
			if err := s2.Recover(bytes.NewReader(b)); err != nil {
				t.Fatalf("step %d: recover: %v", step, err)
			}
			if !bytes.Equal(snap(t, s2), b) {
				t.Fatalf("step %d: recovered state saves differently", step)
			}
			// The recovered state must go on exactly like the original.
			c2 := randomCommand(rng, s.View())
			r1, r2 := s.Apply(c2), s2.Apply(c2)
			if r1 != r2 || !bytes.Equal(snap(t, s), snap(t, s2)) {
				t.Fatalf("step %d: recovered state diverged on %+v: %v vs %v", step, c2, r1, r2)
			}
		}
	}
	for i, h := range views {
		if !bytes.Equal(h.v.AppendSnapshot(nil), h.b) {
			t.Fatalf("view %d (version %d) changed after it was published", i, h.v.Version())
		}
	}
	t.Logf("accepted %v, version %d, topics %d", accepted, s.Version(), s.View().NumTopics())
	// A run that never gets past registering brokers would test little.
	for _, k := range []Kind{KindCreateTopic, KindChangePartition, KindFenceBroker, KindUnfenceBroker, KindMoveReplicaCore} {
		if accepted[k] == 0 {
			t.Fatalf("seed %d: no %v accepted in %d steps (%v)", seed, k, steps, accepted)
		}
	}
	return accepted
}

func randomCommand(rng *rand.Rand, v *View) Command {
	brokerID := func() BrokerID {
		if ids := v.BrokerIDs(); len(ids) > 0 && rng.IntN(5) > 0 {
			return ids[rng.IntN(len(ids))]
		}
		return BrokerID(rng.IntN(7) - 1)
	}
	topicName := func() string {
		if ns := v.TopicNames(); len(ns) > 0 && rng.IntN(5) > 0 {
			return ns[rng.IntN(len(ns))]
		}
		return string(rune('a' + rng.IntN(12)))
	}
	assignment := func() Assignment {
		n := 1 + rng.IntN(3)
		var a Assignment
		for range n {
			b := brokerID()
			if slices.Contains(a.Replicas, b) && rng.IntN(8) > 0 {
				continue
			}
			a.Replicas = append(a.Replicas, b)
			c := CoreID(rng.IntN(3))
			if br, ok := v.Broker(b); ok && rng.IntN(8) > 0 {
				c = CoreID(rng.IntN(int(br.Cores)))
			}
			a.Cores = append(a.Cores, c)
		}
		return a
	}
	assignments := func() []Assignment {
		as := make([]Assignment, rng.IntN(4)+min(rng.IntN(8), 1))
		for i := range as {
			as[i] = assignment()
		}
		return as
	}
	configs := func() map[string]string {
		m := map[string]string{}
		for range rng.IntN(3) {
			m[string(rune('k'+rng.IntN(4)))] = fmt.Sprint(rng.IntN(100))
		}
		if rng.IntN(4) == 0 {
			m[UncleanKey] = []string{"true", "false"}[rng.IntN(2)]
		}
		return m
	}
	switch rng.IntN(18) {
	case 0, 1:
		id := BrokerID(rng.IntN(6))
		return &RegisterBroker{ID: id, KafkaAddr: fmt.Sprintf("k%d", id+BrokerID(rng.IntN(2))), RaftAddr: fmt.Sprintf("r%d", id),
			Rack: []string{"", "x", "y"}[rng.IntN(3)], Cores: int32(rng.IntN(4) + min(rng.IntN(8), 1)), NowMs: rng.Int64N(1e6),
			LogDirID: uint64(rng.IntN(3))}
	case 2:
		return &BrokerHeartbeat{ID: brokerID(), NowMs: rng.Int64N(1e6)}
	case 3:
		return &FenceBroker{ID: brokerID()}
	case 4, 5:
		return &UnfenceBroker{ID: brokerID()}
	case 6:
		return &RemoveBroker{ID: brokerID()}
	case 7, 8:
		return &CreateTopic{Name: topicName(), ID: tid(byte(rng.IntN(40))), Internal: rng.IntN(2) == 0,
			Configs: configs(), Partitions: assignments()}
	case 9:
		if rng.IntN(3) > 0 {
			return &CreateTopic{Name: topicName(), ID: tid(byte(rng.IntN(40))), Partitions: assignments()}
		}
		c := &DeleteTopic{Name: topicName()}
		if t, ok := v.Topic(c.Name); ok && rng.IntN(2) == 0 {
			c.ID = t.ID
		}
		return c
	case 10:
		if rng.IntN(2) == 0 {
			c := &ShrinkPartitions{Topic: topicName(), ID: tid(byte(rng.IntN(40))), Count: int32(rng.IntN(4))}
			if t, ok := v.Topic(c.Topic); ok && rng.IntN(4) > 0 {
				c.ID = t.ID
				if len(t.Partitions) > 1 && rng.IntN(4) > 0 {
					c.Count = int32(1 + rng.IntN(len(t.Partitions)-1))
				}
			}
			return c
		}
		return &CreatePartitions{Name: topicName(), Partitions: assignments()}
	case 11:
		if rng.IntN(4) == 0 {
			c := &AlterBrokerConfigs{Resource: []string{"", "1", "2", "01"}[rng.IntN(4)], Replace: rng.IntN(3) == 0, Set: configs()}
			if rng.IntN(2) == 0 {
				c.Delete = []string{string(rune('k' + rng.IntN(5)))}
			}
			return c
		}
		c := &AlterTopicConfigs{Name: topicName(), Replace: rng.IntN(3) == 0, Set: configs()}
		if rng.IntN(2) == 0 {
			c.Delete = []string{string(rune('k' + rng.IntN(5)))}
		}
		return c
	case 12, 13, 14:
		c := &ChangePartition{Topic: topicName(), Partition: int32(rng.IntN(3)), Leader: brokerID()}
		if p, ok := v.Partition(c.Topic, c.Partition); ok {
			c.LeaderEpoch, c.PartitionEpoch = p.LeaderEpoch, p.PartitionEpoch
			if rng.IntN(6) == 0 {
				c.LeaderEpoch--
			}
			isr := slices.Clone(p.Replicas)
			rng.Shuffle(len(isr), func(i, j int) { isr[i], isr[j] = isr[j], isr[i] })
			c.ISR = isr[:1+rng.IntN(len(isr))]
			if rng.IntN(3) > 0 {
				for _, r := range c.ISR {
					if b, _ := v.Broker(r); !b.Fenced {
						c.Leader = r
						break
					}
				}
			} else if rng.IntN(2) == 0 {
				c.Leader = NoLeader
			}
		} else {
			c.ISR = []BrokerID{brokerID()}
		}
		return c
	case 15:
		if rng.IntN(3) == 0 {
			c := &ReassignPartition{Topic: topicName(), Partition: int32(rng.IntN(3))}
			if rng.IntN(4) > 0 {
				a := assignment()
				c.Target, c.Cores = a.Replicas, a.Cores
			}
			return c
		}
		if rng.IntN(2) == 0 {
			return &ElectLeader{Topic: topicName(), Partition: int32(rng.IntN(3)), Unclean: rng.IntN(3) == 0}
		}
		return &AllocateProducerIDs{Broker: brokerID(), Count: int32(rng.IntN(2000))}
	default:
		c := &MoveReplicaCore{Topic: topicName(), Partition: int32(rng.IntN(3)), Broker: brokerID(), Core: CoreID(rng.IntN(3))}
		if p, ok := v.Partition(c.Topic, c.Partition); ok && rng.IntN(4) > 0 {
			c.Broker = p.Replicas[rng.IntN(len(p.Replicas))]
		}
		return c
	}
}
