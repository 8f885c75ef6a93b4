package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/simbulk/simbulk/pipeline"
)

// OpenReconciliation resumes the run's unfinished reconciliation, or
// starts one listing every row: provisioned rows pending, the rest not
// provisioned.
func (s *Store) OpenReconciliation(ctx context.Context, runID string) (id string, resumed bool, err error) {
	now := s.now()
	err = s.write(ctx, func(tx pgx.Tx) error {
		// The run's row lock: two reconcilers opening at once must find
		// one reconciliation, not start two.
		if _, err := tx.Exec(ctx, "SELECT 1 FROM runs WHERE id = $1 FOR UPDATE", runID); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, "SELECT id FROM reconciliations WHERE run_id = $1 AND state <> $2 ORDER BY created_at DESC LIMIT 1",
			runID, pipeline.RunCompleted).Scan(&id)
		if err == nil {
			resumed = true
			_, err = tx.Exec(ctx, "UPDATE reconciliations SET state = $1, updated_at = $2 WHERE id = $3", pipeline.RunRunning, now, id)
			return err
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		id = "rc-" + pipeline.NewRunID(now)
		if _, err := tx.Exec(ctx, "INSERT INTO reconciliations (id, run_id, state, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)",
			id, runID, pipeline.RunRunning, now); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO reconcile_rows (reconcile_id, row, provider, status, note)
			SELECT $1, row, provider, CASE WHEN state = ANY($3) THEN $4 ELSE $5 END, CASE WHEN state = ANY($3) THEN '' ELSE state END
			FROM rows WHERE run_id = $2`, id, runID, provisionedStates, pipeline.ReconcilePending, pipeline.ReconcileNotProvisioned)
		return err
	})
	if err != nil {
		return "", false, wrapWrite("open reconciliation", err)
	}
	return id, resumed, nil
}

// ReconcilePending returns up to limit of provider's rows the
// reconciliation has still to look up, with row numbers above after, in
// row order.
func (s *Store) ReconcilePending(ctx context.Context, runID, id, provider string, after, limit int) ([]pipeline.RowRecord, error) {
	return s.queryRows(ctx, "read rows to reconcile", "SELECT "+prefixed("r.", rowColumns)+` FROM reconcile_rows k
		JOIN rows r ON r.run_id = $1 AND r.row = k.row
		WHERE k.reconcile_id = $2 AND k.provider = $3 AND k.status = $4 AND k.row > $5 ORDER BY k.row LIMIT $6`,
		runID, id, provider, pipeline.ReconcilePending, after, limit)
}

// RecordVerdicts records a page of results in one transaction.
func (s *Store) RecordVerdicts(ctx context.Context, id string, vs []pipeline.Verdict, maxTries int) error {
	b := &pgx.Batch{}
	for _, v := range vs {
		if v.Status == "" && v.Note == "" {
			continue // not looked up (stopping): leave it as it was
		}
		findings := v.Findings
		if findings == nil {
			findings = []pipeline.Finding{}
		}
		b.Queue(`UPDATE reconcile_rows SET tries = tries + 1, note = $1,
			status = CASE WHEN $2 <> '' THEN $2 WHEN tries + 1 >= $3 THEN $4 ELSE status END,
			findings = $5 WHERE reconcile_id = $6 AND row = $7`, v.Note, v.Status, maxTries, pipeline.ReconcileError, findings, id, v.Row)
	}
	if b.Len() == 0 {
		return nil
	}
	return wrapWrite("record reconciliation", s.write(ctx, func(tx pgx.Tx) error { return tx.SendBatch(ctx, b).Close() }))
}

// FinishReconciliation records where the reconciliation stands; a
// completed one gets a finish time.
func (s *Store) FinishReconciliation(ctx context.Context, id string, state pipeline.RunState) error {
	return s.exec(ctx, "finish reconciliation", `UPDATE reconciliations SET state = $1, updated_at = $2,
		finished_at = CASE WHEN $1 = $3 THEN $2::timestamptz END WHERE id = $4`, state, s.now(), pipeline.RunCompleted, id)
}

// Reconciliation reads a reconciliation's totals and findings.
func (s *Store) Reconciliation(ctx context.Context, id string) (pipeline.Reconciliation, error) {
	res := pipeline.Reconciliation{ID: id}
	var finished *time.Time
	if err := s.pool.QueryRow(ctx, "SELECT run_id, state, created_at, finished_at FROM reconciliations WHERE id = $1", id).
		Scan(&res.RunID, &res.State, &res.StartedAt, &finished); err != nil {
		return res, fmt.Errorf("read reconciliation: %w", err)
	}
	if finished != nil {
		res.FinishedAt = *finished
	}
	rows, err := s.pool.Query(ctx, "SELECT status, count(*) FROM reconcile_rows WHERE reconcile_id = $1 GROUP BY status", id)
	if err != nil {
		return res, fmt.Errorf("read reconciliation: %w", err)
	}
	var status pipeline.ReconcileStatus
	var n int
	_, err = pgx.ForEachRow(rows, []any{&status, &n}, func() error { res.Count(status, n); return nil })
	if err != nil {
		return res, fmt.Errorf("read reconciliation: %w", err)
	}
	rows, err = s.pool.Query(ctx, "SELECT findings FROM reconcile_rows WHERE reconcile_id = $1 AND status = $2 ORDER BY row",
		id, pipeline.ReconcileDrift)
	if err != nil {
		return res, fmt.Errorf("read drift: %w", err)
	}
	var fs []pipeline.Finding
	_, err = pgx.ForEachRow(rows, []any{&fs}, func() error { res.Drift = append(res.Drift, fs...); fs = nil; return nil })
	if err != nil {
		return res, fmt.Errorf("read drift: %w", err)
	}
	return res, nil
}

// Reconciliations lists the ids of the run's reconciliations, newest first.
func (s *Store) Reconciliations(ctx context.Context, runID string) ([]string, error) {
	rows, err := s.pool.Query(ctx, "SELECT id FROM reconciliations WHERE run_id = $1 ORDER BY created_at DESC, id DESC", runID)
	if err != nil {
		return nil, fmt.Errorf("list reconciliations: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list reconciliations: %w", err)
	}
	return ids, nil
}
