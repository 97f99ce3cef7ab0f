package adminapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/strand-io/strand/cluster"
)

func TestHealthAndReadyFollowTheNode(t *testing.T) {
	s, err := Listen(Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	wantStatus := func(path string, status int, want string) {
		t.Helper()
		code, body := call(t, s, http.MethodGet, path)
		if code != status || !strings.Contains(string(body), want) {
			t.Fatalf("GET %s: %d %s; want %d with %q", path, code, body, status, want)
		}
	}
	// Before the node has started: live, not ready, and nothing to show.
	wantStatus("/v1/health", 200, `"status": "live"`)
	wantStatus("/v1/ready", 503, "starting")
	wantStatus("/v1/topics", 503, "starting")
	wantStatus("/v1/brokers", 503, `"hint"`)

	s.SetBroker(testNode)
	wantStatus("/v1/ready", 200, `"status": "ready"`)
	wantStatus("/v1/health", 200, "live")

	s.Drain()
	wantStatus("/v1/ready", 503, "draining")
	wantStatus("/v1/health", 200, "live")
}

func TestBrokersListsEveryCore(t *testing.T) {
	var got struct{ Brokers []brokerJSON }
	getJSON(t, "/v1/brokers", 200, &got)
	if len(got.Brokers) != 1 {
		t.Fatalf("brokers %+v, want this one", got.Brokers)
	}
	b, info := got.Brokers[0], testNode.Info()
	if b.NodeID != info.NodeID || b.Listen != testNode.Addr() || b.Advertise == "" || b.IOMode == "" {
		t.Fatalf("broker %+v, node %+v", b, info)
	}
	if len(b.Cores) != len(info.Cores) || len(b.Cores) == 0 {
		t.Fatalf("cores %+v, want %d", b.Cores, len(info.Cores))
	}
	total := 0
	for i, c := range b.Cores {
		if c.Core != i || c.CPU != info.Cores[i].CPU || c.TID <= 0 {
			t.Fatalf("core %d: %+v, want %+v", i, c, info.Cores[i])
		}
		total += c.Partitions
	}
	parts := 0
	for _, tp := range testNode.Topics() {
		parts += len(tp.Cores)
	}
	if total != parts {
		t.Fatalf("cores hold %d partitions, metadata has %d", total, parts)
	}
}

func TestTopicShowsProducedRecords(t *testing.T) {
	topic := uniq("admin-topic")
	createTopic(t, topic, 2)
	const n = 37
	produce(t, topic, n, 0)

	var tj topicJSON
	getJSON(t, "/v1/topics/"+topic, 200, &tj)
	if tj.Name != topic || tj.Internal || len(tj.Partitions) != 2 {
		t.Fatalf("topic %+v", tj)
	}
	var layout cluster.TopicLayout
	for _, l := range testNode.Topics() {
		if l.Name == topic {
			layout = l
		}
	}
	for i, p := range tj.Partitions {
		if p.Partition != int32(i) || p.Broker != testNode.Info().NodeID || p.Core != int(layout.Cores[i]) || !p.Open {
			t.Fatalf("partition %d: %+v, placed on core %d", i, p, layout.Cores[i])
		}
		if p.LogStartOffset != 0 {
			t.Fatalf("partition %d: log start %d", i, p.LogStartOffset)
		}
	}
	p0, p1 := tj.Partitions[0], tj.Partitions[1]
	if p0.EndOffset != n || p0.HighWatermark != n || p0.LogSizeBytes <= 0 {
		t.Fatalf("partition 0 after %d records: %+v", n, p0)
	}
	if p1.EndOffset != 0 || p1.HighWatermark != 0 {
		t.Fatalf("partition 1, never written: %+v", p1)
	}

	// The list shows the same topic, and the internal offsets topic.
	var list struct{ Topics []topicJSON }
	getJSON(t, "/v1/topics", 200, &list)
	var found, internal bool
	for _, x := range list.Topics {
		if x.Name == topic {
			found = true
			if x.Partitions[0].EndOffset != n {
				t.Fatalf("listed %+v", x)
			}
		}
		internal = internal || x.Internal && x.Name == cluster.OffsetsTopic
	}
	if !found || !internal {
		t.Fatalf("topic listed %v, offsets topic listed %v: %+v", found, internal, list.Topics)
	}
}

func TestErrorsAreJSONWithAHint(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		status       int
		want         string
	}{
		{"GET", "/v1/topics/no-such-topic", 404, `unknown topic "no-such-topic"`},
		{"GET", "/v1/groups/no-such-group", 404, `unknown group "no-such-group"`},
		{"GET", "/v1/nothing-here", 404, "no such endpoint"},
		{"POST", "/v1/topics", 405, "POST is not allowed"},
		{"DELETE", "/v1/topics/x", 405, "DELETE is not allowed"},
		{"PUT", "/metrics", 405, "PUT is not allowed"},
	} {
		code, body := call(t, testAdmin, tc.method, tc.path)
		var e apiError
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("%s %s: %d, body not JSON: %s", tc.method, tc.path, code, body)
		}
		if code != tc.status || !strings.Contains(e.Error, tc.want) || e.Hint == "" {
			t.Fatalf("%s %s: %d %+v; want %d, %q and a hint", tc.method, tc.path, code, e, tc.status, tc.want)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+testAdmin.Addr()+"/v1/health", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST /v1/health: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func TestGroupShowsCommittedOffsetsAndLag(t *testing.T) {
	topic, grp := uniq("admin-lag"), uniq("admin-group")
	createTopic(t, topic, 2)
	produce(t, topic, 10, 0, 1)
	adm := kadm.NewClient(client(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var offs kadm.Offsets
	offs.AddOffset(topic, 0, 3, -1)
	offs.AddOffset(topic, 1, 10, -1)
	resp, err := adm.CommitOffsets(ctx, grp, offs)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("commit: %v", err)
	}

	var g groupJSON
	getJSON(t, "/v1/groups/"+grp, 200, &g)
	want := []offsetJSON{
		{Topic: topic, Partition: 0, Committed: 3, HighWatermark: 10, Lag: 7},
		{Topic: topic, Partition: 1, Committed: 10, HighWatermark: 10, Lag: 0},
	}
	if g.Group != grp || g.State != "Empty" || len(g.Members) != 0 || g.Lag != 7 || len(g.Offsets) != 2 {
		t.Fatalf("group %+v", g)
	}
	for i := range want {
		if g.Offsets[i] != want[i] {
			t.Fatalf("offset %d: %+v, want %+v", i, g.Offsets[i], want[i])
		}
	}

	var list struct{ Groups []groupSummaryJSON }
	getJSON(t, "/v1/groups", 200, &list)
	for _, x := range list.Groups {
		if x.Group == grp {
			if x.Lag != 7 || x.State != "Empty" || x.Members != 0 || x.Coordinator != g.Coordinator {
				t.Fatalf("listed %+v, described %+v", x, g)
			}
			return
		}
	}
	t.Fatalf("group %s not in %+v", grp, list.Groups)
}

func TestPprofIsServed(t *testing.T) {
	code, body := call(t, testAdmin, http.MethodGet, "/debug/pprof/")
	if code != 200 || !strings.Contains(string(body), "goroutine") {
		t.Fatalf("pprof index: %d %.200s", code, body)
	}
}

// stalledBroker is the test broker with a core that never reports.
type stalledBroker struct{ *cluster.Node }

func (stalledBroker) Snapshot(ctx context.Context) ([]cluster.CoreSnapshot, error) {
	<-ctx.Done()
	return nil, fmt.Errorf("%w: %v", cluster.ErrSnapshotTimeout, ctx.Err())
}

func TestSnapshotTimeoutAnswers503AndWarnsOnce(t *testing.T) {
	var logs lockedBuffer
	s, err := Listen(Config{Listen: "127.0.0.1:0", SnapshotTimeout: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	s.SetBroker(stalledBroker{testNode})
	for _, path := range []string{"/v1/topics", "/v1/groups", "/v1/groups/g", "/v1/topics/" + cluster.OffsetsTopic} {
		code, body := call(t, s, http.MethodGet, path)
		var e apiError
		if err := json.Unmarshal(body, &e); err != nil || code != 503 || !strings.Contains(e.Error, "did not report") || !strings.Contains(e.Hint, "stalled") {
			t.Fatalf("GET %s with a stalled core: %d %s", path, code, body)
		}
	}
	if code, body := call(t, s, http.MethodGet, "/metrics"); code != 500 || !strings.Contains(string(body), "did not report") {
		t.Fatalf("scrape with a stalled core: %d %s", code, body)
	}
	// What needs no snapshot still answers.
	if code, _ := call(t, s, http.MethodGet, "/v1/brokers"); code != 200 {
		t.Fatalf("brokers with a stalled core: %d", code)
	}
	if n := strings.Count(logs.String(), "msg=\"admin API: a core did not report"); n != 1 {
		t.Fatalf("%d warnings for 5 timeouts within the rate limit, want 1:\n%s", n, logs.String())
	}
}

// Close waits for requests only until its context ends, then cuts them
// off: a 30 s CPU profile in flight must not hold a broker's shutdown.
func TestCloseCutsOffSlowRequests(t *testing.T) {
	s, err := Listen(Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + s.Addr() + "/debug/pprof/profile?seconds=30")
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				err = fmt.Errorf("profile completed: %s", resp.Status)
			}
		}
		got <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(goroutines(), "net/http/pprof.Profile") {
		if time.Now().After(deadline) {
			t.Fatal("the profile request never reached its handler")
		}
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close with a profile in flight: %v, want the deadline", err)
	}
	select {
	case err := <-got:
		if strings.Contains(err.Error(), "profile completed") {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the profile request still runs after Close returned")
	}
}

func goroutines() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}
