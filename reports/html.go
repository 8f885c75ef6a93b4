package reports

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/simbulk/simbulk/pipeline"
)

// summary.html is one self-contained file: inline CSS and SVG charts drawn
// here, no script and nothing fetched, so it opens offline and can be
// mailed or archived as it is. Every chart is an <svg id="chart-…"
// data-chart="…"> whose bars are <rect class="bar" data-series data-label
// data-value>, and every headline figure an element with data-metric and
// data-value (the raw number): tools and tests find them without parsing
// display text.

//go:embed summary.html.tmpl
var htmlSource string

var htmlTemplate = template.Must(template.New("summary").Funcs(template.FuncMap{
	"num":  formatInt,
	"rate": formatRate,
	"time": func(t time.Time) string { return t.UTC().Format(timeLayout) },
}).Parse(htmlSource))

// Chart geometry, in SVG user units (pixels at 100%).
const (
	chartWidth  = 760
	labelWidth  = 150 // left margin for provider names and error codes
	valueWidth  = 80  // right margin for totals
	rowHeight   = 30
	barHeight   = 18
	plotHeight  = 180 // throughput plot area
	axisWidth   = 60  // left margin of the throughput chart
	maxColumns  = 120 // throughput bars at most; longer runs use wider buckets
	legendSpace = 28
)

// stateOrder is the order in which outcome segments stack.
var stateOrder = []pipeline.State{pipeline.Succeeded, pipeline.Failed, pipeline.Invalid, pipeline.Skipped,
	pipeline.Accepted, pipeline.InFlight, pipeline.Pending}

type page struct {
	S          *Summary
	Metrics    []metric
	Outcomes   chart
	Throughput chart
	Latency    chart
	Errors     chart
	Providers  []providerRow
	Latencies  []latencyRow
	States     []pipeline.State
	Drift      *driftView
}

type metric struct {
	Key, Label, Display, Value string
}

type providerRow struct {
	Name   string
	Counts []int
	Total  int
}

type latencyRow struct {
	Name string
	L    Latency
}

type driftView struct {
	D     *Drift
	Shown []DriftItem
	More  int
}

// chart is an SVG drawing: bars that carry their data, and text.
type chart struct {
	ID, Kind, Title string
	Width, Height   int
	Empty           string // shown instead of bars when there is no data
	Bars            []bar
	Texts           []text
	Lines           []line
	Legend          []legendItem
}

type bar struct {
	X, Y, W, H           string
	Class                string
	Series, Label, Value string
	Title                string
}

type text struct {
	X, Y, Anchor, Class, Text string
}

type line struct{ X1, Y1, X2, Y2 string }

type legendItem struct {
	X, Y, TX, TY string
	Class, Text  string
}

func px(v float64) string { return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64) }

func writeHTML(w io.Writer, s *Summary) error {
	p := &page{S: s, States: stateOrder}
	unfinished := s.Unfinished()
	p.Metrics = []metric{
		{"rows", "Rows", formatInt(s.Rows), strconv.Itoa(s.Rows)},
		{"succeeded", "Succeeded", formatInt(s.Counts[pipeline.Succeeded]), strconv.Itoa(s.Counts[pipeline.Succeeded])},
		{"failed", "Failed", formatInt(s.Counts[pipeline.Failed]), strconv.Itoa(s.Counts[pipeline.Failed])},
		{"invalid", "Invalid", formatInt(s.Counts[pipeline.Invalid]), strconv.Itoa(s.Counts[pipeline.Invalid])},
		{"skipped", "Skipped", formatInt(s.Counts[pipeline.Skipped]), strconv.Itoa(s.Counts[pipeline.Skipped])},
		{"unfinished", "Not finished", formatInt(unfinished), strconv.Itoa(unfinished)},
		{"duration_seconds", "Duration", formatDuration(s.DurationSeconds), strconv.FormatFloat(s.DurationSeconds, 'f', -1, 64)},
		{"rows_per_second", "Rows per second", formatRate(s.Throughput.RowsPerSecond), strconv.FormatFloat(s.Throughput.RowsPerSecond, 'f', -1, 64)},
	}
	for _, name := range s.Providers() {
		c := s.ByProvider[name]
		row := providerRow{Name: name, Total: c.Total()}
		for _, st := range stateOrder {
			row.Counts = append(row.Counts, c[st])
		}
		p.Providers = append(p.Providers, row)
	}
	for _, name := range s.LatencyProviders() {
		p.Latencies = append(p.Latencies, latencyRow{Name: name, L: s.LatencyMs[name]})
	}
	p.Outcomes = outcomesChart(s)
	p.Throughput = throughputChart(s)
	p.Latency = latencyChart(s)
	p.Errors = errorsChart(s)
	if s.Drift != nil {
		const shown = 200 // the full list is in summary.json
		d := &driftView{D: s.Drift, Shown: s.Drift.Items}
		if len(d.Shown) > shown {
			d.Shown, d.More = d.Shown[:shown], len(d.Shown)-shown
		}
		p.Drift = d
	}
	return htmlTemplate.Execute(w, p)
}

