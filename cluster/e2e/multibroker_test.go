package e2e

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Three brokers as separate processes on loopback ports, one core each,
// bootstrapped with --initial-cluster (cluster/membership.go).

const testLease = "2s"

type testCluster struct {
	t     testing.TB
	procs map[int32]*proc
	// raft is each node's Raft address; initial the --initial-cluster value.
	raft    map[int32]string
	initial string
}

// startCluster starts brokers 1..n as one cluster and waits until every
// one is ready (a broker is ready only once the quorum is up, so they
// start together).
func startCluster(t testing.TB, n int, extra ...string) *testCluster {
	t.Helper()
	return startClusterWith(t, n, nil, extra...)
}

// startClusterWith is startCluster where broker id also gets perNode(id)'s
// flags (nil: none).
func startClusterWith(t testing.TB, n int, perNode func(id int32) []string, extra ...string) *testCluster {
	t.Helper()
	c := &testCluster{t: t, procs: map[int32]*proc{}, raft: map[int32]string{}}
	var parts []string
	for id := int32(1); id <= int32(n); id++ {
		c.raft[id] = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
		parts = append(parts, fmt.Sprintf("%d=%s", id, c.raft[id]))
	}
	c.initial = strings.Join(parts, ",")
	for id := int32(1); id <= int32(n); id++ {
		c.procs[id] = newProc(t, testDataDir(t), append([]string{"--node-id", strconv.Itoa(int(id)), "--initial-cluster", c.initial,
			"--cores", "1", "--broker-lease", testLease}, extra...)...)
		if perNode != nil {
			c.procs[id].extra = append(c.procs[id].extra, perNode(id)...)
		}
	}
	c.startAll()
	return c
}

// newProc is startProc without the start: cluster members only become
// ready together.
func newProc(t testing.TB, dir string, extra ...string) *proc {
	p := &proc{t: t, bin: strandBin(t), dir: dir, extra: extra, logs: newLogBuf()}
	p.logs.dumpOnFailure(t, "strand process "+strings.Join(extra, " "))
	p.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	t.Cleanup(p.stopAndCheckRaces)
	return p
}

// startAll starts every stopped broker at once and waits for all.
func (c *testCluster) startAll() {
	c.t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(c.procs))
	for _, p := range c.procs {
		if p.running() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.tryStart(); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		c.t.Fatal(err)
	}
}

func (c *testCluster) seeds() []string {
	var s []string
	for _, p := range c.procs {
		if p.running() {
			s = append(s, p.addr)
		}
	}
	return s
}

// client is a franz-go client seeded with every running broker.
func (c *testCluster) client(opts ...kgo.Opt) *kgo.Client {
	c.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.seeds()...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0), kgo.RequestRetries(100)}, opts...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

// clientOf is a client that only knows broker id's address (its requests
// without a partition go there).
func (c *testCluster) clientOf(id int32) *kgo.Client {
	c.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.procs[id].addr))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

// metadataOf asks broker id (and only it) for the metadata of topics.
func (c *testCluster) metadataOf(ctx context.Context, id int32, topics ...string) (*kmsg.MetadataResponse, error) {
	req := kmsg.NewPtrMetadataRequest()
	for _, name := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, rt)
	}
	req.Version = 10 // topic ids
	resp, err := c.request(id, req)
	if err != nil {
		return nil, err
	}
	return resp.(*kmsg.MetadataResponse), nil
}

// request sends req to broker id alone, on a connection of its own.
func (c *testCluster) request(id int32, req kmsg.Request) (kmsg.Response, error) {
	nc, err := net.DialTimeout("tcp", c.procs[id].addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	rc := &rawConn{nc: nc, fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID("strand-e2e"))}
	return rc.roundTrip(req, 15*time.Second)
}

// leaders maps each partition of topic to its leader (-1: none), as
// broker id reports it.
func (c *testCluster) leaders(ctx context.Context, id int32, topic string) ([]int32, error) {
	m, err := c.metadataOf(ctx, id, topic)
	if err != nil {
		return nil, err
	}
	if len(m.Topics) != 1 || m.Topics[0].ErrorCode != 0 {
		return nil, fmt.Errorf("metadata of %s from broker %d: %+v", topic, id, m.Topics)
	}
	out := make([]int32, len(m.Topics[0].Partitions))
	for _, p := range m.Topics[0].Partitions {
		out[p.Partition] = p.Leader
		if p.ErrorCode == kerr.LeaderNotAvailable.Code {
			out[p.Partition] = -1
		}
	}
	return out, nil
}

