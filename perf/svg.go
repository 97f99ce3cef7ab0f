package perf

import (
	"encoding/xml"
	"fmt"
	"math"
	"strings"
)

// The chart is hand-written SVG so the harness needs no plotting library
// and the file opens in any browser. Two panels: throughput per second
// over the whole run (warm-up shaded), and latency by percentile on a
// log-percentile axis, where each "nine" (90%, 99%, 99.9%...) gets the same
// width, so the tail is as visible as the median.

// Layout in SVG user units.
const (
	chartW      = 960
	chartH      = 830
	plotLeft    = 84
	plotRight   = 920
	panel1Top   = 92
	panel1Bot   = 352
	panel2Top   = 476
	panel2Bot   = 736
	colPublish  = "#1f77b4"
	colConsume  = "#e8710a"
	colWarmup   = "#eeeeee"
	colBacklogB = "#fff4d6"
	colBacklogD = "#e3f4e1"
	colTail     = "#f6f6f6"
)

// Chart renders the result as an SVG document.
func (r *Result) Chart() string {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n", chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", chartW, chartH)
	target := "max rate"
	if r.Settings.TargetRate > 0 {
		target = fmt.Sprintf("target %s msg/s", thousands(float64(r.Settings.TargetRate)))
	}
	text(&b, plotLeft, 30, "start", 18, "bold", "strand perf: "+r.Workload.Name)
	text(&b, plotLeft, 52, "start", 12, "", fmt.Sprintf("%s · %s · %d B messages · %s · %s",
		r.Brokers, target, r.Settings.MessageBytes, r.StartedAt.Format("2006-01-02 15:04 MST"), r.Host.Hostname))
	r.throughputPanel(&b)
	r.latencyPanel(&b)
	b.WriteString("</svg>\n")
	return b.String()
}

