package metadata

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// TestViewsUnderConcurrentReaders publishes a View after every command, as
// the broker will, while readers walk the published views. Under -race any
// write to something a published View can reach is reported, so this
// checks the copy-on-write, not just the final bytes.
func TestViewsUnderConcurrentReaders(t *testing.T) {
	s := New()
	var cur atomic.Pointer[View]
	cur.Store(s.View())
	var done atomic.Bool
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !done.Load() {
				v := cur.Load()
				n := 0
				for _, id := range v.BrokerIDs() {
					b, _ := v.Broker(id)
					n += int(b.Cores) + len(b.KafkaAddr)
				}
				for _, name := range v.TopicNames() {
					tp, _ := v.Topic(name)
					n += len(tp.Configs)
					for _, p := range tp.Partitions {
						n += int(p.Leader) + int(p.LeaderEpoch)
						for i := range p.Replicas {
							n += int(p.Replicas[i]) + int(p.Cores[i])
						}
						for _, r := range p.ISR {
							n += int(r)
						}
					}
				}
				_ = v.AppendSnapshot(nil)
				_ = n
			}
		}()
	}
	rng := rand.New(rand.NewPCG(7, 7))
	for range 3000 {
		s.Apply(randomCommand(rng, s.View()))
		cur.Store(s.View())
	}
	done.Store(true)
	wg.Wait()
	if err := s.Invariants(); err != nil {
		t.Fatal(err)
	}
}
