package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) checkpointCommand() *cobra.Command {
	cp := &cobra.Command{
		Use:   "checkpoint",
		Short: "Look after the checkpoint file",
		Args:  unknownCommand,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usageError(errors.New("checkpoint needs a command: backup"))
		},
	}
	var where checkpointFlags
	backup := &cobra.Command{
		Use:   "backup FILE",
		Short: "Copy the checkpoint consistently, even while a run is writing to it",
		Long: `Write a consistent copy of the checkpoint to FILE (a new file, owner-only).
It is safe while a run, resume or reconcile is working on the checkpoint:
the copy is one snapshot of the database, including the commits still in
its -wal file.

Copying simbulk.db with cp is not safe. SQLite keeps recent commits in
simbulk.db-wal beside it; a copy without them has lost the intents of rows
that were in flight, and resuming from it can send those rows again. To
move a checkpoint to another machine, back it up, copy the backup, and pass
it with --db there.`,
		Example: `  simbulk checkpoint backup /backups/simbulk-$(date +%F).db
  simbulk checkpoint backup copy.db --db /var/lib/simbulk/simbulk.db`,
		Args: argNames("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, db, err := where.openForReading(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.Backup(cmd.Context(), args[0]); err != nil {
				return err
			}
			runs, err := c.Runs(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Backed up %s (%d runs) to %s\n", db, len(runs), args[0])
			return nil
		},
	}
	addCheckpointFlags(backup, &where)
	cp.AddCommand(backup)
	return cp
}
