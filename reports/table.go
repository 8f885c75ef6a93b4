package reports

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/simbulk/simbulk/ingest"
	"github.com/simbulk/simbulk/pipeline"
)

// A table is the rows of one state as succeeded.csv / failed.csv /
// invalid.csv and the matching sheet show them: the manifest's original
// columns, in their order and as written, then the columns simbulk adds.
type table struct {
	state  pipeline.State
	header []string // the full header, before neutralising
	width  int      // original cells per row
	// added are the columns simbulk fills: placed after the original ones,
	// or over an original column of the same name (see newTable).
	added []addedColumn
}

type addedColumn struct {
	name  string
	at    int // position in the row
	value func(pipeline.ReportRow) string
}

// Added column names. Result columns are resultPrefix + the key the
// provider returned (result_imsi, result_iccid, result_request_id, ...).
const (
	colProvider     = "provider"
	colErrorCode    = "error_code"
	colErrorMessage = "error_message"
	colRetryable    = "retryable"
	colAttempts     = "attempts"
	colRow          = "row"
	colFinishedAt   = "finished_at"
	resultPrefix    = "result_"
)

// The result columns carry a prefix because several result keys are also
// manifest column names or aliases (iccid, imsi, msisdn, state): bare, they
// would duplicate the manifest's own column, and a succeeded.csv fed back
// as a manifest would read a provider's "imsi" as the CLI or its "state" as
// an address field.

// newTable lays out the table of state. Original columns come first. A
// column simbulk adds whose name the manifest already has (compared as
// ingest compares headers) is not added twice: provider keeps the
// manifest's own values, and the others (error_code, attempts, row, ...)
// are filled in over the old values. A manifest with such columns is
// usually an earlier failed.csv being re-submitted, and a new round must
// not stack up stale copies of them.
func newTable(ctx context.Context, v pipeline.ReportView, state pipeline.State) (*table, error) {
	run := v.Run()
	widest, err := v.MaxCells(ctx, state)
	if err != nil {
		return nil, err
	}
	t := &table{state: state, width: max(len(run.Header), widest)}
	t.header = append(t.header, run.Header...)
	for i := len(run.Header); i < t.width; i++ {
		// Cells beyond the header: keep them, named as ingest names them.
		t.header = append(t.header, fmt.Sprintf("#%d", i+1))
	}

	hasProvider := ingest.NewHeader(run.Header).Has(ingest.ColProvider)
	// Each header name normalised once, not once per added column: a
	// manifest can have tens of thousands of columns.
	existing := make(map[string]int, len(run.Header))
	for i, h := range run.Header {
		if _, ok := existing[ingest.NormaliseHeader(h)]; !ok {
			existing[ingest.NormaliseHeader(h)] = i
		}
	}
	add := func(name string, value func(pipeline.ReportRow) string) {
		if i, ok := existing[ingest.NormaliseHeader(name)]; ok {
			t.added = append(t.added, addedColumn{name: name, at: i, value: value})
			return
		}
		t.added = append(t.added, addedColumn{name: name, at: len(t.header), value: value})
		t.header = append(t.header, name)
	}
	addProvider := func() {
		if !hasProvider {
			add(colProvider, func(r pipeline.ReportRow) string { return r.Provider })
		}
	}
	attempts := func(r pipeline.ReportRow) string { return strconv.Itoa(r.Attempts) }
	row := func(r pipeline.ReportRow) string { return strconv.Itoa(r.Row) }

	switch state {
	case pipeline.Succeeded:
		keys, err := v.ResultKeys(ctx, state)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			add(resultPrefix+k, func(r pipeline.ReportRow) string { return r.Result[k] })
		}
		addProvider()
		add(colAttempts, attempts)
		add(colRow, row)
		add(colFinishedAt, func(r pipeline.ReportRow) string { return r.UpdatedAt.UTC().Format(time.RFC3339) })
	default:
		add(colErrorCode, func(r pipeline.ReportRow) string { return r.ErrorCode })
		add(colErrorMessage, func(r pipeline.ReportRow) string { return r.ErrorMessage })
		addProvider()
		if state == pipeline.Failed {
			// Whether `simbulk retry-failed` (without --all) takes the row.
			add(colRetryable, func(r pipeline.ReportRow) string { return strconv.FormatBool(r.Retryable) })
		}
		add(colAttempts, attempts)
		add(colRow, row)
	}
	return t, nil
}

// headerCells returns the header as written to a file, cleaned and
// neutralised.
func (t *table) headerCells() []string {
	out := make([]string, len(t.header))
	for i, h := range t.header {
		out[i] = safeCell(h)
	}
	return out
}

// sheetColumns picks the columns that a sheet of at most limit columns
// shows: every column simbulk fills (the outcome is what the report is
// for), then as many of the manifest's columns as still fit, from the
// left, in the table's order. It returns nil when every column fits, and
// how many columns are left out.
func (t *table) sheetColumns(limit int) (keep []int, left int) {
	if len(t.header) <= limit {
		return nil, 0
	}
	filled := make([]bool, len(t.header))
	nFilled := 0
	for _, c := range t.added {
		if !filled[c.at] {
			filled[c.at] = true
			nFilled++
		}
	}
	room := limit - nFilled
	keep = make([]int, 0, limit)
	for i := range t.header {
		switch {
		case len(keep) == limit:
		case filled[i]:
			keep = append(keep, i)
		case room > 0:
			room--
			keep = append(keep, i)
		}
	}
	return keep, len(t.header) - len(keep)
}

// cells fills buf (reused between rows) with one row's cells, cleaned and
// neutralised.
func (t *table) cells(r pipeline.ReportRow, buf []string) []string {
	buf = append(buf[:0], r.Cells[:min(len(r.Cells), t.width)]...)
	for len(buf) < len(t.header) {
		buf = append(buf, "")
	}
	for _, c := range t.added {
		buf[c.at] = c.value(r)
	}
	for i, c := range buf {
		buf[i] = safeCell(c)
	}
	return buf
}

// Neutralise makes a cell inert in a spreadsheet. A cell that starts with
// =, +, -, @, tab or carriage return is one that Excel, LibreOffice or
// Google Sheets may evaluate as a formula (=HYPERLINK(...), +cmd|...,
// @SUM(...)), so it gets a leading apostrophe, as OWASP recommends for
// CSV injection; everything else is left exactly as it was.
//
// There is no exception for number-like values such as the MSISDN
// +447700900123: unprotected, a spreadsheet turns it into the number
// 447700900123 and drops the plus, and one saved back damages the
// identifier. With the apostrophe it stays text, and feeding the file back
// as a manifest still works because ingest removes one leading apostrophe
// from identifier cells (it accepts '8944... as text-marked input). The
// same rule applies to the XLSX sheets: their cells are text already, but
// a cell copied out of the workbook or saved as CSV must stay inert too.
func Neutralise(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}
