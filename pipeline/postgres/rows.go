package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/simbulk/simbulk/pipeline"
)

const rowColumns = "run_id, row, provider, eid, iccid, cli, imei, fields, cells, state, attempts, next_attempt_at, must_lookup, handle, accepted_at, result, error_code, error_message, retryable"

// scanRow reads rowColumns, then any extra destinations.
func scanRow(row pgx.Row, extra ...any) (pipeline.RowRecord, error) {
	var r pipeline.RowRecord
	var next, accepted *time.Time
	dest := append([]any{&r.RunID, &r.Row, &r.Provider, &r.EID, &r.ICCID, &r.CLI, &r.IMEI, &r.Fields, &r.Cells, &r.State,
		&r.Attempts, &next, &r.MustLookup, &r.Handle, &accepted, &r.Result, &r.ErrorCode, &r.ErrorMessage, &r.Retryable}, extra...)
	if err := row.Scan(dest...); err != nil {
		return r, err
	}
	if next != nil {
		r.NextAttemptAt = *next
	}
	if accepted != nil {
		r.AcceptedAt = *accepted
	}
	return r, nil
}

func collectRow(row pgx.CollectableRow) (pipeline.RowRecord, error) { return scanRow(row) }

// orEmpty is m, or an empty map for nil: jsonb columns hold an object,
// never JSON null, so queries over their keys need no special case.
func orEmpty[M ~map[string]string](m M) M {
	if m == nil {
		return M{}
	}
	return m
}

// stateLit is a state as a quoted SQL literal, for the queries whose
// partial indexes (rows_done_*) PostgreSQL matches only against literals.
func stateLit(s pipeline.State) string { return "'" + string(s) + "'" }

// priorQuery finds, for each row given in arrays, a succeeded row of
// another run with one of its identifiers, looking by eid, then cli, then
// iccid, each through its partial index.
var priorQuery = func() string {
	var b strings.Builder
	b.WriteString(`SELECT i.row, p.run_id, p.row, p.result
		FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[]) AS i(row, provider, eid, cli, iccid)
		CROSS JOIN LATERAL (SELECT * FROM (`)
	for k, col := range pipeline.IdentifierKinds {
		if k > 0 {
			b.WriteString(" UNION ALL ")
		}
		fmt.Fprintf(&b, `(SELECT r.run_id, r.row, r.result, %d AS k FROM rows r
			WHERE i.%[2]s <> '' AND r.provider = i.provider AND r.%[2]s = i.%[2]s AND r.%[2]s <> ''
			  AND r.state = %[3]s AND r.run_id <> $6 LIMIT 1)`, k, col, stateLit(pipeline.Succeeded))
	}
	b.WriteString(`) m ORDER BY k LIMIT 1) p`)
	return b.String()
}()

// AddRows stores new rows of a run in one transaction (see
// pipeline.LoadStore).
func (s *Store) AddRows(ctx context.Context, rows []pipeline.RowRecord) error {
	if len(rows) == 0 {
		return nil
	}
	doubt, err := s.InDoubtElsewhere(ctx, rows[0].RunID)
	if err != nil {
		return err
	}
	return s.AddRowsWithDoubts(ctx, rows, doubt)
}

// AddRowsWithDoubts is AddRows with the identifiers in doubt elsewhere
// already known. The rows go in with COPY, after one query has found
// which of them other runs already provisioned.
func (s *Store) AddRowsWithDoubts(ctx context.Context, rows []pipeline.RowRecord, doubt pipeline.Doubts) error {
	if len(rows) == 0 {
		return nil
	}
	now := s.now()
	return s.write(ctx, func(tx pgx.Tx) error {
		prior, err := provisioned(ctx, tx, rows)
		if err != nil {
			return err
		}
		src := make([][]any, len(rows))
		for i, r := range rows {
			if r.State == pipeline.Pending {
				if p, ok := prior[r.Row]; ok {
					r.State = pipeline.Skipped
					r.ErrorCode = "already_provisioned"
					r.ErrorMessage = fmt.Sprintf("already provisioned by run %s (row %d)", p.RunID, p.Row)
					r.Result = p.Result
				} else if doubt.Has(r) {
					r.MustLookup = true
				}
			}
			cells := r.Cells
			if cells == nil {
				cells = []string{}
			}
			src[i] = []any{r.RunID, r.Row, r.Provider, r.EID, r.ICCID, r.CLI, r.IMEI, orEmpty(r.Fields), cells, string(r.State),
				r.Attempts, nil, r.MustLookup, r.Handle, nil, orEmpty(r.Result), r.ErrorCode, r.ErrorMessage, r.Retryable, now}
		}
		cols := append(strings.Split(rowColumns, ", "), "updated_at")
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"rows"}, cols, pgx.CopyFromRows(src)); err != nil {
			return fmt.Errorf("store rows %d-%d: %w", rows[0].Row, rows[len(rows)-1].Row, err)
		}
		return nil
	})
}

