package metrics

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/pipeline/rollout"
	"github.com/simbulk/simbulk/providers"
)

// Checkpoint is what the metrics read of the checkpoint: a consistent view
// of a run (pipeline.Store satisfies it).
type Checkpoint interface {
	ViewRun(ctx context.Context, runID string, fn func(pipeline.ReportView) error) error
}

// readTimeout bounds the checkpoint reads of one scrape: a scrape that
// waits on a busy checkpoint would pile up behind Prometheus's own
// timeout (10 s by default), and a missing sample says more than a late one.
const readTimeout = 2 * time.Second

// Metrics is one registry of simbulk's metrics over one checkpoint. Its
// methods may be called from many goroutines at once.
type Metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	rateLimited *prometheus.CounterVec
	retries     *prometheus.CounterVec
	runs        *runCollector
}

// New returns the metrics of checkpoint cp, with no run watched yet.
func New(cp Checkpoint) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "simbulk_provider_requests_total",
			Help: "Provider requests by provider, operation (submit, check, lookup) and status class (2xx: answered without an HTTP error; 4xx; 5xx; 429; transport: no answer). A batched submit counts once per row it carries.",
		}, []string{"provider", "operation", "status_class"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "simbulk_provider_request_duration_seconds",
			Help: "Provider request latency in seconds, by provider and operation.",
			// Providers answer in tens of milliseconds to tens of seconds;
			// a client's timeout is 30 s by default.
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"provider", "operation"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "simbulk_provider_rate_limited_total",
			Help: "Provider requests refused as too many (HTTP 429 or the provider's rate-limit code), by provider and operation.",
		}, []string{"provider", "operation"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "simbulk_row_retries_total",
			Help: "Rows put back to be tried again for a retryable cause (sent again after a backoff, sent afresh, looked up again), by provider and the operation that failed.",
		}, []string{"provider", "operation"}),
		runs: newRunCollector(cp),
	}
	m.reg.MustRegister(m.requests, m.latency, m.rateLimited, m.retries, m.runs,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Observe counts one provider request; it is Engine.Observe and
// Reconciler.Observe (rollout.Options.Observe). It never blocks.
func (m *Metrics) Observe(r pipeline.Request) {
	p, op := providerLabel(r.Provider), r.Attempt.Kind
	m.requests.WithLabelValues(p, op, statusClass(r.Attempt)).Inc()
	m.latency.WithLabelValues(p, op).Observe(r.Attempt.Latency.Seconds())
	if rateLimited(r.Attempt) {
		m.rateLimited.WithLabelValues(p, op).Inc()
	}
	if r.Retry {
		m.retries.WithLabelValues(p, op).Inc()
	}
}

// Instrument returns opts set to feed m from a rollout: Observe counts
// every provider request, and the run is watched from its Started event.
// The Events opts had still get every event, after m has seen it.
func (m *Metrics) Instrument(opts rollout.Options) rollout.Options {
	opts.Observe = m.Observe
	events := opts.Events
	opts.Events = func(ev rollout.Event) {
		if s, ok := ev.(rollout.Started); ok {
			m.WatchRun(s.Run.ID)
		}
		if events != nil {
			events(ev)
		}
	}
	return opts
}

// WatchRun adds run runID's rows and progress to the metrics until
// UnwatchRun. Its rows per second count from now.
func (m *Metrics) WatchRun(runID string) { m.runs.watch(runID) }

// UnwatchRun drops run runID's series.
func (m *Metrics) UnwatchRun(runID string) { m.runs.unwatch(runID) }

// statusClass sorts an answer into a fixed few classes. An error without
// an HTTP status is either no answer at all (transport) or the provider's
// verdict in an answer that was itself a success (a check saying the
// activation failed): answered, so 2xx.
func statusClass(a pipeline.Attempt) string {
	switch {
	case rateLimited(a):
		return "429"
	case a.HTTPStatus >= 500:
		return "5xx"
	case a.HTTPStatus >= 400:
		return "4xx"
	case a.HTTPStatus == 0 && (a.ErrorCode == providers.CodeTimeout || a.ErrorCode == providers.CodeConnection):
		return "transport"
	}
	return "2xx"
}

func rateLimited(a pipeline.Attempt) bool {
	return a.HTTPStatus == http.StatusTooManyRequests || a.ErrorCode == providers.CodeRateLimited
}

// providerLabel keeps the provider label to the registered providers:
// rows that name none, or a provider simbulk does not know (an invalid
// row's cell, which is the manifest's, not ours), are "none".
func providerLabel(name string) string {
	if _, ok := providers.Lookup(name); ok {
		return name
	}
	return "none"
}

// watched is a run being watched and the start of its rows per second.
type watched struct {
	since time.Time // when its done rows were first read; zero until then
	done0 int       // its done rows then
	done  int       // its done rows at the last read
	rate  float64   // rows per second at the last read that saw work
}

// runCollector reads the watched runs' rows from the checkpoint at each
// scrape.
type runCollector struct {
	cp         Checkpoint
	readErrors prometheus.Counter

	rows, toProvision, done, rate *prometheus.Desc

	mu   sync.Mutex
	runs map[string]*watched
}

func newRunCollector(cp Checkpoint) *runCollector {
	return &runCollector{
		cp: cp,
		readErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "simbulk_checkpoint_read_errors_total",
			Help: "Scrapes that could not read a watched run from the checkpoint in time; that run's series are missing from them.",
		}),
		// A run label is safe here, and only here: its values are the
		// runs a caller watches (one for a CLI rollout; the console's
		// open runs), not every run the checkpoint holds.
		rows: prometheus.NewDesc("simbulk_rows",
			"Rows of a watched run by provider (none: rows naming no known provider) and state, read from the checkpoint at scrape time.",
			[]string{"run", "provider", "state"}, nil),
		toProvision: prometheus.NewDesc("simbulk_run_rows_to_provision",
			"Rows of a watched run to provision: all but invalid and skipped rows.", []string{"run"}, nil),
		done: prometheus.NewDesc("simbulk_run_rows_done",
			"Rows of a watched run that reached succeeded or failed.", []string{"run"}, nil),
		rate: prometheus.NewDesc("simbulk_run_rows_per_second",
			"Rows of a watched run done per second since it was first watched, held once no row is open; rate(simbulk_run_rows_done[5m]) is the recent rate.",
			[]string{"run"}, nil),
		runs: map[string]*watched{},
	}
}

