package console

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/pipeline/rollout"
	"github.com/simbulk/simbulk/reports"
)

// RunView is a run as the run page and /api/runs/{id} show it: the
// `status --json` shape, then what a person watching it needs.
type RunView struct {
	rollout.RunStatus
	CreatedAt  time.Time                  `json:"created_at"`
	FinishedAt time.Time                  `json:"finished_at,omitzero"`
	StartedBy  string                     `json:"started_by"`
	ByProvider map[string]pipeline.Counts `json:"by_provider"`
	// Total are the rows to provision (not invalid, not skipped); Done
	// those that succeeded or failed.
	Total int `json:"total"`
	Done  int `json:"done"`
	// RowsPerSecond and ETASeconds are measured over the last minute of
	// the run; zero when nothing finished in it.
	RowsPerSecond float64 `json:"rows_per_second"`
	ETASeconds    int     `json:"eta_seconds"`
	// Worker says who drives the run now: "console", "another simbulk
	// process", or "" when nobody does; Workers are the processes working
	// on it (several on a PostgreSQL checkpoint).
	Worker  string            `json:"worker"`
	Workers []pipeline.Worker `json:"workers"`
	// Job is what the console does with the run now ("rollout",
	// "reconcile") and LastOutcome how its last job ended.
	Job         string `json:"job,omitempty"`
	LastOutcome string `json:"last_outcome,omitempty"`
	// Can says which actions make sense now: stop, resume, retry-failed,
	// reconcile.
	Can        map[string]bool          `json:"can"`
	TopErrors  []pipeline.ErrorCount    `json:"top_errors"`
	Failures   []Failure                `json:"failures"`
	Reports    []string                 `json:"reports"`
	Actions    []Action                 `json:"actions"`
	Reconciled *pipeline.Reconciliation `json:"last_reconciliation,omitempty"`
}

// Failure is one failed row with its provider's message.
type Failure struct {
	Row      int    `json:"row"`
	Provider string `json:"provider"`
	Code     string `json:"code"`
	Message  string `json:"message"`
}

const maxFailuresShown = 10

var errEnough = errors.New("enough")

