package adminapi

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strand-io/strand/cluster"
	"github.com/strand-io/strand/cluster/group"
	"github.com/strand-io/strand/reactor"
	"github.com/strand-io/strand/shard"
)

// browser is headless Chromium driven over the DevTools protocol on a
// pipe (--remote-debugging-pipe: the child reads commands on fd 3 and
// writes answers on fd 4, each a JSON message ending in a NUL byte), so the
// test needs no WebSocket client.
type browser struct {
	cmd     *exec.Cmd
	in      io.WriteCloser
	mu      sync.Mutex
	nextID  int
	waiting map[int]chan cdpReply
	session string
}

type cdpReply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// chromiumPath finds the browser; the page test does not skip without
// it (.ci/run installs Debian's chromium).
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("the placement page test needs headless Chromium: apt-get install chromium (.ci/run does)")
	return ""
}

func startBrowser(t *testing.T) *browser {
	t.Helper()
	toChild, childIn, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	childOut, fromChild, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(chromiumPath(t), "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--remote-debugging-pipe", "--user-data-dir="+t.TempDir(), "--window-size=1200,700", "about:blank")
	cmd.ExtraFiles = []*os.File{toChild, fromChild} // fd 3, fd 4
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	toChild.Close()
	fromChild.Close()
	b := &browser{cmd: cmd, in: childIn, waiting: map[int]chan cdpReply{}}
	t.Cleanup(func() {
		childIn.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		childOut.Close()
		if t.Failed() {
			t.Logf("chromium stderr:\n%s", stderr.String())
		}
	})
	go b.read(childOut)
	return b
}

func (b *browser) read(r io.Reader) {
	br := bufio.NewReader(r)
	for {
		msg, err := br.ReadBytes(0)
		if err != nil {
			b.mu.Lock()
			for id, ch := range b.waiting {
				close(ch)
				delete(b.waiting, id)
			}
			b.mu.Unlock()
			return
		}
		var m struct {
			ID int `json:"id"`
			cdpReply
		}
		if json.Unmarshal(msg[:len(msg)-1], &m) != nil || m.ID == 0 {
			continue // an event
		}
		b.mu.Lock()
		ch := b.waiting[m.ID]
		delete(b.waiting, m.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- m.cdpReply
		}
	}
}

