package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/simbulk/simbulk/pipeline"
)

// prefixed qualifies each of a list of columns: prefixed("r.", "a, b") is
// "r.a, r.b".
func prefixed(p, columns string) string {
	parts := strings.Split(columns, ", ")
	for i := range parts {
		parts[i] = p + parts[i]
	}
	return strings.Join(parts, ", ")
}

// OpenReconciliation resumes the run's unfinished reconciliation or starts
// one, listing every row: provisioned rows (succeeded, skipped) to check,
// the rest as not provisioned.
func (c *Store) OpenReconciliation(ctx context.Context, runID string) (id string, resumed bool, err error) {
	err = c.read.QueryRowContext(ctx, "SELECT id FROM reconciliations WHERE run_id = ? AND state != ? ORDER BY created_at DESC LIMIT 1", runID, pipeline.RunCompleted).Scan(&id)
	if err == nil {
		return id, true, c.write(ctx, func(tx *sql.Tx) error {
			_, err := tx.Exec("UPDATE reconciliations SET state = ?, updated_at = ? WHERE id = ?", pipeline.RunRunning, c.now().UnixMilli(), id)
			return err
		})
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", false, fmt.Errorf("find reconciliation: %w", err)
	}
	now := c.now()
	id = "rc-" + pipeline.NewRunID(now)
	err = c.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.Exec("INSERT INTO reconciliations (id, run_id, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
			id, runID, pipeline.RunRunning, now.UnixMilli(), now.UnixMilli()); err != nil {
			return err
		}
		_, err := tx.Exec(`INSERT INTO reconcile_rows (reconcile_id, row, provider, status, note)
			SELECT ?, row, provider, CASE WHEN state `+sqlProvisioned+` THEN `+sqlLit(pipeline.ReconcilePending)+` ELSE `+sqlLit(pipeline.ReconcileNotProvisioned)+` END,
			       CASE WHEN state `+sqlProvisioned+` THEN '' ELSE state END
			FROM rows WHERE run_id = ?`, id, runID)
		return err
	})
	if err != nil {
		return "", false, fmt.Errorf("start reconciliation: %w", err)
	}
	return id, false, nil
}

// RecordVerdicts commits a page of results. A row whose lookup failed for
// a retryable cause stays pending until it has been tried maxTries times.
func (c *Store) RecordVerdicts(ctx context.Context, id string, vs []pipeline.Verdict, maxTries int) error {
	return c.write(ctx, func(tx *sql.Tx) error {
		st, err := tx.Prepare(`UPDATE reconcile_rows SET tries = tries + 1, note = ?,
			status = CASE WHEN ? != '' THEN ? WHEN tries + 1 >= ? THEN ` + sqlLit(pipeline.ReconcileError) + ` ELSE status END,
			findings = ? WHERE reconcile_id = ? AND row = ?`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, v := range vs {
			if v.Status == "" && v.Note == "" {
				continue // not looked up (stopping): leave it as it was
			}
			fb, err := json.Marshal(v.Findings)
			if err != nil {
				return err
			}
			if v.Findings == nil {
				fb = []byte("[]")
			}
			if _, err := st.Exec(v.Note, v.Status, v.Status, maxTries, string(fb), id, v.Row); err != nil {
				return err
			}
		}
		return nil
	})
}

// Reconciliation reads a reconciliation's totals and findings.
func (c *Store) Reconciliation(ctx context.Context, id string) (pipeline.Reconciliation, error) {
	res := pipeline.Reconciliation{ID: id}
	var started int64
	var finished sql.NullInt64
	if err := c.read.QueryRowContext(ctx, "SELECT run_id, state, created_at, finished_at FROM reconciliations WHERE id = ?", id).
		Scan(&res.RunID, &res.State, &started, &finished); err != nil {
		return res, fmt.Errorf("read reconciliation: %w", err)
	}
	res.StartedAt = time.UnixMilli(started)
	if finished.Valid {
		res.FinishedAt = time.UnixMilli(finished.Int64)
	}
	rows, err := c.read.QueryContext(ctx, "SELECT status, count(*) FROM reconcile_rows WHERE reconcile_id = ? GROUP BY status", id)
	if err != nil {
		return res, fmt.Errorf("read reconciliation: %w", err)
	}
	for rows.Next() {
		var status string
		var n int
		if err := rows.Scan(&status, &n); err != nil {
			rows.Close()
			return res, err
		}
		res.Count(pipeline.ReconcileStatus(status), n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return res, err
	}
	drift, err := c.read.QueryContext(ctx, "SELECT findings FROM reconcile_rows WHERE reconcile_id = ? AND status = "+sqlLit(pipeline.ReconcileDrift)+" ORDER BY row", id)
	if err != nil {
		return res, fmt.Errorf("read drift: %w", err)
	}
	defer drift.Close()
	for drift.Next() {
		var fb string
		if err := drift.Scan(&fb); err != nil {
			return res, err
		}
		var fs []pipeline.Finding
		if err := json.Unmarshal([]byte(fb), &fs); err != nil {
			return res, fmt.Errorf("read drift: %w", err)
		}
		res.Drift = append(res.Drift, fs...)
	}
	return res, drift.Err()
}

// ReconcilePending returns up to limit of one provider's rows that the
// reconciliation has still to look up, with row numbers above after, in
// row order.
func (c *Store) ReconcilePending(ctx context.Context, runID, id, provider string, after, limit int) ([]pipeline.RowRecord, error) {
	return c.queryRows(ctx, "read rows to reconcile",
		"SELECT "+prefixed("r.", rowColumns)+" FROM reconcile_rows k JOIN rows r ON r.run_id = ? AND r.row = k.row"+
			" WHERE k.reconcile_id = ? AND k.provider = ? AND k.status = "+sqlLit(pipeline.ReconcilePending)+" AND k.row > ? ORDER BY k.row LIMIT ?",
		runID, id, provider, after, limit)
}

// FinishReconciliation records where a reconciliation stands when it
// stops; a completed one gets a finish time.
func (c *Store) FinishReconciliation(ctx context.Context, id string, state pipeline.RunState) error {
	return c.write(ctx, func(tx *sql.Tx) error {
		now := c.now().UnixMilli()
		var fin any
		if state == pipeline.RunCompleted {
			fin = now
		}
		_, err := tx.Exec("UPDATE reconciliations SET state = ?, updated_at = ?, finished_at = ? WHERE id = ?", state, now, fin, id)
		return err
	})
}

// Reconciliations lists the ids of the run's reconciliations, newest first.
func (c *Store) Reconciliations(ctx context.Context, runID string) ([]string, error) {
	rows, err := c.read.QueryContext(ctx, "SELECT id FROM reconciliations WHERE run_id = ? ORDER BY created_at DESC, id DESC", runID)
	if err != nil {
		return nil, fmt.Errorf("list reconciliations: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
