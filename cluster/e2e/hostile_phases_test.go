package e2e

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// autoCreateNames is how many unknown topics each hostile Metadata
	// request names (the probe that found the defect used 10,000).
	autoCreateNames = 10000
	// metadataPromptMax bounds how long such a request may take to be
	// answered: before the caps it took over a minute.
	metadataPromptMax = 5 * time.Second
	// The broker's default implicit-creation rate (--auto-create-per-second)
	// and burst: what the phase may create at most.
	autoCreatePerSecond, autoCreateBurst = 32, 32
)

// rawDial connects a rawConn without a testing.T, for attack goroutines.
func rawDial(addr string) (*rawConn, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &rawConn{nc: nc, fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID("hostile"))}, nil
}

// attackLoop runs round on its own connection every `every` until stop, and
// returns the stop function, which reports the first error.
func attackLoop(t *testing.T, h *hostileRun, what string, every time.Duration, round func(r *rawConn, i int) error) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	var firstErr atomic.Value
	wg.Add(1)
	go func() {
		defer wg.Done()
		r, err := rawDial(h.addr)
		if err != nil {
			firstErr.Store(err)
			return
		}
		defer r.nc.Close()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := 0; ; i++ {
			if err := round(r, i); err != nil {
				firstErr.Store(err)
				return
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		if err, ok := firstErr.Load().(error); ok {
			t.Errorf("%s: %v", what, err)
		}
	}
}

// massAutoCreate sends, once a second, Metadata v9 requests that each name
// 10,000 new topics with auto-creation allowed. Each must be answered
// promptly, and the broker may create no more than its rate allows.
func massAutoCreate(t *testing.T, h *hostileRun) func() {
	start := time.Now()
	var slowest atomic.Int64
	stop := attackLoop(t, h, "mass auto-create", time.Second, func(r *rawConn, i int) error {
		req := kmsg.NewPtrMetadataRequest()
		req.Version, req.AllowAutoTopicCreation = 9, true
		for j := range autoCreateNames {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(fmt.Sprintf("hostile-auto-%d-%d", i, j))
			req.Topics = append(req.Topics, rt)
		}
		t0 := time.Now()
		if _, err := r.roundTrip(req, 30*time.Second); err != nil {
			return err
		}
		if d := time.Since(t0); int64(d) > slowest.Load() {
			slowest.Store(int64(d))
		}
		return nil
	})
	return func() {
		stop()
		elapsed := time.Since(start)
		if d := time.Duration(slowest.Load()); d > metadataPromptMax {
			t.Errorf("a Metadata naming %d new topics took %v, want under %v", autoCreateNames, d, metadataPromptMax)
		}
		created := countTopics(t, h.addr, "hostile-auto-")
		allowed := int(elapsed.Seconds()+1)*autoCreatePerSecond + autoCreateBurst
		t.Logf("mass auto-create: %d topics created in %v (at most %d allowed), slowest answer %v",
			created, elapsed.Round(time.Millisecond), allowed, time.Duration(slowest.Load()).Round(time.Millisecond))
		if created > allowed {
			t.Errorf("%d topics created implicitly in %v, more than the rate allows (%d)", created, elapsed, allowed)
		}
	}
}

// countTopics lists every topic through Metadata and counts those with prefix.
func countTopics(t *testing.T, addr, prefix string) int {
	r := dialRaw(t, addr)
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 9
	resp, err := r.roundTrip(req, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, tp := range resp.(*kmsg.MetadataResponse).Topics {
		if tp.Topic != nil && strings.HasPrefix(*tp.Topic, prefix) {
			n++
		}
	}
	return n
}

// poisonRecords produces, ten times a second, batches no consumer could
// read: a record length that lies (plain and gzip-compressed, both with
// a right CRC) and a wrong CRC. Each must be refused with CORRUPT_MESSAGE
// and none stored.
func poisonRecords(t *testing.T, h *hostileRun) func() {
	createTopic(t, newClient(t, h.addr), "hostile-poison", 1)
	badCRC := append([]byte(nil), poisoned(t, false)...)
	badCRC[len(badCRC)-1] ^= 0xff
	kinds := [][]byte{poisoned(t, false), poisoned(t, true), badCRC}
	var sent atomic.Int64
	stop := attackLoop(t, h, "poison records", 100*time.Millisecond, func(r *rawConn, i int) error {
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis = 9, -1, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "hostile-poison"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = kinds[i%len(kinds)]
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := r.roundTrip(req, 10*time.Second)
		if err != nil {
			return err
		}
		if code := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; code != kerr.CorruptMessage.Code {
			return fmt.Errorf("poison batch of kind %d answered %v, want CORRUPT_MESSAGE", i%len(kinds), kerr.ErrorForCode(code))
		}
		sent.Add(1)
		return nil
	})
	return func() {
		stop()
		req := kmsg.NewPtrListOffsetsRequest()
		req.Version = 4
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "hostile-poison"
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp = -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := dialRaw(t, h.addr).roundTrip(req, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		end := resp.(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].Offset
		t.Logf("poison records: %d batches refused, end offset %d", sent.Load(), end)
		if sent.Load() == 0 || end != 0 {
			t.Errorf("%d poison batches sent, end offset %d: want some sent and none stored", sent.Load(), end)
		}
	}
}
