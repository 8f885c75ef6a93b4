package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/simbulk/simbulk/pipeline"
)

const runColumns = "id, fingerprint, manifest, header, state, created_at, updated_at, finished_at, options, loaded, counters"

func scanRun(sc interface{ Scan(...any) error }) (pipeline.Run, error) {
	var r pipeline.Run
	var header, options, counters string
	var created, updated int64
	var finished sql.NullInt64
	if err := sc.Scan(&r.ID, &r.Fingerprint, &r.Manifest, &header, &r.State, &created, &updated, &finished, &options, &r.Loaded, &counters); err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(counters), &r.Counters); err != nil {
		return r, fmt.Errorf("run %s: counters: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(options), &r.Options); err != nil {
		return r, fmt.Errorf("run %s: options: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(header), &r.Header); err != nil {
		return r, fmt.Errorf("run %s: header: %w", r.ID, err)
	}
	r.CreatedAt = time.UnixMilli(created)
	r.UpdatedAt = time.UnixMilli(updated)
	if finished.Valid {
		r.FinishedAt = time.UnixMilli(finished.Int64)
	}
	return r, nil
}

// Run returns the run with the given id (a unique prefix is enough).
func (c *Store) Run(ctx context.Context, id string) (pipeline.Run, error) {
	rows, err := c.read.QueryContext(ctx, "SELECT "+runColumns+" FROM runs WHERE id = ? OR id LIKE ? ORDER BY id LIMIT 2", id, id+"%")
	if err != nil {
		return pipeline.Run{}, fmt.Errorf("find run %s: %w", id, err)
	}
	defer rows.Close()
	var found []pipeline.Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return pipeline.Run{}, err
		}
		if r.ID == id {
			return r, nil
		}
		found = append(found, r)
	}
	if err := rows.Err(); err != nil {
		return pipeline.Run{}, err
	}
	switch len(found) {
	case 0:
		return pipeline.Run{}, fmt.Errorf("run %s: %w", id, pipeline.ErrNoRun)
	case 1:
		return found[0], nil
	}
	return pipeline.Run{}, fmt.Errorf("run id %q is ambiguous: give more of it", id)
}

// Runs lists every run, newest first.
func (c *Store) Runs(ctx context.Context) ([]pipeline.Run, error) {
	rows, err := c.read.QueryContext(ctx, "SELECT "+runColumns+" FROM runs ORDER BY created_at DESC, id DESC")
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	defer rows.Close()
	var out []pipeline.Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// UnfinishedRun returns the newest run with this fingerprint that is not
// completed, if any: re-running `simbulk run` on the same manifest resumes it.
func (c *Store) UnfinishedRun(ctx context.Context, fingerprint string) (pipeline.Run, bool, error) {
	row := c.read.QueryRowContext(ctx, "SELECT "+runColumns+" FROM runs WHERE fingerprint = ? AND state != ? ORDER BY created_at DESC LIMIT 1", fingerprint, pipeline.RunCompleted)
	r, err := scanRun(row)
	if errors.Is(err, sql.ErrNoRows) {
		return pipeline.Run{}, false, nil
	}
	if err != nil {
		return pipeline.Run{}, false, fmt.Errorf("find unfinished run: %w", err)
	}
	return r, true, nil
}

// CreateRun records a new run in state running.
func (c *Store) CreateRun(ctx context.Context, fingerprint, manifest string, header []string, opts ...pipeline.RunOptions) (pipeline.Run, error) {
	now := c.now()
	r := pipeline.Run{ID: pipeline.NewRunID(now), Fingerprint: fingerprint, Manifest: manifest, Header: header, State: pipeline.RunRunning, CreatedAt: now, UpdatedAt: now}
	if len(opts) > 0 {
		r.Options = opts[0]
	}
	hb, err := json.Marshal(header)
	if err != nil {
		return pipeline.Run{}, err
	}
	ob, err := json.Marshal(r.Options)
	if err != nil {
		return pipeline.Run{}, err
	}
	err = c.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec("INSERT INTO runs ("+runColumns+") VALUES ("+placeholders(11)+")",
			r.ID, fingerprint, manifest, string(hb), r.State, now.UnixMilli(), now.UnixMilli(), nil, string(ob), false, "{}")
		return err
	})
	if err != nil {
		return pipeline.Run{}, fmt.Errorf("create run: %w", err)
	}
	return r, nil
}

// SetRunState records where a run stands; finished runs get a finish time.
func (c *Store) SetRunState(ctx context.Context, id string, s pipeline.RunState) error {
	now := c.now().UnixMilli()
	return c.write(ctx, func(tx *sql.Tx) error {
		var finished any
		if s == pipeline.RunCompleted {
			finished = now
		}
		_, err := tx.Exec("UPDATE runs SET state = ?, updated_at = ?, finished_at = COALESCE(?, finished_at) WHERE id = ?", s, now, finished, id)
		return err
	})
}

