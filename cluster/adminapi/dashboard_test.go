package adminapi

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// The Grafana dashboard charts only metrics the collector exports, so a
// renamed metric cannot leave a panel silently empty.
func TestDashboardUsesExportedMetrics(t *testing.T) {
	b, err := os.ReadFile("../../docs/grafana/strand.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Type    string
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("docs/grafana/strand.json is not valid JSON: %v", err)
	}
	exported := map[string]bool{}
	fq := regexp.MustCompile(`fqName: "([a-z_]+)"`)
	for _, d := range allDescs {
		m := fq.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read the name of %s", d)
		}
		exported[m[1]] = true
	}
	name := regexp.MustCompile(`strand_[a-z_]+`)
	charted := map[string]bool{}
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, n := range name.FindAllString(tg.Expr, -1) {
				base := strings.TrimSuffix(n, "_bucket")
				if !exported[base] {
					t.Errorf("panel %q charts %s, which is not exported", p.Title, n)
				}
				charted[base] = true
			}
		}
	}
	for _, must := range []string{"strand_core_busy_seconds_total", "strand_core_requests_total", "strand_io_latency_seconds",
		"strand_partition_bytes_in_total", "strand_partition_end_offset", "strand_group_lag"} {
		if !charted[must] {
			t.Errorf("no panel charts %s", must)
		}
	}
}
