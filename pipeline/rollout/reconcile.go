package rollout

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/reports"
)

// ReconcileOptions shape one reconciliation.
type ReconcileOptions struct {
	// WriteReports writes drift.csv and drift.json, and the run's reports
	// with a drift section, into ReportsDir/<run-id>/.
	WriteReports bool
	ReportsDir   string
	// LogAttrs are added to the "reconciliation starting" log line.
	LogAttrs []any
	// Observe is the reconciler's (see pipeline.Reconciler): told of every
	// lookup, from many workers at once; it must not block.
	Observe func(pipeline.Request)
}

// ReconcileResult is a finished reconciliation.
type ReconcileResult struct {
	Run pipeline.Run
	pipeline.Reconciliation
	Took    time.Duration
	Reports reports.Files
}

// Reconcile looks every provisioned row of run runID (a unique prefix is
// enough) up at its provider and reports drift, resuming an unfinished
// reconciliation of the run. When ctx ends it records what it has and
// returns ErrInterrupted (Checked says how far it got); a provider that
// refuses simbulk's credentials ends it with a *pipeline.CredentialsError.
func (s *Service) Reconcile(ctx context.Context, runID string, opts ReconcileOptions) (ReconcileResult, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return ReconcileResult{}, err
	}
	defer unlock()
	run, err := s.Store.Run(ctx, runID)
	if err != nil {
		return ReconcileResult{}, err
	}
	used, err := s.Store.Providers(ctx, run.ID)
	if err != nil {
		return ReconcileResult{}, err
	}
	lanes, closeLanes, err := s.Lanes(ctx, used)
	if err != nil {
		return ReconcileResult{}, err
	}
	defer closeLanes()

	started := s.now()
	s.logger().Info("reconciliation starting", append([]any{"run", run.ID, "providers", strings.Join(used, ",")}, opts.LogAttrs...)...)
	rec := &pipeline.Reconciler{Checkpoint: s.Store, Lanes: lanes, Logger: s.logger(), Now: s.Now, Observe: opts.Observe}
	res, err := rec.Reconcile(ctx, run)
	out := ReconcileResult{Run: run, Reconciliation: res}
	if err != nil {
		if ctx.Err() != nil {
			s.logger().Warn("reconciliation interrupted; run the same command to resume", "run", run.ID, "checked", res.Checked)
			return out, ErrInterrupted
		}
		return out, err
	}
	out.Took = s.now().Sub(started)
	for _, d := range res.Drift {
		s.logger().Warn("drift", "row", d.Row, "provider", d.Provider, "id", d.ID, "kind", d.Kind, "expected", d.Expected, "actual", d.Actual)
	}
	s.logger().Info("reconciliation finished", "run", run.ID, "checked", res.Checked, "in_sync", res.InSync,
		"drift", len(res.Drift), "not_provisioned", res.NotProvisioned, "unchecked", res.Unchecked,
		"took", out.Took.Round(time.Millisecond).String(), "rows_per_second", int(float64(res.Checked)/max(out.Took.Seconds(), 1e-3)))
	if !opts.WriteReports {
		return out, nil
	}
	d := &reports.Drift{Checked: res.Checked, InSync: res.InSync, Items: make([]reports.DriftItem, len(res.Drift))}
	for i, f := range res.Drift {
		d.Items[i] = reports.DriftItem{Row: f.Row, Provider: f.Provider, ID: f.ID, Kind: string(f.Kind), Expected: f.Expected, Actual: f.Actual}
	}
	if out.Reports, err = reports.WriteWith(context.WithoutCancel(ctx), s.Store, run.ID, opts.ReportsDir, reports.Options{Drift: d}); err != nil {
		return out, fmt.Errorf("write drift reports: %w", err)
	}
	return out, nil
}

// RunOfManifest is the latest run of the manifest's content (with any
// provider override and sheet the run was made with).
func (s *Service) RunOfManifest(ctx context.Context, manifest string) (pipeline.Run, error) {
	abs, err := filepath.Abs(manifest)
	if err != nil {
		return pipeline.Run{}, err
	}
	runs, err := s.Store.Runs(ctx)
	if err != nil {
		return pipeline.Run{}, err
	}
	for _, r := range runs { // newest first
		fp, err := pipeline.Fingerprint(abs, "provider="+r.Options.Provider, "sheet="+r.Options.Sheet)
		if err != nil {
			return pipeline.Run{}, err
		}
		if fp == r.Fingerprint {
			return r, nil
		}
	}
	return pipeline.Run{}, fmt.Errorf("no run of %s in this checkpoint: reconcile compares what a run provisioned (use --run RUN_ID, or run the manifest first)", manifest)
}
