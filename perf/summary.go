package perf

import (
	"fmt"
	"strings"
)

// Summary renders the result as a short markdown report.
func (r *Result) Summary() string {
	var b strings.Builder
	w := r.Workload
	fmt.Fprintf(&b, "# %s\n\n", w.Name)
	target := "as fast as possible"
	if r.Settings.TargetRate > 0 {
		target = fmt.Sprintf("%d msg/s", r.Settings.TargetRate)
	}
	broker := r.Brokers
	if r.InProcess {
		broker += " (in-process Strand broker)"
	}
	fmt.Fprintf(&b, "- broker: %s\n", broker)
	fmt.Fprintf(&b, "- started: %s, on %s (%d CPUs, %s)\n", r.StartedAt.Format("2006-01-02 15:04:05 MST"), r.Host.Hostname, r.Host.CPUs, r.Host.GoVersion)
	fmt.Fprintf(&b, "- workload: %d topic(s) × %d partitions, %d-byte messages, %d producer(s), %d consumer(s), keys %s\n",
		w.Topics, w.PartitionsPerTopic, r.Settings.MessageBytes, r.Settings.Producers, r.Settings.Consumers, w.KeyDistributor)
	fmt.Fprintf(&b, "- target rate: %s; acks=%s, idempotent=%v, linger %g ms\n", target, r.Settings.Acks, r.Settings.Idempotent, r.Settings.LingerMs)
	if p := r.Probe; p != nil {
		fmt.Fprintf(&b, "- rate %g%% of a %gs max-rate probe that reached %.0f msg/s\n", p.Percent, p.Seconds, p.MaxMsgsPerSec)
	}
	fmt.Fprintf(&b, "- measured %.1f s after %.0f s of warm-up (excluded)\n", r.MeasuredSeconds, r.Settings.WarmupSeconds)
	if r.Interrupted {
		b.WriteString("- **interrupted**: the window was cut short\n")
	}

	b.WriteString("\n## Throughput\n\n| | msg/s | MB/s | messages | errors |\n|---|---:|---:|---:|---:|\n")
	p := r.Publish
	fmt.Fprintf(&b, "| publish | %s | %.2f | %s | %d |\n", thousands(p.MsgsPerSec), p.MBPerSec, thousands(float64(p.Messages)), p.Errors)
	if c := r.Consume; c != nil {
		fmt.Fprintf(&b, "| consume (all subscriptions) | %s | %.2f | %s | %d |\n", thousands(c.MsgsPerSec), c.MBPerSec, thousands(float64(c.Messages)), c.Errors)
	}
	if p.MissedSends > 0 {
		fmt.Fprintf(&b, "\n%d scheduled sends never happened (the run was stopped); latency does not include them.\n", p.MissedSends)
	}
	for _, e := range []struct{ what, text string }{{"publish", p.FirstError}, {"consume", consumeErr(r.Consume)}} {
		if e.text != "" {
			fmt.Fprintf(&b, "\nFirst %s error: `%s`\n", e.what, e.text)
		}
	}

	b.WriteString("\n## Latency (ms)\n\n| | p50 | p75 | p95 | p99 | p99.9 | p99.99 | max | samples |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	latencyRow(&b, "publish (send → ack)", p.Latency)
	if c := r.Consume; c != nil {
		latencyRow(&b, "end-to-end (send → receipt)", c.EndToEnd)
	}
	if p.PacingLag != nil {
		latencyRow(&b, "pacing lag (included above)", *p.PacingLag)
	}
	if r.Settings.TargetRate > 0 {
		b.WriteString("\nAt a fixed rate latency counts from each message's scheduled send time, so stalls are not hidden (no coordinated omission).\n")
	} else {
		b.WriteString("\nAt max rate latency mostly reflects the client's in-flight window (Little's law); compare latencies only at equal fixed rates.\n")
	}

	if bl := r.Backlog; bl != nil {
		b.WriteString("\n## Backlog\n\n| target | built | build s | drained | drain s | drain msg/s | drain MB/s |\n|---:|---:|---:|---|---:|---:|---:|\n")
		fmt.Fprintf(&b, "| %s | %s | %.1f | %v | %.1f | %s | %.2f |\n", bytesFmt(bl.TargetBytes), bytesFmt(bl.BuiltBytes),
			bl.BuildSeconds, bl.Drained, bl.DrainSeconds, thousands(bl.DrainMsgsPerSec), bl.DrainMBPerSec)
		if bl.ProducersDuringDrain {
			b.WriteString("\nProducers kept sending at the target rate during the drain.\n")
		} else {
			b.WriteString("\nProducers stopped when the drain began, and the window closed when it ended.\n")
		}
		b.WriteString("End-to-end latency leaves out messages of the backlog: their latency is the backlog's age.\n")
	}
	if br := r.Broker; br != nil {
		fmt.Fprintf(&b, "\n## Broker resources\n\nMeasured: %s.\n\n", br.Source)
		if br.Error != "" {
			fmt.Fprintf(&b, "Could not read: `%s`\n", br.Error)
		} else {
			b.WriteString("| CPU s | avg cores | RSS max | RSS end |\n|---:|---:|---:|---:|\n")
			fmt.Fprintf(&b, "| %.2f | %.2f | %s | %s |\n", br.CPUSeconds, br.CPUCores, bytesFmt(br.RSSMaxBytes), bytesFmt(br.RSSEndBytes))
		}
	}
	b.WriteString("\nMB = 10^6 bytes. Full data: result.json; chart: chart.svg.\n")
	return b.String()
}

func consumeErr(c *ConsumeStats) string {
	if c == nil {
		return ""
	}
	return c.FirstError
}

func latencyRow(b *strings.Builder, name string, p Percentiles) {
	if p.Count == 0 {
		fmt.Fprintf(b, "| %s | – | – | – | – | – | – | – | 0 |\n", name)
		return
	}
	fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", name, msFmt(p.P50Us), msFmt(p.P75Us), msFmt(p.P95Us),
		msFmt(p.P99Us), msFmt(p.P999Us), msFmt(p.P9999Us), msFmt(p.MaxUs), thousands(float64(p.Count)))
}

// msFmt renders microseconds as milliseconds with 3 significant digits.
func msFmt(us int64) string {
	if us < 1000 {
		return fmt.Sprintf("%.3f", float64(us)/1e3)
	}
	return sig3(float64(us) / 1e3)
}

// thousands renders v rounded, with thin separators: 1234567 → 1,234,567.
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// bytesFmt renders a byte count in decimal units.
func bytesFmt(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}
