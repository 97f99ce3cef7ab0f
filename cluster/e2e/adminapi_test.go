package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// `strand serve --admin-listen` serves the admin API beside the broker,
// and the broker still stops cleanly on SIGTERM (admin drain and close
// included).
func TestServeAdminListen(t *testing.T) {
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startProc(t, testDataDir(t), "--admin-listen", admin)
	get := func(path string, v any) int {
		t.Helper()
		resp, err := http.Get("http://" + admin + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		if v != nil {
			if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
		}
		return resp.StatusCode
	}
	// serve hands the node to the admin API just after cluster.Start has
	// logged the ready line, so readiness follows it within moments.
	deadline := time.Now().Add(10 * time.Second)
	for code := get("/v1/ready", nil); code != 200; code = get("/v1/ready", nil) {
		if code != 503 || time.Now().After(deadline) {
			t.Fatalf("ready: %d", code)
		}
		time.Sleep(10 * time.Millisecond)
	}
	var b struct {
		Brokers []struct {
			Listen string
			Cores  []struct{ Core, CPU int }
		}
	}
	if code := get("/v1/brokers", &b); code != 200 || len(b.Brokers) != 1 || b.Brokers[0].Listen != p.addr || len(b.Brokers[0].Cores) == 0 {
		t.Fatalf("brokers: %d %+v, broker listens on %s", code, b, p.addr)
	}
	if code := p.term(30 * time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
}
