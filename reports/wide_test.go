package reports

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/pipeline/sqlite"
)

// wideRun stores a run of rows × cols manifest cells through the
// pipeline's public API (CreateRun, AddRows): 9 in 10 rows succeeded with
// two result keys, the rest failed.
func wideRun(t testing.TB, rows, cols int) (*sqlite.Store, string) {
	t.Helper()
	ctx := context.Background()
	cp, err := sqlite.Open(filepath.Join(t.TempDir(), "wide.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cp.Close() })
	header := make([]string, cols)
	header[0] = "provider"
	if cols > 1 {
		header[1] = "EID"
	}
	for i := 2; i < cols; i++ {
		header[i] = "col_" + strconv.Itoa(i+1)
	}
	run, err := cp.CreateRun(ctx, "wide-"+t.Name(), "wide.csv", header)
	if err != nil {
		t.Fatal(err)
	}
	const batch = 5_000
	recs := make([]pipeline.RowRecord, 0, min(batch, rows))
	flush := func() {
		if err := cp.AddRows(ctx, recs); err != nil {
			t.Fatal(err)
		}
		recs = recs[:0]
	}
	for i := range rows {
		cells := make([]string, cols)
		cells[0] = "iotconnect"
		if cols > 1 {
			cells[1] = eid(i)
		}
		for c := 2; c < cols; c++ {
			cells[c] = "v" + strconv.Itoa(c%97)
		}
		r := pipeline.RowRecord{RunID: run.ID, Row: i + 2, Provider: "iotconnect", EID: eid(i), Cells: cells,
			State: pipeline.Succeeded, Attempts: 1, Result: map[string]string{"imsi": fmt.Sprintf("2341500%08d", i), "state": "active"}}
		if i%10 == 9 {
			r.State, r.Result, r.ErrorCode, r.ErrorMessage = pipeline.Failed, nil, "cli_exists", "CLI already exists"
		}
		recs = append(recs, r)
		if len(recs) == batch {
			flush()
		}
	}
	if len(recs) > 0 {
		flush()
	}
	return cp, run.ID
}

// TestWideTimings writes every report of runs of 1 row × 2,000 / 5,000 /
// 16,000 / 100,000 columns and of 100,000 rows × 10 columns, and logs how
// long each took. It takes a while, so it runs only with SIMBULK_WIDE=1;
// SIMBULK_WIDE_CASES (say 1x5000,100000x10) picks cases;
// SIMBULK_WIDE_BUDGET (a duration, default 10m) is how long to wait for
// one case before giving up on it.
//
//	SIMBULK_WIDE=1 go test -run WideTimings -v ./reports/
func TestWideTimings(t *testing.T) {
	if os.Getenv("SIMBULK_WIDE") == "" {
		t.Skip("set SIMBULK_WIDE=1 to time reports of very wide and long runs")
	}
	budget := 10 * time.Minute
	if s := os.Getenv("SIMBULK_WIDE_BUDGET"); s != "" {
		var err error
		if budget, err = time.ParseDuration(s); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ rows, cols int }{{1, 2_000}, {1, 5_000}, {1, 16_000}, {1, 100_000}, {100_000, 10}} {
		name := fmt.Sprintf("%dx%d", c.rows, c.cols)
		if only := os.Getenv("SIMBULK_WIDE_CASES"); only != "" && !slices.Contains(strings.Split(only, ","), name) {
			continue
		}
		cp, runID := wideRun(t, c.rows, c.cols)
		out := t.TempDir()
		ctx, cancel := context.WithTimeout(context.Background(), budget)
		start := time.Now()
		done := make(chan error, 1)
		go func() {
			_, err := Write(ctx, cp, runID, out, nil)
			done <- err
		}()
		select {
		case err := <-done:
			t.Logf("%-12s %v (err: %v)", name, time.Since(start).Round(time.Millisecond), err)
		case <-time.After(budget + 5*time.Second):
			t.Logf("%-12s did not finish in %v", name, budget)
		}
		cancel()
	}
}

// TestWorkbookColumnLimit: a run of 20,000 manifest columns. The CSV
// files keep every column; report.xlsx keeps the columns simbulk adds and
// as many manifest columns as fit in 16,384, and every summary says so.
func TestWorkbookColumnLimit(t *testing.T) {
	const cols = 20_000
	cp, runID := wideRun(t, 1, cols)
	files, err := Write(context.Background(), cp, runID, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	csvRecs := readCSV(t, filepath.Join(files.Dir, SucceededCSV))
	added := []string{"result_imsi", "result_state", colAttempts, colRow, colFinishedAt}
	if got, want := len(csvRecs[0]), cols+len(added); got != want {
		t.Fatalf("succeeded.csv has %d columns, want %d", got, want)
	}
	if got := csvRecs[1][cols-1]; got != "v"+strconv.Itoa((cols-1)%97) {
		t.Errorf("succeeded.csv last manifest cell %q", got)
	}

	x := openXLSX(t, filepath.Join(files.Dir, ReportXLSX))
	rows, err := x.GetRows(SheetSucceeded)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || len(rows[0]) != maxSheetColumns {
		t.Fatalf("Succeeded sheet: %d rows, header of %d columns; want 2 rows of %d", len(rows), len(rows[0]), maxSheetColumns)
	}
	kept := maxSheetColumns - len(added)
	if !slices.Equal(rows[0][:kept], csvRecs[0][:kept]) || !slices.Equal(rows[0][kept:], added) {
		t.Errorf("Succeeded header ends %q, want the first %d manifest columns then %q", rows[0][kept-2:], kept, added)
	}
	if rows[1][1] != csvRecs[1][1] || rows[1][kept] != csvRecs[1][cols] {
		t.Errorf("Succeeded row: EID %q, result_imsi %q", rows[1][1], rows[1][kept])
	}
	// Failed has no rows but the same header problem: its header is cut too.
	frows, err := x.GetRows(SheetFailed)
	if err != nil {
		t.Fatal(err)
	}
	if len(frows) != 1 || len(frows[0]) != maxSheetColumns || frows[0][maxSheetColumns-1] != colRow {
		t.Errorf("Failed sheet header: %d columns, ends %q", len(frows[0]), frows[0][len(frows[0])-1])
	}

	left := cols + len(added) - maxSheetColumns
	var sum Summary
	b, err := os.ReadFile(filepath.Join(files.Dir, SummaryJSON))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	if sum.SchemaVersion != 1 || sum.Workbook == nil || sum.Workbook.ColumnsLeftOut != left || sum.Workbook.SheetColumns != maxSheetColumns ||
		!strings.Contains(sum.Workbook.Note, SucceededCSV) {
		t.Fatalf("summary.json workbook_cut %+v, want %d columns left out", sum.Workbook, left)
	}
	html, err := os.ReadFile(filepath.Join(files.Dir, SummaryHTML))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(html), `data-metric="workbook_columns_left_out" data-value="`+strconv.Itoa(left)+`"`) {
		t.Error("summary.html does not say how many columns report.xlsx leaves out")
	}
	srows, err := x.GetRows(SheetSummary)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range srows {
		if len(r) > 1 && r[0] == "Columns left out" && r[1] == strconv.Itoa(left) {
			found = true
		}
	}
	if !found {
		t.Error("the Summary sheet does not say how many columns are left out")
	}
}

// TestNoWorkbookCutWhenItFits: a run that fits has no workbook_cut in
// summary.json at all (the field is optional, absent rather than null).
func TestNoWorkbookCutWhenItFits(t *testing.T) {
	cp, runID := wideRun(t, 3, 300)
	files, err := Write(context.Background(), cp, runID, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(files.Dir, SummaryJSON))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "workbook_cut") {
		t.Error("summary.json has workbook_cut for a run that fits")
	}
	// 300 columns is past perColumnWidths: one width for all, and still
	// every data cell a Text cell.
	x := openXLSX(t, filepath.Join(files.Dir, ReportXLSX))
	if w, err := x.GetColWidth(SheetSucceeded, "KN"); err != nil || w < minColWidth || w > maxColWidth {
		t.Errorf("column KN width %v (%v)", w, err)
	}
	if typ, _ := x.GetCellType(SheetSucceeded, "B2"); typ != excelize.CellTypeInlineString {
		t.Errorf("B2 cell type %v, want inline string", typ)
	}
}

// TestColumnLinearity logs the time per column of writing every report
// of a one-row run of 2,000 and of 16,000 columns. It asserts nothing
// about time (machines differ); the ratio of the two is what to look at:
// near 1 when writing is linear in the columns.
func TestColumnLinearity(t *testing.T) {
	if testing.Short() {
		t.Skip("times report writing")
	}
	per := map[int]time.Duration{}
	for _, cols := range []int{2_000, 16_000} {
		cp, runID := wideRun(t, 1, cols)
		start := time.Now()
		if _, err := Write(context.Background(), cp, runID, t.TempDir(), nil); err != nil {
			t.Fatal(err)
		}
		elapsed := time.Since(start)
		per[cols] = elapsed / time.Duration(cols)
		t.Logf("1 row × %6d columns: %v, %v per column", cols, elapsed.Round(time.Millisecond), per[cols])
	}
	t.Logf("time per column, 16,000 vs 2,000 columns: ratio %.2f", float64(per[16_000])/float64(per[2_000]))
}

// TestCancelDuringWrite cancels a large report half way: Write returns
// context.Canceled within moments, the previous report's files are as
// they were, and no temporary file is left behind.
func TestCancelDuringWrite(t *testing.T) {
	cp, runID := wideRun(t, 60_000, 10)
	out := t.TempDir()
	files, err := Write(context.Background(), cp, runID, out, []string{FormatCSV, FormatJSON})
	if err != nil {
		t.Fatal(err)
	}
	before := map[string][]byte{}
	for _, p := range files.Paths {
		if before[p], err = os.ReadFile(p); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancel once the new report is being written: its first temporary
	// file has appeared.
	go func() {
		for ctx.Err() == nil {
			if m, _ := filepath.Glob(filepath.Join(files.Dir, ".*.tmp")); len(m) > 0 {
				time.Sleep(50 * time.Millisecond)
				cancel()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	done := make(chan error, 1)
	go func() {
		_, err := Write(ctx, cp, runID, out, nil)
		done <- err
	}()
	<-ctx.Done()
	cancelled := time.Now()
	var werr error
	select {
	case werr = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Write still running 10 s after cancel")
	}
	if took := time.Since(cancelled); took > 2*time.Second {
		t.Errorf("Write returned %v after cancel, want within 2 s", took)
	}
	if !errors.Is(werr, context.Canceled) {
		t.Fatalf("Write returned %v, want context.Canceled", werr)
	}
	entries, err := os.ReadDir(files.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		p := filepath.Join(files.Dir, e.Name())
		old, ok := before[p]
		if !ok {
			t.Errorf("%s left behind by the cancelled report", e.Name())
			continue
		}
		if now, _ := os.ReadFile(p); string(now) != string(old) {
			t.Errorf("%s changed by the cancelled report", e.Name())
		}
	}
}
