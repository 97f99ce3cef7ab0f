package adminapi

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// TestLimitMetricsCount: a limit that bites shows in its counter. A topic
// of 10,000 partitions passes the per-topic bound but not the broker's
// partition budget (10,000 with the offsets topic's 8 already open), so it
// is refused and strand_partitions_refused_total goes up by one.
func TestLimitMetricsCount(t *testing.T) {
	counter := func(name string) float64 {
		f := scrape(t)[name]
		if f == nil || len(f.GetMetric()) != 1 {
			t.Fatalf("%s: %v", name, f)
		}
		return f.GetMetric()[0].GetCounter().GetValue()
	}
	before := counter("strand_partitions_refused_total")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(client(t)).CreateTopic(ctx, 10000, 1, nil, uniq("too-big"))
	if err == nil {
		err = resp.Err
	}
	if err != kerr.PolicyViolation {
		t.Fatalf("a 10,000-partition topic: %v, want POLICY_VIOLATION", err)
	}
	if after := counter("strand_partitions_refused_total"); after != before+1 {
		t.Fatalf("strand_partitions_refused_total went from %v to %v, want +1", before, after)
	}
	if open := scrape(t)["strand_connections_open"].GetMetric()[0].GetGauge().GetValue(); open < 1 {
		t.Fatalf("strand_connections_open = %v with a client connected", open)
	}
}
