package pipeline

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// RowRecord is one manifest row as the checkpoint holds it.
type RowRecord struct {
	RunID         string
	Row           int
	Provider      string
	EID           string
	ICCID         string
	CLI           string
	IMEI          string
	Fields        map[string]string
	Cells         []string
	State         State
	Attempts      int
	NextAttemptAt time.Time
	MustLookup    bool
	Handle        string
	AcceptedAt    time.Time
	Result        map[string]string
	ErrorCode     string
	ErrorMessage  string
	Retryable     bool
}

const rowColumns = "run_id, row, provider, eid, iccid, cli, imei, fields, cells, state, attempts, next_attempt_at, must_lookup, handle, accepted_at, result, error_code, error_message, retryable"

func scanRow(sc interface{ Scan(...any) error }) (RowRecord, error) {
	var r RowRecord
	var fields, cells, result string
	var next int64
	var accepted sql.NullInt64
	err := sc.Scan(&r.RunID, &r.Row, &r.Provider, &r.EID, &r.ICCID, &r.CLI, &r.IMEI, &fields, &cells, &r.State,
		&r.Attempts, &next, &r.MustLookup, &r.Handle, &accepted, &result, &r.ErrorCode, &r.ErrorMessage, &r.Retryable)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(fields), &r.Fields); err != nil {
		return r, fmt.Errorf("row %d: fields: %w", r.Row, err)
	}
	if err := json.Unmarshal([]byte(cells), &r.Cells); err != nil {
		return r, fmt.Errorf("row %d: cells: %w", r.Row, err)
	}
	if err := json.Unmarshal([]byte(result), &r.Result); err != nil {
		return r, fmt.Errorf("row %d: result: %w", r.Row, err)
	}
	if next > 0 {
		r.NextAttemptAt = time.UnixMilli(next)
	}
	if accepted.Valid {
		r.AcceptedAt = time.UnixMilli(accepted.Int64)
	}
	return r, nil
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil || string(b) == "null" {
		return "{}"
	}
	return string(b)
}

// AddRows stores new rows of a run in one transaction. A row whose
// identifier an earlier run of this checkpoint already provisioned is stored
// as skipped, naming that run. A row whose identifier another run left in
// doubt (sent, outcome unknown or not yet complete) is stored to be looked
// up at the provider before anything is sent.
func (c *Checkpoint) AddRows(ctx context.Context, rows []RowRecord) error {
	if len(rows) == 0 {
		return nil
	}
	doubt, err := c.inDoubtElsewhere(ctx, rows[0].RunID)
	if err != nil {
		return err
	}
	return c.addRows(ctx, rows, doubt)
}

// addRows is AddRows with the other runs' identifiers in doubt already
// known (Load asks once for the whole manifest).
func (c *Checkpoint) addRows(ctx context.Context, rows []RowRecord, doubt doubtSet) error {
	now := c.now().UnixMilli()
	return c.Write(ctx, func(tx *sql.Tx) error {
		ins, err := tx.Prepare("INSERT INTO rows (" + rowColumns + ", updated_at) VALUES (" + placeholders(20) + ")")
		if err != nil {
			return err
		}
		defer ins.Close()
		done, err := prepareProvisioned(tx)
		if err != nil {
			return err
		}
		defer done.close()
		for _, r := range rows {
			if r.State == Pending {
				if prior, ok, err := done.find(r); err != nil {
					return err
				} else if ok {
					r.State = Skipped
					r.ErrorCode = "already_provisioned"
					r.ErrorMessage = fmt.Sprintf("already provisioned by run %s (row %d)", prior.RunID, prior.Row)
					r.Result = prior.Result
				} else if doubt.has(r) {
					r.MustLookup = true
				}
			}
			cells, err := json.Marshal(r.Cells)
			if err != nil {
				return err
			}
			if r.Cells == nil {
				cells = []byte("[]")
			}
			if _, err := ins.Exec(r.RunID, r.Row, r.Provider, r.EID, r.ICCID, r.CLI, r.IMEI, jsonText(r.Fields), string(cells), r.State,
				r.Attempts, 0, r.MustLookup, r.Handle, nil, jsonText(r.Result), r.ErrorCode, r.ErrorMessage, r.Retryable, now); err != nil {
				return fmt.Errorf("store row %d: %w", r.Row, err)
			}
		}
		return nil
	})
}

// provisionedStmts find a succeeded row of another run with a row's
// identifier, through statements prepared once per batch of rows (a
// million-row load spent half its time preparing them row by row). Each
// query repeats the condition of its partial index (rows_done_*) so SQLite
// uses it.
type provisionedStmts [3]*sql.Stmt // by identifierKinds

