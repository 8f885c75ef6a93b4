package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/simbulk/simbulk/pipeline"
)

// This file holds the read-only queries behind the per-run reports
// (package reports, through pipeline.ReportView). They run inside one read
// transaction, so every file of a report describes the same moment of the
// checkpoint even while a run is still writing to it (WAL lets the writer
// go on beside the reader).

// reportView is a consistent, read-only view of one run: one read
// transaction. It is valid only inside the function given to ViewRun.
type reportView struct {
	tx  *sql.Tx
	run pipeline.Run
}

// ViewRun calls fn with a view of the run (a unique id prefix is enough).
// The view is a snapshot: rows that change while fn runs are seen as they
// were when the view began.
func (c *Store) ViewRun(ctx context.Context, runID string, fn func(pipeline.ReportView) error) error {
	// Resolve a prefix with the usual messages (no such run, ambiguous).
	r, err := c.Run(ctx, runID)
	if err != nil {
		return err
	}
	tx, err := c.read.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("read run %s: %w", r.ID, err)
	}
	// Read-only: rolling back only ends the snapshot.
	defer tx.Rollback()
	// Read the run again inside the snapshot, so its state and times agree
	// with the rows read through the view.
	r, err = scanRun(tx.QueryRowContext(ctx, "SELECT "+runColumns+" FROM runs WHERE id = ?", r.ID))
	if err != nil {
		return fmt.Errorf("read run %s: %w", runID, err)
	}
	return fn(&reportView{tx: tx, run: r})
}

// Run is the run the view describes.
func (v *reportView) Run() pipeline.Run { return v.run }

// CountsByProvider returns the run's rows by provider and state. Rows
// that name no provider (invalid rows, typically) are under "".
func (v *reportView) CountsByProvider(ctx context.Context) (map[string]pipeline.Counts, error) {
	rows, err := v.tx.QueryContext(ctx, "SELECT provider, state, count(*) FROM rows WHERE run_id = ? GROUP BY provider, state", v.run.ID)
	if err != nil {
		return nil, fmt.Errorf("count rows by provider: %w", err)
	}
	defer rows.Close()
	out := map[string]pipeline.Counts{}
	for rows.Next() {
		var p string
		var s pipeline.State
		var n int
		if err := rows.Scan(&p, &s, &n); err != nil {
			return nil, fmt.Errorf("count rows by provider: %w", err)
		}
		if out[p] == nil {
			out[p] = pipeline.Counts{}
		}
		out[p][s] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count rows by provider: %w", err)
	}
	return out, nil
}

