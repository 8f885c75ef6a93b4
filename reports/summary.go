package reports

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"sort"
	"time"

	"github.com/simbulk/simbulk/pipeline"
)

// SchemaVersion is summary.json's schema_version. It changes only when a
// field changes meaning or goes away; new fields keep the version.
const SchemaVersion = 1

// NoProvider labels rows that name no provider (typically invalid rows
// whose provider was missing) in by_provider.
const NoProvider = "(none)"

// topErrorsLimit is how many error codes the summaries list.
const topErrorsLimit = 10

// Summary is summary.json, and what summary.html and the Summary sheet
// show. The schema is documented in doc.go.
type Summary struct {
	SchemaVersion   int                        `json:"schema_version"`
	RunID           string                     `json:"run_id"`
	Manifest        string                     `json:"manifest"`
	State           pipeline.RunState          `json:"state"`
	StartedAt       time.Time                  `json:"started_at"`
	UpdatedAt       time.Time                  `json:"updated_at"`
	FinishedAt      *time.Time                 `json:"finished_at"`
	GeneratedAt     time.Time                  `json:"generated_at"`
	DurationSeconds float64                    `json:"duration_seconds"`
	Rows            int                        `json:"rows"`
	Counts          pipeline.Counts            `json:"counts"`
	ByProvider      map[string]pipeline.Counts `json:"by_provider"`
	TopErrors       []TopError                 `json:"top_errors"`
	Throughput      Throughput                 `json:"throughput"`
	LatencyMs       map[string]Latency         `json:"latency_ms"`
	Drift           *Drift                     `json:"drift,omitempty"`
	// Workbook says what report.xlsx leaves out; absent when it holds
	// everything (or was not written).
	Workbook *WorkbookCut `json:"workbook_cut,omitempty"`
	// Counters are named counts of events around the run, summed over
	// every process that worked on it (callback_rejected_<reason>: ThingSpace
	// callback deliveries the listener refused); absent when none.
	Counters map[string]int64 `json:"counters,omitempty"`
}

// WorkbookCut is what report.xlsx leaves out of tables wider than a sheet
// (XLSX holds at most 16,384 columns). The CSV files keep every column.
type WorkbookCut struct {
	// ColumnsLeftOut is how many columns the most cut data sheet lacks.
	ColumnsLeftOut int `json:"columns_left_out"`
	// SheetColumns is the most columns a sheet holds.
	SheetColumns int `json:"sheet_columns"`
	// Note says the same in a sentence, for people.
	Note string `json:"note"`
}

// cleanSummary replaces control characters in the summary's text (see
// clean), in place: the summary is written as JSON, HTML and a sheet, and
// encoding/json and html/template let DEL and the C1 controls through raw.
func cleanSummary(s *Summary) {
	s.RunID = clean(s.RunID)
	s.Manifest = clean(s.Manifest)
	for i, e := range s.TopErrors {
		s.TopErrors[i].Code, s.TopErrors[i].Message = clean(e.Code), clean(e.Message)
	}
	s.ByProvider = cleanKeys(s.ByProvider)
	s.LatencyMs = cleanKeys(s.LatencyMs)
	s.Counters = cleanKeys(s.Counters)
}