func (r *Result) throughputPanel(b *strings.Builder) {
	text(b, plotLeft, panel1Top-14, "start", 14, "bold", "Throughput per second (messages/s)")
	n := len(r.Series)
	xMax := float64(max(n, 1))
	var yMax float64
	for _, s := range r.Series {
		yMax = max(yMax, float64(s.PublishMsgs), float64(s.ConsumeMsgs))
	}
	yStep, yTop := niceTicks(yMax, 5)
	xStep, _ := niceTicks(xMax, 10)
	x := func(sec float64) float64 { return plotLeft + (plotRight-plotLeft)*sec/xMax }
	y := func(v float64) float64 { return panel1Bot - (panel1Bot-panel1Top)*v/yTop }

	// Phase shading first, so lines and grid draw over it. Boundaries
	// come from the result's exact times, not from whole seconds.
	for _, ph := range r.phaseSpans(xMax) {
		x0, x1 := x(ph.from), x(ph.to)
		if x1 <= x0 {
			continue
		}
		fmt.Fprintf(b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", x0, panel1Top, x1-x0, panel1Bot-panel1Top, phaseFill(ph.name))
		if x1-x0 > float64(len(ph.name))*6.2+8 {
			text(b, (x0+x1)/2, panel1Top+14, "middle", 11, "", ph.name)
		}
	}
	grid(b, yStep, yTop, y, countFmt)
	for v := 0.0; v <= xMax+1e-9; v += xStep {
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#999"/>`+"\n", x(v), panel1Bot, x(v), panel1Bot+5)
		text(b, x(v), panel1Bot+18, "middle", 11, "", fmt.Sprintf("%g", v))
	}
	text(b, (plotLeft+plotRight)/2, panel1Bot+36, "middle", 12, "", "seconds since start (each point: messages acked / received in that second)")
	axes(b, panel1Top, panel1Bot)

	// Each second's count is plotted at the middle of its second.
	var pub, con []string
	for i, s := range r.Series {
		pub = append(pub, fmt.Sprintf("%.1f,%.1f", x(float64(i)+0.5), y(float64(s.PublishMsgs))))
		con = append(con, fmt.Sprintf("%.1f,%.1f", x(float64(i)+0.5), y(float64(s.ConsumeMsgs))))
	}
	legend := []legendItem{{colPublish, fmt.Sprintf("publish · %s msg/s, %.1f MB/s", thousands(r.Publish.MsgsPerSec), r.Publish.MBPerSec)}}
	polyline(b, pub, colPublish)
	if r.Consume != nil {
		polyline(b, con, colConsume)
		legend = append(legend, legendItem{colConsume, fmt.Sprintf("consume · %s msg/s, %.1f MB/s", thousands(r.Consume.MsgsPerSec), r.Consume.MBPerSec)})
	}
	drawLegendRow(b, plotRight, panel1Top-14, legend)
	if yMax == 0 {
		text(b, (plotLeft+plotRight)/2, (panel1Top+panel1Bot)/2, "middle", 14, "", "no messages")
	}
}

// phaseSpan is a shaded stretch of the throughput panel, in seconds.
type phaseSpan struct {
	name     string
	from, to float64
}

// phaseSpans lists the warm-up, backlog and tail stretches of the run.
func (r *Result) phaseSpans(end float64) []phaseSpan {
	w := r.Settings.WarmupSeconds
	spans := []phaseSpan{{"warmup", 0, w}}
	if bl := r.Backlog; bl != nil && bl.BuiltBytes > 0 {
		spans = append(spans, phaseSpan{"backlog-build", w, w + bl.BuildSeconds})
		if bl.Drained {
			spans = append(spans, phaseSpan{"backlog-drain", w + bl.BuildSeconds, w + bl.BuildSeconds + bl.DrainSeconds})
		}
	}
	return append(spans, phaseSpan{"tail", w + r.MeasuredSeconds, end})
}

func phaseFill(phase string) string {
	switch phase {
	case "warmup":
		return colWarmup
	case "backlog-build":
		return colBacklogB
	case "backlog-drain":
		return colBacklogD
	case "tail":
		return colTail
	}
	return ""
}

func (r *Result) latencyPanel(b *strings.Builder) {
	text(b, plotLeft, panel2Top-30, "start", 14, "bold", "Latency by percentile (ms), measured window only")
	note := "Latency counts from the intended send time"
	if r.Settings.TargetRate > 0 {
		note += ": at a fixed rate, the scheduled time (no coordinated omission)"
	}
	text(b, plotLeft, panel2Top-12, "start", 11, "", note+".")
	type curve struct {
		color, name string
		p           Percentiles
		pts         []CurvePoint
	}
	curves := []curve{{colPublish, "publish (send → ack)", r.Publish.Latency, r.Publish.LatencyCurve}}
	if r.Consume != nil {
		curves = append(curves, curve{colConsume, "end-to-end (send → receipt)", r.Consume.EndToEnd, r.Consume.EndToEndCurve})
	}
	xMax, yMax := 2.0, 0.0
	for _, c := range curves {
		if c.p.Count > 0 {
			xMax = max(xMax, math.Ceil(math.Log10(float64(c.p.Count))))
		}
		yMax = max(yMax, float64(c.p.MaxUs)/1e3)
	}
	xMax = min(xMax, 7)
	yStep, yTop := niceTicks(yMax, 5)
	x := func(p float64, count int64) float64 {
		nn := nines(p)
		if math.IsInf(nn, 1) { // the max: at the last resolvable percentile
			nn = math.Log10(float64(count))
		}
		return plotLeft + (plotRight-plotLeft)*min(nn, xMax)/xMax
	}
	y := func(ms float64) float64 { return panel2Bot - (panel2Bot-panel2Top)*ms/yTop }
	grid(b, yStep, yTop, y, func(v float64) string { return fmt.Sprintf("%g", v) })
	for i := 0.0; i <= xMax; i++ {
		px := plotLeft + (plotRight-plotLeft)*i/xMax
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e5e5e5"/>`+"\n", px, panel2Top, px, panel2Bot)
		text(b, px, panel2Bot+18, "middle", 11, "", percentLabel(i))
	}
	text(b, (plotLeft+plotRight)/2, panel2Bot+36, "middle", 12, "", "percentile (log scale: each step adds a nine)")
	axes(b, panel2Top, panel2Bot)
	var legend []legendItem
	for _, c := range curves {
		var pts []string
		for _, pt := range c.pts {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(pt.Percentile, c.p.Count), y(float64(pt.ValueUs)/1e3)))
		}
		polyline(b, pts, c.color)
		if c.p.Count == 0 {
			legend = append(legend, legendItem{c.color, c.name + " · no samples in the window"})
			continue
		}
		legend = append(legend, legendItem{c.color, fmt.Sprintf("%s · p50 %s · p99 %s · p99.9 %s · max %s",
			c.name, usFmt(c.p.P50Us), usFmt(c.p.P99Us), usFmt(c.p.P999Us), usFmt(c.p.MaxUs))})
	}
	drawLegend(b, plotLeft, panel2Bot+52, legend) // below the axis: the tail can reach any corner
	if yMax == 0 {
		text(b, (plotLeft+plotRight)/2, (panel2Top+panel2Bot)/2, "middle", 14, "", "no latency samples")
	}
}

