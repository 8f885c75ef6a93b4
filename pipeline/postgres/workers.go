package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/simbulk/simbulk/pipeline"
)

// Leases are measured by the database's clock, now(), never a host's:
// hosts' clocks disagree, and a lease that one host thinks expired while
// its holder thinks it live would let two workers send the same row.

// notHeld is the condition, on rows r, that no live worker holds the row;
// $1 is the run id.
const notHeld = "(r.lease_owner IS NULL OR r.lease_owner NOT IN (SELECT id FROM workers WHERE run_id = $1 AND expires_at > now()))"

const workerColumns = "id, host, pid, joined_at, expires_at"

func scanWorker(row pgx.Row) (pipeline.Worker, error) {
	var w pipeline.Worker
	err := row.Scan(&w.ID, &w.Host, &w.PID, &w.Joined, &w.Expires)
	return w, err
}

func collectWorker(row pgx.CollectableRow) (pipeline.Worker, error) { return scanWorker(row) }

// Join records w as working on the run with a lease of ttl. sole ends
// every other worker's lease (see pipeline.EngineStore).
func (s *Store) Join(ctx context.Context, runID string, w pipeline.Worker, ttl time.Duration, sole bool) (pipeline.Worker, error) {
	var out pipeline.Worker
	err := s.write(ctx, func(tx pgx.Tx) error {
		if sole {
			if _, err := tx.Exec(ctx, "DELETE FROM workers WHERE run_id = $1 AND id <> $2", runID, w.ID); err != nil {
				return err
			}
		}
		var err error
		out, err = scanWorker(tx.QueryRow(ctx, `INSERT INTO workers (run_id, id, host, pid, joined_at, expires_at, ttl)
			VALUES ($1, $2, $3, $4, now(), now() + $5::bigint * interval '1 millisecond', $5::bigint * interval '1 millisecond')
			ON CONFLICT (run_id, id) DO UPDATE SET expires_at = excluded.expires_at, ttl = excluded.ttl
			RETURNING `+workerColumns, runID, w.ID, w.Host, w.PID, ttl.Milliseconds()))
		return err
	})
	if err != nil {
		return w, wrapWrite("join run "+runID, err)
	}
	return out, nil
}

// renew extends a live worker's lease by its ttl, in tx; ErrLeaseLost if
// it had expired.
func renew(ctx context.Context, tx pgx.Tx, runID, worker string) (pipeline.Worker, error) {
	w, err := scanWorker(tx.QueryRow(ctx, `UPDATE workers SET expires_at = now() + ttl
		WHERE run_id = $1 AND id = $2 AND expires_at > now() RETURNING `+workerColumns, runID, worker))
	if errors.Is(err, pgx.ErrNoRows) {
		return w, pipeline.ErrLeaseLost
	}
	return w, err
}

// Renew extends the worker's lease by its ttl from now.
func (s *Store) Renew(ctx context.Context, runID, worker string) (pipeline.Worker, error) {
	var w pipeline.Worker
	err := s.write(ctx, func(tx pgx.Tx) error {
		var err error
		w, err = renew(ctx, tx, runID, worker)
		return err
	})
	return w, wrapWrite("renew lease", err)
}

// Leave ends the worker's lease and frees its rows.
func (s *Store) Leave(ctx context.Context, runID, worker string) error {
	return wrapWrite("leave run", s.write(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM workers WHERE run_id = $1 AND id = $2", runID, worker); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "UPDATE rows SET lease_owner = NULL WHERE run_id = $1 AND lease_owner = $2", runID, worker)
		return err
	}))
}

// Workers lists the run's live workers, oldest first.
func (s *Store) Workers(ctx context.Context, runID string) ([]pipeline.Worker, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+workerColumns+" FROM workers WHERE run_id = $1 AND expires_at > now() ORDER BY joined_at, id", runID)
	if err != nil {
		return nil, fmt.Errorf("list workers: %w", err)
	}
	out, err := pgx.CollectRows(rows, collectWorker)
	if err != nil {
		return nil, fmt.Errorf("list workers: %w", err)
	}
	return out, nil
}

// reclaimInFlight puts the rows of the run (of one provider, unless
// provider is "") that gone workers left in flight back to pending, to be
// looked up first, in tx. SKIP LOCKED: a row another transaction is
// changing is no gone worker's.
func reclaimInFlight(ctx context.Context, tx pgx.Tx, runID, provider string) (int64, error) {
	tag, err := tx.Exec(ctx, `UPDATE rows SET state = $2, must_lookup = true, next_attempt_at = NULL, lease_owner = NULL
		WHERE (run_id, row) IN (SELECT r.run_id, r.row FROM rows r
			WHERE r.run_id = $1 AND r.state = $3 AND ($4 = '' OR r.provider = $4) AND `+notHeld+` FOR UPDATE SKIP LOCKED)`,
		runID, pipeline.Pending, pipeline.InFlight, provider)
	return tag.RowsAffected(), err
}

