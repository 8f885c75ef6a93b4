package pipeline

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/simbulk/simbulk/providers"
)

// markInFlight commits the intent to send these rows. It returns only once
// the intent is durable: a crash after this point leaves rows in_flight,
// and resume looks them up at the provider before sending anything again.
func (c *Checkpoint) markInFlight(ctx context.Context, runID string, rows []int) error {
	now := c.now().UnixMilli()
	return c.Write(ctx, func(tx *sql.Tx) error {
		st, err := tx.Prepare("UPDATE rows SET state = " + sqlLit(InFlight) + ", attempts = attempts + 1, must_lookup = 1, updated_at = ? WHERE run_id = ? AND row = ?")
		if err != nil {
			return err
		}
		defer st.Close()
		for _, r := range rows {
			if _, err := st.Exec(now, runID, r); err != nil {
				return err
			}
		}
		return nil
	})
}

// attempt is one request's record for the attempts table.
type attempt struct {
	row     int
	kind    string // submit | check | lookup
	started time.Time
	latency time.Duration
	outcome providers.Outcome
}

// transition is a row's new state after an answer. Build one only with the
// named constructors below: each says why a row moves, and together they
// are every state change the engine makes after markInFlight.
type transition struct {
	row        int
	state      State // "": no change
	handle     string
	result     map[string]string
	err        *providers.Error
	nextTry    time.Time
	mustLookup bool
	accepted   bool // set accepted_at now
	// addAttempt counts a failed lookup against the row's attempts, as
	// markInFlight counts a send: a row whose answers cannot be read is
	// bounded whether it is being sent or looked up.
	addAttempt bool
	// failure: the row failed for good and counts against --max-failures.
	failure bool
	attempt *attempt
}

// unchanged: nothing to record (a look that learned nothing new, or the
// lane is stopping before asking).
func unchanged() transition { return transition{} }

// markSucceeded: the provider did the work (answered done, or holds the
// row's record active).
func markSucceeded(r RowRecord, handle string, result map[string]string) transition {
	return transition{row: r.Row, state: Succeeded, handle: handle, result: result}
}

// markAccepted: the provider took the work and finishes it later; the row
// is followed (checked) from now, and its completion timeout starts.
func markAccepted(r RowRecord, handle string, result map[string]string) transition {
	return transition{row: r.Row, state: Accepted, handle: handle, result: result, accepted: true}
}

// retryLater: a retryable failure with attempts left, or during an outage
// (which spends none): send again at next, after a lookup if the request
// may have taken effect.
func retryLater(r RowRecord, pe *providers.Error, next time.Time) transition {
	return transition{row: r.Row, state: Pending, err: pe, mustLookup: pe.MaybeApplied, nextTry: next}
}

// waitForCredentials: the provider refused simbulk's credentials, not the
// row: it waits, pending, for a person to fix them and resume, still to be
// looked up if it was.
func waitForCredentials(r RowRecord, pe *providers.Error) transition {
	return transition{row: r.Row, state: Pending, err: pe, mustLookup: pe.MaybeApplied || r.MustLookup}
}

// waitForResume: the request was cut off by the shutdown, not refused by
// the provider: the row waits, pending, for the resume (which looks it up
// first if the request may have taken effect).
func waitForResume(r RowRecord, pe *providers.Error) transition {
	return transition{row: r.Row, state: Pending, err: pe, mustLookup: pe.MaybeApplied}
}

// failFinal: the provider refused the row for good, or a retryable cause
// outlasted its attempts. Unreadable answers end as unreadable_answer,
// marked to be looked up before anything is sent again (finalError).
func failFinal(r RowRecord, pe *providers.Error) transition {
	pe = finalError(pe, r.Attempts)
	return transition{row: r.Row, state: Failed, err: pe, mustLookup: pe.MaybeApplied, failure: true}
}

// holdForLookup: the lane stopped (or its credentials were refused) before
// a row in doubt could be looked up: it waits, unchanged and still to be
// looked up, for the resume. pe is the lookup's error, nil if none was made.
func holdForLookup(r RowRecord, pe *providers.Error) transition {
	return transition{row: r.Row, state: Pending, mustLookup: true, err: pe, nextTry: r.NextAttemptAt}
}

// awaitLookup: the lookup of a row in doubt failed, so whether the provider
// has it is unknown: look again at next. The failed lookup spends an
// attempt, so a provider whose answers cannot be read cannot keep a row
// looping.
func awaitLookup(r RowRecord, pe *providers.Error, next time.Time) transition {
	return transition{row: r.Row, state: Pending, mustLookup: true, err: pe, nextTry: next, addAttempt: true}
}

// failLookup: the lookup of a row in doubt failed for good, or for all its
// attempts (counting this one): the row fails, still to be looked up
// before anything is sent again.
func failLookup(r RowRecord, pe *providers.Error, attempts int) transition {
	return transition{row: r.Row, state: Failed, mustLookup: true, err: finalError(pe, attempts), addAttempt: true, failure: true}
}