// provisioned finds the pending rows that another run already provisioned:
// the succeeded row of that run, by row number.
func provisioned(ctx context.Context, tx pgx.Tx, rows []pipeline.RowRecord) (map[int]pipeline.RowRecord, error) {
	var nums []int32
	var provider, eid, cli, iccid []string
	for _, r := range rows {
		if r.State == pipeline.Pending {
			nums = append(nums, int32(r.Row))
			provider, eid, cli, iccid = append(provider, r.Provider), append(eid, r.EID), append(cli, r.CLI), append(iccid, r.ICCID)
		}
	}
	out := map[int]pipeline.RowRecord{}
	if len(nums) == 0 {
		return out, nil
	}
	res, err := tx.Query(ctx, priorQuery, nums, provider, eid, cli, iccid, rows[0].RunID)
	if err != nil {
		return nil, fmt.Errorf("check earlier runs: %w", err)
	}
	var row int
	var p pipeline.RowRecord
	_, err = pgx.ForEachRow(res, []any{&row, &p.RunID, &p.Row, &p.Result}, func() error { out[row] = p; p.Result = nil; return nil })
	if err != nil {
		return nil, fmt.Errorf("check earlier runs: %w", err)
	}
	return out, nil
}

// InDoubtElsewhere collects the identifiers other unfinished runs hold in
// doubt: rows in flight, accepted, or pending a lookup.
func (s *Store) InDoubtElsewhere(ctx context.Context, runID string) (pipeline.Doubts, error) {
	rows, err := s.pool.Query(ctx, `SELECT r.provider, r.eid, r.cli, r.iccid FROM runs u JOIN rows r ON r.run_id = u.id
		WHERE u.id <> $1 AND u.state <> $2
		  AND (r.state = ANY($3) OR (r.state = $4 AND r.must_lookup))`,
		runID, pipeline.RunCompleted, states(pipeline.InFlight, pipeline.Accepted), pipeline.Pending)
	if err != nil {
		return nil, fmt.Errorf("check other runs: %w", err)
	}
	d := pipeline.Doubts{}
	var provider, eid, cli, iccid string
	_, err = pgx.ForEachRow(rows, []any{&provider, &eid, &cli, &iccid}, func() error {
		for i, v := range pipeline.Identifiers(eid, cli, iccid) {
			if v != "" {
				d.Add(provider, pipeline.IdentifierKinds[i], v)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("check other runs: %w", err)
	}
	return d, nil
}

// RowsIn streams a run's rows in one state (all when state is ""), in row
// order, never holding more than one.
func (s *Store) RowsIn(ctx context.Context, runID string, state pipeline.State, fn func(pipeline.RowRecord) error) error {
	return streamRows(ctx, s.pool, "read rows", "SELECT "+rowColumns+" FROM rows WHERE run_id = $1 AND ($2 = '' OR state = $2) ORDER BY row",
		[]any{runID, string(state)}, fn)
}

type queryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// streamRows runs a query of rowColumns and hands each row to fn.
func streamRows(ctx context.Context, q queryer, what, query string, args []any, fn func(pipeline.RowRecord) error) error {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// queryRows runs a query of rowColumns and returns what it found.
func (s *Store) queryRows(ctx context.Context, what, query string, args ...any) ([]pipeline.RowRecord, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out, err := pgx.CollectRows(rows, collectRow)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// CountOpen counts provider's rows pending, in flight or accepted.
func (s *Store) CountOpen(ctx context.Context, runID, provider string) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, "SELECT count(*) FROM rows WHERE run_id = $1 AND provider = $2 AND state = ANY($3)",
		runID, provider, openStates).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count open rows: %w", err)
	}
	return n, nil
}

// Attempts returns the requests recorded for one row, in the order they
// were made.
func (s *Store) Attempts(ctx context.Context, runID string, row int) ([]pipeline.Attempt, error) {
	rows, err := s.pool.Query(ctx, `SELECT row, kind, started_at, latency_ms, http_status, outcome, error_code FROM attempts
		WHERE run_id = $1 AND row = $2 ORDER BY started_at, id`, runID, row)
	if err != nil {
		return nil, fmt.Errorf("read attempts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pipeline.Attempt, error) {
		var a pipeline.Attempt
		var latency int64
		err := r.Scan(&a.Row, &a.Kind, &a.Started, &latency, &a.HTTPStatus, &a.Outcome, &a.ErrorCode)
		a.Latency = time.Duration(latency) * time.Millisecond
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("read attempts: %w", err)
	}
	return out, nil
}

// prefixed qualifies each of a list of columns: prefixed("r.", "a, b") is
// "r.a, r.b".
func prefixed(p, columns string) string {
	return p + strings.ReplaceAll(columns, ", ", ", "+p)
}