// TopErrors returns the most frequent error codes of failed and invalid
// rows, most frequent first (ties by code), at most limit of them.
func (v *reportView) TopErrors(ctx context.Context, limit int) ([]pipeline.ErrorCount, error) {
	rows, err := v.tx.QueryContext(ctx, `SELECT error_code, count(*) AS n, min(error_message) FROM rows
		WHERE run_id = ? AND state `+sqlIn(pipeline.Failed, pipeline.Invalid)+` AND error_code != ''
		GROUP BY error_code ORDER BY n DESC, error_code LIMIT ?`, v.run.ID, limit)
	if err != nil {
		return nil, fmt.Errorf("count errors: %w", err)
	}
	defer rows.Close()
	var out []pipeline.ErrorCount
	for rows.Next() {
		var e pipeline.ErrorCount
		if err := rows.Scan(&e.Code, &e.Count, &e.Message); err != nil {
			return nil, fmt.Errorf("count errors: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count errors: %w", err)
	}
	return out, nil
}

// Latencies returns, per provider, how many requests (of every kind:
// submit, check, lookup) took each latency, in ascending latency order. A
// histogram of distinct millisecond values is exact for percentiles and
// stays small however many requests a run made.
func (v *reportView) Latencies(ctx context.Context) (map[string][]pipeline.LatencyCount, error) {
	rows, err := v.tx.QueryContext(ctx, `SELECT r.provider, a.latency_ms, count(*) FROM attempts a
		JOIN rows r ON r.run_id = a.run_id AND r.row = a.row
		WHERE a.run_id = ? GROUP BY r.provider, a.latency_ms ORDER BY r.provider, a.latency_ms`, v.run.ID)
	if err != nil {
		return nil, fmt.Errorf("read request latencies: %w", err)
	}
	defer rows.Close()
	out := map[string][]pipeline.LatencyCount{}
	for rows.Next() {
		var p string
		var lc pipeline.LatencyCount
		if err := rows.Scan(&p, &lc.Millis, &lc.Count); err != nil {
			return nil, fmt.Errorf("read request latencies: %w", err)
		}
		out[p] = append(out[p], lc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read request latencies: %w", err)
	}
	return out, nil
}

// FinishedPer returns, for every interval of the given length (whole
// seconds, at least one) in which rows of the run reached succeeded or
// failed, how many did, in time order. Intervals with none are left out.
func (v *reportView) FinishedPer(ctx context.Context, interval time.Duration) ([]pipeline.FinishedCount, error) {
	ms := max(interval.Milliseconds()/1000*1000, 1000)
	rows, err := v.tx.QueryContext(ctx, `SELECT updated_at / ? AS bucket,
		sum(state = `+sqlLit(pipeline.Succeeded)+`), sum(state = `+sqlLit(pipeline.Failed)+`) FROM rows
		WHERE run_id = ? AND state `+sqlIn(pipeline.Succeeded, pipeline.Failed)+` GROUP BY bucket ORDER BY bucket`, ms, v.run.ID)
	if err != nil {
		return nil, fmt.Errorf("read throughput: %w", err)
	}
	defer rows.Close()
	var out []pipeline.FinishedCount
	for rows.Next() {
		var bucket int64
		var fc pipeline.FinishedCount
		if err := rows.Scan(&bucket, &fc.Succeeded, &fc.Failed); err != nil {
			return nil, fmt.Errorf("read throughput: %w", err)
		}
		fc.Start = time.UnixMilli(bucket * ms).UTC()
		out = append(out, fc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read throughput: %w", err)
	}
	return out, nil
}

// LastChange is when a row of the run last changed, zero when the run
// has no rows: for a run that has not finished, the end of its activity
// so far.
func (v *reportView) LastChange(ctx context.Context) (time.Time, error) {
	var ms sql.NullInt64
	if err := v.tx.QueryRowContext(ctx, "SELECT max(updated_at) FROM rows WHERE run_id = ?", v.run.ID).Scan(&ms); err != nil {
		return time.Time{}, fmt.Errorf("read last change: %w", err)
	}
	if !ms.Valid {
		return time.Time{}, nil
	}
	return time.UnixMilli(ms.Int64), nil
}

// ResultKeys returns the distinct keys of what providers returned for the
// run's rows in state, sorted: the result columns of a report, known before
// its first row is written.
func (v *reportView) ResultKeys(ctx context.Context, state pipeline.State) ([]string, error) {
	rows, err := v.tx.QueryContext(ctx, `SELECT DISTINCT j.key FROM rows, json_each(rows.result) AS j
		WHERE rows.run_id = ? AND rows.state = ? ORDER BY j.key`, v.run.ID, state)
	if err != nil {
		return nil, fmt.Errorf("read result keys: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("read result keys: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read result keys: %w", err)
	}
	return out, nil
}

// MaxCells returns the most original cells any row in state has. A row
// can be wider than the header (a stray delimiter); reports keep its extra
// cells rather than drop what the user wrote.
func (v *reportView) MaxCells(ctx context.Context, state pipeline.State) (int, error) {
	var n sql.NullInt64
	err := v.tx.QueryRowContext(ctx, "SELECT max(json_array_length(cells)) FROM rows WHERE run_id = ? AND state = ?", v.run.ID, state).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("read row widths: %w", err)
	}
	return int(n.Int64), nil
}

// Rows streams the run's rows in state, in row order, to fn. It never
// holds more than one row.
func (v *reportView) Rows(ctx context.Context, state pipeline.State, fn func(pipeline.ReportRow) error) error {
	rows, err := v.tx.QueryContext(ctx, "SELECT "+rowColumns+", updated_at FROM rows WHERE run_id = ? AND state = ? ORDER BY row", v.run.ID, state)
	if err != nil {
		return fmt.Errorf("read %s rows: %w", state, err)
	}
	defer rows.Close()
	for rows.Next() {
		var updated int64
		rec, err := scanRow(withExtra{rows, []any{&updated}})
		if err != nil {
			return fmt.Errorf("read %s rows: %w", state, err)
		}
		if err := fn(pipeline.ReportRow{RowRecord: rec, UpdatedAt: time.UnixMilli(updated)}); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s rows: %w", state, err)
	}
	return nil
}

// withExtra lets scanRow read a query that selects more columns than
// rowColumns: the extra destinations are appended to scanRow's own.
type withExtra struct {
	rows  *sql.Rows
	extra []any
}

func (w withExtra) Scan(dest ...any) error {
	return w.rows.Scan(append(dest, w.extra...)...)
}
