package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/pipeline/rollout"
	"github.com/simbulk/simbulk/providers"
	"github.com/simbulk/simbulk/reports"
)

// rolloutOptions are the flags shared by run, resume and retry-failed.
type rolloutOptions struct {
	config      string
	simulate    string // profile; "" = not simulating
	db          string
	out         string
	provider    string
	sheet       string
	concurrency int
	maxFailures string
	dryRun      bool
	asyncDelay  time.Duration
	simForms    string
	lockWait    time.Duration
	maxOutage   time.Duration
	metricsAddr string
	lease       time.Duration
	// redrive (retry-failed) puts failed rows back to pending first, all
	// of them with redriveAll, under the same lock as the rollout.
	redrive, redriveAll bool
}

func addRolloutFlags(cmd *cobra.Command, o *rolloutOptions) {
	f := cmd.Flags()
	f.StringVar(&o.config, "config", "", "config `FILE` (simbulk.yaml): endpoints, credentials from the environment, limits, defaults")
	f.StringVar(&o.simulate, "simulate", "", "run against the built-in simulators in-process, with fault `PROFILE` ok|flaky|slow|ratelimited")
	f.Lookup("simulate").NoOptDefVal = "ok"
	addDBFlag(cmd, &o.db)
	f.StringVar(&o.out, "out", reports.DefaultDir, "`DIR` for the reports; each run gets DIR/<run-id>/")
	f.IntVar(&o.concurrency, "concurrency", 0, "workers per provider (overrides the config)")
	f.StringVar(&o.maxFailures, "max-failures", "", "stop early (exit 4, resumable) after `N` failed rows, or N% of the rows")
	f.DurationVar(&o.maxOutage, "max-outage", 30*time.Minute, "stop (exit 1, resumable) when a provider has failed every request for this long; its rows wait meanwhile")
	f.DurationVar(&o.lockWait, "lock-wait", 0, "how long to wait for another simbulk working on the same SQLite checkpoint (default: give up at once)")
	f.DurationVar(&o.lease, "lease", pipeline.DefaultLeaseTTL, "PostgreSQL: how long a worker's rows stay its own without renewal; the rows of a worker that dies wait this long for another")
	addMetricsFlag(cmd, &o.metricsAddr)
	f.DurationVar(&o.asyncDelay, "sim-async-delay", 300*time.Millisecond, "with --simulate: how long the simulators take to complete accepted work")
	_ = f.MarkHidden("sim-async-delay")
	f.StringVar(&o.simForms, "sim-forms", "documented", "with --simulate: the simulators' wire `FORMS`, documented or alternate (see sim serve --help)")
}

func (a *app) runCommand() *cobra.Command {
	var o rolloutOptions
	cmd := &cobra.Command{
		Use:   "run MANIFEST",
		Short: "Provision every valid row of a manifest, with a checkpoint that survives anything",
		Long: `Validate a manifest, record every row in the checkpoint (--db), and send the
valid rows to their providers with bounded workers, per-provider rate limits,
retries and batching. Every row's state is committed before its request
leaves, so an interrupted run resumes exactly where it stopped: run the same
command again (or simbulk resume RUN_ID). A row that may have reached a
provider is looked up there before anything is sent again.

Rows an earlier run of this checkpoint already provisioned are skipped.
Ctrl-C (or SIGTERM) stops taking new rows, lets requests in flight finish,
records everything and exits 130; a second Ctrl-C exits at once, still
resumable.

Exit status: 0 every row succeeded, 1 fatal, 2 usage, 3 finished with some
rows invalid or failed, 4 stopped at --max-failures, 130 interrupted.`,
		Example: `  # Try it offline against the built-in simulators
  simbulk run samples/mixed.csv --simulate

  # The same with faults: 10% of requests fail in assorted ways
  simbulk run samples/mixed.csv --simulate flaky

  # For real: credentials come from the environment through the config
  simbulk run devices.csv --config simbulk.yaml --max-failures 2%

  # See the plan (rows per provider, requests) without sending anything
  simbulk run devices.xlsx --config simbulk.yaml --dry-run`,
		Args: argNames("MANIFEST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.rollout(cmd.Context(), args[0], "", o)
		},
	}
	addRolloutFlags(cmd, &o)
	f := cmd.Flags()
	f.Var(newChoice(&o.provider, providers.Names()...), "provider", "the `PROVIDER` of every row, for manifests without a provider column")
	f.StringVar(&o.sheet, "sheet", "", "XLSX sheet `NAME` to read (default: the first sheet)")
	f.BoolVar(&o.dryRun, "dry-run", false, "validate and print the plan; send nothing, record nothing")
	return cmd
}