// failConflict: the provider holds the row's identifier in a record that
// is somebody else's, or not active: neither ours to count as done nor to
// send again; a person decides.
func failConflict(r RowRecord, pe *providers.Error, result map[string]string) transition {
	return transition{row: r.Row, state: Failed, err: pe, result: result, failure: true}
}

// failIncomplete: accepted work the provider did not complete within the
// completion timeout. Retryable, but only after a lookup: it was accepted.
func failIncomplete(r RowRecord, timeout time.Duration) transition {
	return transition{row: r.Row, state: Failed, mustLookup: true, failure: true,
		err: &providers.Error{Code: providers.CodeIncomplete, Retryable: true,
			Message: fmt.Sprintf("accepted but not completed within %s", timeout)}}
}

// failUnreadable: the checks of accepted work could not be read for the
// whole completion timeout: the row's bound in time is spent.
func failUnreadable(r RowRecord, pe *providers.Error) transition {
	return transition{row: r.Row, state: Failed, mustLookup: true, err: finalError(pe, r.Attempts), failure: true}
}

// requeueLost: accepted once, unknown to the provider now: the sender
// tries it afresh, after a lookup.
func requeueLost(r RowRecord) transition {
	return transition{row: r.Row, state: Pending, mustLookup: true,
		err: &providers.Error{Code: providers.CodeNotFound, Message: "accepted request no longer known to the provider", Retryable: true}}
}

// lookupFirst marks a transition of a row whose request the provider
// accepted once: whatever it says of it now, the row is looked up before
// anything is sent again.
func (t transition) lookupFirst() transition {
	t.mustLookup = true
	return t
}

// apply records transitions (and their attempts) in one committed write.
// now is the engine's clock: it stamps accepted_at, which completion
// timeouts are measured from.
func (c *Checkpoint) apply(ctx context.Context, runID string, at time.Time, ts []transition) error {
	now := at.UnixMilli()
	return c.Write(ctx, func(tx *sql.Tx) error {
		up, err := tx.Prepare(`UPDATE rows SET state = ?, handle = CASE WHEN ? != '' THEN ? ELSE handle END,
			result = CASE WHEN ? != '{}' THEN ? ELSE result END, error_code = ?, error_message = ?, retryable = ?,
			next_attempt_at = ?, must_lookup = ?, accepted_at = CASE WHEN ? THEN ? ELSE accepted_at END, updated_at = ?,
			attempts = attempts + ?
			WHERE run_id = ? AND row = ?`)
		if err != nil {
			return err
		}
		defer up.Close()
		at, err := tx.Prepare("INSERT INTO attempts (run_id, row, started_at, latency_ms, kind, http_status, outcome, error_code) VALUES (" + placeholders(8) + ")")
		if err != nil {
			return err
		}
		defer at.Close()
		for _, t := range ts {
			var code, msg string
			var retryable bool
			if t.err != nil {
				code, msg, retryable = t.err.Code, t.err.Message, t.err.Retryable
			}
			var next int64
			if !t.nextTry.IsZero() {
				next = t.nextTry.UnixMilli()
			}
			res := jsonText(t.result)
			if _, err := up.Exec(t.state, t.handle, t.handle, res, res, code, msg, retryable, next, t.mustLookup, t.accepted, now, now, t.addAttempt, runID, t.row); err != nil {
				return err
			}
			if a := t.attempt; a != nil {
				var status int
				var ecode string
				if a.outcome.Err != nil {
					status, ecode = a.outcome.Err.HTTPStatus, a.outcome.Err.Code
				}
				if _, err := at.Exec(runID, a.row, a.started.UnixMilli(), a.latency.Milliseconds(), a.kind, status, a.outcome.Status, ecode); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// reclaimInFlight puts rows left in_flight by a crash back to pending, still
// marked must_lookup: nothing is re-sent before the provider is asked
// whether it already has them.
func (c *Checkpoint) reclaimInFlight(ctx context.Context, runID string) (int64, error) {
	var n int64
	err := c.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec("UPDATE rows INDEXED BY rows_by_state SET state = "+sqlLit(Pending)+", must_lookup = 1, next_attempt_at = 0 WHERE run_id = ? AND state = "+sqlLit(InFlight), runID)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// Redrive makes failed rows of a run pending again with fresh attempts:
// only those that failed for a retryable cause, or every failed row when
// all is set. Rows whose last request may have taken effect keep
// must_lookup, so they are looked up before being sent. It returns how
// many rows it re-queued.
func (c *Checkpoint) Redrive(ctx context.Context, runID string, all bool) (int64, error) {
	var n int64
	q := "UPDATE rows SET state = " + sqlLit(Pending) + ", attempts = 0, next_attempt_at = 0, error_code = '', error_message = '', retryable = 0 WHERE run_id = ? AND state = " + sqlLit(Failed)
	if !all {
		q += " AND retryable = 1"
	}
	err := c.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec(q, runID)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		// The run has work again: it is no longer complete.
		_, err = tx.Exec("UPDATE runs SET state = ?, finished_at = NULL, updated_at = ? WHERE id = ? AND state = ?",
			RunInterrupted, c.now().UnixMilli(), runID, RunCompleted)
		return err
	})
	return n, err
}
