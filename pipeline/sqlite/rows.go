package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mattn/go-sqlite3"

	"github.com/simbulk/simbulk/pipeline"
)

const rowColumns = "run_id, row, provider, eid, iccid, cli, imei, fields, cells, state, attempts, next_attempt_at, must_lookup, handle, accepted_at, result, error_code, error_message, retryable"

func scanRow(sc interface{ Scan(...any) error }) (pipeline.RowRecord, error) {
	var r pipeline.RowRecord
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
func (c *Store) AddRows(ctx context.Context, rows []pipeline.RowRecord) error {
	if len(rows) == 0 {
		return nil
	}
	doubt, err := c.InDoubtElsewhere(ctx, rows[0].RunID)
	if err != nil {
		return err
	}
	return c.AddRowsWithDoubts(ctx, rows, doubt)
}

// AddRowsWithDoubts is AddRows with the other runs' identifiers in doubt
// already known (Load asks once for the whole manifest).
func (c *Store) AddRowsWithDoubts(ctx context.Context, rows []pipeline.RowRecord, doubt pipeline.Doubts) error {
	if len(rows) == 0 {
		return nil
	}
	inserts, err := c.prepareInserts()
	if err != nil {
		return err
	}
	now := c.now().UnixMilli()
	return c.write(ctx, func(tx *sql.Tx) error {
		ins := rowInserter{tx: tx, now: now, inserts: inserts}
		defer ins.close()
		done, err := prepareProvisioned(tx, rows[0].RunID)
		if err != nil {
			return err
		}
		defer done.close()
		for _, r := range rows {
			if r.State == pipeline.Pending {
				if prior, ok, err := done.find(r); err != nil {
					return err
				} else if ok {
					r.State = pipeline.Skipped
					r.ErrorCode = "already_provisioned"
					r.ErrorMessage = fmt.Sprintf("already provisioned by run %s (row %d)", prior.RunID, prior.Row)
					r.Result = prior.Result
				} else if doubt.Has(r) {
					r.MustLookup = true
				}
			}
			if err := ins.add(r); err != nil {
				return err
			}
		}
		return ins.flush()
	})
}

// insertGroup is how many plain rows (see rowInserter) one INSERT
// stores. Each statement run has a cost of its own besides its rows'
// (database/sql's call, SQLite's reset, cursors opened and closed, and,
// for a statement of several rows, its statement journal: the pages it
// changes are copied first, so that a failed statement undoes only
// itself), which a group shares. At 64 rows the statement journal was
// still a twentieth of the load.
const insertGroup = 256

// plainColumns are the columns a plain row binds, after the run id and
// updated_at that its whole group shares; the others take their defaults.
// An identifier a row lacks (most manifests have two or three of the
// four) is bound as NULL and stored as the empty text, as before: SQLite
// copies every text bound, even an empty one, into memory of its own.
var plainColumns = []struct{ name, value string }{
	{"row", "?"}, {"provider", "?"}, {"eid", "ifnull(?, '')"}, {"iccid", "ifnull(?, '')"},
	{"cli", "ifnull(?, '')"}, {"imei", "ifnull(?, '')"}, {"fields", "?"}, {"cells", "?"},
}

// orNull is s, or nil (NULL) when it is empty: see plainColumns.
func orNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// rowInserter stores new rows in one transaction. Nearly every row of a
// manifest load is plain: pending, nothing sent, no result, no error.
// Those are stored insertGroup at a time by one multi-row INSERT that
// binds only the columns that vary from row to row (the run id and time
// are bound once per statement, the rest are the table's defaults): a
// million-row load spent a third of its time binding twenty columns row
// by row through database/sql. Any other row is stored on its own with
// every column.
type rowInserter struct {
	tx      *sql.Tx
	now     int64
	full    *sql.Stmt              // one row, every column
	inserts *[groupSizes]*sql.Stmt // the checkpoint's plain-row INSERTs (groupInserts)
	groups  [groupSizes]*sql.Stmt  // the same in tx, once used
	runID   string                 // of the rows in group
	group   []pipeline.RowRecord   // plain rows waiting for their INSERT
	ends    []int                  // in text: where each group row's fields, then cells, end
	text    []byte                 // the group's fields and cells, as JSON
	args    []any
	fields  fieldsEncoder
}

// plain reports whether r is stored as the table's defaults but for
// plainColumns: what the grouped INSERT writes.
func plain(r pipeline.RowRecord) bool {
	return r.State == pipeline.Pending && r.Attempts == 0 && !r.MustLookup && r.Handle == "" && len(r.Result) == 0 &&
		r.ErrorCode == "" && r.ErrorMessage == "" && !r.Retryable
}

func (ins *rowInserter) add(r pipeline.RowRecord) error {
	if !plain(r) {
		return ins.addFull(r)
	}
	if len(ins.group) > 0 && r.RunID != ins.runID {
		if err := ins.flush(); err != nil {
			return err
		}
	}
	ins.runID = r.RunID
	ins.group = append(ins.group, r)
	ins.text = ins.fields.append(ins.text, r.Fields)
	ins.ends = append(ins.ends, len(ins.text))
	ins.text = appendJSONStrings(ins.text, r.Cells)
	ins.ends = append(ins.ends, len(ins.text))
	if len(ins.group) == insertGroup {
		return ins.flush()
	}
	return nil
}

// flush stores the plain rows waiting in group, in statements of
// insertGroup rows or fewer, a power of two each (see groupInserts).
func (ins *rowInserter) flush() error {
	text := string(ins.text) // one string for the group; each row's JSON is a slice of it
	for start := 0; start < len(ins.group); {
		size := insertGroup
		for size > len(ins.group)-start {
			size /= 2
		}
		from := 0 // where the first row's JSON starts in text
		if start > 0 {
			from = ins.ends[2*start-1]
		}
		if err := ins.exec(ins.group[start:start+size], text, from, ins.ends[2*start:]); err != nil {
			return err
		}
		start += size
	}
	ins.group, ins.ends, ins.text = ins.group[:0], ins.ends[:0], ins.text[:0]
	return nil
}

// exec stores rows with one INSERT. Their JSON is in text, from from,
// ending at ends (each row's fields, then its cells).
func (ins *rowInserter) exec(rows []pipeline.RowRecord, text string, from int, ends []int) error {
	st := ins.groupStmt(len(rows))
	args := append(ins.args[:0], ins.runID, ins.now)
	start := from
	for i, r := range rows {
		fields, cells := text[start:ends[2*i]], text[ends[2*i]:ends[2*i+1]]
		start = ends[2*i+1]
		args = append(args, r.Row, r.Provider, orNull(r.EID), orNull(r.ICCID), orNull(r.CLI), orNull(r.IMEI), fields, cells)
	}
	ins.args = args
	_, err := st.Exec(args...)
	clear(ins.args) // the next statement's strings are its own
	if err != nil {
		if !isConstraint(err) {
			return fmt.Errorf("store rows %d to %d: %w", rows[0].Row, rows[len(rows)-1].Row, err)
		}
		// A statement that breaks a constraint changes nothing and the
		// transaction stays (other errors may end it), so the rows go
		// again one by one, for the error to name the row.
		for _, r := range rows {
			if rerr := ins.addFull(r); rerr != nil {
				return rerr
			}
		}
		return fmt.Errorf("store rows %d to %d: %w", rows[0].Row, rows[len(rows)-1].Row, err)
	}
	return nil
}

// isConstraint reports whether err is SQLite refusing a row (a key
// stored twice, a NULL where none may be).
func isConstraint(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrConstraint
}

// groupStmt is the INSERT of n plain rows, n a power of two, in this
// transaction.
func (ins *rowInserter) groupStmt(n int) *sql.Stmt {
	i := bits.Len(uint(n)) - 1
	if ins.groups[i] == nil {
		ins.groups[i] = ins.tx.Stmt(ins.inserts[i])
	}
	return ins.groups[i]
}

// groupInserts holds the INSERT statements of plain rows, one for each
// power of two up to insertGroup, prepared once per checkpoint: preparing
// them in each transaction, several thousand parameters each, was a
// sixteenth of a million-row load.
type groupInserts struct {
	mu    sync.Mutex
	stmts *[groupSizes]*sql.Stmt // by log2 of the rows; nil until the first rows are stored
}

const groupSizes = 9 // 1, 2, 4, ... insertGroup

// prepared returns the statements, preparing them the first time. It
// runs outside the writer, which holds the write connection in each
// transaction: a transaction's own statements are derived from these
// (Tx.Stmt reuses the connection's prepared statement).
func (g *groupInserts) prepared(db *sql.DB) (*[groupSizes]*sql.Stmt, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stmts != nil {
		return g.stmts, nil
	}
	var stmts [groupSizes]*sql.Stmt
	for i := range stmts {
		st, err := db.Prepare(groupInsertSQL(1 << i))
		if err != nil {
			for _, st := range stmts[:i] {
				st.Close()
			}
			return nil, fmt.Errorf("prepare row inserts: %w", err)
		}
		stmts[i] = st
	}
	g.stmts = &stmts
	return g.stmts, nil
}

func (g *groupInserts) close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var errs []error
	if g.stmts != nil {
		for _, st := range g.stmts {
			errs = append(errs, st.Close())
		}
		g.stmts = nil
	}
	return errors.Join(errs...)
}