func (a *app) resumeCommand() *cobra.Command {
	var o rolloutOptions
	cmd := &cobra.Command{
		Use:   "resume RUN_ID",
		Short: "Continue an interrupted or stopped run where it left off",
		Long: `Continue a run by its id (a unique prefix is enough; simbulk status lists
runs). Rows left in flight are looked up at their provider before anything is
sent again; accepted rows go on waiting for completion. Running the same
manifest with simbulk run does the same.`,
		Example: `  simbulk resume 20261124-112356-3f9a2c --config simbulk.yaml
  simbulk resume 20261124 --simulate`,
		Args: argNames("RUN_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.rollout(cmd.Context(), "", args[0], o)
		},
	}
	addRolloutFlags(cmd, &o)
	return cmd
}

func (a *app) retryFailedCommand() *cobra.Command {
	var o rolloutOptions
	var all bool
	cmd := &cobra.Command{
		Use:   "retry-failed RUN_ID",
		Short: "Send again the rows of a run that failed for a retryable cause",
		Long: `Re-drive the failed rows of a run: by default only those that failed for a
cause that may pass (rate limits, provider errors, timeouts, work that never
completed), with --all every failed row (after you fixed what the provider
refused, e.g. in its account). Rows whose last request may have reached the
provider are looked up first.`,
		Example: `  simbulk retry-failed 20261124-112356-3f9a2c --config simbulk.yaml
  simbulk retry-failed 20261124-112356-3f9a2c --all --simulate`,
		Args: argNames("RUN_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.redrive, o.redriveAll = true, all
			return a.rollout(cmd.Context(), "", args[0], o)
		},
	}
	addRolloutFlags(cmd, &o)
	cmd.Flags().BoolVar(&all, "all", false, "re-drive every failed row, not only retryable failures")
	return cmd
}

