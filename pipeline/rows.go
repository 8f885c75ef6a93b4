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
	now := c.now().UnixMilli()
	return c.Write(ctx, func(tx *sql.Tx) error {
		ins, err := tx.Prepare("INSERT INTO rows (" + rowColumns + ", updated_at) VALUES (" + placeholders(20) + ")")
		if err != nil {
			return err
		}
		defer ins.Close()
		others, err := prepareOtherRuns(tx)
		if err != nil {
			return err
		}
		defer others.close()
		for _, r := range rows {
			if r.State == Pending {
				if prior, ok, err := others.provisioned(r); err != nil {
					return err
				} else if ok {
					r.State = Skipped
					r.ErrorCode = "already_provisioned"
					r.ErrorMessage = fmt.Sprintf("already provisioned by run %s (row %d)", prior.RunID, prior.Row)
					r.Result = prior.Result
				} else if doubt, err := others.inDoubt(r); err != nil {
					return err
				} else if doubt {
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

// otherRuns asks what other runs of the checkpoint did with a row's
// identifiers, through statements prepared once per batch of rows (a
// million-row load spent half its time preparing them row by row). Each
// query repeats the condition of its partial index so SQLite uses it.
type otherRuns struct {
	done, doubt [3]*sql.Stmt // by identifier column: eid, cli, iccid
}

var otherRunsColumns = [3]string{"eid", "cli", "iccid"}

func prepareOtherRuns(tx *sql.Tx) (*otherRuns, error) {
	o := &otherRuns{}
	for i, col := range otherRunsColumns {
		var err error
		// rows_done_*: identifiers provisioned by any run.
		o.done[i], err = tx.Prepare("SELECT " + rowColumns + " FROM rows WHERE provider = ? AND " + col + " = ? AND " + col + " != ''" +
			" AND state = 'succeeded' AND run_id != ? LIMIT 1")
		if err == nil {
			// rows_doubt_*: identifiers whose request may have reached the
			// provider in a run that has not settled them.
			o.doubt[i], err = tx.Prepare("SELECT 1 FROM rows WHERE provider = ? AND " + col + " = ? AND " + col + " != '' AND run_id != ?" +
				" AND (state IN ('in_flight', 'accepted') OR (state = 'pending' AND must_lookup = 1)) LIMIT 1")
		}
		if err != nil {
			o.close()
			return nil, err
		}
	}
	return o, nil
}

func (o *otherRuns) close() {
	for _, st := range append(o.done[:], o.doubt[:]...) {
		if st != nil {
			st.Close()
		}
	}
}

func identifiers(r RowRecord) [3]string { return [3]string{r.EID, r.CLI, r.ICCID} }

// provisioned finds a succeeded row of another run with the same provider
// and identifier.
func (o *otherRuns) provisioned(r RowRecord) (RowRecord, bool, error) {
	for i, v := range identifiers(r) {
		if v == "" {
			continue
		}
		prior, err := scanRow(o.done[i].QueryRow(r.Provider, v, r.RunID))
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

// inDoubt reports whether another run holds the row's identifier in a
// state where its request may have reached the provider.
func (o *otherRuns) inDoubt(r RowRecord) (bool, error) {
	for i, v := range identifiers(r) {
		if v == "" {
			continue
		}
		var one int
		err := o.doubt[i].QueryRow(r.Provider, v, r.RunID).Scan(&one)
		if err == sql.ErrNoRows {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("check other runs for row %d: %w", r.Row, err)
		}
		return true, nil
	}
	return false, nil
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

// Due returns up to limit pending rows of one provider whose next attempt
// time has come, with row numbers above after, in row order. The engine
// asks many times a second, so the index is named: left to itself,
// SQLite walks the whole run in row order (see migration 003).
func (c *Checkpoint) Due(ctx context.Context, runID, provider string, after, limit int) ([]RowRecord, error) {
	return c.queryRows(ctx, "read due rows", "SELECT "+rowColumns+" FROM rows INDEXED BY rows_open WHERE run_id = ? AND state = 'pending' AND provider = ? AND next_attempt_at <= ? AND row > ? ORDER BY row LIMIT ?",
		runID, provider, c.now().UnixMilli(), after, limit)
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
