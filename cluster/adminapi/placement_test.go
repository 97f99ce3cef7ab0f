package adminapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/strand-io/strand/cluster"
)

// post sends body to path on the test server and returns the status and
// the answer.
func postBody(t testing.TB, path, body string) (int, []byte) {
	t.Helper()
	resp, err := http.Post("http://"+testAdmin.Addr()+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func partitionIn(p placementJSON, topic string, part int32) (partitionLoadJSON, bool) {
	for _, x := range p.Partitions {
		if x.Topic == topic && x.Partition == part {
			return x, true
		}
	}
	return partitionLoadJSON{}, false
}

// TestPlacementShowsLoadAndMoves: GET /v1/placement lists every core and
// partition with the load measured from produced bytes; POST
// /v1/placement/move moves a partition, which the next GET shows.
func TestPlacementShowsLoadAndMoves(t *testing.T) {
	topic := uniq("placed")
	createTopic(t, topic, 2)
	produce(t, topic, 200, 0)
	var p placementJSON
	for deadline := time.Now().Add(30 * time.Second); ; {
		getJSON(t, "/v1/placement", 200, &p)
		if x, ok := partitionIn(p, topic, 0); ok && x.BytesInPerSec > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no load measured for %s/0: %+v", topic, p)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(p.Cores) != len(testNode.Info().Cores) || p.WindowSeconds <= 0 {
		t.Fatalf("cores %d (want %d), window %v", len(p.Cores), len(testNode.Info().Cores), p.WindowSeconds)
	}
	if x, _ := partitionIn(p, topic, 1); x.BytesInPerSec != 0 {
		t.Fatalf("%s/1 had nothing produced but shows %+v", topic, x)
	}
	if len(p.Cores) < 2 {
		t.Fatalf("moving needs two cores; the test broker has %d", len(p.Cores))
	}
	x, _ := partitionIn(p, topic, 0)
	to := 1 - x.Core
	code, body := postBody(t, "/v1/placement/move", `{"topic":"`+topic+`","partition":0,"core":`+string(rune('0'+to))+`}`)
	var mv moveJSON
	if err := json.Unmarshal(body, &mv); code != 200 || err != nil || mv.FromCore != x.Core || mv.ToCore != to {
		t.Fatalf("move: %d %s", code, body)
	}
	getJSON(t, "/v1/placement", 200, &p)
	if y, _ := partitionIn(p, topic, 0); y.Core != to {
		t.Fatalf("after the move %s/0 is on core %d, want %d", topic, y.Core, to)
	}
	produce(t, topic, 10, 0) // still served
}

func TestPlacementErrors(t *testing.T) {
	topic := uniq("placed-err")
	createTopic(t, topic, 1)
	for _, tc := range []struct {
		path, body string
		status     int
		want       string
	}{
		{"/v1/placement/move", `{"topic":`, 400, "not a move"},
		{"/v1/placement/move", `{"topic":"x","partition":0,"cores":1}`, 400, "unknown field"},
		{"/v1/placement/move", `{"topic":"x","partition":0}`, 400, "required"},
		{"/v1/placement/move", `{"topic":"no-such","partition":0,"core":1}`, 404, "no such topic"},
		{"/v1/placement/move", `{"topic":"` + topic + `","partition":5,"core":1}`, 404, "no such topic or partition"},
		{"/v1/placement/move", `{"topic":"` + topic + `","partition":0,"core":99}`, 400, "no such core"},
		{"/v1/placement/move", `{"topic":"` + cluster.OffsetsTopic + `","partition":0,"core":99}`, 400, "no such core"},
		{"/v1/placement/rebalance?dry_run=maybe", ``, 400, "not a boolean"},
	} {
		code, body := postBody(t, tc.path, tc.body)
		var e apiError
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("POST %s %s: %d, body not JSON: %s", tc.path, tc.body, code, body)
		}
		if code != tc.status || !strings.Contains(e.Error, tc.want) || e.Hint == "" {
			t.Fatalf("POST %s %s: %d %+v; want %d, %q and a hint", tc.path, tc.body, code, e, tc.status, tc.want)
		}
	}
	// A partition of a topic pinned to its core is refused with 409.
	var p placementJSON
	getJSON(t, "/v1/placement", 200, &p)
	off, _ := partitionIn(p, cluster.OffsetsTopic, 0)
	other := 1 - off.Core
	pinned := uniq("placed-pinned")
	pin := strconv.Itoa(off.Core)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if r, err := kadm.NewClient(client(t)).CreateTopic(ctx, 1, 1, map[string]*string{"strand.cores": &pin}, pinned); err != nil || r.Err != nil {
		t.Fatalf("create %s: %v %v", pinned, err, r.Err)
	}
	code, body := postBody(t, "/v1/placement/move", `{"topic":"`+pinned+`","partition":0,"core":`+strconv.Itoa(other)+`}`)
	if code != 409 || !bytes.Contains(body, []byte("strand.cores")) {
		t.Fatalf("moving a pinned partition off its pin: %d %s", code, body)
	}
	// An offsets partition moves with its group coordinator.
	code, body = postBody(t, "/v1/placement/move", `{"topic":"`+cluster.OffsetsTopic+`","partition":0,"core":`+strconv.Itoa(other)+`}`)
	var mv moveJSON
	if err := json.Unmarshal(body, &mv); code != 200 || err != nil || mv.FromCore != off.Core || mv.ToCore != other {
		t.Fatalf("moving an offsets partition: %d %s", code, body)
	}
	code, body = call(t, testAdmin, http.MethodGet, "/v1/placement/move")
	if code != 405 || !bytes.Contains(body, []byte("use POST")) {
		t.Fatalf("GET /v1/placement/move: %d %s", code, body)
	}
	// A dry run plans and moves nothing.
	code, body = postBody(t, "/v1/placement/rebalance?dry_run=true", "")
	var rb struct {
		DryRun bool       `json:"dry_run"`
		Moves  []moveJSON `json:"moves"`
	}
	if err := json.Unmarshal(body, &rb); code != 200 || err != nil || !rb.DryRun || rb.Moves == nil {
		t.Fatalf("dry run: %d %s", code, body)
	}
}

// TestPageServed: / is the embedded page; other paths outside /v1/ are a
// JSON 404 that points at it.
func TestPageServed(t *testing.T) {
	code, body := call(t, testAdmin, http.MethodGet, "/")
	if code != 200 || !bytes.Contains(body, []byte(`id="rebalance"`)) || !bytes.Contains(body, []byte("/v1/placement")) {
		t.Fatalf("GET /: %d %.200s", code, body)
	}
	code, body = call(t, testAdmin, http.MethodGet, "/nothing")
	var e apiError
	if err := json.Unmarshal(body, &e); err != nil || code != 404 || !strings.Contains(e.Hint, "placement page is at /") {
		t.Fatalf("GET /nothing: %d %s", code, body)
	}
}