// call sends one command (to the page's session once attached) and
// decodes its result into out.
func (b *browser) call(t *testing.T, method string, params any, out any) {
	t.Helper()
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ch := make(chan cdpReply, 1)
	b.waiting[id] = ch
	msg := map[string]any{"id": id, "method": method, "params": params}
	if b.session != "" {
		msg["sessionId"] = b.session
	}
	raw, _ := json.Marshal(msg)
	_, err := b.in.Write(append(raw, 0))
	b.mu.Unlock()
	if err != nil {
		t.Fatalf("%s: writing to chromium: %v", method, err)
	}
	select {
	case r, ok := <-ch:
		switch {
		case !ok:
			t.Fatalf("%s: chromium went away", method)
		case r.Error != nil:
			t.Fatalf("%s: %s", method, r.Error.Message)
		case out != nil:
			if err := json.Unmarshal(r.Result, out); err != nil {
				t.Fatalf("%s: %v in %s", method, err, r.Result)
			}
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: no answer from chromium in 30 s", method)
	}
}

// open makes a page at url and attaches to it.
func (b *browser) open(t *testing.T, url string) {
	t.Helper()
	var target struct {
		TargetID string `json:"targetId"`
	}
	b.call(t, "Target.createTarget", map[string]any{"url": url}, &target)
	var att struct {
		SessionID string `json:"sessionId"`
	}
	b.call(t, "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att)
	b.session = att.SessionID
}

// eval evaluates a JavaScript expression in the page and decodes its
// value into out.
func (b *browser) eval(t *testing.T, expr string, out any) {
	t.Helper()
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	b.call(t, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &r)
	if r.ExceptionDetails != nil {
		t.Fatalf("evaluating %s: %s", expr, r.ExceptionDetails.Text)
	}
	if out != nil && len(r.Result.Value) > 0 {
		if err := json.Unmarshal(r.Result.Value, out); err != nil {
			t.Fatalf("evaluating %s: %v in %s", expr, err, r.Result.Value)
		}
	}
}

// TestPlacementPage loads the live page in headless Chromium: it shows
// every core and every partition, updates itself, and its rebalance
// button moves one of two busy partitions off their shared core.
// STRAND_PAGE_SCREENSHOT=path saves the page as it is before the click.
func TestPlacementPage(t *testing.T) {
	n, err := cluster.Start(cluster.Config{
		DataDir: t.TempDir(), Listen: "127.0.0.1:0", Log: shard.Config{Preallocate: true},
		Groups:     group.Config{InitialRebalanceDelayMs: -1},
		LoadWindow: 3 * time.Second, LoadSampleInterval: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&brokerLog, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	if len(n.Info().Cores) < 2 {
		t.Fatalf("the page test moves partitions between two cores; the broker has %d", len(n.Info().Cores))
	}
	srv, err := Listen(Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	srv.SetBroker(n)
	base := "http://" + srv.Addr()

	// Two busy partitions on one core, the other core idle.
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()), kgo.DefaultProduceTopic("page"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 2, 1, nil, "page"); err != nil {
		t.Fatal(err)
	}
	hot := pageCoreOf(n, "page", 0)
	if _, err := n.MovePartition(ctx, "page", 1, hot); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // about 400 KiB/s to each partition
		defer wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		v := make([]byte, 4000)
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			cl.Produce(ctx, &kgo.Record{Partition: 0, Value: v}, nil)
			cl.Produce(ctx, &kgo.Record{Partition: 1, Value: v}, nil)
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	b := startBrowser(t)
	b.open(t, base+"/")
	// Every core has a row and every partition a column, each partition
	// shaded on its own core.
	var want placementJSON
	pageWait(t, "every core and partition on the page", func() (bool, string) {
		getJSONFrom(t, base, "/v1/placement", &want)
		var got struct {
			Rows  []string `json:"rows"`
			Owned []string `json:"owned"`
			Meta  string   `json:"meta"`
		}
		// Until the page has loaded there is no checkbox yet.
		b.eval(t, `(() => {
			const internal = document.getElementById("internal");
			if (!internal) return {};
			internal.checked = true;
			return {rows: [...document.querySelectorAll("tr[data-core-row]")].map(r => r.dataset.coreRow),
			  owned: [...document.querySelectorAll("td.owned")].map(c => c.dataset.core + ":" + c.dataset.partition),
			  meta: document.getElementById("meta").textContent};
		})()`, &got)
		if len(got.Rows) != len(want.Cores) {
			return false, fmt.Sprintf("%d core rows, want %d (%s)", len(got.Rows), len(want.Cores), got.Meta)
		}
		owned := map[string]bool{}
		for _, o := range got.Owned {
			owned[o] = true
		}
		for _, p := range want.Partitions {
			if !owned[fmt.Sprintf("%d:%s/%d", p.Core, p.Topic, p.Partition)] {
				return false, fmt.Sprintf("%s/%d not shown on core %d: %v", p.Topic, p.Partition, p.Core, got.Owned)
			}
		}
		return true, ""
	})
	// The page is live: its stamp changes without a reload.
	var first, later string
	b.eval(t, `document.getElementById("meta").textContent`, &first)
	pageWait(t, "the page to update itself", func() (bool, string) {
		b.eval(t, `document.getElementById("meta").textContent`, &later)
		return later != first, later
	})
	// Hot enough for a rebalance to act.
	pageWait(t, "the load to show one hot core", func() (bool, string) {
		getJSONFrom(t, base, "/v1/placement", &want)
		return want.Cores[hot].Load > 256<<10, fmt.Sprintf("%+v", want.Cores)
	})
	b.eval(t, `document.getElementById("internal").checked = false, refresh()`, nil)
	if path := os.Getenv("STRAND_PAGE_SCREENSHOT"); path != "" {
		var shot struct {
			Data string `json:"data"`
		}
		b.call(t, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot)
		png, err := base64.StdEncoding.DecodeString(shot.Data)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Clean(path), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b.eval(t, `document.getElementById("rebalance").click()`, nil)
	var said string
	pageWait(t, "the rebalance from the page to move a partition", func() (bool, string) {
		b.eval(t, `document.getElementById("status").textContent`, &said)
		return strings.HasPrefix(said, "moved page/"), said
	})
	if c0, c1 := pageCoreOf(n, "page", 0), pageCoreOf(n, "page", 1); c0 == c1 {
		t.Fatalf("the page said %q, but both partitions are on core %d", said, c0)
	}
}

func pageCoreOf(n *cluster.Node, topic string, p int32) reactor.CoreID {
	for _, t := range n.Topics() {
		if t.Name == topic {
			return t.Cores[p]
		}
	}
	return -1
}

func getJSONFrom(t *testing.T, base, path string, v any) {
	t.Helper()
	resp, err := http.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// pageWait polls cond every 100 ms for up to 30 s.
func pageWait(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 30 s for %s; last: %s", what, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