// runView reads run id (a unique prefix is enough) from the checkpoint.
func (s *Server) runView(ctx context.Context, id string) (RunView, error) {
	var v RunView
	err := s.store.ViewRun(ctx, id, func(rv pipeline.ReportView) error {
		run := rv.Run()
		byProv, err := rv.CountsByProvider(ctx)
		if err != nil {
			return err
		}
		counts := pipeline.Counts{}
		for _, c := range byProv {
			for st, n := range c {
				counts[st] += n
			}
		}
		v = RunView{RunStatus: rollout.NewRunStatus(run, counts), CreatedAt: run.CreatedAt, FinishedAt: run.FinishedAt,
			ByProvider: byProv, Can: map[string]bool{}}
		delete(v.ByProvider, "") // invalid rows name no provider; they are in Counts
		v.Total = counts.Total() - counts[pipeline.Invalid] - counts[pipeline.Skipped]
		v.Done = counts[pipeline.Succeeded] + counts[pipeline.Failed]
		if v.TopErrors, err = rv.TopErrors(ctx, 5); err != nil {
			return err
		}
		if v.RowsPerSecond, err = recentRate(ctx, rv, s.o.Now()); err != nil {
			return err
		}
		if v.RowsPerSecond > 0 && v.Done < v.Total {
			v.ETASeconds = int(float64(v.Total-v.Done)/v.RowsPerSecond + 0.5)
		}
		return nil
	})
	if err != nil {
		return v, err
	}
	v.Failures = []Failure{}
	err = s.store.RowsIn(ctx, v.RunID, pipeline.Failed, func(r pipeline.RowRecord) error {
		v.Failures = append(v.Failures, Failure{Row: r.Row, Provider: r.Provider, Code: r.ErrorCode, Message: r.ErrorMessage})
		if len(v.Failures) == maxFailuresShown {
			return errEnough
		}
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return v, err
	}
	// One read of the action log gives both who started the run and its
	// actions.
	v.Actions, _ = s.audit.actions(func(a Action) bool { return a.RunID == v.RunID })
	if v.Actions == nil {
		v.Actions = []Action{}
	}
	v.StartedBy = "command line"
	if a, ok := startersOf(v.Actions)[v.RunID]; ok {
		v.StartedBy = a.User
	}
	if v.TopErrors == nil {
		v.TopErrors = []pipeline.ErrorCount{}
	}
	v.Reports = s.reportFiles(v.RunID)
	if v.Workers, err = s.store.Workers(ctx, v.RunID); err != nil || v.Workers == nil {
		v.Workers = []pipeline.Worker{}
	}
	if ids, err := s.store.Reconciliations(ctx, v.RunID); err == nil && len(ids) > 0 {
		if rec, err := s.store.Reconciliation(ctx, ids[0]); err == nil {
			v.Reconciled = &rec
		}
	}
	s.whoDrives(&v)
	if v.State == pipeline.RunRunning && s.o.Metrics != nil {
		// A run the command line drives gets its series too, once a
		// person looks at it here.
		s.o.Metrics.WatchRun(v.RunID)
	}
	return v, nil
}

// viewCache shares one reading of a run among the event streams that
// follow it: each reading aggregates the run's rows, which for a
// million-row run is worth doing once a second, not once per viewer.
type viewCache struct {
	mu    sync.Mutex
	views map[string]cachedView
}

type cachedView struct {
	v  RunView
	at time.Time
}

// streamView is runView for event streams, at most eventEvery old.
func (s *Server) streamView(ctx context.Context, id string) (RunView, error) {
	s.cache.mu.Lock()
	c, ok := s.cache.views[id]
	s.cache.mu.Unlock()
	if ok && s.o.Now().Sub(c.at) < eventEvery-50*time.Millisecond {
		return c.v, nil
	}
	v, err := s.runView(ctx, id)
	if err != nil {
		return v, err
	}
	s.cache.mu.Lock()
	if s.cache.views == nil || len(s.cache.views) > 1000 {
		s.cache.views = map[string]cachedView{}
	}
	s.cache.views[id] = cachedView{v: v, at: s.o.Now()}
	s.cache.mu.Unlock()
	return v, nil
}

// forget drops run id's shared reading: after an action, the next event
// must show what the action did.
func (c *viewCache) forget(id string) {
	c.mu.Lock()
	delete(c.views, id)
	c.mu.Unlock()
}

// whoDrives fills in who works on the run and which actions make sense.
// On a shared checkpoint (PostgreSQL) the console may join a run other
// processes work on; on SQLite the lock lets one process drive at a time.
func (s *Server) whoDrives(v *RunView) {
	others := len(v.Workers) > 0 || (v.State == pipeline.RunRunning && s.o.Busy())
	if j := s.jobs.running(v.RunID); j != nil {
		v.Worker, v.Job = "console", j.Kind
	} else if others {
		v.Worker = "another simbulk process"
	}
	if kind, outcome, err, ok := s.jobs.finished(v.RunID); ok {
		v.LastOutcome = kind + ": " + outcome
		if err != nil {
			v.LastOutcome = kind + " stopped: " + err.Error()
		}
	}
	idle := v.Worker == "" || (s.o.Shared && v.Job == "")
	open := v.Counts[pipeline.Pending]+v.Counts[pipeline.InFlight]+v.Counts[pipeline.Accepted] > 0
	v.Can["stop"] = v.Worker == "console" && v.Job == "rollout"
	v.Can["resume"] = idle && v.State != pipeline.RunCompleted && (open || !v.Loaded)
	v.Can["retry-failed"] = idle && v.Counts[pipeline.Failed] > 0
	v.Can["reconcile"] = v.Worker == "" && v.Counts[pipeline.Succeeded]+v.Counts[pipeline.Skipped] > 0
}

// recentRate is the rows finished per second over the last minute.
func recentRate(ctx context.Context, rv pipeline.ReportView, now time.Time) (float64, error) {
	per, err := rv.FinishedPer(ctx, time.Second)
	if err != nil {
		return 0, err
	}
	const window = time.Minute
	var n int
	var first time.Time
	for _, p := range slices.Backward(per) {
		if now.Sub(p.Start) > window {
			break
		}
		n += p.Succeeded + p.Failed
		first = p.Start
	}
	if n == 0 {
		return 0, nil
	}
	span := max(now.Sub(first), time.Second)
	return float64(int(float64(n)/span.Seconds()*10)) / 10, nil
}

// reportNames are the files a run's report directory may hold, in the
// order the run page offers them.
var reportNames = []string{reports.ReportXLSX, reports.SummaryHTML, reports.SucceededCSV, reports.FailedCSV,
	reports.InvalidCSV, reports.SummaryJSON, reports.DriftCSV, reports.DriftJSON}

var runIDPattern = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z_-]*$`)

// reportFiles lists the report files written for run id.
func (s *Server) reportFiles(id string) []string {
	out := []string{}
	if !runIDPattern.MatchString(id) {
		return out
	}
	for _, name := range reportNames {
		if fi, err := os.Stat(filepath.Join(s.o.ReportsDir, id, name)); err == nil && fi.Mode().IsRegular() {
			out = append(out, name)
		}
	}
	return out
}

// runList is every run with who started it, newest first.
type runListItem struct {
	rollout.RunStatus
	CreatedAt time.Time `json:"created_at"`
	StartedBy string    `json:"started_by"`
}

func (s *Server) runList(ctx context.Context) ([]runListItem, error) {
	statuses, runs, err := s.o.Service.Statuses(ctx)
	if err != nil {
		return nil, err
	}
	by := s.audit.startedBy()
	out := make([]runListItem, len(statuses))
	for i, st := range statuses {
		out[i] = runListItem{RunStatus: st, CreatedAt: runs[i].CreatedAt, StartedBy: "command line"}
		if a, ok := by[st.RunID]; ok {
			out[i].StartedBy = a.User
		}
	}
	return out, nil
}

// rolloutOptions are the options of every rollout the console drives.
func (s *Server) rolloutOptions(opened func(string)) rollout.Options {
	o := rollout.Options{Grace: 5 * time.Second, MaxOutage: 30 * time.Minute, WriteReports: true, ReportsDir: s.o.ReportsDir,
		Events: func(e rollout.Event) {
			if op, ok := e.(rollout.Opened); ok {
				opened(op.Run.ID)
			}
		},
		LogAttrs: []any{"from", "console"}}
	if s.o.Metrics != nil {
		o = s.o.Metrics.Instrument(o)
	}
	return o
}

// outcome is the one-line summary of a finished rollout.
func outcome(res rollout.Result, err error) (string, error) {
	if errors.Is(err, rollout.ErrInterrupted) {
		return "stopped before loading finished; nothing was sent", nil
	}
	if err != nil && res.Counts == nil {
		return "", err
	}
	line := fmt.Sprintf("%s: %d succeeded, %d failed, %d invalid, %d skipped", cmp.Or(res.State, pipeline.RunInterrupted),
		res.Counts[pipeline.Succeeded], res.Counts[pipeline.Failed], res.Counts[pipeline.Invalid], res.Counts[pipeline.Skipped])
	if res.Redriven > 0 {
		line = fmt.Sprintf("%d failed rows re-queued; %s", res.Redriven, line)
	}
	if res.AlreadyComplete {
		line = "already complete, nothing sent; " + line
	}
	if res.ReportsErr != nil {
		line += "; reports not written: " + res.ReportsErr.Error()
	}
	return line, err
}

// startRollout starts the rollout of an upload and returns its run.
func (s *Server) startRollout(user string, up *Upload) (string, error) {
	path := s.uploads.path(up.ID, up.Name)
	return s.jobs.start("rollout", "", user, func(ctx context.Context, opened func(string)) (string, error) {
		o := s.rolloutOptions(opened)
		o.Name, o.Provider, o.Sheet = path, up.Provider, up.Sheet
		return outcome(s.o.Service.Start(ctx, path, o))
	})
}

// act performs a run action for user: stop, resume, retry-failed (all
// failed rows when all), reconcile. It returns what the run page says.
func (s *Server) act(ctx context.Context, user, id, action string, all bool) (string, error) {
	run, err := s.store.Run(ctx, id)
	if err != nil {
		return "", err
	}
	id = run.ID
	var msg string
	switch action {
	case "stop":
		if !s.jobs.stopRun(ctx, id) {
			if run.State == pipeline.RunRunning && s.o.Busy() {
				err = errors.New("this run is driven by another simbulk process (a command line or cron job); stop it there (Ctrl-C or SIGTERM)")
			} else {
				err = errors.New("the console is not running this run")
			}
		}
		msg = "stopped; resume it at any time"
	case "resume":
		_, err = s.jobs.start("rollout", id, user, func(ctx context.Context, opened func(string)) (string, error) {
			return outcome(s.o.Service.Resume(ctx, id, s.rolloutOptions(opened)))
		})
		msg = "resumed"
	case "retry-failed":
		_, err = s.jobs.start("rollout", id, user, func(ctx context.Context, opened func(string)) (string, error) {
			return outcome(s.o.Service.RetryFailed(ctx, id, all, s.rolloutOptions(opened)))
		})
		msg = "failed rows re-queued"
		if all {
			msg = "every failed row re-queued"
		}
	case "reconcile":
		_, err = s.jobs.start("reconcile", id, user, func(ctx context.Context, opened func(string)) (string, error) {
			opened(id)
			ro := rollout.ReconcileOptions{WriteReports: true, ReportsDir: s.o.ReportsDir, LogAttrs: []any{"from", "console"}}
			if s.o.Metrics != nil {
				ro.Observe = s.o.Metrics.Observe
			}
			res, err := s.o.Service.Reconcile(ctx, id, ro)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("checked %d rows: %d in sync, %d drift, %d not provisioned, %d unchecked",
				res.Checked, res.InSync, len(res.Drift), res.NotProvisioned, res.Unchecked), nil
		})
		msg = "reconciliation started"
	default:
		return "", fmt.Errorf("%w: unknown action %q (stop, resume, retry-failed, reconcile)", errNotFound, action)
	}
	s.cache.forget(id)
	detail := msg
	if err != nil {
		detail = "refused: " + err.Error()
	}
	s.recordAction(Action{User: user, Action: action, RunID: id, Detail: detail})
	return msg, err
}

var errNotFound = errors.New("not found")

func (s *Server) recordAction(a Action) {
	if err := s.audit.record(a); err != nil {
		s.log.Error("console: could not record an action", "action", a.Action, "user", a.User, "error", err.Error())
	}
	s.log.Info("console: "+a.Action, "user", a.User, "run", a.RunID, "upload", a.Upload, "detail", a.Detail)
}

// reconciliations is a run's reconciliation history, newest first; the
// newest carries its findings.
func (s *Server) reconciliations(ctx context.Context, runID string) ([]pipeline.Reconciliation, error) {
	ids, err := s.store.Reconciliations(ctx, runID)
	if err != nil {
		return nil, err
	}
	out := make([]pipeline.Reconciliation, 0, len(ids))
	for i, id := range ids {
		rec, err := s.store.Reconciliation(ctx, id)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			rec.Drift = nil // the history lists totals; the newest shows its findings
		}
		if rec.Drift == nil {
			rec.Drift = []pipeline.Finding{}
		}
		out = append(out, rec)
	}
	return out, nil
}

// sortedProviders are the providers of a run view, sorted.
func sortedProviders(v RunView) []string { return slices.Sorted(maps.Keys(v.ByProvider)) }

// reportFile serves one report file of a run.
func (s *Server) reportFile(w http.ResponseWriter, r *http.Request) {
	id, name := r.PathValue("id"), r.PathValue("file")
	if !runIDPattern.MatchString(id) || !slices.Contains(reportNames, name) {
		s.errorPage(w, r, http.StatusNotFound, "no such report")
		return
	}
	path := filepath.Join(s.o.ReportsDir, id, name)
	if _, err := os.Stat(path); err != nil {
		s.errorPage(w, r, http.StatusNotFound, "that report has not been written yet")
		return
	}
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", id+"-"+name))
	http.ServeFile(w, r, path)
}