// outcomesChart stacks each provider's rows by state, on one scale for
// all providers so that their sizes compare.
func outcomesChart(s *Summary) chart {
	c := chart{ID: "chart-outcomes", Kind: "outcomes", Title: "Outcome per provider", Width: chartWidth}
	providers := s.Providers()
	if len(providers) == 0 {
		c.Empty = "No rows in this run."
		c.Height = 40
		return c
	}
	maxTotal := 0
	for _, name := range providers {
		maxTotal = max(maxTotal, s.ByProvider[name].Total())
	}
	c.Legend = legend(stateSeries(stateOrder), 0)
	scale := float64(chartWidth-labelWidth-valueWidth) / float64(max(maxTotal, 1))
	for i, name := range providers {
		counts := s.ByProvider[name]
		y := float64(legendSpace + i*rowHeight)
		c.Texts = append(c.Texts, text{X: px(labelWidth - 8), Y: px(y + barHeight - 4), Anchor: "end", Class: "label", Text: name})
		x := float64(labelWidth)
		for _, st := range stateOrder {
			n := counts[st]
			if n == 0 {
				continue
			}
			w := max(float64(n)*scale, 1) // a state with rows stays visible
			c.Bars = append(c.Bars, bar{X: px(x), Y: px(y), W: px(w), H: px(barHeight), Class: "s-" + string(st),
				Series: string(st), Label: name, Value: strconv.Itoa(n), Title: fmt.Sprintf("%s: %s %s", name, formatInt(n), st)})
			x += w
		}
		c.Texts = append(c.Texts, text{X: px(x + 6), Y: px(y + barHeight - 4), Anchor: "start", Class: "value", Text: formatInt(counts.Total())})
	}
	c.Height = legendSpace + len(providers)*rowHeight + 4
	return c
}