// rollout runs a manifest (path set) or resumes a run (runID set): it
// wires the rollout service to the checkpoint, the config's lanes, the
// lock and the logger, renders its events, and maps its outcome to what
// the command prints and its exit code.
func (a *app) rollout(ctx context.Context, path, runID string, o rolloutOptions) error {
	threshold, err := parseThreshold(o.maxFailures)
	if err != nil {
		return usageError(err)
	}
	if err := checkConcurrency(o.concurrency); err != nil {
		return err
	}
	cfg, stopSims, err := a.rolloutConfig(o)
	if err != nil {
		return err
	}
	defer stopSims()
	// The name the user gave, for messages and the run's record; path
	// becomes a regular file simbulk may read more than once.
	manifestName := path
	if path != "" {
		local, cleanup, err := rollout.LocalManifest(ctx, path)
		if err != nil {
			return err
		}
		defer cleanup()
		path = local
	}
	if o.dryRun {
		return a.plan(ctx, path, manifestName, cfg, o)
	}

	mode := openOrCreate
	if path == "" {
		mode = openExisting // resuming: the run must be there
	}
	db := checkpointAt(o.db, cfg)
	cp, err := openCheckpoint(ctx, db, mode)
	if err != nil {
		return err
	}
	defer cp.Close()
	m, stopMetrics, err := a.serveMetrics(metricsAddr(o.metricsAddr, cfg), cp)
	if err != nil {
		return err
	}
	defer stopMetrics()
	svc := a.rolloutService(cp, db, cfg, o.concurrency, o.lockWait, o.lease)

	render := a.progressRenderer()
	// Grace: a signal must end the command within 2 s. Requests cut off
	// after it stay in_flight and are looked up on resume, never resent.
	opts := rollout.Options{Name: manifestName, Provider: o.provider, Sheet: o.sheet, MaxFailures: threshold,
		MaxOutage: o.maxOutage, Grace: time.Second, WriteReports: true, ReportsDir: o.out,
		Events: render.event, ProgressEvery: render.every, LogAttrs: []any{"checkpoint", checkpointName(db)}}
	if o.simulate != "" {
		opts.LogAttrs = append(opts.LogAttrs, "simulated", o.simulate) // never mistaken for a real rollout in a log
	}
	if m != nil {
		opts = m.Instrument(opts)
	}
	var res rollout.Result
	switch {
	case runID == "":
		res, err = svc.Start(ctx, path, opts)
	case o.redrive:
		res, err = svc.RetryFailed(ctx, runID, o.redriveAll, opts)
	default:
		res, err = svc.Resume(ctx, runID, opts)
	}
	render.stop()
	var refused *pipeline.CredentialsError
	switch {
	case errors.Is(err, rollout.ErrInterrupted):
		return exitWith(exitInterrupted)
	case errors.Is(err, pipeline.ErrProviderDown):
		// Reports of the state so far, then the reason, exit 1: the rows
		// wait for the provider and the same command resumes them.
		_ = a.finish(ctx, res)
		return err
	case errors.As(err, &refused):
		// Exit 1 as for any bad config: the rows of that provider wait,
		// untouched, until a person fixes the credentials and resumes.
		_ = a.finish(ctx, res)
		return fmt.Errorf("%w; check %s, then run the same command to resume", err, credentialKeys(refused.Provider, o.config))
	case err != nil:
		return err
	}
	if res.AlreadyComplete {
		fmt.Fprintf(a.stdout, "Run %s of this manifest is already complete; use retry-failed %s to send its failed rows again.\n", res.Run.ID, res.Run.ID)
	}
	return a.finish(ctx, res)
}

// rolloutService is the service that drives rollouts on checkpoint cp (at
// db), locked as its kind of checkpoint needs. On a SQLite file one
// simbulk at a time drives the checkpoint: a second `run` of the same
// manifest (started in another terminal, or by cron, while the first
// still works) would send its rows again; it waits lockWait, then gives
// up. On PostgreSQL the lock covers only finding and loading a run: a
// second process waits for the first's load, then joins the run as
// another worker, its rows shared through leases of lease.
func (a *app) rolloutService(cp pipeline.Store, db string, cfg *Config, concurrency int, lockWait, lease time.Duration) *rollout.Service {
	svc := a.service(cp, cfg, concurrency)
	svc.LeaseTTL = lease
	svc.Shared = shared(cp)
	if svc.Shared {
		lockWait = -1
	}
	svc.Lock = func(ctx context.Context) (func(), error) { return lockCheckpoint(ctx, cp, db, "setup", lockWait) }
	return svc
}

// service is the rollout service on checkpoint cp with lanes from cfg.
// A checkpoint several hosts share also keeps the providers' callbacks,
// which reach one host, for the worker following the row on any.
func (a *app) service(cp pipeline.Store, cfg *Config, concurrency int) *rollout.Service {
	var callbacks providers.CallbackStore
	if cs, ok := cp.(providers.CallbackStore); ok && shared(cp) {
		callbacks = cs
	}
	return &rollout.Service{
		Store: cp,
		Lanes: func(ctx context.Context, used []string) (map[string]*pipeline.Lane, func(), error) {
			return openLanes(ctx, cfg, used, concurrency, callbacks)
		},
		Validate: cfg.validateOptions,
		Planner:  cfg.planner,
		Logger:   a.logger(),
	}
}

