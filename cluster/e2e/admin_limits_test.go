package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strand-io/strand/cluster"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// createTopicsReq sends one CreateTopics request naming every topic in
// parts (name -> partition count) and returns each topic's error code and
// message.
func createTopicsReq(ctx context.Context, cl *kgo.Client, parts map[string]int32) (map[string]int16, map[string]string, error) {
	req := kmsg.NewPtrCreateTopicsRequest()
	for name, n := range parts {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, n, 1
		req.Topics = append(req.Topics, rt)
	}
	req.TimeoutMillis = 60000
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, nil, err
	}
	codes, msgs := map[string]int16{}, map[string]string{}
	for _, rt := range resp.Topics {
		codes[rt.Topic] = rt.ErrorCode
		if rt.ErrorMessage != nil {
			msgs[rt.Topic] = *rt.ErrorMessage
		}
	}
	if len(codes) != len(parts) {
		return nil, nil, fmt.Errorf("CreateTopics answered %d topics, asked %d", len(codes), len(parts))
	}
	return codes, msgs, nil
}

// metadataOf asks for the named topics without creating any (or every
// topic when names is nil) and returns each listed topic's error code and
// partition count.
func metadataOf(ctx context.Context, cl *kgo.Client, names []string, create bool) (map[string]int16, map[string]int, error) {
	req := kmsg.NewPtrMetadataRequest()
	if names != nil {
		req.Topics = make([]kmsg.MetadataRequestTopic, 0, len(names))
	}
	for _, name := range names {
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, mt)
	}
	req.AllowAutoTopicCreation = create
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, nil, err
	}
	codes, parts := map[string]int16{}, map[string]int{}
	for _, tp := range resp.Topics {
		if tp.Topic == nil {
			continue
		}
		codes[*tp.Topic] = tp.ErrorCode
		parts[*tp.Topic] = len(tp.Partitions)
	}
	return codes, parts, nil
}