// throughputChart draws rows finished over time as stacked columns
// (succeeded below, failed above), zero-filled between the first and last
// busy interval: seconds-long buckets for a short run (Throughput.Fine),
// else minutes, grouped several to a column so that a long run still fits.
func throughputChart(s *Summary) chart {
	c := chart{ID: "chart-throughput", Kind: "throughput", Width: chartWidth}
	type point struct {
		at         time.Time
		succ, fail int
	}
	unit := time.Minute
	var pts []point
	if f := s.Throughput.Fine; f != nil && len(f.Buckets) > 0 {
		unit = time.Duration(f.BucketSeconds) * time.Second
		for _, b := range f.Buckets {
			pts = append(pts, point{b.Start, b.Succeeded, b.Failed})
		}
	} else {
		for _, m := range s.Throughput.PerMinute {
			pts = append(pts, point{m.Minute, m.Succeeded, m.Failed})
		}
	}
	if len(pts) == 0 {
		c.Title = "Rows finished per minute"
		c.Empty = "No rows have finished yet."
		c.Height = 40
		return c
	}
	first, last := pts[0].at, pts[len(pts)-1].at
	span := int(last.Sub(first)/unit) + 1
	group := max(1, (span+maxColumns-1)/maxColumns)
	n := (span + group - 1) / group
	succ := make([]int, n)
	fail := make([]int, n)
	for _, p := range pts {
		i := int(p.at.Sub(first)/unit) / group
		succ[i] += p.succ
		fail[i] += p.fail
	}
	peak := 0
	for i := range succ {
		peak = max(peak, succ[i]+fail[i])
	}
	bucket := time.Duration(group) * unit
	c.Title = "Rows finished per " + describeInterval(bucket)
	labelFormat := "15:04"
	if unit < time.Minute {
		labelFormat = "15:04:05"
	}
	top := float64(legendSpace + 8)
	plotW := float64(chartWidth - axisWidth - 10)
	colW := plotW / float64(n)
	gap := min(colW*0.2, 4)
	scale := plotHeight / float64(max(peak, 1))
	base := top + plotHeight
	c.Legend = legend([]series{{"succeeded", "s-succeeded"}, {"failed", "s-failed"}}, 0)
	for _, f := range []float64{0, 0.5, 1} {
		y := base - f*plotHeight
		c.Lines = append(c.Lines, line{X1: px(axisWidth), Y1: px(y), X2: px(chartWidth - 10), Y2: px(y)})
		c.Texts = append(c.Texts, text{X: px(axisWidth - 6), Y: px(y + 4), Anchor: "end", Class: "axis", Text: formatInt(int(math.Round(f * float64(peak))))})
	}
	for i := range n {
		x := axisWidth + float64(i)*colW + gap/2
		t := first.Add(time.Duration(i) * bucket)
		y := base
		for _, seg := range []struct {
			name string
			v    int
		}{{"succeeded", succ[i]}, {"failed", fail[i]}} {
			if seg.v == 0 {
				continue
			}
			h := max(float64(seg.v)*scale, 1)
			y -= h
			c.Bars = append(c.Bars, bar{X: px(x), Y: px(y), W: px(max(colW-gap, 1)), H: px(h), Class: "s-" + seg.name,
				Series: seg.name, Label: t.Format(time.RFC3339), Value: strconv.Itoa(seg.v),
				Title: fmt.Sprintf("%s: %s %s", t.Format(labelFormat), formatInt(seg.v), seg.name)})
		}
	}
	labelY := px(base + 16)
	c.Texts = append(c.Texts,
		text{X: px(axisWidth), Y: labelY, Anchor: "start", Class: "axis", Text: first.Format("2006-01-02 " + labelFormat + " UTC")},
		text{X: px(chartWidth - 10), Y: labelY, Anchor: "end", Class: "axis", Text: first.Add(time.Duration(n) * bucket).Format(labelFormat)})
	c.Height = int(base) + 24
	return c
}

// latencyChart shows p50, p95 and p99 of each provider's requests as
// grouped bars on one scale.
func latencyChart(s *Summary) chart {
	c := chart{ID: "chart-latency", Kind: "latency", Title: "Request latency per provider (ms)", Width: chartWidth}
	providers := s.LatencyProviders()
	if len(providers) == 0 {
		c.Empty = "No requests recorded."
		c.Height = 40
		return c
	}
	var top int64 = 1
	for _, name := range providers {
		top = max(top, s.LatencyMs[name].P99)
	}
	c.Legend = legend([]series{{"p50", "p-p50"}, {"p95", "p-p95"}, {"p99", "p-p99"}}, 0)
	scale := float64(chartWidth-labelWidth-valueWidth) / float64(top)
	const h, group = 10.0, 3*10.0 + 14
	for i, name := range providers {
		l := s.LatencyMs[name]
		y0 := float64(legendSpace) + float64(i)*group
		c.Texts = append(c.Texts, text{X: px(labelWidth - 8), Y: px(y0 + 19), Anchor: "end", Class: "label", Text: name})
		for j, pv := range []struct {
			name string
			v    int64
		}{{"p50", l.P50}, {"p95", l.P95}, {"p99", l.P99}} {
			y := y0 + float64(j)*h
			w := max(float64(pv.v)*scale, 1)
			c.Bars = append(c.Bars, bar{X: px(labelWidth), Y: px(y), W: px(w), H: px(h - 1), Class: "p-" + pv.name,
				Series: pv.name, Label: name, Value: strconv.FormatInt(pv.v, 10),
				Title: fmt.Sprintf("%s %s: %s ms", name, pv.name, formatInt(int(pv.v)))})
			c.Texts = append(c.Texts, text{X: px(labelWidth + w + 6), Y: px(y + h - 1), Anchor: "start", Class: "value small", Text: formatInt(int(pv.v)) + " ms"})
		}
	}
	c.Height = legendSpace + int(group)*len(providers)
	return c
}

