package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/simbulk/simbulk/reports"
)

func (a *app) reportCommand() *cobra.Command {
	var where checkpointFlags
	var out, formats string
	cmd := &cobra.Command{
		Use:   "report RUN_ID",
		Short: "Write a run's reports: succeeded/failed/invalid CSV, report.xlsx, summary.json, summary.html",
		Long: `Write (or rewrite) the reports of a run from the checkpoint into
DIR/<run-id>/. A run writes them itself when it ends; use this for a run
still in progress, or after retry-failed.

failed.csv and invalid.csv keep the manifest's columns in their order plus
error_code, error_message, provider and attempts, so a person can fix them
and submit the file again as a manifest. summary.html opens offline.`,
		Example: `  simbulk report 20261124-112356-3f9a2c
  simbulk report 20261124 --format csv,html --out /srv/rollouts`,
		Args: argNames("RUN_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			fs, err := reports.ParseFormats(formats)
			if err != nil {
				return usageError(err)
			}
			cp, _, err := where.openForReading(cmd.Context())
			if err != nil {
				return err
			}
			defer cp.Close()
			files, err := reports.Write(cmd.Context(), cp, args[0], out, fs)
			if err != nil {
				return err
			}
			for _, p := range files.Paths {
				fmt.Fprintln(a.stdout, p)
			}
			return nil
		},
	}
	addCheckpointFlags(cmd, &where)
	cmd.Flags().StringVar(&out, "out", reports.DefaultDir, "`DIR` for the reports; the run's go in DIR/<run-id>/")
	cmd.Flags().StringVar(&formats, "format", "csv,xlsx,json,html", "which reports to write, comma-separated: csv, xlsx, json, html")
	return cmd
}