// waitUntil polls cond every 50 ms until it holds or d passes.
func waitUntil(t testing.TB, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, d, err)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition another process holds
	}
}

func describeCluster(ctx context.Context, cl *kgo.Client) (*kmsg.DescribeClusterResponse, error) {
	resp, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	return resp, kerr.ErrorForCode(resp.ErrorCode)
}

// produceAll produces n records to every partition of topic and returns
// how many each partition acknowledged.
func produceAll(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, parts int32, n int) []int64 {
	t.Helper()
	acked := make([]int64, parts)
	var rs []*kgo.Record
	for p := range parts {
		for i := range n {
			rs = append(rs, &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "%s-%d-%d", topic, p, i)})
		}
	}
	for _, r := range cl.ProduceSync(ctx, rs...) {
		if r.Err != nil {
			t.Fatalf("produce to %s-%d: %v", topic, r.Record.Partition, r.Err)
		}
		acked[r.Record.Partition]++
	}
	return acked
}

// consumeCounts reads every partition of topic from the start until each
// holds want[p] records, and checks each record's value.
func consumeCounts(t *testing.T, ctx context.Context, seeds []string, topic string, want []int64) {
	t.Helper()
	offs := map[int32]kgo.Offset{}
	for p := range want {
		offs[int32(p)] = kgo.NewOffset().AtStart()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := make([]int64, len(want))
	for !slices.Equal(got, want) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %v of %s, want %v", got, topic, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if v := fmt.Sprintf("%s-%d-%d", topic, r.Partition, r.Offset); string(r.Value) != v {
				t.Fatalf("%s-%d offset %d holds %q, want %q", topic, r.Partition, r.Offset, r.Value, v)
			}
			got[r.Partition]++
		})
	}
}