// errorsChart ranks the most frequent error codes.
func errorsChart(s *Summary) chart {
	c := chart{ID: "chart-errors", Kind: "errors", Title: "Top errors (failed and invalid rows)", Width: chartWidth}
	if len(s.TopErrors) == 0 {
		c.Empty = "No failed or invalid rows."
		c.Height = 40
		return c
	}
	top := 1
	for _, e := range s.TopErrors {
		top = max(top, e.Count)
	}
	scale := float64(chartWidth-labelWidth-valueWidth) / float64(top)
	for i, e := range s.TopErrors {
		y := float64(4 + i*rowHeight)
		w := max(float64(e.Count)*scale, 1)
		c.Texts = append(c.Texts, text{X: px(labelWidth - 8), Y: px(y + barHeight - 4), Anchor: "end", Class: "label", Text: shorten(e.Code, 22)})
		c.Bars = append(c.Bars, bar{X: px(labelWidth), Y: px(y), W: px(w), H: px(barHeight), Class: "err",
			Series: "errors", Label: e.Code, Value: strconv.Itoa(e.Count), Title: fmt.Sprintf("%s: %s rows, e.g. %s", e.Code, formatInt(e.Count), e.Message)})
		c.Texts = append(c.Texts, text{X: px(labelWidth + w + 6), Y: px(y + barHeight - 4), Anchor: "start", Class: "value", Text: formatInt(e.Count)})
	}
	c.Height = 8 + len(s.TopErrors)*rowHeight
	return c
}

type series struct{ name, class string }

func stateSeries(states []pipeline.State) []series {
	out := make([]series, len(states))
	for i, st := range states {
		out[i] = series{string(st), "s-" + string(st)}
	}
	return out
}

// legend lays out colour keys in a row at the top of a chart.
func legend(ss []series, y float64) []legendItem {
	var out []legendItem
	x := float64(labelWidth)
	for _, s := range ss {
		out = append(out, legendItem{X: px(x), Y: px(y + 6), TX: px(x + 16), TY: px(y + 16), Class: s.class, Text: s.name})
		x += 16 + 7.2*float64(len(s.name)) + 14
	}
	return out
}

func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// formatInt writes 1234567 as 1,234,567.
func formatInt(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// formatRate writes a rate with about three significant digits: 1234,
// 12.3, 0.0833.
func formatRate(r float64) string {
	switch {
	case r >= 100:
		return formatInt(int(math.Round(r)))
	case r >= 10:
		return strconv.FormatFloat(r, 'f', 1, 64)
	}
	return strconv.FormatFloat(r, 'g', 3, 64)
}

// formatDuration writes seconds as 1h 02m 03s.
func formatDuration(sec float64) string {
	d := time.Duration(sec * float64(time.Second)).Round(time.Second)
	h, m, s := int(d/time.Hour), int(d%time.Hour/time.Minute), int(d%time.Minute/time.Second)
	switch {
	case h > 0:
		return fmt.Sprintf("%dh %02dm %02ds", h, m, s)
	case m > 0:
		return fmt.Sprintf("%dm %02ds", m, s)
	}
	return fmt.Sprintf("%ds", s)
}

// describeInterval names a bucket for a chart title: "minute", "5 minutes",
// "second", "10 seconds".
func describeInterval(d time.Duration) string {
	switch {
	case d == time.Second:
		return "second"
	case d == time.Minute:
		return "minute"
	case d%time.Minute == 0:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
	return fmt.Sprintf("%d seconds", d/time.Second)
}
