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

// lockCheckpoint takes the lock that keeps two simbulks from doing the
// same work at once. For a SQLite file it is a lock file beside it, held
// by whole runs and reconciliations: one process at a time works on the
// checkpoint. For a PostgreSQL checkpoint it is the database's named lock
// (see postgres.Store.Lock): "setup" while a run is found, created and
// loaded, after which other processes join the run, or "reconcile RUN".
// It waits up to wait for a holder to finish (negative: as long as ctx
// allows), then gives up with a clear error. Either lock goes with the
// process (or its connection), so a killed holder never leaves it stuck.
func lockCheckpoint(ctx context.Context, cp pipeline.Store, db, name string, wait time.Duration) (unlock func(), err error) {
	if pg, ok := cp.(*postgres.Store); ok {
		unlock, err := pg.Lock(ctx, name, wait)
		if errors.Is(err, postgres.ErrLocked) {
			return nil, fmt.Errorf("another simbulk is working on %s (%s, held for over %s); try again when it has finished", checkpointName(db), name, wait)
		}
		return unlock, err
	}
	return lockFile(db, wait)
}

// shared reports whether several processes may work on one run of cp at
// once: a PostgreSQL checkpoint's, where rows are leased.
func shared(cp pipeline.Store) bool {
	_, ok := cp.(*postgres.Store)
	return ok
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