// TestThreeBrokers: three broker processes act as one cluster. Topics
// created through any broker spread their leaders over all three; every
// broker's Metadata lists the three and each partition's leader; a
// broker answers NOT_LEADER_OR_FOLLOWER for a partition another leads;
// FindCoordinator names the leader of the group's offsets partition;
// franz-go produces and consumes across all leaders. Then the Raft
// leader's broker is SIGKILLed: the other two elect a new leader and
// create topics again within seconds, the killed broker's partitions are
// reported leaderless, and after its restart (with --data-dir alone) they
// have leaders again and hold every acknowledged record. Finally a full
// restart of the cluster returns identical metadata.
func TestThreeBrokers(t *testing.T) {
	c := startCluster(t, 3)
	ctx := ctxFor(t, 4*time.Minute)
	cl := c.client()

	dc, err := describeCluster(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(dc.Brokers) != 3 || dc.ControllerID < 1 || dc.ControllerID > 3 || dc.ClusterID == "" {
		t.Fatalf("DescribeCluster: controller %d, cluster %q, brokers %+v", dc.ControllerID, dc.ClusterID, dc.Brokers)
	}

	// A topic created through each broker.
	const parts = 6
	topics := []string{"via-1", "via-2", "via-3"}
	for i, name := range topics {
		code, err := createTopicReq(ctx, c.clientOf(int32(i+1)), name, parts, nil)
		if err != nil || code != 0 {
			t.Fatalf("create %s through broker %d: %v %v", name, i+1, err, kerr.ErrorForCode(code))
		}
	}
	// Each broker applies the metadata on its own: a moment after the
	// creating broker answered, every one lists every topic.
	led := map[int32]int{}
	for id := int32(1); id <= 3; id++ {
		waitUntil(t, 10*time.Second, fmt.Sprintf("broker %d's Metadata", id), func() error {
			if id == 1 {
				clear(led)
			}
			m, err := c.metadataOf(ctx, id, topics...)
			if err != nil {
				return err
			}
			var ids []int32
			for _, b := range m.Brokers {
				ids = append(ids, b.NodeID)
			}
			slices.Sort(ids)
			if !slices.Equal(ids, []int32{1, 2, 3}) {
				return fmt.Errorf("brokers %v, want 1 2 3", ids)
			}
			for _, mt := range m.Topics {
				if mt.ErrorCode != 0 || len(mt.Partitions) != parts {
					return fmt.Errorf("%s: %v, %d partitions", *mt.Topic, kerr.ErrorForCode(mt.ErrorCode), len(mt.Partitions))
				}
				for _, p := range mt.Partitions {
					if p.ErrorCode != 0 {
						return fmt.Errorf("%s-%d: %v", *mt.Topic, p.Partition, kerr.ErrorForCode(p.ErrorCode))
					}
					if id == 1 {
						led[p.Leader]++
					}
				}
			}
			return nil
		})
	}
	if len(led) != 3 || led[-1] != 0 {
		t.Fatalf("partition leaders by broker %v: want leaders on all three brokers and none missing", led)
	}

	// Every partition of every topic takes records; consumers read them
	// all back from a client that knows only one broker.
	acked := map[string][]int64{}
	for _, name := range topics {
		acked[name] = produceAll(t, ctx, cl, name, parts, 20)
	}
	for _, name := range topics {
		consumeCounts(t, ctx, []string{c.procs[2].addr}, name, acked[name])
	}

	// Produce to a broker that does not lead the partition.
	ls, err := c.leaders(ctx, 1, "via-1")
	if err != nil {
		t.Fatal(err)
	}
	other := ls[0]%3 + 1
	preq := kmsg.NewPtrProduceRequest()
	preq.Version, preq.Acks, preq.TimeoutMillis = 9, -1, 5000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "via-1"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Partition, pp.Records = 0, makeBatch([]byte("misdirected"))
	pt.Partitions = append(pt.Partitions, pp)
	preq.Topics = append(preq.Topics, pt)
	presp, err := c.request(other, preq)
	if err != nil {
		t.Fatal(err)
	}
	if code := presp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; code != kerr.NotLeaderForPartition.Code {
		t.Fatalf("produce to via-1/0 on broker %d (leader %d): %v, want NOT_LEADER_OR_FOLLOWER", other, ls[0], kerr.ErrorForCode(code))
	}
	freq := kmsg.NewPtrFetchRequest()
	freq.Version, freq.ReplicaID, freq.MaxBytes = 11, -1, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "via-1"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.PartitionMaxBytes, fp.CurrentLeaderEpoch = 0, 1<<20, -1
	ft.Partitions = append(ft.Partitions, fp)
	freq.Topics = append(freq.Topics, ft)
	fresp, err := c.request(other, freq)
	if err != nil {
		t.Fatal(err)
	}
	if code := fresp.(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode; code != kerr.NotLeaderForPartition.Code {
		t.Fatalf("fetch of via-1/0 on broker %d (leader %d): %v, want NOT_LEADER_OR_FOLLOWER", other, ls[0], kerr.ErrorForCode(code))
	}
	lreq := kmsg.NewPtrListOffsetsRequest()
	lreq.Version, lreq.ReplicaID = 4, -1
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "via-1"
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Partition, lp.Timestamp, lp.CurrentLeaderEpoch = 0, -1, -1
	lt.Partitions = append(lt.Partitions, lp)
	lreq.Topics = append(lreq.Topics, lt)
	lresp, err := c.request(other, lreq)
	if err != nil {
		t.Fatal(err)
	}
	if code := lresp.(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].ErrorCode; code != kerr.NotLeaderForPartition.Code {
		t.Fatalf("ListOffsets of via-1/0 on broker %d (leader %d): %v, want NOT_LEADER_OR_FOLLOWER", other, ls[0], kerr.ErrorForCode(code))
	}

	// FindCoordinator names the leader of the group's offsets partition.
	offLeaders, err := c.leaders(ctx, 3, "__consumer_offsets")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"g1", "g2", "g3", "g4"} {
		freq := kmsg.NewPtrFindCoordinatorRequest()
		freq.CoordinatorKey, freq.Version = g, 3
		fresp, err := c.request(1, freq)
		if err != nil {
			t.Fatal(err)
		}
		h := fnv.New32a()
		h.Write([]byte(g))
		want := offLeaders[h.Sum32()%uint32(len(offLeaders))]
		if got := fresp.(*kmsg.FindCoordinatorResponse); got.ErrorCode != 0 || got.NodeID != want {
			t.Fatalf("FindCoordinator(%s): node %d (%v), want %d", g, got.NodeID, kerr.ErrorForCode(got.ErrorCode), want)
		}
	}

	// SIGKILL the Raft leader's broker.
	victim := dc.ControllerID
	before := map[string][]int32{}
	for _, name := range topics {
		before[name], _ = c.leaders(ctx, victim%3+1, name)
	}
	c.procs[victim].kill()
	killed := time.Now()
	survivor := victim%3 + 1
	waitUntil(t, 20*time.Second, "a new metadata leader", func() error {
		dc, err := describeCluster(ctx, c.clientOf(survivor))
		if err != nil {
			return err
		}
		if dc.ControllerID < 1 || dc.ControllerID == victim {
			return fmt.Errorf("controller %d", dc.ControllerID)
		}
		return nil
	})
	waitUntil(t, 20*time.Second, "topic creation after the leader's death", func() error {
		code, err := createTopicReq(ctx, c.clientOf(survivor), "after-kill", 3, nil)
		if err == nil && code != 0 && code != kerr.TopicAlreadyExists.Code {
			err = kerr.ErrorForCode(code)
		}
		return err
	})
	t.Logf("new leader and a topic created %v after the SIGKILL", time.Since(killed).Round(time.Millisecond))
	waitUntil(t, 20*time.Second, "the killed broker's partitions reported leaderless", func() error {
		for _, name := range topics {
			ls, err := c.leaders(ctx, survivor, name)
			if err != nil {
				return err
			}
			for p, l := range before[name] {
				if l == victim && ls[p] != -1 {
					return fmt.Errorf("%s-%d led by %d", name, p, ls[p])
				}
				if l != victim && ls[p] != l {
					return fmt.Errorf("%s-%d moved from %d to %d", name, p, l, ls[p])
				}
			}
		}
		return nil
	})
	// Restart it with its data dir alone (and the listen address).
	c.procs[victim].extra = []string{"--cores", "1", "--broker-lease", testLease}
	c.procs[victim].start()
	waitUntil(t, 30*time.Second, "the restarted broker leading its partitions again", func() error {
		for _, name := range topics {
			ls, err := c.leaders(ctx, survivor, name)
			if err != nil {
				return err
			}
			if !slices.Equal(ls, before[name]) {
				return fmt.Errorf("%s leaders %v, want %v", name, ls, before[name])
			}
		}
		return nil
	})
	for _, name := range topics {
		consumeCounts(t, ctx, c.seeds(), name, acked[name])
	}

	// A full restart returns identical metadata.
	// Every topic's id, and each partition's leader, replicas and in-sync
	// set, as broker 1 reports them.
	snap := func() map[string]string {
		out := map[string]string{}
		m, err := c.metadataOf(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, mt := range m.Topics {
			ps := make([]string, len(mt.Partitions))
			for _, p := range mt.Partitions {
				ps[p.Partition] = fmt.Sprintf("%d:leader %d replicas %v isr %v", p.Partition, p.Leader, p.Replicas, p.ISR)
			}
			out[*mt.Topic] = fmt.Sprintf("id %x %v", mt.TopicID, ps)
		}
		return out
	}
	want := snap()
	for _, p := range c.procs {
		if code := p.term(30 * time.Second); code != 0 {
			t.Fatalf("SIGTERM exit code %d", code)
		}
	}
	c.startAll()
	waitUntil(t, 30*time.Second, "identical metadata after a full restart", func() error {
		if got := snap(); !reflect.DeepEqual(got, want) {
			return fmt.Errorf("got %v\nwant %v", got, want)
		}
		return nil
	})
	for _, name := range topics {
		consumeCounts(t, ctx, c.seeds(), name, acked[name])
	}
}

// join starts broker id with --join (to broker 1) and waits until broker
// 2 lists it.
func (c *testCluster) join(ctx context.Context, id int32) *proc {
	c.t.Helper()
	raft := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(c.t)))
	p := newProc(c.t, testDataDir(c.t), "--node-id", strconv.Itoa(int(id)), "--join", c.procs[1].addr, "--raft-listen", raft,
		"--cores", "1", "--broker-lease", testLease)
	if err := p.tryStart(); err != nil {
		c.t.Fatal(err)
	}
	c.procs[id] = p
	want := len(c.procs)
	waitUntil(c.t, 20*time.Second, fmt.Sprintf("%d brokers listed", want), func() error {
		dc, err := describeCluster(ctx, c.clientOf(2))
		if err != nil {
			return err
		}
		if len(dc.Brokers) != want {
			return fmt.Errorf("%d brokers", len(dc.Brokers))
		}
		return nil
	})
	return p
}