// cleanKeys returns m with its keys cleaned. Two keys that clean to the
// same text (they differ only in control characters) keep the value of
// the one first in byte order, so that the result does not depend on map
// order; such provider names never pass ingest, so this is theory.
func cleanKeys[V any](m map[string]V) map[string]V {
	dirty := false
	for k := range m {
		if clean(k) != k {
			dirty = true
			break
		}
	}
	if !dirty {
		return m
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make(map[string]V, len(m))
	for _, k := range keys {
		if _, ok := out[clean(k)]; !ok {
			out[clean(k)] = m[k]
		}
	}
	return out
}

// cleanDrift returns a copy of d with control characters replaced (see
// clean); d is the caller's and stays as it was.
func cleanDrift(d *Drift) *Drift {
	c := *d
	if d.Items != nil {
		c.Items = make([]DriftItem, len(d.Items))
	}
	for i, it := range d.Items {
		it.Provider, it.ID, it.Kind = clean(it.Provider), clean(it.ID), clean(it.Kind)
		it.Expected, it.Actual = clean(it.Expected), clean(it.Actual)
		c.Items[i] = it
	}
	return &c
}

// TopError is one error code of failed and invalid rows.
type TopError struct {
	Code    string `json:"code"`
	Count   int    `json:"count"`
	Message string `json:"message"` // one of the rows' messages, as an example
}

// Throughput is how fast rows reached succeeded or failed.
type Throughput struct {
	// RowsPerSecond is succeeded plus failed rows over duration_seconds.
	RowsPerSecond float64 `json:"rows_per_second"`
	// PeakRowsPerMinute is the busiest minute's count.
	PeakRowsPerMinute int `json:"peak_rows_per_minute"`
	// PerMinute lists the minutes in which rows finished, in time order;
	// minutes with none are left out.
	PerMinute []Minute `json:"per_minute"`
	// Fine is the same in seconds-long buckets, for runs that finished
	// within a few minutes, where minutes would be one or two columns;
	// absent for longer runs.
	Fine *FineThroughput `json:"fine,omitempty"`
}

// FineThroughput counts finished rows in buckets of BucketSeconds.
type FineThroughput struct {
	BucketSeconds int      `json:"bucket_seconds"`
	Buckets       []Bucket `json:"buckets"` // in time order; empty buckets left out
}

// Bucket is one bucket of FineThroughput.
type Bucket struct {
	Start     time.Time `json:"start"` // UTC
	Succeeded int       `json:"succeeded"`
	Failed    int       `json:"failed"`
}

// fineThroughput reads a short run's finished rows per second and sums
// them into buckets that cut its span into at most about 60 columns; nil
// when the span needs more than 10-second buckets.
func fineThroughput(ctx context.Context, v pipeline.ReportView) (*FineThroughput, error) {
	secs, err := v.FinishedPer(ctx, time.Second)
	if err != nil || len(secs) == 0 {
		return nil, err
	}
	first := secs[0].Start
	b := fineBucket(secs[len(secs)-1].Start.Add(time.Second).Sub(first))
	if b == 0 {
		return nil, nil
	}
	f := &FineThroughput{BucketSeconds: int(b / time.Second)}
	for _, sec := range secs {
		start := first.Add(sec.Start.Sub(first).Truncate(b))
		if n := len(f.Buckets); n == 0 || !f.Buckets[n-1].Start.Equal(start) {
			f.Buckets = append(f.Buckets, Bucket{Start: start})
		}
		last := &f.Buckets[len(f.Buckets)-1]
		last.Succeeded += sec.Succeeded
		last.Failed += sec.Failed
	}
	return f, nil
}

// fineBucket picks a bucket of whole seconds that cuts span into at most
// 60 columns, or 0 when that would take more than 10 seconds.
func fineBucket(span time.Duration) time.Duration {
	for _, b := range []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second} {
		if span <= 60*b {
			return b
		}
	}
	return 0
}

// Minute is one minute of throughput.
type Minute struct {
	Minute    time.Time `json:"minute"` // start of the minute, UTC
	Succeeded int       `json:"succeeded"`
	Failed    int       `json:"failed"`
}

// Latency summarises the request latencies of one provider.
type Latency struct {
	Count int   `json:"count"`
	P50   int64 `json:"p50"`
	P95   int64 `json:"p95"`
	P99   int64 `json:"p99"`
	Max   int64 `json:"max"`
}

// Drift is a reconciliation's result, in the shape `simbulk reconcile
// --json` prints. Reports show it when one is given.
type Drift struct {
	Checked int         `json:"checked"`
	InSync  int         `json:"in_sync"`
	Items   []DriftItem `json:"drift"`
}

// DriftItem is one row whose provider state differs from what the
// manifest and checkpoint say.
type DriftItem struct {
	Row      int    `json:"row"`
	Provider string `json:"provider"`
	ID       string `json:"id"`
	Kind     string `json:"kind"` // missing | mismatch | state
	Expected string `json:"expected"`
	Actual   string `json:"actual"`
}

// Unfinished is how many rows still need work.
func (s *Summary) Unfinished() int {
	return s.Counts[pipeline.Pending] + s.Counts[pipeline.InFlight] + s.Counts[pipeline.Accepted]
}

// Providers returns the provider names of by_provider, sorted, with
// NoProvider last.
func (s *Summary) Providers() []string {
	var out []string
	for p := range s.ByProvider {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i] == NoProvider) != (out[j] == NoProvider) {
			return out[j] == NoProvider
		}
		return out[i] < out[j]
	})
	return out
}

