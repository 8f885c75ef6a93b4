package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/pipeline/rollout"
)

// statusJSON is the documented `status --json` shape.
type statusJSON = rollout.RunStatus

func (a *app) statusCommand() *cobra.Command {
	var where checkpointFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [RUN_ID]",
		Short: "Show a run's progress and outcome, or list the runs in the checkpoint",
		Example: `  simbulk status                       # every run, newest first
  simbulk status 20261124-112356-3f9a2c
  simbulk status 20261124 --json | jq .counts`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cp, _, err := where.openForReading(ctx)
			if err != nil {
				return err
			}
			defer cp.Close()
			if len(args) == 0 {
				return a.listRuns(ctx, cp, asJSON)
			}
			run, counts, err := (&rollout.Service{Store: cp}).Status(ctx, args[0])
			if err != nil {
				return err
			}
			workers, err := cp.Workers(ctx, run.ID)
			if err != nil {
				return err
			}
			if asJSON {
				st := rollout.NewRunStatus(run, counts)
				st.Workers = workers
				return writeJSON(a.stdout, st)
			}
			printCounts(a.stdout, run, run.State, counts)
			printWorkers(a.stdout, workers)
			return nil
		},
	}
	addCheckpointFlags(cmd, &where)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON: one run's {run_id, manifest, state, counts}, or an array of them")
	return cmd
}

func (a *app) listRuns(ctx context.Context, cp pipeline.Store, asJSON bool) error {
	out, _, err := (&rollout.Service{Store: cp}).Statuses(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(a.stdout, out)
	}
	if len(out) == 0 {
		fmt.Fprintln(a.stdout, "No runs in this checkpoint.")
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tSTATE\tROWS\tSUCCEEDED\tFAILED\tINVALID\tSKIPPED\tOPEN\tMANIFEST")
	for _, s := range out {
		c := s.Counts
		state := string(s.State)
		if !s.Loaded {
			state += " (loading)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", s.RunID, state, c.Total(), c[pipeline.Succeeded], c[pipeline.Failed],
			c[pipeline.Invalid], c[pipeline.Skipped], c[pipeline.Pending]+c[pipeline.InFlight]+c[pipeline.Accepted], s.Manifest)
	}
	return tw.Flush()
}

// printCounts is the headline of a run for a person.
func printCounts(w io.Writer, run pipeline.Run, state pipeline.RunState, c pipeline.Counts) {
	fmt.Fprintf(w, "Run:        %s (%s)\n", run.ID, state)
	fmt.Fprintf(w, "Manifest:   %s\n", run.Manifest)
	if !run.CreatedAt.IsZero() {
		fmt.Fprintf(w, "Started:    %s\n", run.CreatedAt.Local().Format(time.DateTime))
	}
	if !run.Loaded {
		fmt.Fprintf(w, "Loading:    not finished (%d rows so far); nothing has been sent. Running the\n", c.Total())
		fmt.Fprintf(w, "            manifest again (or simbulk resume %s) loads it afresh.\n", run.ID)
	}
	fmt.Fprintf(w, "Rows:       %d\n", c.Total())
	for _, s := range pipeline.States {
		if c[s] > 0 || s == pipeline.Succeeded || s == pipeline.Failed {
			fmt.Fprintf(w, "  %-10s %d\n", s, c[s])
		}
	}
	if line := refusedCallbacks(run.Counters); line != "" {
		fmt.Fprintf(w, "Callbacks:  %s\n", line)
	}
}

// printWorkers lists the processes working on a run now.
func printWorkers(w io.Writer, workers []pipeline.Worker) {
	for i, wk := range workers {
		label := ""
		if i == 0 {
			label = "Workers:"
		}
		fmt.Fprintf(w, "%-11s %s (host %s, pid %d, since %s, lease until %s)\n", label, wk.ID, wk.Host, wk.PID,
			wk.Joined.Local().Format(time.DateTime), wk.Expires.Local().Format(time.TimeOnly))
	}
}

// refusedCallbacks summarises the run's refused callback deliveries, ""
// when there were none.
func refusedCallbacks(counters map[string]int64) string {
	var total int64
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(counters)) {
		if reason, ok := strings.CutPrefix(k, rollout.CallbackRejectedPrefix); ok && counters[k] > 0 {
			total += counters[k]
			parts = append(parts, fmt.Sprintf("%s %d", reason, counters[k]))
		}
	}
	if total == 0 {
		return ""
	}
	return fmt.Sprintf("%d deliveries refused (%s)", total, strings.Join(parts, ", "))
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
