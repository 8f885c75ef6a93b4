package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/simbulk/simbulk/pipeline"
)

// MarkInFlight commits the intent to send these rows. It returns only once
// the intent is durable: a crash after this point leaves rows in_flight,
// and resume looks them up at the provider before sending anything again.
func (c *Store) MarkInFlight(ctx context.Context, runID string, rows []int) error {
	now := c.now().UnixMilli()
	return c.write(ctx, func(tx *sql.Tx) error {
		st, err := tx.Prepare("UPDATE rows SET state = " + sqlLit(pipeline.InFlight) + ", attempts = attempts + 1, must_lookup = 1, updated_at = ? WHERE run_id = ? AND row = ?")
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

// Apply records transitions (and their attempts) in one committed write.
// now is the engine's clock: it stamps accepted_at, which completion
// timeouts are measured from.
func (c *Store) Apply(ctx context.Context, runID string, at time.Time, ts []pipeline.Transition) error {
	now := at.UnixMilli()
	return c.write(ctx, func(tx *sql.Tx) error {
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
			var next int64
			if !t.NextAttemptAt.IsZero() {
				next = t.NextAttemptAt.UnixMilli()
			}
			res := jsonText(t.Result)
			if _, err := up.Exec(t.State, t.Handle, t.Handle, res, res, t.ErrorCode, t.ErrorMessage, t.Retryable, next, t.MustLookup, t.Accepted, now, now, t.AddAttempt, runID, t.Row); err != nil {
				return err
			}
			if a := t.Attempt; a != nil {
				if _, err := at.Exec(runID, a.Row, a.Started.UnixMilli(), a.Latency.Milliseconds(), a.Kind, a.HTTPStatus, a.Outcome, a.ErrorCode); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// ReclaimInFlight puts rows left in_flight by a crash back to pending, still
// marked must_lookup: nothing is re-sent before the provider is asked
// whether it already has them.
func (c *Store) ReclaimInFlight(ctx context.Context, runID string) (int64, error) {
	var n int64
	err := c.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec("UPDATE rows INDEXED BY rows_by_state SET state = "+sqlLit(pipeline.Pending)+", must_lookup = 1, next_attempt_at = 0 WHERE run_id = ? AND state = "+sqlLit(pipeline.InFlight), runID)
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
func (c *Store) Redrive(ctx context.Context, runID string, all bool) (int64, error) {
	var n int64
	q := "UPDATE rows SET state = " + sqlLit(pipeline.Pending) + ", attempts = 0, next_attempt_at = 0, error_code = '', error_message = '', retryable = 0 WHERE run_id = ? AND state = " + sqlLit(pipeline.Failed)
	if !all {
		q += " AND retryable = 1"
	}
	err := c.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec(q, runID)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		// The run has work again: it is no longer complete.
		_, err = tx.Exec("UPDATE runs SET state = ?, finished_at = NULL, updated_at = ? WHERE id = ? AND state = ?",
			pipeline.RunInterrupted, c.now().UnixMilli(), runID, pipeline.RunCompleted)
		return err
	})
	return n, err
}