// LatencyProviders returns the providers with latency figures, sorted.
func (s *Summary) LatencyProviders() []string {
	var out []string
	for p := range s.LatencyMs {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// buildSummary reads the figures of a run from the view.
func buildSummary(ctx context.Context, v pipeline.ReportView, now time.Time) (*Summary, error) {
	run := v.Run()
	s := &Summary{
		SchemaVersion: SchemaVersion,
		RunID:         run.ID,
		Manifest:      run.Manifest,
		State:         run.State,
		StartedAt:     run.CreatedAt.UTC(),
		UpdatedAt:     run.UpdatedAt.UTC(),
		GeneratedAt:   now.UTC().Truncate(time.Millisecond),
		ByProvider:    map[string]pipeline.Counts{},
		TopErrors:     []TopError{},
		LatencyMs:     map[string]Latency{},
	}
	if len(run.Counters) > 0 {
		s.Counters = run.Counters
	}
	end := run.FinishedAt
	if end.IsZero() {
		// Not finished: the run has lasted until its last recorded change.
		last, err := v.LastChange(ctx)
		if err != nil {
			return nil, err
		}
		end = run.UpdatedAt
		if last.After(end) {
			end = last
		}
	} else {
		f := run.FinishedAt.UTC()
		s.FinishedAt = &f
	}
	s.DurationSeconds = max(0, end.Sub(run.CreatedAt).Seconds())

	byProvider, err := v.CountsByProvider(ctx)
	if err != nil {
		return nil, err
	}
	s.Counts = pipeline.Counts{}
	for p, c := range byProvider {
		if p == "" {
			p = NoProvider
		}
		s.ByProvider[p] = c
		for st, n := range c {
			s.Counts[st] += n
			s.Rows += n
		}
	}

	errs, err := v.TopErrors(ctx, topErrorsLimit)
	if err != nil {
		return nil, err
	}
	for _, e := range errs {
		s.TopErrors = append(s.TopErrors, TopError{Code: e.Code, Count: e.Count, Message: e.Message})
	}

	minutes, err := v.FinishedPer(ctx, time.Minute)
	if err != nil {
		return nil, err
	}
	s.Throughput.PerMinute = make([]Minute, 0, len(minutes))
	for _, m := range minutes {
		s.Throughput.PerMinute = append(s.Throughput.PerMinute, Minute{Minute: m.Start, Succeeded: m.Succeeded, Failed: m.Failed})
		s.Throughput.PeakRowsPerMinute = max(s.Throughput.PeakRowsPerMinute, m.Succeeded+m.Failed)
	}
	if len(minutes) > 0 && minutes[len(minutes)-1].Start.Sub(minutes[0].Start) < 10*time.Minute {
		if s.Throughput.Fine, err = fineThroughput(ctx, v); err != nil {
			return nil, err
		}
	}
	if s.DurationSeconds > 0 {
		s.Throughput.RowsPerSecond = round(float64(s.Counts[pipeline.Succeeded]+s.Counts[pipeline.Failed])/s.DurationSeconds, 4)
	}

	lat, err := v.Latencies(ctx)
	if err != nil {
		return nil, err
	}
	for p, hist := range lat {
		if p == "" {
			p = NoProvider
		}
		s.LatencyMs[p] = percentiles(hist)
	}
	s.DurationSeconds = round(s.DurationSeconds, 3)
	return s, nil
}

// percentiles reads nearest-rank percentiles from an ascending histogram
// of latencies: p is the smallest latency at or below which at least p%
// of the requests fall.
func percentiles(hist []pipeline.LatencyCount) Latency {
	var l Latency
	for _, h := range hist {
		l.Count += h.Count
	}
	if l.Count == 0 {
		return l
	}
	rank := func(p float64) int { return max(1, int(math.Ceil(p/100*float64(l.Count)))) }
	targets := []struct {
		rank int
		dst  *int64
	}{{rank(50), &l.P50}, {rank(95), &l.P95}, {rank(99), &l.P99}, {l.Count, &l.Max}}
	seen, t := 0, 0
	for _, h := range hist {
		seen += h.Count
		for t < len(targets) && seen >= targets[t].rank {
			*targets[t].dst = h.Millis
			t++
		}
	}
	return l
}

func round(x float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(x*p) / p
}

func writeJSON(w io.Writer, s *Summary) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}