// TestCreatedTopicsVisibleAtOnce: topics created many at a time, by one
// request and by several clients at once, with partition counts that make
// their opens finish out of order, are all listed by Metadata as soon as
// their CreateTopics is answered, with every partition, and take records.
// It failed before snapshots were published per topic in commit order: an
// older snapshot replaced a newer one, and Metadata lacked some topics.
func TestCreatedTopicsVisibleAtOnce(t *testing.T) {
	n := startNode(t, testDataDir(t), nil)
	ctx := ctxFor(t, 3*time.Minute)
	const clients, perRequest, rounds = 3, 20, 3
	var all []string
	for round := range rounds {
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for c := range clients {
			cl := newClient(t, n.Addr())
			want := map[string]int32{}
			for i := range perRequest {
				want[fmt.Sprintf("vis-%d-%d-%d", round, c, i)] = int32(1 + (i*7+c)%8)
				all = append(all, fmt.Sprintf("vis-%d-%d-%d", round, c, i))
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes, msgs, err := createTopicsReq(ctx, cl, want)
				if err != nil {
					errs <- err
					return
				}
				names := make([]string, 0, len(want))
				for name := range want {
					if codes[name] != 0 {
						errs <- fmt.Errorf("create %s: %v %s", name, kerr.ErrorForCode(codes[name]), msgs[name])
						return
					}
					names = append(names, name)
				}
				// Right after the answer, on a second connection too.
				for _, mcl := range []*kgo.Client{cl, newClient(t, n.Addr())} {
					mcodes, mparts, err := metadataOf(ctx, mcl, names, false)
					if err != nil {
						errs <- err
						return
					}
					var missing []string
					for name, p := range want {
						if mcodes[name] != 0 || mparts[name] != int(p) {
							missing = append(missing, fmt.Sprintf("%s (%v, %d of %d partitions)", name, kerr.ErrorForCode(mcodes[name]), mparts[name], p))
						}
					}
					if len(missing) > 0 {
						errs <- fmt.Errorf("created and acknowledged, but Metadata lists %d of %d topics right after: missing %v", len(want)-len(missing), len(want), missing)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	// Every topic takes a record (no auto-creation: the topic must exist).
	cl := newClient(t, n.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	pctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for _, name := range all {
		recs = append(recs, &kgo.Record{Topic: name, Partition: 0, Value: []byte("v")})
	}
	if err := cl.ProduceSync(pctx, recs...).FirstErr(); err != nil {
		t.Fatalf("producing to the created topics: %v", err)
	}
}

// orphanDirs lists what in dataDir is neither the metadata nor a
// partition directory of a topic in live (name -> partitions).
func orphanDirs(t testing.TB, dataDir string, live map[string]int) []string {
	t.Helper()
	ents, err := os.ReadDir(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		name := e.Name()
		// The metadata: its Raft group, the broker's identity, and the
		// metadata.json export.
		if strings.HasPrefix(name, "metadata.json") || name == "raft" || name == "cluster.json" {
			continue
		}
		i := strings.LastIndexByte(name, '-')
		if i > 0 && e.IsDir() {
			if p, err := strconv.Atoi(name[i+1:]); err == nil && p < live[name[:i]] {
				continue
			}
		}
		out = append(out, name)
	}
	return out
}

// waitNoOrphans waits until dataDir holds only live partitions (tombstones
// are removed in the background).
func waitNoOrphans(t testing.TB, cl *kgo.Client, dataDir string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, live, err := metadataOf(ctxFor(t, 10*time.Second), cl, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		orphans := orphanDirs(t, dataDir, live)
		if len(orphans) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("directories of deleted topics left in the data directory: %v", orphans)
		}
		time.Sleep(20 * time.Millisecond) // polling the directory, with a deadline
	}
}

// TestDeleteLongTopicName: a topic whose name has 249 characters (Kafka's
// longest) is deleted and created again, and the new topic serves none of
// the old records; nothing of the old one stays on disk. It failed when a
// deleted partition's directory was renamed to "<dir>.<nanos>.deleted",
// longer than a file name may be: the rename failed, DeleteTopics still
// answered success, and the re-created topic served the old records.
func TestDeleteLongTopicName(t *testing.T) {
	dir := testDataDir(t)
	n := startNode(t, dir, nil)
	cl := produceClient(t, n.Addr())
	name := strings.Repeat("L", 249)
	const parts = 3
	createTopic(t, cl, name, parts)
	produceSeq(t, cl, name, parts, 10, 1)
	wantCode(t, "delete", deleteTopic(t, cl, name), 0)
	if code, _ := topicMeta(t, cl, name); code != codeUnknownTopic {
		t.Fatalf("deleted topic still listed: %v", kerr.ErrorForCode(code))
	}
	createTopic(t, cl, name, parts)
	if got := endOffsets(t, cl, name, parts); !slicesEqual(got, counts(parts, 0)) {
		t.Fatalf("the re-created topic serves old records: end offsets %v", got)
	}
	waitNoOrphans(t, cl, dir)
	// A deletion from the topic's first life is not pending: the new one
	// keeps what it is given. (A fresh client: this one knows the old
	// topic id.)
	cl = produceClient(t, n.Addr())
	produceSeq(t, cl, name, parts, 5, 1)
	if got := endOffsets(t, cl, name, parts); !slicesEqual(got, counts(parts, 5)) {
		t.Fatalf("the re-created topic holds %v records per partition, want 5", got)
	}
	wantCode(t, "delete again", deleteTopic(t, cl, name), 0)
	waitNoOrphans(t, cl, dir)
}

func slicesEqual(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestDeleteTopicsKilled: the broker process is SIGKILLed at a random
// point while it deletes topics one request after another. After the
// restart no directory of a deleted topic (nor any tombstone) is left, a
// topic whose deletion was acknowledged is gone, every topic that is gone
// comes back empty when created again, and a topic still there kept all
// its records. It failed while nothing removed, at start, the directories
// an interrupted deletion left: they stayed, and a re-created topic
// served their records.
func TestDeleteTopicsKilled(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	dir := testDataDir(t)
	p := startProc(t, dir)
	const topics, parts, perPart = 6, 8, 20
	for round := range 4 {
		cl := produceClient(t, p.addr)
		var names []string
		for i := range topics {
			name := fmt.Sprintf("del-%d-%d", round, i)
			names = append(names, name)
			createTopic(t, cl, name, parts)
			produceSeq(t, cl, name, parts, perPart, 2)
		}
		// Kill after a random number of acknowledged deletions, a random
		// moment later.
		killAfter := rng.IntN(topics)
		delay := time.Duration(rng.IntN(30)) * time.Millisecond
		acked := map[string]bool{}
		var mu sync.Mutex
		done := make(chan struct{})
		killNow := make(chan struct{}, 1)
		go func() {
			defer close(done)
			for i, name := range names {
				if i == killAfter {
					killNow <- struct{}{}
				}
				req := kmsg.NewPtrDeleteTopicsRequest()
				req.TopicNames = []string{name}
				rt := kmsg.NewDeleteTopicsRequestTopic()
				rt.Topic = kmsg.StringPtr(name)
				req.Topics = append(req.Topics, rt)
				req.TimeoutMillis = 10000
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				resp, err := req.RequestWith(ctx, cl)
				cancel()
				if err != nil {
					return // killed
				}
				if resp.Topics[0].ErrorCode == 0 {
					mu.Lock()
					acked[name] = true
					mu.Unlock()
				}
			}
			select {
			case killNow <- struct{}{}:
			default:
			}
		}()
		<-killNow
		<-time.After(delay) // the kill point: random, not a wait for anything
		p.kill()
		<-done
		cl.Close()
		p.start()
		cl = produceClient(t, p.addr)
		ctx := ctxFor(t, time.Minute)
		_, live, err := metadataOf(ctx, cl, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		if orphans := orphanDirs(t, dir, live); len(orphans) > 0 {
			t.Fatalf("round %d (kill after %d deletions + %v): left on disk after the restart: %v", round, killAfter, delay, orphans)
		}
		mu.Lock()
		for _, name := range names {
			if _, ok := live[name]; ok {
				if acked[name] {
					t.Fatalf("round %d: %s was deleted (acknowledged) but is back after the restart", round, name)
				}
				if got := endOffsets(t, cl, name, parts); !slicesEqual(got, counts(parts, perPart)) {
					t.Fatalf("round %d: %s was not deleted but holds %v records per partition, want %d", round, name, got, perPart)
				}
				wantCode(t, "delete "+name, deleteTopic(t, cl, name), 0)
			} else {
				createTopic(t, cl, name, parts)
				if got := endOffsets(t, cl, name, parts); !slicesEqual(got, counts(parts, 0)) {
					t.Fatalf("round %d (kill after %d deletions + %v): %s created again serves old records: end offsets %v", round, killAfter, delay, name, got)
				}
				wantCode(t, "delete "+name, deleteTopic(t, cl, name), 0)
			}
		}
		mu.Unlock()
		cl.Close()
	}
}

// TestMetadataAutoCreateBounded: one Metadata request naming 10,000 new
// topics (auto-creation on, as by default) is answered promptly, creates
// at most --auto-create-max-per-request of them and answers the rest
// LEADER_NOT_AVAILABLE (retriable), while a producer on another topic
// keeps being acknowledged. It failed when every named topic was created
// before the answer: minutes of metadata writes, descriptors exhausted.
func TestMetadataAutoCreateBounded(t *testing.T) {
	n := startNode(t, testDataDir(t), nil)
	cl := produceClient(t, n.Addr())
	createTopic(t, cl, "steady", 1)
	ctx := ctxFor(t, 3*time.Minute)
	stop := make(chan struct{})
	acks := make(chan error, 1)
	var acked sync.WaitGroup
	acked.Add(1)
	go func() {
		defer acked.Done()
		for {
			select {
			case <-stop:
				acks <- nil
				return
			default:
			}
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "steady", Value: []byte("x")}).FirstErr(); err != nil {
				acks <- err
				return
			}
		}
	}()
	names := make([]string, 10000)
	for i := range names {
		names[i] = fmt.Sprintf("auto-%05d", i)
	}
	mcl := newClient(t, n.Addr())
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	began := time.Now()
	codes, _, err := metadataOf(rctx, mcl, names, true)
	if err != nil {
		t.Fatalf("Metadata naming %d new topics: %v (the broker hangs creating them)", len(names), err)
	}
	t.Logf("Metadata naming %d new topics answered in %v", len(names), time.Since(began).Round(time.Millisecond))
	created, deferred := 0, 0
	for _, name := range names {
		switch codes[name] {
		case 0:
			created++
		case kerr.LeaderNotAvailable.Code:
			deferred++
		default:
			t.Fatalf("%s: %v", name, kerr.ErrorForCode(codes[name]))
		}
	}
	if created > 16 || created == 0 || created+deferred != len(names) {
		t.Fatalf("created %d and deferred %d of %d named topics; want 1-16 created (--auto-create-max-per-request), the rest deferred", created, deferred, len(names))
	}
	_, live, err := metadataOf(ctx, mcl, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	exist := 0
	for name := range live {
		if strings.HasPrefix(name, "auto-") {
			exist++
		}
	}
	if exist != created {
		t.Fatalf("%d auto- topics exist, the answer said %d were created", exist, created)
	}
	close(stop)
	if err := <-acks; err != nil {
		t.Fatalf("the producer on another topic failed meanwhile: %v", err)
	}
	acked.Wait()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "steady", Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatalf("produce after the request: %v", err)
	}
}

// TestAutoCreateRateLimited: past --auto-create-per-second, topics named
// by Metadata are answered LEADER_NOT_AVAILABLE, and a client that keeps
// asking gets them all, at the rate.
func TestAutoCreateRateLimited(t *testing.T) {
	const rate = 4
	n := startNode(t, testDataDir(t), func(c *cluster.Config) { c.AutoCreatePerSecond = rate })
	cl := newClient(t, n.Addr())
	ctx := ctxFor(t, 2*time.Minute)
	names := make([]string, 12)
	for i := range names {
		names[i] = fmt.Sprintf("rated-%d", i)
	}
	start := time.Now()
	codes, _, err := metadataOf(ctx, cl, names, true)
	if err != nil {
		t.Fatal(err)
	}
	created := 0
	for _, name := range names {
		switch codes[name] {
		case 0:
			created++
		case kerr.LeaderNotAvailable.Code:
		default:
			t.Fatalf("%s: %v", name, kerr.ErrorForCode(codes[name]))
		}
	}
	if limit := rate + int(time.Since(start).Seconds()*rate); created > limit || created == 0 {
		t.Fatalf("one request created %d topics at %d per second (at most %d by now)", created, rate, limit)
	}
	// Retrying gets every topic, at the rate.
	for {
		codes, _, err := metadataOf(ctx, cl, names, true)
		if err != nil {
			t.Fatal(err)
		}
		left := 0
		for _, name := range names {
			if codes[name] != 0 {
				left++
			}
		}
		if left == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%d topics still not created", left)
		}
		time.Sleep(100 * time.Millisecond) // a client's retry back-off
	}
	if el := time.Since(start).Seconds(); el*rate+rate < float64(len(names)) {
		t.Fatalf("%d topics created in %.2fs at %d per second", len(names), el, rate)
	}
}

// TestPartitionLimit: a CreateTopics or CreatePartitions that would take
// the broker past --max-partitions is refused whole with POLICY_VIOLATION
// and a message naming the limit; nothing of it is created; what fits is.
func TestPartitionLimit(t *testing.T) {
	dir := testDataDir(t)
	// 8 partitions of __consumer_offsets, and 20 for the test.
	n := startNode(t, dir, func(c *cluster.Config) { c.MaxPartitions = 28 })
	cl := newClient(t, n.Addr())
	ctx := ctxFor(t, time.Minute)
	createTopic(t, cl, "fits", 15)
	codes, msgs, err := createTopicsReq(ctx, cl, map[string]int32{"toomany": 10})
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, "create past the limit", codes["toomany"], kerr.PolicyViolation.Code)
	if !strings.Contains(msgs["toomany"], "--max-partitions") {
		t.Fatalf("refusal message %q does not name the limit", msgs["toomany"])
	}
	if code, _ := topicMeta(t, cl, "toomany"); code != codeUnknownTopic {
		t.Fatalf("refused topic is listed: %v", kerr.ErrorForCode(code))
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "toomany-*")); len(m) > 0 {
		t.Fatalf("refused topic has directories: %v", m)
	}
	wantCode(t, "grow past the limit", createPartitions(t, cl, "fits", 21), kerr.PolicyViolation.Code)
	if _, parts := topicMeta(t, cl, "fits"); parts != 15 {
		t.Fatalf("refused growth left %d partitions, want 15", parts)
	}
	createTopic(t, cl, "last", 5) // exactly at the limit
	wantCode(t, "one more", createPartitions(t, cl, "last", 6), kerr.PolicyViolation.Code)
	wantCode(t, "delete", deleteTopic(t, cl, "last"), 0)
	createTopic(t, cl, "again", 5)
}

// TestDescriptorBudget: under a descriptor limit of 1,500 (hard; the soft
// limit of 1,000 is raised to it at start, and both are logged), creating
// 100 topics of 10 partitions (3,000 descriptors' worth) answers success
// only for the topics that fit the budget, each of which works fully, and
// POLICY_VIOLATION naming the budget for the rest. It failed when every
// topic was answered success while partitions failed to open for want of
// descriptors (only logged).
func TestDescriptorBudget(t *testing.T) {
	// Soft 1,000, hard 1,500 (the shell's ulimit, so no extra tool is
	// needed): the broker runs with the hard limit.
	p := startProcWrapped(t, testDataDir(t), []string{"/bin/sh", "-c", `ulimit -S -n 1000 && ulimit -H -n 1500 && exec "$0" "$@"`})
	if !strings.Contains(p.logs.String(), `msg="file descriptor limit"`) || !strings.Contains(p.logs.String(), "soft=1500 hard=1500") {
		t.Fatalf("the broker did not log its descriptor limit raised to the hard limit")
	}
	cl := produceClient(t, p.addr)
	ctx := ctxFor(t, 3*time.Minute)
	want := map[string]int32{}
	for i := range 100 {
		want[fmt.Sprintf("fd-%02d", i)] = 10
	}
	codes, msgs, err := createTopicsReq(ctx, cl, want)
	if err != nil {
		t.Fatal(err)
	}
	var ok []string
	for name, code := range codes {
		switch code {
		case 0:
			ok = append(ok, name)
		case kerr.PolicyViolation.Code:
			if !strings.Contains(msgs[name], "file descriptor") {
				t.Fatalf("%s refused with %q, which does not name the descriptor budget", name, msgs[name])
			}
		default:
			t.Fatalf("%s: %v %s", name, kerr.ErrorForCode(code), msgs[name])
		}
	}
	if len(ok) == 0 || len(ok) == len(want) {
		t.Fatalf("%d of %d topics created under a 1,500 descriptor limit", len(ok), len(want))
	}
	// Every topic answered success is whole: listed, and every partition
	// takes a record.
	mcodes, mparts, err := metadataOf(ctx, cl, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for _, name := range ok {
		if mcodes[name] != 0 || mparts[name] != 10 {
			t.Fatalf("%s: created, but Metadata says %v with %d partitions", name, kerr.ErrorForCode(mcodes[name]), mparts[name])
		}
		for part := range int32(10) {
			recs = append(recs, &kgo.Record{Topic: name, Partition: part, Value: []byte("v")})
		}
	}
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := cl.ProduceSync(pctx, recs...).FirstErr(); err != nil {
		t.Fatalf("producing to every partition of the %d created topics: %v", len(ok), err)
	}
	for name := range codes {
		if codes[name] != 0 && mcodes[name] != 0 && mcodes[name] != codeUnknownTopic {
			t.Fatalf("refused topic %s is listed: %v", name, mcodes[name])
		}
		if _, listed := mcodes[name]; codes[name] != 0 && listed {
			t.Fatalf("refused topic %s is listed", name)
		}
	}
}

// TestDeleteTopicsMetadataUnwritable: when the metadata cannot be written,
// DeleteTopics and CreateTopics answer KAFKA_STORAGE_ERROR with the cause
// and change nothing; once it can, they work. It failed while they
// answered INVALID_REQUEST and INVALID_CONFIG, without a message.
func TestDeleteTopicsMetadataUnwritable(t *testing.T) {
	dir := testDataDir(t)
	n := startNode(t, dir, nil)
	cl := produceClient(t, n.Addr())
	ctx := ctxFor(t, time.Minute)
	createTopic(t, cl, "keep", 2)
	produceSeq(t, cl, "keep", 2, 3, 1)
	// A directory where the temporary metadata file goes: opening it for
	// writing fails, for root too.
	blocker := filepath.Join(dir, "metadata.json.tmp")
	if err := os.MkdirAll(filepath.Join(blocker, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TopicNames = []string{"keep"}
	rt := kmsg.NewDeleteTopicsRequestTopic()
	rt.Topic = kmsg.StringPtr("keep")
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Topics[0]; got.ErrorCode != kerr.KafkaStorageError.Code || got.ErrorMessage == nil || !strings.Contains(*got.ErrorMessage, "metadata") {
		t.Fatalf("delete with the metadata unwritable: %v %v; want KAFKA_STORAGE_ERROR with a message", kerr.ErrorForCode(got.ErrorCode), got.ErrorMessage)
	}
	codes, msgs, err := createTopicsReq(ctx, cl, map[string]int32{"new": 1})
	if err != nil {
		t.Fatal(err)
	}
	if codes["new"] != kerr.KafkaStorageError.Code || !strings.Contains(msgs["new"], "metadata") {
		t.Fatalf("create with the metadata unwritable: %v %q; want KAFKA_STORAGE_ERROR with a message", kerr.ErrorForCode(codes["new"]), msgs["new"])
	}
	if code, parts := topicMeta(t, cl, "keep"); code != 0 || parts != 2 {
		t.Fatalf("after the failed delete: %v, %d partitions", kerr.ErrorForCode(code), parts)
	}
	if got := endOffsets(t, cl, "keep", 2); !slicesEqual(got, counts(2, 3)) {
		t.Fatalf("after the failed delete the topic holds %v", got)
	}
	if code, _ := topicMeta(t, cl, "new"); code != codeUnknownTopic {
		t.Fatalf("the failed create is listed: %v", kerr.ErrorForCode(code))
	}
	if err := os.RemoveAll(blocker); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "delete once writable", deleteTopic(t, cl, "keep"), 0)
	createTopic(t, cl, "new", 1)
}
