package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/pipeline/rollout"
	"github.com/simbulk/simbulk/reports"
)

// reconcileJSON is the documented `reconcile --json` shape, plus the rows
// that were never provisioned (reported as such, not as drift).
type reconcileJSON struct {
	RunID          string             `json:"run_id"`
	Checked        int                `json:"checked"`
	InSync         int                `json:"in_sync"`
	NotProvisioned int                `json:"not_provisioned"`
	Unchecked      int                `json:"unchecked"`
	Drift          []pipeline.Finding `json:"drift"`
}

func (a *app) reconcileCommand() *cobra.Command {
	var o rolloutOptions
	var runID string
	var asJSON bool
	var lockWait time.Duration
	cmd := &cobra.Command{
		Use:   "reconcile (MANIFEST | --run RUN_ID)",
		Short: "Compare what a run provisioned with what the providers hold now (for cron)",
		Long: `Look every provisioned row of a run up at its provider and report drift:
missing (the provider does not know it), mismatch (a different ICCID, IMSI,
MSISDN or SIM number than the manifest or the rollout recorded), state
(present but not active: suspended, terminated, a disabled profile...).
Rows the rollout never provisioned are counted as such, not as drift.

Writes drift.csv and drift.json beside the run's reports and adds a drift
section to summary.html. Checkpointed: an interrupted reconciliation resumes.
Only one reconcile works on a checkpoint at a time; a second waits briefly
(--lock-wait), then exits 1.

Exit status: 0 in sync, 1 fatal, 2 usage, 3 drift found, 130 interrupted.`,
		Example: `  simbulk reconcile devices.csv --config simbulk.yaml
  simbulk reconcile --run 20261124-112356-3f9a2c --config simbulk.yaml --json

  # crontab: every night at 02:30, JSON logs for the collector
  30 2 * * * cd /srv/simbulk && simbulk reconcile --run 20261124-112356-3f9a2c --config simbulk.yaml --log-format json >>reconcile.log 2>&1`,
		Args: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == (runID != "") {
				return usageError(errors.New("reconcile needs a MANIFEST or --run RUN_ID (one of them)"))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			manifest := ""
			if len(args) == 1 {
				manifest = args[0]
			}
			return a.reconcile(cmd.Context(), manifest, runID, asJSON, lockWait, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.config, "config", "", "config `FILE` (simbulk.yaml)")
	f.StringVar(&o.simulate, "simulate", "", "against the built-in simulators in-process (testing only), with fault `PROFILE`")
	f.Lookup("simulate").NoOptDefVal = "ok"
	addDBFlag(cmd, &o.db)
	f.StringVar(&o.out, "out", reports.DefaultDir, "`DIR` for the reports; drift files go to DIR/<run-id>/")
	f.StringVar(&runID, "run", "", "reconcile this `RUN_ID` (default: the latest run of MANIFEST)")
	f.IntVar(&o.concurrency, "concurrency", 0, "lookups at once per provider (overrides the config)")
	f.BoolVar(&asJSON, "json", false, `print {"checked","in_sync","drift":[...]} on stdout`)
	f.DurationVar(&lockWait, "lock-wait", 10*time.Second, "how long to wait for another reconcile on the same checkpoint")
	addMetricsFlag(cmd, &o.metricsAddr)
	return cmd
}

func (a *app) reconcile(ctx context.Context, manifest, runID string, asJSON bool, lockWait time.Duration, o rolloutOptions) error {
	if err := checkConcurrency(o.concurrency); err != nil {
		return err
	}
	cfg, stopSims, err := a.rolloutConfig(o)
	if err != nil {
		return err
	}
	defer stopSims()
	// Open before locking: a mistyped --db fails here without leaving a
	// lock file.
	db := checkpointAt(o.db, cfg)
	cp, err := openCheckpoint(ctx, db, openExisting)
	if err != nil {
		return err
	}
	defer cp.Close()
	svc := a.service(cp, cfg, o.concurrency)
	if runID == "" {
		run, err := svc.RunOfManifest(ctx, manifest)
		if err != nil {
			return err
		}
		runID = run.ID
	} else if run, err := cp.Run(ctx, runID); err == nil {
		runID = run.ID // the lock is the run's: name it by its full id
	}
	// Two reconciliations of one run at once would look every row up
	// twice and race to record them.
	unlock, err := lockCheckpoint(ctx, cp, db, "reconcile "+runID, lockWait)
	if err != nil {
		return err
	}
	defer unlock()

	m, stopMetrics, err := a.serveMetrics(metricsAddr(o.metricsAddr, cfg), cp)
	if err != nil {
		return err
	}
	defer stopMetrics()
	ropts := rollout.ReconcileOptions{WriteReports: true, ReportsDir: o.out, LogAttrs: []any{"checkpoint", checkpointName(db)}}
	if m != nil {
		ropts.Observe = m.Observe
	}
	res, err := svc.Reconcile(ctx, runID, ropts)
	var refused *pipeline.CredentialsError
	switch {
	case errors.Is(err, rollout.ErrInterrupted):
		return exitWith(exitInterrupted)
	case errors.As(err, &refused):
		return fmt.Errorf("%w; check %s, then run the same command to resume the reconciliation", err, credentialKeys(refused.Provider, o.config))
	case err != nil:
		return err
	}
	switch {
	case asJSON:
		out := reconcileJSON{RunID: res.Run.ID, Checked: res.Checked, InSync: res.InSync, NotProvisioned: res.NotProvisioned,
			Unchecked: res.Unchecked, Drift: res.Drift}
		if out.Drift == nil {
			out.Drift = []pipeline.Finding{}
		}
		if err := writeJSON(a.stdout, out); err != nil {
			return err
		}
	case isTerminal(a.stdout):
		printDrift(a, res.Run, res.Reconciliation, filepath.Join(res.Reports.Dir, reports.DriftCSV))
	}
	if res.Unchecked > 0 {
		return fmt.Errorf("%d rows could not be looked up (the providers kept failing); see the log and run again", res.Unchecked)
	}
	if len(res.Drift) > 0 {
		return exitWith(exitRowsFailed)
	}
	return nil
}

func printDrift(a *app, run pipeline.Run, res pipeline.Reconciliation, csvPath string) {
	fmt.Fprintf(a.stdout, "Run %s: %d checked, %d in sync, %d drift, %d never provisioned\n",
		run.ID, res.Checked, res.InSync, len(res.Drift), res.NotProvisioned)
	if len(res.Drift) == 0 {
		return
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROW\tPROVIDER\tID\tKIND\tEXPECTED\tACTUAL")
	for _, d := range res.Drift {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", d.Row, d.Provider, d.ID, d.Kind, d.Expected, d.Actual)
	}
	_ = tw.Flush()
	fmt.Fprintf(a.stdout, "Drift report: %s\n", csvPath)
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