// waitLeads waits until broker id reports itself the leader of one of
// topic's partitions.
func (c *testCluster) waitLeads(ctx context.Context, id int32, topic string) {
	c.t.Helper()
	waitUntil(c.t, 20*time.Second, fmt.Sprintf("%s led by broker %d", topic, id), func() error {
		ls, err := c.leaders(ctx, id, topic)
		if err != nil {
			return err
		}
		if !slices.Contains(ls, id) {
			return fmt.Errorf("leaders %v", ls)
		}
		return nil
	})
}

// TestJoinFourthBroker: a broker started with --join joins a running
// three-broker cluster, is listed by every broker, receives partitions
// of a topic created afterwards (placement puts new partitions on the
// brokers leading the fewest), and serves them.
func TestJoinFourthBroker(t *testing.T) {
	c := startCluster(t, 3)
	ctx := ctxFor(t, 3*time.Minute)
	p4 := c.join(ctx, 4)
	createTopic(t, c.clientOf(2), "after-join", 4)
	c.waitLeads(ctx, 4, "after-join")
	cl := c.client()
	acked := produceAll(t, ctx, cl, "after-join", 4, 10)
	consumeCounts(t, ctx, []string{p4.addr}, "after-join", acked)

	// The joined broker restarts with its data dir alone.
	p4.term(30 * time.Second)
	p4.extra = []string{"--cores", "1"}
	p4.start()
	consumeCounts(t, ctx, []string{p4.addr}, "after-join", acked)

	// A broker holding a partition cannot be removed; once it holds none
	// (its topic deleted) and is stopped, an admin request removes it.
	unregister := func() (int16, string) {
		req := kmsg.NewPtrUnregisterBrokerRequest()
		req.BrokerID = 4
		resp, err := c.request(1, req)
		if err != nil {
			t.Fatal(err)
		}
		r := resp.(*kmsg.UnregisterBrokerResponse)
		if r.ErrorMessage != nil {
			return r.ErrorCode, *r.ErrorMessage
		}
		return r.ErrorCode, ""
	}
	if code, msg := unregister(); code != kerr.InvalidRequest.Code {
		t.Fatalf("unregistering broker 4 while it leads partitions: %v %q, want INVALID_REQUEST", kerr.ErrorForCode(code), msg)
	}
	wantCode(t, "delete after-join", deleteTopic(t, c.clientOf(1), "after-join"), 0)
	p4.term(30 * time.Second)
	delete(c.procs, 4)
	waitUntil(t, 20*time.Second, "broker 4 unregistered", func() error {
		if code, msg := unregister(); code != 0 {
			return fmt.Errorf("%v %s", kerr.ErrorForCode(code), msg)
		}
		return nil
	})
	dc, err := describeCluster(ctx, c.clientOf(2))
	if err != nil {
		t.Fatal(err)
	}
	if len(dc.Brokers) != 3 {
		t.Fatalf("after unregistering broker 4, %d brokers: %+v", len(dc.Brokers), dc.Brokers)
	}
	if code, _ := unregister(); code != kerr.BrokerIDNotRegistered.Code {
		t.Fatalf("unregistering broker 4 again: %v, want BROKER_ID_NOT_REGISTERED", kerr.ErrorForCode(code))
	}
}

