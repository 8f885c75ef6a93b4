package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/simbulk/simbulk/pipeline"
)

// reportView is a consistent, read-only view of one run: one REPEATABLE
// READ transaction, whose snapshot every read shares. It is valid only
// inside the function given to ViewRun.
type reportView struct {
	tx  pgx.Tx
	run pipeline.Run
}

// ViewRun calls fn with a view of the run (a unique id prefix is enough).
func (s *Store) ViewRun(ctx context.Context, runID string, fn func(pipeline.ReportView) error) error {
	r, err := s.Run(ctx, runID)
	if err != nil {
		return err
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("read run %s: %w", r.ID, err)
	}
	// Read-only: rolling back only ends the snapshot.
	defer tx.Rollback(context.WithoutCancel(ctx))
	// The first read fixes the snapshot: the run as of it.
	r, err = scanRun(tx.QueryRow(ctx, "SELECT "+runColumns+" FROM runs WHERE id = $1", r.ID))
	if err != nil {
		return fmt.Errorf("read run %s: %w", runID, err)
	}
	return fn(&reportView{tx: tx, run: r})
}

// Run is the run the view describes.
func (v *reportView) Run() pipeline.Run { return v.run }

// CountsByProvider returns the run's rows by provider and state.
func (v *reportView) CountsByProvider(ctx context.Context) (map[string]pipeline.Counts, error) {
	rows, err := v.tx.Query(ctx, "SELECT provider, state, count(*) FROM rows WHERE run_id = $1 GROUP BY provider, state", v.run.ID)
	if err != nil {
		return nil, fmt.Errorf("count rows by provider: %w", err)
	}
	out := map[string]pipeline.Counts{}
	var p string
	var st pipeline.State
	var n int
	_, err = pgx.ForEachRow(rows, []any{&p, &st, &n}, func() error {
		if out[p] == nil {
			out[p] = pipeline.Counts{}
		}
		out[p][st] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count rows by provider: %w", err)
	}
	return out, nil
}

// TopErrors returns the most frequent error codes of failed and invalid
// rows, most frequent first (ties by code), at most limit of them.
func (v *reportView) TopErrors(ctx context.Context, limit int) ([]pipeline.ErrorCount, error) {
	rows, err := v.tx.Query(ctx, `SELECT error_code, count(*) AS n, min(error_message) FROM rows
		WHERE run_id = $1 AND state = ANY($2) AND error_code <> ''
		GROUP BY error_code ORDER BY n DESC, error_code LIMIT $3`, v.run.ID, states(pipeline.Failed, pipeline.Invalid), limit)
	if err != nil {
		return nil, fmt.Errorf("count errors: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pipeline.ErrorCount, error) {
		var e pipeline.ErrorCount
		err := r.Scan(&e.Code, &e.Count, &e.Message)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("count errors: %w", err)
	}
	return out, nil
}

// Latencies returns, per provider, how many requests took each latency,
// in ascending latency order.
func (v *reportView) Latencies(ctx context.Context) (map[string][]pipeline.LatencyCount, error) {
	rows, err := v.tx.Query(ctx, `SELECT r.provider, a.latency_ms, count(*) FROM attempts a
		JOIN rows r ON r.run_id = a.run_id AND r.row = a.row
		WHERE a.run_id = $1 GROUP BY r.provider, a.latency_ms ORDER BY r.provider, a.latency_ms`, v.run.ID)
	if err != nil {
		return nil, fmt.Errorf("read request latencies: %w", err)
	}
	out := map[string][]pipeline.LatencyCount{}
	var p string
	var lc pipeline.LatencyCount
	_, err = pgx.ForEachRow(rows, []any{&p, &lc.Millis, &lc.Count}, func() error { out[p] = append(out[p], lc); return nil })
	if err != nil {
		return nil, fmt.Errorf("read request latencies: %w", err)
	}
	return out, nil
}

// FinishedPer returns, for every interval of the given length (whole
// seconds, at least one) in which rows reached succeeded or failed, how
// many did, in time order; intervals with none are left out.
func (v *reportView) FinishedPer(ctx context.Context, interval time.Duration) ([]pipeline.FinishedCount, error) {
	secs := max(int64(interval/time.Second), 1)
	rows, err := v.tx.Query(ctx, `SELECT floor(extract(epoch FROM updated_at) / $1)::bigint AS bucket,
		count(*) FILTER (WHERE state = $2), count(*) FILTER (WHERE state = $3) FROM rows
		WHERE run_id = $4 AND state IN ($2, $3) GROUP BY bucket ORDER BY bucket`, secs, pipeline.Succeeded, pipeline.Failed, v.run.ID)
	if err != nil {
		return nil, fmt.Errorf("read throughput: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pipeline.FinishedCount, error) {
		var bucket int64
		var fc pipeline.FinishedCount
		err := r.Scan(&bucket, &fc.Succeeded, &fc.Failed)
		fc.Start = time.Unix(bucket*secs, 0).UTC()
		return fc, err
	})
	if err != nil {
		return nil, fmt.Errorf("read throughput: %w", err)
	}
	return out, nil
}

// LastChange is when a row of the run last changed, zero when it has none.
func (v *reportView) LastChange(ctx context.Context) (time.Time, error) {
	var last *time.Time
	if err := v.tx.QueryRow(ctx, "SELECT max(updated_at) FROM rows WHERE run_id = $1", v.run.ID).Scan(&last); err != nil {
		return time.Time{}, fmt.Errorf("read last change: %w", err)
	}
	if last == nil {
		return time.Time{}, nil
	}
	return *last, nil
}

// ResultKeys returns the distinct keys of what providers returned for the
// run's rows in state, sorted.
func (v *reportView) ResultKeys(ctx context.Context, state pipeline.State) ([]string, error) {
	rows, err := v.tx.Query(ctx, `SELECT DISTINCT k FROM rows, jsonb_object_keys(rows.result) AS k
		WHERE rows.run_id = $1 AND rows.state = $2 ORDER BY k`, v.run.ID, state)
	if err != nil {
		return nil, fmt.Errorf("read result keys: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read result keys: %w", err)
	}
	return out, nil
}

// MaxCells returns the most original cells any row in state has.
func (v *reportView) MaxCells(ctx context.Context, state pipeline.State) (int, error) {
	var n *int
	err := v.tx.QueryRow(ctx, "SELECT max(jsonb_array_length(cells)) FROM rows WHERE run_id = $1 AND state = $2", v.run.ID, state).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("read row widths: %w", err)
	}
	if n == nil {
		return 0, nil
	}
	return *n, nil
}

// Rows streams the run's rows in state, in row order, to fn.
func (v *reportView) Rows(ctx context.Context, state pipeline.State, fn func(pipeline.ReportRow) error) error {
	rows, err := v.tx.Query(ctx, "SELECT "+rowColumns+", updated_at FROM rows WHERE run_id = $1 AND state = $2 ORDER BY row", v.run.ID, state)
	if err != nil {
		return fmt.Errorf("read %s rows: %w", state, err)
	}
	defer rows.Close()
	for rows.Next() {
		var updated time.Time
		rec, err := scanRow(rows, &updated)
		if err != nil {
			return fmt.Errorf("read %s rows: %w", state, err)
		}
		if err := fn(pipeline.ReportRow{RowRecord: rec, UpdatedAt: updated}); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s rows: %w", state, err)
	}
	return nil
}