// groupInsertSQL is the INSERT of n plain rows: ?1 is the run id, ?2 the
// time, then plainColumns for each row.
func groupInsertSQL(n int) string {
	var q strings.Builder
	q.WriteString("INSERT INTO rows (run_id, state, updated_at")
	for _, c := range plainColumns {
		q.WriteString(", " + c.name)
	}
	q.WriteString(") VALUES ")
	p := 3
	for i := range n {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?1, " + sqlLit(pipeline.Pending) + ", ?2")
		for _, c := range plainColumns {
			q.WriteString(", " + strings.Replace(c.value, "?", "?"+strconv.Itoa(p), 1))
			p++
		}
		q.WriteString(")")
	}
	return q.String()
}

// addFull stores one row with every column.
func (ins *rowInserter) addFull(r pipeline.RowRecord) error {
	if ins.full == nil {
		st, err := ins.tx.Prepare("INSERT INTO rows (" + rowColumns + ", updated_at) VALUES (" + placeholders(20) + ")")
		if err != nil {
			return err
		}
		ins.full = st
	}
	cells := string(appendJSONStrings(nil, r.Cells))
	fields := string(ins.fields.append(nil, r.Fields))
	if _, err := ins.full.Exec(r.RunID, r.Row, r.Provider, r.EID, r.ICCID, r.CLI, r.IMEI, fields, cells, r.State,
		r.Attempts, 0, r.MustLookup, r.Handle, nil, jsonText(r.Result), r.ErrorCode, r.ErrorMessage, r.Retryable, ins.now); err != nil {
		return fmt.Errorf("store row %d: %w", r.Row, err)
	}
	return nil
}