// percentLabel names the percentile at i nines: 0%, 90%, 99%, 99.9%...
func percentLabel(i float64) string {
	if i == 0 {
		return "0%"
	}
	return fmt.Sprintf("%.*f%%", max(int(i)-2, 0), 100*(1-math.Pow(10, -i)))
}

// niceTicks picks a step of 1, 2 or 5 × 10^k giving about n intervals up
// to vmax, and the axis top (a multiple of the step, never 0).
func niceTicks(vmax float64, n int) (step, top float64) {
	if vmax <= 0 {
		return 1, float64(n)
	}
	raw := vmax / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	switch norm := raw / mag; {
	case norm <= 1:
		step = mag
	case norm <= 2:
		step = 2 * mag
	case norm <= 5:
		step = 5 * mag
	default:
		step = 10 * mag
	}
	return step, math.Ceil(vmax/step-1e-9) * step
}

// countFmt renders an axis count compactly: 250k, 1.5M.
func countFmt(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", math.Round(v/1e4)/100)
	case v >= 1e3:
		return fmt.Sprintf("%gk", math.Round(v/10)/100)
	}
	return fmt.Sprintf("%g", v)
}

func grid(b *strings.Builder, step, yTop float64, y func(float64) float64, label func(float64) string) {
	for v := 0.0; v <= yTop+step/2; v += step {
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e5e5e5"/>`+"\n", plotLeft, y(v), plotRight, y(v))
		text(b, plotLeft-8, y(v)+4, "end", 11, "", label(v))
	}
}

func axes(b *strings.Builder, top, bot int) {
	fmt.Fprintf(b, `<polyline points="%d,%d %d,%d %d,%d" fill="none" stroke="#444"/>`+"\n", plotLeft, top, plotLeft, bot, plotRight, bot)
}

func polyline(b *strings.Builder, pts []string, color string) {
	if len(pts) == 0 {
		return
	}
	fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2" stroke-linejoin="round"/>`+"\n", strings.Join(pts, " "), color)
}

type legendItem struct{ color, label string }

func drawLegend(b *strings.Builder, x, y float64, items []legendItem) {
	width := 0
	for _, it := range items {
		width = max(width, len([]rune(it.label)))
	}
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%d" fill="white" fill-opacity="0.85" stroke="#ccc"/>`+"\n", x-6, y-4, float64(width)*6.2+40, 18*len(items)+6)
	for i, it := range items {
		ly := y + 18*float64(i) + 9
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="3"/>`+"\n", x, ly, x+22, ly, it.color)
		text(b, x+30, ly+4, "start", 11, "", it.label)
	}
}

// drawLegendRow lays items out in one row ending at right.
func drawLegendRow(b *strings.Builder, right, y float64, items []legendItem) {
	x := right
	for i := len(items) - 1; i >= 0; i-- {
		x -= float64(len([]rune(items[i].label)))*6.2 + 36
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="3"/>`+"\n", x, y-4, x+22, y-4, items[i].color)
		text(b, x+28, y, "start", 11, "", items[i].label)
	}
}

func text(b *strings.Builder, x, y float64, anchor string, size int, weight, s string) {
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="%s" font-size="%d"`, x, y, anchor, size)
	if weight != "" {
		fmt.Fprintf(b, ` font-weight="%s"`, weight)
	}
	b.WriteString(">")
	_ = xml.EscapeText(b, []byte(s)) // a strings.Builder never fails
	b.WriteString("</text>\n")
}
