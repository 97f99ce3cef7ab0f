package perf

import (
	"fmt"
	"path/filepath"
	"strings"
)

// compareRow is one metric of the comparison table. get returns false
// when a result lacks the metric (no consumers, no backlog...).
type compareRow struct {
	name string
	get  func(*Result) (float64, bool)
	fmt  func(float64) string
}

func always(f func(*Result) float64) func(*Result) (float64, bool) {
	return func(r *Result) (float64, bool) { return f(r), true }
}

func withConsume(f func(*ConsumeStats) float64) func(*Result) (float64, bool) {
	return func(r *Result) (float64, bool) {
		if r.Consume == nil {
			return 0, false
		}
		return f(r.Consume), true
	}
}

// withEndToEnd is withConsume for the end-to-end latency rows: a run
// whose window holds no end-to-end sample (a backlog drain, where every
// message read is a backlog message) has no latency, not a latency of 0.
func withEndToEnd(f func(Percentiles) int64) func(*Result) (float64, bool) {
	return func(r *Result) (float64, bool) {
		if r.Consume == nil || r.Consume.EndToEnd.Count == 0 {
			return 0, false
		}
		return ms(f(r.Consume.EndToEnd)), true
	}
}

func withBacklog(f func(*BacklogStats) float64) func(*Result) (float64, bool) {
	return func(r *Result) (float64, bool) {
		if r.Backlog == nil || !r.Backlog.Drained {
			return 0, false
		}
		return f(r.Backlog), true
	}
}

func withBroker(f func(*BrokerStats) float64) func(*Result) (float64, bool) {
	return func(r *Result) (float64, bool) {
		if r.Broker == nil || r.Broker.Error != "" {
			return 0, false
		}
		return f(r.Broker), true
	}
}

func ms(us int64) float64 { return float64(us) / 1e3 }

var (
	fmtCount = thousands
	fmtMB    = func(v float64) string { return fmt.Sprintf("%.2f", v) }
	fmtMs    = func(v float64) string { return msFmt(int64(v * 1e3)) }
)

var compareRows = []compareRow{
	{"publish msg/s", always(func(r *Result) float64 { return r.Publish.MsgsPerSec }), fmtCount},
	{"publish MB/s", always(func(r *Result) float64 { return r.Publish.MBPerSec }), fmtMB},
	{"consume msg/s", withConsume(func(c *ConsumeStats) float64 { return c.MsgsPerSec }), fmtCount},
	{"consume MB/s", withConsume(func(c *ConsumeStats) float64 { return c.MBPerSec }), fmtMB},
	{"publish p50 ms", always(func(r *Result) float64 { return ms(r.Publish.Latency.P50Us) }), fmtMs},
	{"publish p99 ms", always(func(r *Result) float64 { return ms(r.Publish.Latency.P99Us) }), fmtMs},
	{"publish p99.9 ms", always(func(r *Result) float64 { return ms(r.Publish.Latency.P999Us) }), fmtMs},
	{"publish p99.99 ms", always(func(r *Result) float64 { return ms(r.Publish.Latency.P9999Us) }), fmtMs},
	{"publish max ms", always(func(r *Result) float64 { return ms(r.Publish.Latency.MaxUs) }), fmtMs},
	{"end-to-end p50 ms", withEndToEnd(func(p Percentiles) int64 { return p.P50Us }), fmtMs},
	{"end-to-end p99 ms", withEndToEnd(func(p Percentiles) int64 { return p.P99Us }), fmtMs},
	{"end-to-end p99.9 ms", withEndToEnd(func(p Percentiles) int64 { return p.P999Us }), fmtMs},
	{"end-to-end max ms", withEndToEnd(func(p Percentiles) int64 { return p.MaxUs }), fmtMs},
	{"backlog drain msg/s", withBacklog(func(b *BacklogStats) float64 { return b.DrainMsgsPerSec }), fmtCount},
	{"backlog drain MB/s", withBacklog(func(b *BacklogStats) float64 { return b.DrainMBPerSec }), fmtMB},
	{"broker CPU s", withBroker(func(b *BrokerStats) float64 { return b.CPUSeconds }), fmtMB},
	{"broker CPU cores avg", withBroker(func(b *BrokerStats) float64 { return b.CPUCores }), fmtMB},
	{"broker RSS max MB", withBroker(func(b *BrokerStats) float64 { return float64(b.RSSMaxBytes) / 1e6 }), fmtMB},
	{"errors", always(func(r *Result) float64 { return float64(r.Publish.Errors) + consumeErrors(r) }), fmtCount},
}

func consumeErrors(r *Result) float64 {
	if r.Consume == nil {
		return 0
	}
	return float64(r.Consume.Errors)
}

// Compare renders results side by side as a markdown table. Every column
// after the first shows its value and the ratio to the first column's.
func Compare(paths []string, rs []*Result) string {
	var b strings.Builder
	b.WriteString("| metric |")
	for _, p := range paths {
		fmt.Fprintf(&b, " %s |", mdCell(resultLabel(p)))
	}
	b.WriteString("\n|---|")
	for range paths {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	textRow(&b, "workload", rs, func(r *Result) string { return r.Workload.Name })
	textRow(&b, "brokers", rs, func(r *Result) string { return r.Brokers })
	textRow(&b, "target rate", rs, func(r *Result) string {
		if r.Settings.TargetRate == 0 {
			return "max"
		}
		return thousands(float64(r.Settings.TargetRate)) + " msg/s"
	})
	textRow(&b, "measured s", rs, func(r *Result) string { return fmt.Sprintf("%.0f", r.MeasuredSeconds) })
	for _, row := range compareRows {
		base, baseOK := row.get(rs[0])
		present := baseOK
		cells := make([]string, len(rs))
		for i, r := range rs {
			v, ok := row.get(r)
			if !ok {
				cells[i] = "–"
				continue
			}
			present = true
			cells[i] = row.fmt(v)
			if i > 0 {
				cells[i] += " (" + ratio(v, base, baseOK) + ")"
			}
		}
		if !present {
			continue
		}
		fmt.Fprintf(&b, "| %s | %s |\n", row.name, strings.Join(cells, " | "))
	}
	b.WriteString("\nRatios are value ÷ first column. Higher is better for rates; lower is better for latency, CPU, RSS and errors.\n")
	return b.String()
}

func textRow(b *strings.Builder, name string, rs []*Result, f func(*Result) string) {
	fmt.Fprintf(b, "| %s |", name)
	for _, r := range rs {
		fmt.Fprintf(b, " %s |", mdCell(f(r)))
	}
	b.WriteString("\n")
}

func ratio(v, base float64, baseOK bool) string {
	switch {
	case !baseOK:
		return "n/a"
	case base == 0 && v == 0:
		return "1.00×"
	case base == 0:
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", v/base)
}

// resultLabel names a column: the run's folder for .../result.json, else
// the file name.
func resultLabel(path string) string {
	if filepath.Base(path) == "result.json" {
		return filepath.Base(filepath.Dir(path))
	}
	return filepath.Base(path)
}

// mdCell keeps a value from breaking the table.
func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