// rolloutConfig is the config file, or the in-process simulators. Without
// --simulate a config is required: nothing silently falls back to the
// simulators.
func (a *app) rolloutConfig(o rolloutOptions) (*Config, func(), error) {
	if o.simulate != "" {
		if o.config != "" {
			return nil, nil, usageError(errors.New("--simulate and --config exclude each other"))
		}
		cfg, stop, err := simulatedConfig(o.simulate, o.asyncDelay, o.simForms)
		if err != nil {
			return nil, nil, usageError(err)
		}
		return cfg, stop, nil
	}
	path := o.config
	if path == "" {
		if _, err := os.Stat("simbulk.yaml"); err != nil {
			return nil, nil, usageError(errors.New("no config: pass --config FILE (see samples/simbulk.yaml), or --simulate to use the built-in simulators"))
		}
		path = "simbulk.yaml"
	}
	cfg, err := loadConfig(path)
	if err != nil {
		return nil, nil, err
	}
	return cfg, func() {}, nil
}

// plan is --dry-run: validate, count, and say what would be sent.
func (a *app) plan(ctx context.Context, path, name string, cfg *Config, o rolloutOptions) error {
	if path == "" {
		return usageError(errors.New("--dry-run needs a manifest"))
	}
	pl, err := a.service(nil, cfg, o.concurrency).Plan(ctx, path, rollout.PlanOptions{Provider: o.provider, Sheet: o.sheet})
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "Dry run of %s: %d rows, %d valid, %d invalid. Nothing was sent.\n", name, pl.Rows, pl.Valid, pl.Invalid)
	for _, p := range pl.Providers {
		line := fmt.Sprintf("  %-11s %7d rows in %7d requests", p.Provider, p.Rows, p.Requests)
		if p.Rate > 0 {
			line += fmt.Sprintf(", at least %s at %g requests/s", p.MinDuration.Round(time.Second), p.Rate)
		}
		if p.NotConfigured != nil {
			line += " — NOT CONFIGURED: " + p.NotConfigured.Error()
		}
		fmt.Fprintln(a.stdout, line)
	}
	if pl.Invalid > 0 {
		return exitWith(exitRowsFailed)
	}
	return nil
}

// finish prints a rollout's outcome and where its reports are, and maps
// the run's state to the exit code.
func (a *app) finish(ctx context.Context, res rollout.Result) error {
	if res.Counts == nil {
		return errors.New("the run's counts could not be read")
	}
	run := res.Run
	printCounts(a.stdout, run, res.State, res.Counts)
	switch err := res.ReportsErr; {
	case err != nil && (res.Interrupted || ctx.Err() != nil):
		fmt.Fprintf(a.stdout, "Reports:    not written (interrupted); write them with: simbulk report %s\n", run.ID)
		if !res.Interrupted {
			return exitWith(exitInterrupted)
		}
	case err != nil:
		return fmt.Errorf("write reports: %w", err)
	default:
		fmt.Fprintf(a.stdout, "Reports:    %s\n", res.Reports.Dir)
	}
	switch res.State {
	case pipeline.RunInterrupted:
		fmt.Fprintf(a.stdout, "Interrupted; resume with: simbulk resume %s\n", run.ID)
		return exitWith(exitInterrupted)
	case pipeline.RunAborted:
		fmt.Fprintf(a.stdout, "Stopped at the failure threshold; fix the cause, then: simbulk resume %s\n", run.ID)
		return exitWith(exitThreshold)
	}
	if res.Failed() {
		return exitWith(exitRowsFailed)
	}
	return nil
}

// parseThreshold reads --max-failures: "N" or "P%".
func parseThreshold(s string) (pipeline.Threshold, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return pipeline.Threshold{}, nil
	}
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || v <= 0 || v > 100 {
			return pipeline.Threshold{}, fmt.Errorf("--max-failures %q: want a count like 50 or a percentage like 2%%", s)
		}
		return pipeline.Threshold{Percent: v}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return pipeline.Threshold{}, fmt.Errorf("--max-failures %q: want a count like 50 or a percentage like 2%%", s)
	}
	return pipeline.Threshold{Count: n}, nil
}

// checkConcurrency refuses a negative --concurrency (0 means the config's).
func checkConcurrency(n int) error {
	if n < 0 {
		return usageError(fmt.Errorf("--concurrency %d: want a positive number of workers per provider", n))
	}
	return nil
}
