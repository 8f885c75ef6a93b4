package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/simbulk/simbulk/pipeline"
)

// notHeld is the condition, on rows, that no live worker holds the row;
// its parameters are the run id and now (unix ms).
const notHeld = "(lease_owner IS NULL OR lease_owner NOT IN (SELECT id FROM workers WHERE run_id = ? AND expires_at > ?))"

// Join records w as working on the run with a lease of ttl. SQLite's
// lock file lets one process at a time work on a checkpoint, so sole is
// what the engine passes here; it ends every other worker's lease.
func (c *Store) Join(ctx context.Context, runID string, w pipeline.Worker, ttl time.Duration, sole bool) (pipeline.Worker, error) {
	now := c.now()
	w.Joined, w.Expires = time.UnixMilli(now.UnixMilli()), time.UnixMilli(now.Add(ttl).UnixMilli())
	err := c.write(ctx, func(tx *sql.Tx) error {
		if sole {
			if _, err := tx.Exec("DELETE FROM workers WHERE run_id = ? AND id != ?", runID, w.ID); err != nil {
				return err
			}
		}
		_, err := tx.Exec(`INSERT INTO workers (run_id, id, host, pid, joined_at, expires_at, ttl_ms) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (run_id, id) DO UPDATE SET expires_at = excluded.expires_at, ttl_ms = excluded.ttl_ms`,
			runID, w.ID, w.Host, w.PID, w.Joined.UnixMilli(), w.Expires.UnixMilli(), ttl.Milliseconds())
		return err
	})
	if err != nil {
		return w, fmt.Errorf("join run %s: %w", runID, err)
	}
	return w, nil
}

// renew extends a live worker's lease by its ttl, in tx, and reports
// whether it was live. A lease found expired is not an error of the
// transaction: the writer commits other callers' writes with it.
func renew(tx *sql.Tx, runID, worker string, now int64) (live bool, err error) {
	res, err := tx.Exec("UPDATE workers SET expires_at = ? + ttl_ms WHERE run_id = ? AND id = ? AND expires_at > ?", now, runID, worker, now)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Renew extends the worker's lease by its ttl from now.
func (c *Store) Renew(ctx context.Context, runID, worker string) (pipeline.Worker, error) {
	now := c.now().UnixMilli()
	var w pipeline.Worker
	var live bool
	err := c.write(ctx, func(tx *sql.Tx) error {
		var err error
		if live, err = renew(tx, runID, worker, now); err != nil || !live {
			return err
		}
		w, err = scanWorker(tx.QueryRow("SELECT "+workerColumns+" FROM workers WHERE run_id = ? AND id = ?", runID, worker))
		return err
	})
	if err == nil && !live {
		err = pipeline.ErrLeaseLost
	}
	return w, err
}

// Leave ends the worker's lease and frees its rows.
func (c *Store) Leave(ctx context.Context, runID, worker string) error {
	return c.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.Exec("DELETE FROM workers WHERE run_id = ? AND id = ?", runID, worker); err != nil {
			return err
		}
		_, err := tx.Exec("UPDATE rows SET lease_owner = NULL WHERE run_id = ? AND lease_owner = ?", runID, worker)
		return err
	})
}

const workerColumns = "id, host, pid, joined_at, expires_at"

func scanWorker(sc interface{ Scan(...any) error }) (pipeline.Worker, error) {
	var w pipeline.Worker
	var joined, expires int64
	err := sc.Scan(&w.ID, &w.Host, &w.PID, &joined, &expires)
	w.Joined, w.Expires = time.UnixMilli(joined), time.UnixMilli(expires)
	return w, err
}

