package main

import (
	"context"
	"os"

	"github.com/spf13/cobra"

	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/pipeline/postgres"
	"github.com/simbulk/simbulk/pipeline/sqlite"
)

// defaultCheckpoint is the SQLite file used when nothing names one.
const defaultCheckpoint = "simbulk.db"

// checkpointAt is where the checkpoint is: --db when given, else
// SIMBULK_DB, else the config's checkpoint: (cfg may be nil), else
// simbulk.db in the working directory. A postgres:// URL puts it in
// PostgreSQL; anything else is a SQLite file.
func checkpointAt(flag string, cfg *Config) string {
	if flag != "" {
		return flag
	}
	if env := os.Getenv("SIMBULK_DB"); env != "" {
		return env
	}
	if cfg != nil && cfg.Checkpoint != "" {
		return cfg.Checkpoint
	}
	return defaultCheckpoint
}

// checkpointName is db as messages and log lines show it: a connection
// string without its password.
func checkpointName(db string) string {
	if postgres.IsConnString(db) {
		return postgres.Redact(db)
	}
	return db
}

// openMode is what a command does with the checkpoint.
type openMode int

const (
	openOrCreate openMode = iota // run: a new checkpoint is created
	openExisting                 // resume, retry-failed, reconcile: the run must be there
	openReadOnly                 // status, report, backup: nothing is written
)

// openCheckpoint opens the checkpoint at db, a SQLite file or a
// PostgreSQL database.
func openCheckpoint(ctx context.Context, db string, mode openMode) (pipeline.Store, error) {
	if postgres.IsConnString(db) {
		// A database is never created by simbulk, only its tables: an
		// empty one is as good as a new checkpoint, and resuming finds no
		// run in it.
		if mode == openReadOnly {
			return postgres.OpenReadOnly(ctx, db)
		}
		return postgres.Open(ctx, db)
	}
	switch mode {
	case openExisting:
		return sqlite.OpenExisting(db)
	case openReadOnly:
		return sqlite.OpenReadOnly(db)
	}
	return sqlite.Open(db)
}

// checkpointFlags are the flags of a command that only reads the
// checkpoint (status, report, checkpoint backup): --db, and --config for
// a config whose checkpoint: names it.
type checkpointFlags struct{ db, config string }

func addCheckpointFlags(cmd *cobra.Command, f *checkpointFlags) {
	addDBFlag(cmd, &f.db)
	cmd.Flags().StringVar(&f.config, "config", "", "config `FILE` whose checkpoint: names the checkpoint (when --db and SIMBULK_DB do not)")
}

// openForReading opens the checkpoint the flags name, read-only. It
// returns the name messages may show.
func (f *checkpointFlags) openForReading(ctx context.Context) (pipeline.Store, string, error) {
	var cfg *Config
	if f.config != "" {
		var err error
		if cfg, err = loadConfig(f.config); err != nil {
			return nil, "", err
		}
	}
	db := checkpointAt(f.db, cfg)
	cp, err := openCheckpoint(ctx, db, openReadOnly)
	return cp, checkpointName(db), err
}
