package adminapi

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kgo"
)

// scrape GETs /metrics and parses it.
func scrape(t testing.TB) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := call(t, testAdmin, http.MethodGet, "/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, body)
	}
	return fams
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func valueOf(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

// series returns the family's series whose labels include match.
func series(fams map[string]*dto.MetricFamily, name string, match map[string]string) []*dto.Metric {
	var out []*dto.Metric
	for _, m := range fams[name].GetMetric() {
		l := labelsOf(m)
		ok := true
		for k, v := range match {
			ok = ok && l[k] == v
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

func TestMetricsUnderLoad(t *testing.T) {
	topic, grp := uniq("metrics-load"), uniq("metrics-group")
	createTopic(t, topic, 2)
	const n = 200
	produce(t, topic, n, 0, 1)

	// A group consumer reads everything and commits it.
	cl := client(t, kgo.ConsumeTopics(topic), kgo.ConsumerGroup(grp), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for read := 0; read < 2*n; {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume after %d records: %v", read, err)
		}
		read += fs.NumRecords()
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}

	fams := scrape(t)

	// Every family is there, with exactly the documented labels.
	want := map[string][]string{
		"strand_core_info": {"core", "cpu"}, "strand_core_requests_total": {"api", "core"},
		"strand_core_bytes_in_total": {"core"}, "strand_core_bytes_out_total": {"core"},
		"strand_core_busy_seconds_total": {"core"}, "strand_core_messages_sent_total": {"core"},
		"strand_core_messages_received_total": {"core"}, "strand_core_messages_overflowed_total": {"core"},
		"strand_core_overflow_pending": {"core"}, "strand_core_inbox_depth_max": {"core"},
		"strand_core_wakeups_total": {"core"}, "strand_core_stalls_total": {"core"},
		"strand_core_expected_stalls_total": {"core"},
		"strand_io_ops_total":               {"core", "op"}, "strand_io_latency_seconds": {"core", "op"},
		"strand_core_partitions":            {"core"},
		"strand_partition_records_in_total": {"core", "partition", "topic"}, "strand_partition_bytes_in_total": {"core", "partition", "topic"},
		"strand_partition_records_out_total": {"core", "partition", "topic"}, "strand_partition_bytes_out_total": {"core", "partition", "topic"},
		"strand_partition_end_offset": {"core", "partition", "topic"}, "strand_partition_high_watermark": {"core", "partition", "topic"},
		"strand_partition_log_start_offset": {"core", "partition", "topic"}, "strand_partition_log_size_bytes": {"core", "partition", "topic"},
		"strand_group_members": {"group"}, "strand_group_committed_offset": {"group", "partition", "topic"},
		"strand_group_lag":        {"group", "partition", "topic"},
		"strand_connections_open": {}, "strand_connections_refused_total": {},
		"strand_connections_idle_closed_total": {}, "strand_connections_request_timeouts_total": {},
		"strand_connections_slow_readers_closed_total": {}, "strand_protocol_errors_total": {},
		"strand_handler_panics_total": {}, "strand_fetch_memory_bytes": {}, "strand_fetch_memory_waits_total": {},
		"strand_partitions_refused_total": {}, "strand_auto_create_throttled_total": {},
	}
	for name, labels := range want {
		f := fams[name]
		if f == nil || len(f.GetMetric()) == 0 {
			t.Errorf("no series of %s", name)
			continue
		}
		for _, m := range f.GetMetric() {
			var got []string
			for k := range labelsOf(m) {
				got = append(got, k)
			}
			sort.Strings(got)
			if !slices.Equal(got, labels) {
				t.Errorf("%s has labels %v, want %v", name, got, labels)
				break
			}
		}
	}
	for name := range fams {
		if strings.HasPrefix(name, "strand_") && want[name] == nil {
			t.Errorf("undocumented family %s: add it to this test and to docs/OPERATIONS.md", name)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Per core: every core has run work and has a series; the cores
	// together served the produce, fetch and commit, and synced.
	cores := testNode.Info().Cores
	var produceReqs, fetchReqs, syncs, bytesIn float64
	for _, c := range cores {
		core := map[string]string{"core": strconv.Itoa(int(c.ID))}
		if b := series(fams, "strand_core_busy_seconds_total", core); len(b) != 1 || valueOf(b[0]) <= 0 {
			t.Errorf("core %d busy: %v", c.ID, b)
		}
		if w := series(fams, "strand_core_wakeups_total", core); len(w) != 1 || valueOf(w[0]) <= 0 {
			t.Errorf("core %d wakeups: %v", c.ID, w)
		}
		for _, m := range series(fams, "strand_core_requests_total", core) {
			switch labelsOf(m)["api"] {
			case "Produce":
				produceReqs += valueOf(m)
			case "Fetch":
				fetchReqs += valueOf(m)
			}
		}
		for _, m := range series(fams, "strand_io_latency_seconds", map[string]string{"core": strconv.Itoa(int(c.ID)), "op": "sync"}) {
			syncs += valueOf(m)
		}
		for _, m := range series(fams, "strand_core_bytes_in_total", core) {
			bytesIn += valueOf(m)
		}
	}
	if produceReqs <= 0 || fetchReqs <= 0 || syncs <= 0 || bytesIn <= 0 {
		t.Errorf("across cores: %v produce requests, %v fetch requests, %v syncs timed, %v bytes in", produceReqs, fetchReqs, syncs, bytesIn)
	}

	// Per partition: what was produced and read, on the owning core.
	layout := map[int32]string{}
	for _, l := range testNode.Topics() {
		if l.Name == topic {
			for p, c := range l.Cores {
				layout[int32(p)] = strconv.Itoa(int(c))
			}
		}
	}
	for p := range int32(2) {
		lv := map[string]string{"topic": topic, "partition": strconv.Itoa(int(p))}
		for name, want := range map[string]float64{
			"strand_partition_records_in_total": n, "strand_partition_records_out_total": n,
			"strand_partition_end_offset": n, "strand_partition_high_watermark": n,
			"strand_group_committed_offset": n, "strand_group_lag": 0,
		} {
			match := lv
			if strings.HasPrefix(name, "strand_group") {
				match = map[string]string{"topic": topic, "partition": strconv.Itoa(int(p)), "group": grp}
			}
			s := series(fams, name, match)
			if len(s) != 1 || valueOf(s[0]) != want {
				t.Errorf("%s%v: %v, want one series of %v", name, match, s, want)
			} else if c, ok := labelsOf(s[0])["core"]; ok && c != layout[p] {
				t.Errorf("%s%v on core %s, placed on %s", name, match, c, layout[p])
			}
		}
		for _, name := range []string{"strand_partition_bytes_in_total", "strand_partition_bytes_out_total", "strand_partition_log_size_bytes"} {
			if s := series(fams, name, lv); len(s) != 1 || valueOf(s[0]) <= 0 {
				t.Errorf("%s%v: %v, want one positive series", name, lv, s)
			}
		}
	}
	if s := series(fams, "strand_group_members", map[string]string{"group": grp}); len(s) != 1 || valueOf(s[0]) != 1 {
		t.Errorf("members of %s: %v", grp, s)
	}
}