// TestKcatThreeBrokers: kcat (librdkafka) sees the three brokers, produces
// keyed lines to a topic whose partitions are led by all three, and reads
// every line back, going to each partition's leader itself.
func TestKcatThreeBrokers(t *testing.T) {
	kcat := kcatPath(t)
	c := startCluster(t, 3)
	ctx := ctxFor(t, 3*time.Minute)
	const topic, parts = "kc", 9
	createTopic(t, c.clientOf(2), topic, parts)
	waitUntil(t, 10*time.Second, "leaders on all three brokers", func() error {
		ls, err := c.leaders(ctx, 1, topic)
		if err != nil {
			return err
		}
		for _, id := range []int32{1, 2, 3} {
			if !slices.Contains(ls, id) {
				return fmt.Errorf("leaders %v", ls)
			}
		}
		if slices.Contains(ls, -1) {
			return fmt.Errorf("leaders %v", ls)
		}
		return nil
	})
	seed := c.procs[3].addr
	meta := string(runKcat(t, kcat, 30*time.Second, "-b", seed, "-L"))
	if !strings.Contains(meta, "3 brokers:") {
		t.Fatalf("kcat -L does not list 3 brokers:\n%s", meta)
	}
	var in bytes.Buffer
	var want []string
	for i := range 900 {
		line := fmt.Sprintf("key%d:value %d", i, i)
		fmt.Fprintln(&in, line)
		want = append(want, fmt.Sprintf("value %d", i))
	}
	file := filepath.Join(t.TempDir(), "lines.txt")
	if err := os.WriteFile(file, in.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	runKcat(t, kcat, time.Minute, "-b", seed, "-P", "-t", topic, "-K", ":", "-l", "-X", "acks=all", file)
	ends := endOffsets(t, c.client(), topic, parts)
	for p, e := range ends {
		if e == 0 {
			t.Fatalf("partition %d got no line of 900 keyed ones: %v", p, ends)
		}
	}
	out := runKcat(t, kcat, time.Minute, "-b", seed, "-C", "-t", topic, "-o", "beginning", "-e", "-q")
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("kcat -C read %d lines, want the %d produced", len(got), len(want))
	}
}