func prepareProvisioned(tx *sql.Tx) (*provisionedStmts, error) {
	var p provisionedStmts
	for i, col := range identifierKinds {
		st, err := tx.Prepare("SELECT " + rowColumns + " FROM rows WHERE provider = ? AND " + col + " = ? AND " + col + " != ''" +
			" AND state = " + sqlLit(Succeeded) + " AND run_id != ? LIMIT 1")
		if err != nil {
			p.close()
			return nil, err
		}
		p[i] = st
	}
	return &p, nil
}

func (p *provisionedStmts) close() {
	for _, st := range p {
		if st != nil {
			st.Close()
		}
	}
}

func (p *provisionedStmts) find(r RowRecord) (RowRecord, bool, error) {
	for i, v := range rowIdentifiers(r.EID, r.CLI, r.ICCID) {
		if v == "" {
			continue
		}
		prior, err := scanRow(p[i].QueryRow(r.Provider, v, r.RunID))
		if err == sql.ErrNoRows {
			continue
		}
		if err != nil {
			return RowRecord{}, false, fmt.Errorf("check earlier runs for row %d: %w", r.Row, err)
		}
		return prior, true, nil
	}
	return RowRecord{}, false, nil
}

// doubtSet holds the identifiers (by provider) whose request may have
// reached the provider in a run that has not settled them: left in flight
// by a crash, accepted and not complete, or waiting for a lookup.
type doubtSet map[string]struct{}

func doubtKey(provider, kind, id string) string { return provider + "\x00" + kind + "\x00" + id }

// identifierKinds name the identifiers a row is known by, in the order of
// rowIdentifiers.
var identifierKinds = [3]string{"eid", "cli", "iccid"}

func rowIdentifiers(eid, cli, iccid string) [3]string { return [3]string{eid, cli, iccid} }

func (d doubtSet) has(r RowRecord) bool {
	if len(d) == 0 {
		return false
	}
	for i, v := range rowIdentifiers(r.EID, r.CLI, r.ICCID) {
		if v != "" {
			if _, ok := d[doubtKey(r.Provider, identifierKinds[i], v)]; ok {
				return true
			}
		}
	}
	return false
}

// inDoubtElsewhere collects the identifiers other unfinished runs hold in
// doubt. It is asked once per manifest load rather than per row: keeping
// an index of rows in those states would cost every state change of every
// rollout, for the rare edited manifest after a crash.
func (c *Checkpoint) inDoubtElsewhere(ctx context.Context, runID string) (doubtSet, error) {
	rows, err := c.read.QueryContext(ctx, `SELECT r.provider, r.eid, r.cli, r.iccid FROM runs u JOIN rows r INDEXED BY rows_by_state ON r.run_id = u.id
		WHERE u.id != ? AND u.state != `+sqlLit(RunCompleted)+`
		  AND (r.state `+sqlIn(InFlight, Accepted)+` OR (r.state = `+sqlLit(Pending)+` AND r.must_lookup = 1))`, runID)
	if err != nil {
		return nil, fmt.Errorf("check other runs: %w", err)
	}
	defer rows.Close()
	d := doubtSet{}
	for rows.Next() {
		var provider, eid, cli, iccid string
		if err := rows.Scan(&provider, &eid, &cli, &iccid); err != nil {
			return nil, fmt.Errorf("check other runs: %w", err)
		}
		for i, v := range rowIdentifiers(eid, cli, iccid) {
			if v != "" {
				d[doubtKey(provider, identifierKinds[i], v)] = struct{}{}
			}
		}
	}
	return d, rows.Err()
}

// RowsIn streams a run's rows in one state (all rows when state is ""), in
// row order, to fn. Reports and status use it; it never loads the whole run.
func (c *Checkpoint) RowsIn(ctx context.Context, runID string, state State, fn func(RowRecord) error) error {
	q := "SELECT " + rowColumns + " FROM rows WHERE run_id = ?"
	args := []any{runID}
	if state != "" {
		q += " AND state = ?"
		args = append(args, state)
	}
	q += " ORDER BY row"
	rows, err := c.read.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("read rows: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// due returns up to limit pending rows of one provider whose next attempt
// time has come by now (the engine's clock, which set the retry times),
// with row numbers above after, in row order. The engine asks many times a
// second, so the index is named: left to itself, SQLite walks the whole
// run in row order (see migration 003).
func (c *Checkpoint) due(ctx context.Context, runID, provider string, now time.Time, after, limit int) ([]RowRecord, error) {
	return c.queryRows(ctx, "read due rows", "SELECT "+rowColumns+" FROM rows INDEXED BY rows_open WHERE run_id = ? AND state = "+sqlLit(Pending)+" AND provider = ? AND next_attempt_at <= ? AND row > ? ORDER BY row LIMIT ?",
		runID, provider, now.UnixMilli(), after, limit)
}

// queryRows runs a query over rows and returns what it found; what names
// the query in errors.
func (c *Checkpoint) queryRows(ctx context.Context, what, query string, args ...any) ([]RowRecord, error) {
	rows, err := c.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []RowRecord
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
