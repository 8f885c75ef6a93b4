package postgres

import (
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/simbulk/simbulk/pipeline"
)

// MarkInFlight commits the worker's intent to send these rows, those
// pending that it holds or nobody does, and renews its lease in the same
// transaction. It returns the rows marked only once the intent is
// committed: a crash after this point leaves them in flight, and they are
// looked up at the provider before anything is sent again.
func (s *Store) MarkInFlight(ctx context.Context, runID, worker string, rows []int) ([]int, error) {
	var marked []int
	err := s.write(ctx, func(tx pgx.Tx) error {
		if _, err := renew(ctx, tx, runID, worker); err != nil {
			return err
		}
		res, err := tx.Query(ctx, `UPDATE rows SET state = $1, attempts = attempts + 1, must_lookup = true, updated_at = $2, lease_owner = $5
			WHERE run_id = $3 AND row = ANY($4) AND state = $6 AND (lease_owner IS NULL OR lease_owner = $5) RETURNING row`,
			pipeline.InFlight, s.now(), runID, rows, worker, pipeline.Pending)
		if err != nil {
			return err
		}
		marked, err = pgx.CollectRows(res, pgx.RowTo[int])
		slices.Sort(marked) // RETURNING keeps no order
		return err
	})
	return marked, wrapWrite("record intent", err)
}

// applyRow is one transition of Apply. An empty handle or result keeps
// the row's; accepted_at is stamped with the change's time; a row the
// worker follows stays its own.
const applyRow = `UPDATE rows SET state = $1,
	handle = CASE WHEN $2 <> '' THEN $2 ELSE handle END,
	result = CASE WHEN $3::jsonb <> '{}' THEN $3 ELSE result END,
	error_code = $4, error_message = $5, retryable = $6, next_attempt_at = $7, must_lookup = $8,
	accepted_at = CASE WHEN $9 THEN $10 ELSE accepted_at END, updated_at = $10,
	attempts = attempts + $11, lease_owner = CASE WHEN $15 THEN $14 ELSE NULL END
	WHERE run_id = $12 AND row = $13 AND (lease_owner IS NULL OR lease_owner = $14)`

const insertAttempt = `INSERT INTO attempts (run_id, row, started_at, latency_ms, kind, http_status, outcome, error_code)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`

// Apply records transitions and their attempts in one transaction, sent
// as one batch, and frees their rows (but those the worker follows); transitions of rows another worker
// holds are dropped. at stamps the change.
func (s *Store) Apply(ctx context.Context, runID, worker string, at time.Time, ts []pipeline.Transition) error {
	if len(ts) == 0 {
		return nil
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, t := range ts {
			var next *time.Time
			if !t.NextAttemptAt.IsZero() {
				next = &t.NextAttemptAt
			}
			b.Queue(applyRow, t.State, t.Handle, orEmpty(t.Result), t.ErrorCode, t.ErrorMessage, t.Retryable, next, t.MustLookup,
				t.Accepted, at, t.AttemptsAdded(), runID, t.Row, worker, t.Follow)
			if a := t.Attempt; a != nil {
				b.Queue(insertAttempt, runID, a.Row, a.Started, a.Latency.Milliseconds(), a.Kind, a.HTTPStatus, a.Outcome, a.ErrorCode)
			}
		}
		return tx.SendBatch(ctx, b).Close()
	})
}

// count runs one statement as a write and returns the rows it changed.
func (s *Store) count(ctx context.Context, what, query string, args ...any) (int64, error) {
	var n int64
	err := s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, query, args...)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, wrapWrite(what, err)
	}
	return n, nil
}

// Redrive makes failed rows pending again with fresh attempts (only
// retryable ones unless all), keeping must_lookup, and takes a completed
// run back to interrupted. It returns how many it re-queued.
func (s *Store) Redrive(ctx context.Context, runID string, all bool) (int64, error) {
	var n int64
	err := s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE rows SET state = $1, attempts = 0, next_attempt_at = NULL, error_code = '', error_message = '', retryable = false
			WHERE run_id = $2 AND state = $3 AND (retryable OR $4)`, pipeline.Pending, runID, pipeline.Failed, all)
		if n = tag.RowsAffected(); err != nil || n == 0 {
			return err
		}
		// The run has work again: it is no longer complete.
		_, err = tx.Exec(ctx, "UPDATE runs SET state = $1, finished_at = NULL, updated_at = $2 WHERE id = $3 AND state = $4",
			pipeline.RunInterrupted, s.now(), runID, pipeline.RunCompleted)
		return err
	})
	if err != nil {
		return 0, wrapWrite("re-drive failed rows", err)
	}
	return n, nil
}