func (c *runCollector) watch(runID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.runs[runID] == nil {
		c.runs[runID] = &watched{}
	}
	// The baseline of its rows per second is read now, not at the next
	// scrape, which may come after many rows are done; if the read fails,
	// the next scrape's is the baseline.
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	_, _, _ = c.read(ctx, runID)
}

func (c *runCollector) unwatch(runID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.runs, runID)
}

// Describe sends nothing: the run series come and go with the watched
// runs, which makes this an unchecked collector (the registry does not
// check its series against descriptions given in advance).
func (c *runCollector) Describe(chan<- *prometheus.Desc) {}

func (c *runCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range slices.Sorted(maps.Keys(c.runs)) {
		byProvider, total, err := c.read(ctx, id)
		if err != nil {
			c.readErrors.Inc()
			continue
		}
		for p, counts := range byProvider {
			for _, s := range pipeline.States {
				ch <- prometheus.MustNewConstMetric(c.rows, prometheus.GaugeValue, float64(counts[s]), id, p, string(s))
			}
		}
		w := c.runs[id]
		ch <- prometheus.MustNewConstMetric(c.toProvision, prometheus.GaugeValue, float64(total.Total()-total[pipeline.Invalid]-total[pipeline.Skipped]), id)
		ch <- prometheus.MustNewConstMetric(c.done, prometheus.GaugeValue, float64(doneOf(total)), id)
		ch <- prometheus.MustNewConstMetric(c.rate, prometheus.GaugeValue, w.rate, id)
	}
	// Collected here, after the reads, so a scrape counts its own errors.
	c.readErrors.Collect(ch)
}

// read reads run id's rows by provider label and state, and in all, and
// moves its rows per second on. The caller holds c.mu.
func (c *runCollector) read(ctx context.Context, id string) (byLabel map[string]pipeline.Counts, total pipeline.Counts, err error) {
	var byProvider map[string]pipeline.Counts
	err = c.cp.ViewRun(ctx, id, func(v pipeline.ReportView) error {
		var err error
		byProvider, err = v.CountsByProvider(ctx)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	byLabel, total = map[string]pipeline.Counts{}, pipeline.Counts{}
	for p, counts := range byProvider {
		label := providerLabel(p)
		if byLabel[label] == nil {
			byLabel[label] = pipeline.Counts{}
		}
		for s, n := range counts {
			byLabel[label][s] += n
			total[s] += n
		}
	}
	w := c.runs[id]
	now, done := time.Now(), doneOf(total)
	open := total[pipeline.Pending] + total[pipeline.InFlight] + total[pipeline.Accepted]
	switch {
	case w.since.IsZero():
		w.since, w.done0 = now, done
	case open > 0 || done != w.done:
		// Work went on since the last read; once none is open and none
		// finishes, the rate is held rather than decaying to zero.
		if secs := now.Sub(w.since).Seconds(); secs > 0 {
			w.rate = float64(done-w.done0) / secs
		}
	}
	w.done = done
	return byLabel, total, nil
}

func doneOf(c pipeline.Counts) int { return c[pipeline.Succeeded] + c[pipeline.Failed] }