// Workers lists the run's live workers, oldest first.
func (c *Store) Workers(ctx context.Context, runID string) ([]pipeline.Worker, error) {
	rows, err := c.read.QueryContext(ctx, "SELECT "+workerColumns+" FROM workers WHERE run_id = ? AND expires_at > ? ORDER BY joined_at, id",
		runID, c.now().UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("list workers: %w", err)
	}
	defer rows.Close()
	var out []pipeline.Worker
	for rows.Next() {
		w, err := scanWorker(rows)
		if err != nil {
			return nil, fmt.Errorf("list workers: %w", err)
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// reclaimInFlight puts rows of the run (of one provider, unless provider
// is "") that gone workers left in flight back to pending, to be looked
// up first, in tx.
func reclaimInFlight(tx *sql.Tx, runID, provider string, now int64) (int64, error) {
	res, err := tx.Exec("UPDATE rows INDEXED BY rows_open SET state = "+sqlLit(pipeline.Pending)+", must_lookup = 1, next_attempt_at = 0, lease_owner = NULL"+
		" WHERE run_id = ? AND state = "+sqlLit(pipeline.InFlight)+" AND (? = '' OR provider = ?) AND "+notHeld,
		runID, provider, provider, runID, now)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// ReclaimInFlight puts rows left in flight by workers that are gone (a
// crash) back to pending, still marked must_lookup: nothing is sent again
// before the provider is asked whether it already has them.
func (c *Store) ReclaimInFlight(ctx context.Context, runID string) (int64, error) {
	var n int64
	err := c.write(ctx, func(tx *sql.Tx) error {
		var err error
		n, err = reclaimInFlight(tx, runID, "", c.now().UnixMilli())
		return err
	})
	return n, err
}

// Claim leases up to limit due pending rows of provider, with row
// numbers above after, to worker (see
// pipeline.EngineStore). The engine asks many times a second, so the
// index is named: left to itself, SQLite walks the whole run in row order
// (see migrations 003 and 007).
func (c *Store) Claim(ctx context.Context, runID, provider, worker string, now time.Time, after, limit int) ([]pipeline.RowRecord, error) {
	at := c.now().UnixMilli()
	return c.claim(ctx, "claim due rows", worker, func(tx *sql.Tx) (*sql.Rows, error) {
		if _, err := reclaimInFlight(tx, runID, provider, at); err != nil {
			return nil, err
		}
		return tx.Query("SELECT "+claimColumns+" FROM rows INDEXED BY rows_open WHERE run_id = ? AND state = "+sqlLit(pipeline.Pending)+
			" AND provider = ? AND next_attempt_at <= ? AND row > ? AND (lease_owner = ? OR "+notHeld+") ORDER BY row LIMIT ?",
			runID, provider, now.UnixMilli(), after, worker, runID, at, limit)
	})
}

// ClaimAccepted leases up to limit accepted rows of provider, with row
// numbers above after, to worker: those it holds already and those no
// other live worker does.
func (c *Store) ClaimAccepted(ctx context.Context, runID, provider, worker string, after, limit int) ([]pipeline.RowRecord, error) {
	at := c.now().UnixMilli()
	return c.claim(ctx, "claim accepted rows", worker, func(tx *sql.Tx) (*sql.Rows, error) {
		return tx.Query("SELECT "+claimColumns+" FROM rows INDEXED BY rows_open WHERE run_id = ? AND provider = ? AND state = "+sqlLit(pipeline.Accepted)+
			" AND row > ? AND (lease_owner = ? OR "+notHeld+") ORDER BY row LIMIT ?", runID, provider, after, worker, runID, at, limit)
	})
}

// claimColumns are rowColumns, for scanRow, with an empty list in place
// of the cells: claimed rows are sent or checked, which needs no cells,
// and decoding them was a third of a claim's cost.
var claimColumns = strings.Replace(rowColumns, ", cells,", ", '[]',", 1)

// claim runs query in a write and leases the rows it returns to worker,
// in the same transaction: no other claim can come between.
func (c *Store) claim(ctx context.Context, what, worker string, query func(tx *sql.Tx) (*sql.Rows, error)) ([]pipeline.RowRecord, error) {
	var out []pipeline.RowRecord
	err := c.write(ctx, func(tx *sql.Tx) error {
		rows, err := query(tx)
		if err != nil {
			return err
		}
		for rows.Next() {
			r, err := scanRow(rows)
			if err != nil {
				rows.Close()
				return err
			}
			out = append(out, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(out) == 0 {
			return nil
		}
		// One statement for the lot, and rows already the worker's are not
		// written again: a follower claims the same accepted rows every
		// sweep, and every write waits for the one writer.
		args := []any{worker, out[0].RunID, worker}
		for _, r := range out {
			args = append(args, r.Row)
		}
		_, err = tx.Exec("UPDATE rows SET lease_owner = ? WHERE run_id = ? AND lease_owner IS NOT ? AND row IN ("+placeholders(len(out))+")", args...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// PauseProvider records a pause of the run's requests to provider, unless
// a longer one is recorded.
func (c *Store) PauseProvider(ctx context.Context, runID, provider string, d time.Duration) error {
	until := c.now().Add(d).UnixMilli()
	return c.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO provider_pauses (run_id, provider, until) VALUES (?, ?, ?)
			ON CONFLICT (run_id, provider) DO UPDATE SET until = max(until, excluded.until)`, runID, provider, until)
		return err
	})
}

// ProviderPauses returns how much longer the run's pauses in force last.
func (c *Store) ProviderPauses(ctx context.Context, runID string) (map[string]time.Duration, error) {
	now := c.now().UnixMilli()
	rows, err := c.read.QueryContext(ctx, "SELECT provider, until - ? FROM provider_pauses WHERE run_id = ? AND until > ?", now, runID, now)
	if err != nil {
		return nil, fmt.Errorf("read provider pauses: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Duration{}
	for rows.Next() {
		var p string
		var ms int64
		if err := rows.Scan(&p, &ms); err != nil {
			return nil, fmt.Errorf("read provider pauses: %w", err)
		}
		out[p] = time.Duration(ms) * time.Millisecond
	}
	return out, rows.Err()
}
