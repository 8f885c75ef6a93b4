package pipeline

import (
	"context"
	"database/sql"
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

// transition is a row's new state after an answer.
type transition struct {
	row        int
	state      State
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
	attempt    *attempt
}

// apply records transitions (and their attempts) in one committed write.
func (c *Checkpoint) apply(ctx context.Context, runID string, ts []transition) error {
	now := c.now().UnixMilli()
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