// TestQuorumLoss: with two of three brokers down, the survivor keeps
// serving produce (not idempotent: a new producer id block would be a
// metadata change) and fetch for the partitions it leads from its last
// metadata, answers an admin request REQUEST_TIMED_OUT after
// --metadata-timeout, and creates topics again once a quorum is back.
func TestQuorumLoss(t *testing.T) {
	c := startCluster(t, 3, "--metadata-timeout", "2s")
	ctx := ctxFor(t, 3*time.Minute)
	const topic, parts = "q", 6
	createTopic(t, c.clientOf(1), topic, parts)
	var ls []int32
	waitUntil(t, 10*time.Second, "q led everywhere, as broker 3 sees it", func() error {
		var err error
		if ls, err = c.leaders(ctx, 3, topic); err != nil {
			return err
		}
		if !slices.Contains(ls, 3) || slices.Contains(ls, -1) {
			return fmt.Errorf("leaders %v", ls)
		}
		return nil
	})
	mine := int32(slices.Index(ls, 3)) // a partition broker 3 leads
	c.procs[1].kill()
	c.procs[2].kill()
	// Sent to the survivor itself: franz-go sends admin requests to the
	// controller, and there is none to name.
	start := time.Now()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "no-quorum", 1, 1
	req.Topics = append(req.Topics, rt)
	req.Version, req.TimeoutMillis = 4, 30000
	resp, err := c.request(3, req)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode; code != kerr.RequestTimedOut.Code {
		t.Fatalf("create without a quorum: %v, want REQUEST_TIMED_OUT", kerr.ErrorForCode(code))
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("create without a quorum answered after %v", took)
	}
	// Not idempotent: a new producer id block is a metadata change.
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.procs[3].addr), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.DisableIdempotentWrite(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {mine: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: mine, Value: []byte("alone")}).FirstErr(); err != nil {
		t.Fatalf("produce to %s-%d on its leader without a quorum: %v", topic, mine, err)
	}
	for got := false; !got; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("no record fetched back without a quorum")
		}
		fs.EachRecord(func(r *kgo.Record) { got = got || string(r.Value) == "alone" })
	}
	c.startAll()
	waitUntil(t, 30*time.Second, "topic creation with the quorum back", func() error {
		code, err := createTopicReq(ctx, c.clientOf(3), "quorum-back", 1, nil)
		if err == nil && code != 0 && code != kerr.TopicAlreadyExists.Code {
			err = kerr.ErrorForCode(code)
		}
		return err
	})
}