func (ins *rowInserter) close() {
	if ins.full != nil {
		ins.full.Close()
	}
	for _, st := range ins.groups {
		if st != nil {
			st.Close()
		}
	}
}

// appendJSONStrings appends cells as json.Marshal writes them, "[]" for
// none. A million-row load spent a sixth of its time in encoding/json's
// reflection for these two columns; see appendJSONString.
func appendJSONStrings(buf []byte, cells []string) []byte {
	buf = append(buf, '[')
	for i, c := range cells {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendJSONString(buf, c)
	}
	return append(buf, ']')
}

// appendJSONFields appends a row's fields as json.Marshal writes a map
// (keys sorted), "{}" for none.
func appendJSONFields(buf []byte, fields map[string]string) []byte {
	var e fieldsEncoder
	return e.append(buf, fields)
}

// fieldsEncoder writes rows' fields as appendJSONFields does. The rows of
// one manifest have the same field names, so it sorts them once and then
// only checks that a row has the same ones: sorting every row's names was
// a twentieth of a million-row load.
type fieldsEncoder struct{ keys []string }

func (e *fieldsEncoder) append(buf []byte, fields map[string]string) []byte {
	if !e.sameKeys(fields) {
		e.keys = slices.Sorted(maps.Keys(fields))
	}
	buf = append(buf, '{')
	for i, k := range e.keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(appendJSONString(buf, k), ':')
		buf = appendJSONString(buf, fields[k])
	}
	return append(buf, '}')
}

// sameKeys reports whether fields has exactly the names in e.keys: as
// many, and each of them.
func (e *fieldsEncoder) sameKeys(fields map[string]string) bool {
	if len(fields) != len(e.keys) {
		return false
	}
	for _, k := range e.keys {
		if _, ok := fields[k]; !ok {
			return false
		}
	}
	return true
}

// appendJSONString appends s quoted as json.Marshal quotes it. Text that
// json.Marshal copies as is, printable ASCII but the quote, the backslash
// and the HTML characters it escapes, is copied here; anything else goes
// through json.Marshal, so the stored text never differs from before.
func appendJSONString(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !jsonAsIs[s[i]] {
			q, _ := json.Marshal(s) // a string always marshals
			return append(buf, q...)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}

// jsonAsIs marks the bytes appendJSONString copies: one look-up a byte
// took half the time of seven comparisons (the narrow layout's cells).
var jsonAsIs = func() (t [256]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = true
	}
	for _, b := range `"\<>&` {
		t[b] = false
	}
	return t
}()

// provisionedStmts find a succeeded row of another run with a row's
// identifier, through statements prepared once per batch of rows (a
// million-row load spent half its time preparing them row by row). Each
// query repeats the condition of its partial index (rows_done_*) so SQLite
// uses it. A kind of identifier that no other run of the checkpoint has
// provisioned gets no statement: a first load into a fresh checkpoint
// then asks nothing per row, where two lookups a row were a third of its
// time.
type provisionedStmts [3]*sql.Stmt // by pipeline.IdentifierKinds; nil: none provisioned elsewhere