// ReclaimInFlight puts rows left in flight by workers that are gone back
// to pending, still marked must_lookup: nothing is sent again before the
// provider is asked whether it already has them.
func (s *Store) ReclaimInFlight(ctx context.Context, runID string) (int64, error) {
	var n int64
	err := s.write(ctx, func(tx pgx.Tx) error {
		var err error
		n, err = reclaimInFlight(ctx, tx, runID, "")
		return err
	})
	return n, wrapWrite("reclaim rows in flight", err)
}

// Claim leases up to limit due pending rows of provider, with row numbers
// above after, to worker.
func (s *Store) Claim(ctx context.Context, runID, provider, worker string, now time.Time, after, limit int) ([]pipeline.RowRecord, error) {
	return s.claim(ctx, "claim due rows", func(tx pgx.Tx) error {
		_, err := reclaimInFlight(ctx, tx, runID, provider)
		return err
	}, "r.state = $6 AND (r.next_attempt_at IS NULL OR r.next_attempt_at <= $7)",
		runID, provider, worker, after, limit, pipeline.Pending, now)
}

// ClaimAccepted leases up to limit accepted rows of provider, with row
// numbers above after, to worker: those it holds already and those no
// other live worker does.
func (s *Store) ClaimAccepted(ctx context.Context, runID, provider, worker string, after, limit int) ([]pipeline.RowRecord, error) {
	return s.claim(ctx, "claim accepted rows", nil, "r.state = $6", runID, provider, worker, after, limit, pipeline.Accepted)
}

// claim returns up to limit rows of provider with row numbers above after
// that match cond (on rows r, from parameter $6 on), in row order: those
// the worker holds already, read as they are, and free ones, which it
// takes. Rows already its own are not written again (a follower claims
// the same accepted rows every sweep), and FOR UPDATE SKIP LOCKED lets
// workers that claim at the same moment take different rows instead of
// waiting for each other. first, if set, runs before, in the same
// transaction.
func (s *Store) claim(ctx context.Context, what string, first func(tx pgx.Tx) error, cond string, args ...any) ([]pipeline.RowRecord, error) {
	base := "r.run_id = $1 AND r.provider = $2 AND r.row > $4 AND " + cond
	query := `WITH mine AS (
			SELECT r.row FROM rows r WHERE ` + base + ` AND r.lease_owner = $3 ORDER BY r.row LIMIT $5
		), taken AS (
			UPDATE rows SET lease_owner = $3 WHERE (run_id, row) IN (
				SELECT r.run_id, r.row FROM rows r WHERE ` + base + ` AND ` + notHeld + `
				ORDER BY r.row LIMIT $5 FOR UPDATE SKIP LOCKED)
			RETURNING row
		)
		SELECT ` + rowColumns + ` FROM rows WHERE run_id = $1 AND row IN (SELECT row FROM mine UNION ALL SELECT row FROM taken)
		ORDER BY row LIMIT $5`
	var out []pipeline.RowRecord
	err := s.write(ctx, func(tx pgx.Tx) error {
		if first != nil {
			if err := first(tx); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, collectRow)
		return err
	})
	if err != nil {
		return nil, wrapWrite(what, err)
	}
	return out, nil
}

// PauseProvider records a pause of the run's requests to provider, unless
// a longer one is recorded. The pause ends by the database's clock, so
// hosts whose clocks disagree still pause alike.
func (s *Store) PauseProvider(ctx context.Context, runID, provider string, d time.Duration) error {
	return s.exec(ctx, "record provider pause", `INSERT INTO provider_pauses (run_id, provider, until)
		VALUES ($1, $2, now() + $3::bigint * interval '1 millisecond')
		ON CONFLICT (run_id, provider) DO UPDATE SET until = greatest(provider_pauses.until, excluded.until)`, runID, provider, d.Milliseconds())
}

// ProviderPauses returns how much longer the run's pauses in force last.
func (s *Store) ProviderPauses(ctx context.Context, runID string) (map[string]time.Duration, error) {
	rows, err := s.pool.Query(ctx, `SELECT provider, (extract(epoch FROM until - now()) * 1000)::bigint FROM provider_pauses
		WHERE run_id = $1 AND until > now()`, runID)
	if err != nil {
		return nil, fmt.Errorf("read provider pauses: %w", err)
	}
	out := map[string]time.Duration{}
	var p string
	var ms int64
	_, err = pgx.ForEachRow(rows, []any{&p, &ms}, func() error { out[p] = time.Duration(ms) * time.Millisecond; return nil })
	if err != nil {
		return nil, fmt.Errorf("read provider pauses: %w", err)
	}
	return out, nil
}
