package main

import (
	"context"
	"errors"
	"fmt"
)

// Exit codes are part of the product (README "Exit codes"): cron
// jobs and scripts tell partial success from a crash by them.
const (
	exitOK          = 0   // every row valid (run: succeeded; reconcile: no drift)
	exitFatal       = 1   // unreadable manifest, bad config, store failure
	exitUsage       = 2   // unknown command or flag, bad flag value, wrong argument count
	exitRowsFailed  = 3   // finished, but some rows are invalid or failed (reconcile: drift)
	exitThreshold   = 4   // run stopped early at --max-failures; resumable
	exitInterrupted = 130 // interrupted by SIGINT/SIGTERM; resumable
)

// exitError carries the exit code an outcome maps to up to run, which is
// the only place that turns outcomes into codes.
type exitError struct {
	code int
	// err is what to tell the user; nil when the command's output has
	// already said everything (e.g. the list of invalid rows behind exit 3).
	err error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageError marks err as the caller's mistake in invoking the command.
func usageError(err error) error { return &exitError{code: exitUsage, err: err} }

// exitWith ends a command with code and nothing more to say.
func exitWith(code int) error { return &exitError{code: code} }

// fatalByDefault makes every error a command returns exit 1 unless it
// already carries a code. Errors that never pass through here come from
// cobra's own argument and flag checks, so run can treat those as usage.
func fatalByDefault(err error) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return &exitError{code: exitInterrupted, err: errors.New("interrupted")}
	}
	return &exitError{code: exitFatal, err: err}
}