func prepareProvisioned(tx *sql.Tx, runID string) (*provisionedStmts, error) {
	var p provisionedStmts
	for i, col := range pipeline.IdentifierKinds {
		done := " FROM rows WHERE " + col + " != '' AND state = " + sqlLit(pipeline.Succeeded) + " AND run_id != ?"
		var one int
		switch err := tx.QueryRow("SELECT 1"+done+" LIMIT 1", runID).Scan(&one); {
		case err == sql.ErrNoRows:
			continue
		case err != nil:
			p.close()
			return nil, err
		}
		st, err := tx.Prepare("SELECT " + rowColumns + done + " AND provider = ? AND " + col + " = ? LIMIT 1")
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

func (p *provisionedStmts) find(r pipeline.RowRecord) (pipeline.RowRecord, bool, error) {
	for i, v := range pipeline.Identifiers(r.EID, r.CLI, r.ICCID) {
		if v == "" || p[i] == nil {
			continue
		}
		prior, err := scanRow(p[i].QueryRow(r.RunID, r.Provider, v))
		if err == sql.ErrNoRows {
			continue
		}
		if err != nil {
			return pipeline.RowRecord{}, false, fmt.Errorf("check earlier runs for row %d: %w", r.Row, err)
		}
		return prior, true, nil
	}
	return pipeline.RowRecord{}, false, nil
}

// InDoubtElsewhere collects the identifiers other unfinished runs hold in
// doubt. It is asked once per manifest load rather than per row: keeping
// an index of rows in those states would cost every state change of every
// rollout, for the rare edited manifest after a crash.
func (c *Store) InDoubtElsewhere(ctx context.Context, runID string) (pipeline.Doubts, error) {
	rows, err := c.read.QueryContext(ctx, `SELECT r.provider, r.eid, r.cli, r.iccid FROM runs u JOIN rows r INDEXED BY rows_open ON r.run_id = u.id
		WHERE u.id != ? AND u.state != `+sqlLit(pipeline.RunCompleted)+`
		  AND (r.state `+sqlIn(pipeline.InFlight, pipeline.Accepted)+` OR (r.state = `+sqlLit(pipeline.Pending)+` AND r.must_lookup = 1))`, runID)
	if err != nil {
		return nil, fmt.Errorf("check other runs: %w", err)
	}
	defer rows.Close()
	d := pipeline.Doubts{}
	for rows.Next() {
		var provider, eid, cli, iccid string
		if err := rows.Scan(&provider, &eid, &cli, &iccid); err != nil {
			return nil, fmt.Errorf("check other runs: %w", err)
		}
		for i, v := range pipeline.Identifiers(eid, cli, iccid) {
			if v != "" {
				d.Add(provider, pipeline.IdentifierKinds[i], v)
			}
		}
	}
	return d, rows.Err()
}

// RowsIn streams a run's rows in one state (all rows when state is ""), in
// row order, to fn. Reports and status use it; it never loads the whole run.
func (c *Store) RowsIn(ctx context.Context, runID string, state pipeline.State, fn func(pipeline.RowRecord) error) error {
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

// CountOpen counts one provider's rows with work left (pending, in flight
// or accepted).
func (c *Store) CountOpen(ctx context.Context, runID, provider string) (int, error) {
	var n int
	err := c.read.QueryRowContext(ctx,
		"SELECT count(*) FROM rows WHERE run_id = ? AND provider = ? AND state "+sqlOpen, runID, provider).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count open rows: %w", err)
	}
	return n, nil
}

// Attempts returns the requests recorded for one row, in the order they
// were made.
func (c *Store) Attempts(ctx context.Context, runID string, row int) ([]pipeline.Attempt, error) {
	rows, err := c.read.QueryContext(ctx, "SELECT row, kind, started_at, latency_ms, http_status, outcome, error_code FROM attempts"+
		" WHERE run_id = ? AND row = ? ORDER BY started_at, rowid", runID, row)
	if err != nil {
		return nil, fmt.Errorf("read attempts: %w", err)
	}
	defer rows.Close()
	var out []pipeline.Attempt
	for rows.Next() {
		var a pipeline.Attempt
		var started, latency int64
		if err := rows.Scan(&a.Row, &a.Kind, &started, &latency, &a.HTTPStatus, &a.Outcome, &a.ErrorCode); err != nil {
			return nil, fmt.Errorf("read attempts: %w", err)
		}
		a.Started, a.Latency = time.UnixMilli(started), time.Duration(latency)*time.Millisecond
		out = append(out, a)
	}
	return out, rows.Err()
}

// queryRows runs a query over rows and returns what it found; what names
// the query in errors.
func (c *Store) queryRows(ctx context.Context, what, query string, args ...any) ([]pipeline.RowRecord, error) {
	rows, err := c.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []pipeline.RowRecord
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
