package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/simbulk/simbulk/ingest"
	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/pipeline/metrics"
	"github.com/simbulk/simbulk/pipeline/rollout"
	"github.com/simbulk/simbulk/pipeline/sqlite"
	"github.com/simbulk/simbulk/providers"
	_ "github.com/simbulk/simbulk/providers/all" // the providers of the sample manifest
	"github.com/simbulk/simbulk/providers/simkit"
	"github.com/simbulk/simbulk/providers/simset"
	"github.com/simbulk/simbulk/samples"
)

// TestRolloutMetrics provisions samples/mixed.csv against the simulators,
// answering 429 or 503 to some requests, and checks what /metrics says,
// scraped over HTTP, against the manifest and the checkpoint.
func TestRolloutMetrics(t *testing.T) {
	dir := t.TempDir()
	cp, err := sqlite.Open(filepath.Join(dir, "simbulk.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	sims := simset.New(simkit.Faults{FaultRate: 0.25, Kinds: []simkit.Fault{simkit.TooMany, simkit.Unavailable},
		RetryAfter: 100 * time.Millisecond, Seed: 3}, 20*time.Millisecond, simkit.Documented)
	defer sims.Close()
	base, stop, err := simset.ServeLoopback(sims, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	m := metrics.New(cp)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	svc := &rollout.Service{Store: cp, Lanes: simLanes(base)}
	manifest := filepath.Join("..", "..", "samples", "mixed.csv")
	var runID string
	res, err := svc.Start(t.Context(), manifest, m.Instrument(rollout.Options{
		Events: func(ev rollout.Event) {
			if s, ok := ev.(rollout.Started); ok {
				runID = s.Run.ID
			}
		}}))
	if err != nil {
		t.Fatal(err)
	}
	if res.State != pipeline.RunCompleted || res.Counts[pipeline.Succeeded] != 30 {
		t.Fatalf("run ended %s with %v, want completed with 30 succeeded", res.State, res.Counts)
	}

	got := scrape(t, srv.URL)
	run := map[string]string{"run": runID}
	for p, n := range rowsByProvider(t, manifest) {
		if v := value(got, "simbulk_rows", map[string]string{"run": runID, "provider": p, "state": "succeeded"}); v != float64(n) {
			t.Errorf("simbulk_rows{provider=%q,state=succeeded} = %v, want the manifest's %d", p, v, n)
		}
		if v := value(got, "simbulk_rows", map[string]string{"run": runID, "provider": p, "state": "failed"}); v != 0 {
			t.Errorf("simbulk_rows{provider=%q,state=failed} = %v, want 0", p, v)
		}
	}
	if v := value(got, "simbulk_run_rows_done", run); v != 30 {
		t.Errorf("simbulk_run_rows_done = %v, want 30", v)
	}
	if v := value(got, "simbulk_run_rows_to_provision", run); v != 30 {
		t.Errorf("simbulk_run_rows_to_provision = %v, want 30", v)
	}
	if v := value(got, "simbulk_run_rows_per_second", run); v <= 0 {
		t.Errorf("simbulk_run_rows_per_second = %v, want > 0", v)
	}

	// Every submit is recorded in the checkpoint, so the counts agree
	// exactly; checks and lookups that changed nothing are counted but
	// not recorded, so the checkpoint's are a floor.
	var submits, submits429, submitRetries, all429 int
	err = cp.RowsIn(t.Context(), runID, "", func(r pipeline.RowRecord) error {
		as, err := cp.Attempts(t.Context(), runID, r.Row)
		for _, a := range as {
			limited := a.HTTPStatus == 429 || a.ErrorCode == providers.CodeRateLimited
			if limited {
				all429++
			}
			if a.Kind != "submit" {
				continue
			}
			submits++
			if limited {
				submits429++
			}
			// Every fault is retryable and the attempts are many: each
			// failed submit put its row back.
			if a.Outcome == providers.Failed {
				submitRetries++
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	submit := map[string]string{"operation": "submit"}
	if v := sum(got, "simbulk_provider_requests_total", submit); v != float64(submits) || submits < 30 {
		t.Errorf("submit requests = %v, checkpoint has %d (at least one a row)", v, submits)
	}
	if v := sum(got, "simbulk_provider_request_duration_seconds", submit); v != float64(submits) {
		t.Errorf("submit latencies observed = %v, want %d", v, submits)
	}
	if v := sum(got, "simbulk_provider_rate_limited_total", submit); v != float64(submits429) {
		t.Errorf("submit 429s = %v, checkpoint has %d", v, submits429)
	}
	if v := sum(got, "simbulk_provider_requests_total", map[string]string{"operation": "submit", "status_class": "429"}); v != float64(submits429) {
		t.Errorf("submit requests of class 429 = %v, checkpoint has %d", v, submits429)
	}
	if v := sum(got, "simbulk_row_retries_total", submit); v != float64(submitRetries) {
		t.Errorf("submit retries = %v, checkpoint has %d failed submits", v, submitRetries)
	}
	if v := sum(got, "simbulk_provider_rate_limited_total", nil); v < float64(all429) || v == 0 {
		t.Errorf("429s = %v, want > 0 and at least the checkpoint's %d", v, all429)
	}
	if submitRetries == 0 {
		t.Error("no submit failed: the fault model did not bite, so retries went untested")
	}
	if v := sum(got, "simbulk_checkpoint_read_errors_total", nil); v != 0 {
		t.Errorf("checkpoint read errors = %v", v)
	}

	m.UnwatchRun(runID)
	if _, ok := scrape(t, srv.URL)["simbulk_rows"]; ok {
		t.Error("simbulk_rows still served after UnwatchRun")
	}
}

// simLanes builds a real client per provider pointed at the simulators
// at base with their demo credentials, polled rather than called back,
// with attempts enough that no row fails for the injected faults.
func simLanes(base string) rollout.LaneFactory {
	return func(ctx context.Context, used []string) (map[string]*pipeline.Lane, func(), error) {
		out := map[string]*pipeline.Lane{}
		for _, p := range used {
			d, _ := providers.Lookup(p)
			lane := providers.LaneConfig{Concurrency: 4, MaxAttempts: 50, Timeout: 5 * time.Second, MaxRetryAfter: 100 * time.Millisecond,
				Defaults: map[string]string{ingest.ColAccountName: samples.NewDevice(p, 1).AccountName}}
			c, err := d.SimConfig(base, lane, providers.SimClient{PollOnly: true}).Open(ctx)
			if err != nil {
				return nil, nil, err
			}
			batch := 1
			if b, ok := c.(providers.Batcher); ok {
				batch = b.BatchSize()
			}
			out[p] = &pipeline.Lane{Name: p, Client: c, Concurrency: lane.Concurrency, BatchSize: batch,
				MaxAttempts: lane.MaxAttempts, PollInterval: 20 * time.Millisecond}
		}
		return out, func() {}, nil
	}
}

// rowsByProvider counts a manifest's rows by its provider column, read as
// simbulk reads manifests.
func rowsByProvider(t *testing.T, path string) map[string]int {
	t.Helper()
	r, err := ingest.OpenContext(t.Context(), path, ingest.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := map[string]int{}
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[rec.Get(r.Header(), ingest.ColProvider)]++
	}
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// sum adds the samples of family name whose labels include want (for a
// histogram, its observation counts).
func sum(mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var total float64
	for _, m := range mfs[name].GetMetric() {
		if !hasLabels(m, want) {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Histogram != nil:
			total += float64(m.Histogram.GetSampleCount())
		}
	}
	return total
}

// value is the one sample of family name with exactly the labels want;
// -1 when there is none.
func value(mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	for _, m := range mfs[name].GetMetric() {
		if len(m.GetLabel()) == len(want) && hasLabels(m, want) {
			return sum(map[string]*dto.MetricFamily{name: {Metric: []*dto.Metric{m}}}, name, nil)
		}
	}
	return -1
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

// TestObserveClasses checks how an answer is sorted into a status class,
// and which answers count as 429s and retries.
func TestObserveClasses(t *testing.T) {
	m := metrics.New(nil)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	for _, tc := range []struct {
		a     pipeline.Attempt
		retry bool
		class string
	}{
		{pipeline.Attempt{Kind: "submit", Outcome: providers.Accepted}, false, "2xx"},
		{pipeline.Attempt{Kind: "submit", HTTPStatus: 429, ErrorCode: providers.CodeRateLimited}, true, "429"},
		{pipeline.Attempt{Kind: "check", ErrorCode: providers.CodeRateLimited}, false, "429"}, // a provider's own rate-limit code
		{pipeline.Attempt{Kind: "submit", HTTPStatus: 503, ErrorCode: providers.CodeServer}, true, "5xx"},
		{pipeline.Attempt{Kind: "submit", HTTPStatus: 400, ErrorCode: providers.CodeRejected}, false, "4xx"},
		{pipeline.Attempt{Kind: "lookup", ErrorCode: providers.CodeTimeout}, true, "transport"},
		{pipeline.Attempt{Kind: "lookup", ErrorCode: providers.CodeConnection}, true, "transport"},
		{pipeline.Attempt{Kind: "check", Outcome: providers.Failed, ErrorCode: "SIM_BLOCKED"}, false, "2xx"}, // a verdict in a good answer
	} {
		m.Observe(pipeline.Request{Provider: "asavie", Attempt: tc.a, Retry: tc.retry})
	}
	got := scrape(t, srv.URL)
	for _, w := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"simbulk_provider_requests_total", map[string]string{"provider": "asavie", "operation": "submit", "status_class": "2xx"}, 1},
		{"simbulk_provider_requests_total", map[string]string{"provider": "asavie", "operation": "submit", "status_class": "429"}, 1},
		{"simbulk_provider_requests_total", map[string]string{"provider": "asavie", "operation": "check", "status_class": "429"}, 1},
		{"simbulk_provider_requests_total", map[string]string{"provider": "asavie", "operation": "submit", "status_class": "5xx"}, 1},
		{"simbulk_provider_requests_total", map[string]string{"provider": "asavie", "operation": "submit", "status_class": "4xx"}, 1},
		{"simbulk_provider_requests_total", map[string]string{"provider": "asavie", "operation": "lookup", "status_class": "transport"}, 2},
		{"simbulk_provider_requests_total", map[string]string{"provider": "asavie", "operation": "check", "status_class": "2xx"}, 1},
		{"simbulk_provider_rate_limited_total", map[string]string{"provider": "asavie", "operation": "submit"}, 1},
		{"simbulk_provider_rate_limited_total", map[string]string{"provider": "asavie", "operation": "check"}, 1},
		{"simbulk_row_retries_total", map[string]string{"provider": "asavie", "operation": "submit"}, 2},
		{"simbulk_row_retries_total", map[string]string{"provider": "asavie", "operation": "lookup"}, 2},
		{"simbulk_provider_request_duration_seconds", map[string]string{"provider": "asavie", "operation": "submit"}, 4},
	} {
		if v := value(got, w.name, w.labels); v != w.want {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, v, w.want)
		}
	}
}

// view is a run's rows by provider as a checkpoint would hold them; it
// implements only what the metrics read.
type view struct {
	pipeline.ReportView
	counts map[string]pipeline.Counts
}

func (v view) CountsByProvider(context.Context) (map[string]pipeline.Counts, error) {
	return v.counts, nil
}

// checkpoint serves one run's view, or blocks until the read times out.
type checkpoint struct {
	v     view
	stuck bool
}

func (c checkpoint) ViewRun(ctx context.Context, _ string, fn func(pipeline.ReportView) error) error {
	if c.stuck {
		<-ctx.Done()
		return ctx.Err()
	}
	return fn(c.v)
}

// TestRowsOfUnknownProviders checks that the provider label only ever
// takes a registered provider's name: invalid rows naming none, or
// naming one that a manifest cell made up, are provider "none".
func TestRowsOfUnknownProviders(t *testing.T) {
	m := metrics.New(checkpoint{v: view{counts: map[string]pipeline.Counts{
		"":           {pipeline.Invalid: 2},
		"<script>":   {pipeline.Invalid: 1},
		"iotconnect": {pipeline.Succeeded: 4, pipeline.Invalid: 1, pipeline.Skipped: 2},
		"thingspace": {pipeline.Pending: 3},
	}}})
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	m.WatchRun("r1")
	got := scrape(t, srv.URL)
	for _, w := range []struct {
		provider, state string
		want            float64
	}{{"none", "invalid", 3}, {"iotconnect", "succeeded", 4}, {"iotconnect", "pending", 0}, {"thingspace", "pending", 3}} {
		if v := value(got, "simbulk_rows", map[string]string{"run": "r1", "provider": w.provider, "state": w.state}); v != w.want {
			t.Errorf("simbulk_rows{provider=%q,state=%q} = %v, want %v", w.provider, w.state, v, w.want)
		}
	}
	if n := len(got["simbulk_rows"].GetMetric()); n != 3*len(pipeline.States) {
		t.Errorf("%d simbulk_rows series, want every state of none, iotconnect and thingspace", n)
	}
	if v := value(got, "simbulk_run_rows_to_provision", map[string]string{"run": "r1"}); v != 7 {
		t.Errorf("simbulk_run_rows_to_provision = %v, want 7 (13 rows less 4 invalid and 2 skipped)", v)
	}
}

// TestScrapeOfStuckCheckpoint checks that a checkpoint that does not
// answer costs a scrape a bounded wait and a counted error, not the
// scrape.
func TestScrapeOfStuckCheckpoint(t *testing.T) {
	m := metrics.New(checkpoint{stuck: true})
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	m.WatchRun("r1")
	start := time.Now()
	got := scrape(t, srv.URL)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("scrape took %s", took)
	}
	if _, ok := got["simbulk_rows"]; ok {
		t.Error("rows served from a checkpoint that never answered")
	}
	if v := sum(got, "simbulk_checkpoint_read_errors_total", nil); v != 1 {
		t.Errorf("checkpoint read errors = %v, want 1", v)
	}
}
