package sqlite_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/pipeline/sqlite"
)

// manyRows are rows 2..n+1 of a run, mostly plain (pending, nothing
// else), with now and then a row that is invalid, one whose identifiers
// are in doubt elsewhere, rows lacking identifiers, other field names and
// cells JSON must escape.
func manyRows(runID string, n int) ([]pipeline.RowRecord, pipeline.Doubts) {
	doubt := pipeline.Doubts{}
	rows := make([]pipeline.RowRecord, n)
	for i := range rows {
		row := i + 2
		r := pipeline.RowRecord{RunID: runID, Row: row, Provider: "p1", EID: fmt.Sprintf("E%d", row), ICCID: fmt.Sprintf("I%d", row),
			Fields: map[string]string{"account_name": fmt.Sprintf("acct-%d", row), "service_plan": "M2M"},
			Cells:  []string{"p1", fmt.Sprintf("E%d", row), fmt.Sprintf("I%d", row)}, State: pipeline.Pending}
		switch {
		case row%97 == 0:
			r.State, r.ErrorCode, r.ErrorMessage = pipeline.Invalid, "bad_eid", "eid: bad"
		case row%89 == 0:
			doubt.Add("p1", "eid", r.EID)
		case row%31 == 0:
			r.EID, r.CLI, r.IMEI = "", fmt.Sprintf("C%d", row), fmt.Sprintf("M%d", row)
		case row%29 == 0:
			r.Fields = map[string]string{"plan": `<"quoted" & \ é>`}
			r.Cells = append(r.Cells, "tab\there", "")
		case row%23 == 0:
			r.Fields, r.Cells = nil, nil
		}
		rows[i] = r
	}
	return rows, doubt
}

// TestAddRowsInGroups: rows stored many to a statement read back as
// stored one by one would, the columns' text exactly what json.Marshal
// writes, whatever the number of rows and their kinds.
func TestAddRowsInGroups(t *testing.T) {
	ctx := context.Background()
	s, run, path := newRun(t)
	want, doubt := manyRows(run.ID, 1234)
	// Uneven calls: a group split across powers of two, a single row.
	for _, part := range [][2]int{{0, 1}, {1, 300}, {300, 301}, {301, 1234}} {
		if err := s.AddRowsWithDoubts(ctx, want[part[0]:part[1]], doubt); err != nil {
			t.Fatal(err)
		}
	}
	var got []pipeline.RowRecord
	if err := s.RowsIn(ctx, run.ID, "", func(r pipeline.RowRecord) error { got = append(got, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d rows read back, want %d", len(got), len(want))
	}
	for i, g := range got {
		w := want[i]
		mustLookup := doubt.Has(w) && w.State == pipeline.Pending
		if g.RunID != w.RunID || g.Row != w.Row || g.Provider != w.Provider || g.EID != w.EID || g.ICCID != w.ICCID ||
			g.CLI != w.CLI || g.IMEI != w.IMEI || !maps.Equal(g.Fields, w.Fields) || !slices.Equal(g.Cells, w.Cells) ||
			g.State != w.State || g.MustLookup != mustLookup || g.Attempts != 0 || g.Handle != "" || len(g.Result) != 0 ||
			g.ErrorCode != w.ErrorCode || g.ErrorMessage != w.ErrorMessage || g.Retryable || !g.NextAttemptAt.IsZero() || !g.AcceptedAt.IsZero() {
			t.Fatalf("row %d read back as\n%+v\nwant\n%+v (must_lookup %v)", w.Row, g, w, mustLookup)
		}
	}

	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT row, fields, cells, result, typeof(eid), typeof(cli), lease_owner IS NULL, accepted_at IS NULL FROM rows WHERE run_id = ? ORDER BY row", run.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for i := 0; rows.Next(); i++ {
		var row int
		var fields, cells, result, eidType, cliType string
		var noLease, notAccepted bool
		if err := rows.Scan(&row, &fields, &cells, &result, &eidType, &cliType, &noLease, &notAccepted); err != nil {
			t.Fatal(err)
		}
		w := want[i]
		wantFields, wantCells := "{}", "[]"
		if len(w.Fields) > 0 {
			b, _ := json.Marshal(w.Fields)
			wantFields = string(b)
		}
		if w.Cells != nil {
			b, _ := json.Marshal(w.Cells)
			wantCells = string(b)
		}
		if fields != wantFields || cells != wantCells || result != "{}" || eidType != "text" || cliType != "text" || !noLease || !notAccepted {
			t.Fatalf("row %d stored fields %s cells %s result %s, eid %s, cli %s, no lease %v, not accepted %v; want fields %s cells %s",
				row, fields, cells, result, eidType, cliType, noLease, notAccepted, wantFields, wantCells)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestAddRowsInGroupsNamesTheRow: a row stored twice in the middle of a
// group fails the whole call, the error naming that row, and nothing of
// the call is kept.
func TestAddRowsInGroupsNamesTheRow(t *testing.T) {
	ctx := context.Background()
	s, run, _ := newRun(t)
	rows, _ := manyRows(run.ID, 600)
	if err := s.AddRows(ctx, rows[150:151]); err != nil { // row 152
		t.Fatal(err)
	}
	err := s.AddRows(ctx, rows)
	if err == nil || !strings.Contains(err.Error(), "store row 152:") {
		t.Fatalf("storing row 152 twice: %v, want an error naming it", err)
	}
	counts, err := s.Counts(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range counts {
		n += c
	}
	if n != 1 {
		t.Errorf("%d rows stored after the failed call, want the 1 stored before", n)
	}
}

// newRun opens a fresh checkpoint at path, closed when the test ends,
// with one run.
func newRun(t *testing.T) (s *sqlite.Store, run pipeline.Run, path string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "simbulk.db")
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	run, err = s.CreateRun(context.Background(), "fp", "m.csv", nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, run, path
}