// Counts returns the run's rows by state.
func (c *Store) Counts(ctx context.Context, runID string) (pipeline.Counts, error) {
	rows, err := c.read.QueryContext(ctx, "SELECT state, count(*) FROM rows WHERE run_id = ? GROUP BY state", runID)
	if err != nil {
		return nil, fmt.Errorf("count rows: %w", err)
	}
	defer rows.Close()
	counts := pipeline.Counts{}
	for rows.Next() {
		var s pipeline.State
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, err
		}
		counts[s] = n
	}
	return counts, rows.Err()
}

// CountState counts a run's rows in one state.
func (c *Store) CountState(ctx context.Context, runID string, s pipeline.State) (int, error) {
	var n int
	if err := c.read.QueryRowContext(ctx, "SELECT count(*) FROM rows WHERE run_id = ? AND state = ?", runID, s).Scan(&n); err != nil {
		return 0, fmt.Errorf("count %s rows: %w", s, err)
	}
	return n, nil
}

// MarkLoaded records that every manifest row of a run is in the checkpoint.
func (c *Store) MarkLoaded(ctx context.Context, id string) error {
	return c.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec("UPDATE runs SET loaded = 1, updated_at = ? WHERE id = ?", c.now().UnixMilli(), id)
		return err
	})
}

// DiscardRows deletes a run's rows so an interrupted load can start again.
// Only for runs that never finished loading: none of their rows was sent.
func (c *Store) DiscardRows(ctx context.Context, id string) error {
	return c.write(ctx, func(tx *sql.Tx) error {
		var loaded bool
		if err := tx.QueryRow("SELECT loaded FROM runs WHERE id = ?", id).Scan(&loaded); err != nil {
			return err
		}
		if loaded {
			return fmt.Errorf("run %s is fully loaded; its rows are kept", id)
		}
		_, err := tx.Exec("DELETE FROM rows WHERE run_id = ?", id)
		return err
	})
}

// OpenProviders lists the providers that still have work in a run.
func (c *Store) OpenProviders(ctx context.Context, id string) ([]string, error) {
	return c.providersIn(ctx, "list providers with work",
		"SELECT DISTINCT provider FROM rows INDEXED BY rows_open WHERE run_id = ? AND state "+sqlOpen+" ORDER BY provider", id)
}

// LatestRun returns the newest run with this fingerprint, whatever its state.
func (c *Store) LatestRun(ctx context.Context, fingerprint string) (pipeline.Run, bool, error) {
	row := c.read.QueryRowContext(ctx, "SELECT "+runColumns+" FROM runs WHERE fingerprint = ? ORDER BY created_at DESC LIMIT 1", fingerprint)
	r, err := scanRun(row)
	if errors.Is(err, sql.ErrNoRows) {
		return pipeline.Run{}, false, nil
	}
	if err != nil {
		return pipeline.Run{}, false, fmt.Errorf("find run: %w", err)
	}
	return r, true, nil
}

// Providers lists the providers of a run's provisioned rows (succeeded or
// skipped): what a reconciliation must look up.
func (c *Store) Providers(ctx context.Context, id string) ([]string, error) {
	return c.providersIn(ctx, "list providers",
		"SELECT DISTINCT provider FROM rows WHERE run_id = ? AND state "+sqlProvisioned+" ORDER BY provider", id)
}

// providersIn runs a query of one provider column for a run.
func (c *Store) providersIn(ctx context.Context, what, query, id string) ([]string, error) {
	rows, err := c.read.QueryContext(ctx, query, id)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// AddRunCounters adds n to the run's named counters (zeros are skipped).
// Counts are added, not set: each process that works on the run reports
// what it saw itself.
func (c *Store) AddRunCounters(ctx context.Context, runID string, n map[string]int64) error {
	return c.write(ctx, func(tx *sql.Tx) error {
		var raw string
		if err := tx.QueryRow("SELECT counters FROM runs WHERE id = ?", runID).Scan(&raw); err != nil {
			return fmt.Errorf("run %s: counters: %w", runID, err)
		}
		counters := map[string]int64{}
		if err := json.Unmarshal([]byte(raw), &counters); err != nil {
			return fmt.Errorf("run %s: counters: %w", runID, err)
		}
		for k, v := range n {
			if v != 0 {
				counters[k] += v
			}
		}
		b, err := json.Marshal(counters)
		if err != nil {
			return err
		}
		_, err = tx.Exec("UPDATE runs SET counters = ? WHERE id = ?", string(b), runID)
		return err
	})
}
