package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lockCheckpoint takes an exclusive lock beside the checkpoint (FILE.lock)
// so that two overlapping cron runs cannot both work on it. It waits up to
// wait for a holder to finish, then gives up with a clear error. The lock
// goes with the process, so a killed holder never leaves it stuck.
func lockCheckpoint(db string, wait time.Duration) (unlock func(), err error) {
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
