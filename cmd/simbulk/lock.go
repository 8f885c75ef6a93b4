package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/pipeline/postgres"
)

// lockCheckpoint takes the checkpoint's exclusive lock so that two
// overlapping cron runs cannot both work on it: for a PostgreSQL
// checkpoint the database's own lock, for a SQLite file a lock file
// beside it. It waits up to wait for a holder to finish, then gives up
// with a clear error. Either lock goes with the process (or its
// connection), so a killed holder never leaves it stuck.
func lockCheckpoint(ctx context.Context, cp pipeline.Store, db string, wait time.Duration) (unlock func(), err error) {
	if pg, ok := cp.(*postgres.Store); ok {
		unlock, err := pg.Lock(ctx, wait)
		if errors.Is(err, postgres.ErrLocked) {
			return nil, fmt.Errorf("another simbulk is working on %s (held for over %s); try again when it has finished", checkpointName(db), wait)
		}
		return unlock, err
	}
	return lockFile(db, wait)
}

// lockFile takes an exclusive lock on FILE.lock beside a SQLite checkpoint.
func lockFile(db string, wait time.Duration) (unlock func(), err error) {
	path := db + ".lock"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock checkpoint: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock checkpoint %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("another simbulk is working on %s (lock %s held for over %s); try again when it has finished", db, path, wait)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
