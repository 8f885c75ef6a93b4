package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/simbulk/simbulk/pipeline"
)

const runColumns = "id, fingerprint, manifest, header, state, created_at, updated_at, finished_at, options, loaded, counters"

func scanRun(row pgx.Row) (pipeline.Run, error) {
	var r pipeline.Run
	var finished *time.Time
	if err := row.Scan(&r.ID, &r.Fingerprint, &r.Manifest, &r.Header, &r.State, &r.CreatedAt, &r.UpdatedAt, &finished,
		&r.Options, &r.Loaded, &r.Counters); err != nil {
		return r, err
	}
	if finished != nil {
		r.FinishedAt = *finished
	}
	return r, nil
}

func collectRun(row pgx.CollectableRow) (pipeline.Run, error) { return scanRun(row) }

// isUndefinedTable reports whether err is PostgreSQL's undefined_table.
func isUndefinedTable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "42P01"
}

// Run returns the run with the given id (a unique prefix is enough).
func (s *Store) Run(ctx context.Context, id string) (pipeline.Run, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+runColumns+" FROM runs WHERE starts_with(id, $1) ORDER BY id <> $1, id LIMIT 2", id)
	if err != nil {
		return pipeline.Run{}, fmt.Errorf("find run %s: %w", id, err)
	}
	found, err := pgx.CollectRows(rows, collectRun)
	if err != nil {
		return pipeline.Run{}, fmt.Errorf("find run %s: %w", id, err)
	}
	switch {
	case len(found) == 0:
		return pipeline.Run{}, fmt.Errorf("run %s: %w", id, pipeline.ErrNoRun)
	case len(found) == 1 || found[0].ID == id:
		return found[0], nil
	}
	return pipeline.Run{}, fmt.Errorf("run id %q is ambiguous: give more of it", id)
}

// Runs lists every run, newest first.
func (s *Store) Runs(ctx context.Context) ([]pipeline.Run, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+runColumns+" FROM runs ORDER BY created_at DESC, id DESC")
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	out, err := pgx.CollectRows(rows, collectRun)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return out, nil
}

// UnfinishedRun returns the newest run with this fingerprint that is not
// completed, if any.
func (s *Store) UnfinishedRun(ctx context.Context, fingerprint string) (pipeline.Run, bool, error) {
	return s.newestRun(ctx, "SELECT "+runColumns+" FROM runs WHERE fingerprint = $1 AND state <> $2 ORDER BY created_at DESC LIMIT 1",
		fingerprint, pipeline.RunCompleted)
}

// LatestRun returns the newest run with this fingerprint, whatever its state.
func (s *Store) LatestRun(ctx context.Context, fingerprint string) (pipeline.Run, bool, error) {
	return s.newestRun(ctx, "SELECT "+runColumns+" FROM runs WHERE fingerprint = $1 ORDER BY created_at DESC LIMIT 1", fingerprint)
}

