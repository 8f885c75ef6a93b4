package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/simbulk/simbulk/pipeline"
)

// MarkInFlight commits the worker's intent to send these rows, those
// pending that it holds or nobody does, and renews its lease. It returns
// the rows marked only once the intent is durable: a crash after this
// point leaves them in_flight, and resume looks them up at the provider
// before sending anything again.
func (c *Store) MarkInFlight(ctx context.Context, runID, worker string, rows []int) ([]int, error) {
	now := c.now().UnixMilli()
	var marked []int
	var live bool
	err := c.write(ctx, func(tx *sql.Tx) error {
		var err error
		if live, err = c.renewOnce(tx, runID, worker, now); err != nil || !live {
			return err
		}
		st := tx.Stmt(c.markStmt)
		defer st.Close()
		for _, r := range rows {
			res, err := st.Exec(now, worker, runID, r)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 1 {
				marked = append(marked, r)
			}
		}
		return nil
	})
	if err == nil && !live {
		err = pipeline.ErrLeaseLost
	}
	return marked, err
}

// renewOnce renews the worker's lease in tx, once per transaction: the
// writer commits many workers' intents together, and one renewal in a
// commit gives each of them a whole lease from it.
func (c *Store) renewOnce(tx *sql.Tx, runID, worker string, now int64) (live bool, err error) {
	if c.renewedIn != tx {
		c.renewedIn, c.renewed = tx, map[[2]string]bool{}
	}
	key := [2]string{runID, worker}
	if live, ok := c.renewed[key]; ok {
		return live, nil
	}
	if live, err = renew(tx, runID, worker, now); err == nil {
		c.renewed[key] = live
	}
	return live, err
}

// The engine's writes, prepared once on the write connection (see
// prepareWrites): they run for every row, several times, and preparing
// them afresh in each transaction cost as much as running them. Their
// parameters are numbered so that a value used twice (the handle, the
// result, the clock, the worker) is bound once: binding was a fifth of a
// statement's cost.
var (
	markSQL = "UPDATE rows SET state = " + sqlLit(pipeline.InFlight) + ", attempts = attempts + 1, must_lookup = 1, updated_at = ?1, lease_owner = ?2" +
		" WHERE run_id = ?3 AND row = ?4 AND state = " + sqlLit(pipeline.Pending) + " AND (lease_owner IS NULL OR lease_owner = ?2)"
	applySQL = `UPDATE rows SET state = ?1, handle = CASE WHEN ?2 != '' THEN ?2 ELSE handle END,
			result = CASE WHEN ?3 != '{}' THEN ?3 ELSE result END, error_code = ?4, error_message = ?5, retryable = ?6,
			next_attempt_at = ?7, must_lookup = ?8, accepted_at = CASE WHEN ?9 THEN ?10 ELSE accepted_at END, updated_at = ?10,
			attempts = attempts + ?11, lease_owner = CASE WHEN ?12 THEN ?13 ELSE NULL END
			WHERE run_id = ?14 AND row = ?15 AND (lease_owner IS NULL OR lease_owner = ?13)`
	attemptSQL = "INSERT INTO attempts (run_id, row, started_at, latency_ms, kind, http_status, outcome, error_code) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)

// prepareWrites prepares the engine's writes on the write connection,
// before the writer starts. A transaction reuses them (tx.Stmt) on the
// same connection, and prepares them again only on a new one.
func (c *Store) prepareWrites() error {
	for _, p := range []struct {
		st  **sql.Stmt
		sql string
	}{{&c.markStmt, markSQL}, {&c.applyStmt, applySQL}, {&c.attemptStmt, attemptSQL}} {
		st, err := c.writeDB.Prepare(p.sql)
		if err != nil {
			return err
		}
		*p.st = st
	}
	return nil
}

// Apply records transitions (and their attempts) in one committed write,
// and frees their rows (but those the worker follows); transitions of rows
// another worker holds are dropped. now is the engine's clock: it stamps accepted_at, which
// completion timeouts are measured from.
func (c *Store) Apply(ctx context.Context, runID, worker string, at time.Time, ts []pipeline.Transition) error {
	now := at.UnixMilli()
	return c.write(ctx, func(tx *sql.Tx) error {
		up := tx.Stmt(c.applyStmt)
		defer up.Close()
		at := tx.Stmt(c.attemptStmt)
		defer at.Close()
		var buf []byte
		for _, t := range ts {
			var next int64
			if !t.NextAttemptAt.IsZero() {
				next = t.NextAttemptAt.UnixMilli()
			}
			res := "{}" // keeps the row's result
			if len(t.Result) > 0 {
				buf = appendJSONFields(buf[:0], t.Result)
				res = string(buf)
			}
			if _, err := up.Exec(t.State, t.Handle, res, t.ErrorCode, t.ErrorMessage, t.Retryable, next, t.MustLookup, t.Accepted, now,
				t.AttemptsAdded(), t.Follow, worker, runID, t.Row); err != nil {
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