func (s *Store) newestRun(ctx context.Context, query string, args ...any) (pipeline.Run, bool, error) {
	r, err := scanRun(s.pool.QueryRow(ctx, query, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return pipeline.Run{}, false, nil
	}
	if err != nil {
		return pipeline.Run{}, false, fmt.Errorf("find run: %w", err)
	}
	return r, true, nil
}

// CreateRun records a new run in state running.
func (s *Store) CreateRun(ctx context.Context, fingerprint, manifest string, header []string, opts ...pipeline.RunOptions) (pipeline.Run, error) {
	now := s.now()
	r := pipeline.Run{ID: pipeline.NewRunID(now), Fingerprint: fingerprint, Manifest: manifest, Header: header,
		State: pipeline.RunRunning, CreatedAt: now, UpdatedAt: now}
	if len(opts) > 0 {
		r.Options = opts[0]
	}
	if header == nil {
		header = []string{}
	}
	err := s.write(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO runs (id, fingerprint, manifest, header, state, created_at, updated_at, options)
			VALUES ($1, $2, $3, $4, $5, $6, $6, $7)`, r.ID, fingerprint, manifest, header, r.State, now, r.Options)
		return err
	})
	if err != nil {
		return pipeline.Run{}, fmt.Errorf("create run: %w", err)
	}
	return r, nil
}

// SetRunState records where a run stands; a completed run gets a finish
// time.
func (s *Store) SetRunState(ctx context.Context, id string, st pipeline.RunState) error {
	return s.exec(ctx, "record run state", `UPDATE runs SET state = $1, updated_at = $2,
		finished_at = CASE WHEN $1 = $3 THEN $2 ELSE finished_at END WHERE id = $4`, st, s.now(), pipeline.RunCompleted, id)
}

// exec runs one statement as a write.
func (s *Store) exec(ctx context.Context, what, query string, args ...any) error {
	err := s.write(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, query, args...)
		return err
	})
	return wrapWrite(what, err)
}

// wrapWrite says which write failed; ErrReadOnly needs no more words.
func wrapWrite(what string, err error) error {
	if err == nil || errors.Is(err, pipeline.ErrReadOnly) {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Counts returns the run's rows by state.
func (s *Store) Counts(ctx context.Context, runID string) (pipeline.Counts, error) {
	rows, err := s.pool.Query(ctx, "SELECT state, count(*) FROM rows WHERE run_id = $1 GROUP BY state", runID)
	if err != nil {
		return nil, fmt.Errorf("count rows: %w", err)
	}
	counts := pipeline.Counts{}
	var st pipeline.State
	var n int
	_, err = pgx.ForEachRow(rows, []any{&st, &n}, func() error { counts[st] = n; return nil })
	if err != nil {
		return nil, fmt.Errorf("count rows: %w", err)
	}
	return counts, nil
}

// CountState counts a run's rows in one state.
func (s *Store) CountState(ctx context.Context, runID string, st pipeline.State) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM rows WHERE run_id = $1 AND state = $2", runID, st).Scan(&n); err != nil {
		return 0, fmt.Errorf("count %s rows: %w", st, err)
	}
	return n, nil
}

// MarkLoaded records that every manifest row of a run is stored.
func (s *Store) MarkLoaded(ctx context.Context, id string) error {
	return s.exec(ctx, "mark run loaded", "UPDATE runs SET loaded = true, updated_at = $1 WHERE id = $2", s.now(), id)
}

// DiscardRows deletes the rows of a run that never finished loading.
func (s *Store) DiscardRows(ctx context.Context, id string) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		var loaded bool
		if err := tx.QueryRow(ctx, "SELECT loaded FROM runs WHERE id = $1 FOR UPDATE", id).Scan(&loaded); err != nil {
			return fmt.Errorf("run %s: %w", id, err)
		}
		if loaded {
			return fmt.Errorf("run %s is fully loaded; its rows are kept", id)
		}
		_, err := tx.Exec(ctx, "DELETE FROM rows WHERE run_id = $1", id)
		return err
	})
}

// OpenProviders lists, sorted, the providers with rows pending, in flight
// or accepted.
func (s *Store) OpenProviders(ctx context.Context, id string) ([]string, error) {
	return s.providersIn(ctx, "list providers with work", id, openStates)
}

// Providers lists, sorted, the providers of the run's succeeded or skipped
// rows: what a reconciliation looks up.
func (s *Store) Providers(ctx context.Context, id string) ([]string, error) {
	return s.providersIn(ctx, "list providers", id, provisionedStates)
}

func (s *Store) providersIn(ctx context.Context, what, id string, states []string) ([]string, error) {
	rows, err := s.pool.Query(ctx, "SELECT DISTINCT provider FROM rows WHERE run_id = $1 AND state = ANY($2) ORDER BY provider", id, states)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// The states of rows with work left, and of rows a reconciliation checks,
// as query parameters (= ANY($n)).
var (
	openStates        = states(pipeline.Pending, pipeline.InFlight, pipeline.Accepted)
	provisionedStates = states(pipeline.Succeeded, pipeline.Skipped)
)

func states(ss ...pipeline.State) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return out
}

// AddRunCounters adds n to the run's named counters, zeros skipped. The
// row lock makes two processes' additions add up.
func (s *Store) AddRunCounters(ctx context.Context, runID string, n map[string]int64) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		counters := map[string]int64{}
		if err := tx.QueryRow(ctx, "SELECT counters FROM runs WHERE id = $1 FOR UPDATE", runID).Scan(&counters); err != nil {
			return fmt.Errorf("run %s: counters: %w", runID, err)
		}
		for k, v := range n {
			if v != 0 {
				counters[k] += v
			}
		}
		_, err := tx.Exec(ctx, "UPDATE runs SET counters = $1 WHERE id = $2", counters, runID)
		return err
	})
}
