package reports

import (
	"archive/zip"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/simbulk/simbulk/ingest"
	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/pipeline/sqlite"
)

func openXLSX(t *testing.T, path string) *excelize.File {
	t.Helper()
	x, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

func TestXLSXSheets(t *testing.T) {
	f := newFixture(t, mixedManifest(), ingest.ValidateOptions{}, mixedPlan(), true)
	files := f.write(t, FormatXLSX, FormatCSV)
	path := filepath.Join(files.Dir, ReportXLSX)
	x := openXLSX(t, path)

	if got, want := x.GetSheetList(), []string{SheetSummary, SheetSucceeded, SheetFailed, SheetInvalid}; !slices.Equal(got, want) {
		t.Fatalf("sheets %v, want %v", got, want)
	}
	// Each data sheet holds exactly what its CSV file holds.
	for _, st := range tableStates {
		name, csvFile := sheetName(st), csvName(st)
		rows, err := x.GetRows(name)
		if err != nil {
			t.Fatal(err)
		}
		want := readCSV(t, filepath.Join(files.Dir, csvFile))
		if len(rows) != len(want) {
			t.Fatalf("%s: %d rows, %s has %d", name, len(rows), csvFile, len(want))
		}
		for i := range want {
			got := rows[i]
			for len(got) < len(want[i]) {
				got = append(got, "") // GetRows drops empty trailing cells
			}
			if !slices.Equal(got, want[i]) {
				t.Errorf("%s row %d:\n got %q\nwant %q", name, i+1, got, want[i])
			}
		}

		panes, err := x.GetPanes(name)
		if err != nil {
			t.Fatal(err)
		}
		if !panes.Freeze || panes.YSplit != 1 || panes.TopLeftCell != "A2" {
			t.Errorf("%s: panes %+v, want the header row frozen", name, panes)
		}
		for i, h := range want[0] {
			col, _ := excelize.ColumnNumberToName(i + 1)
			w, err := x.GetColWidth(name, col)
			if err != nil {
				t.Fatal(err)
			}
			if w < minColWidth || w > maxColWidth || w < float64(min(len(h)+2, maxColWidth)) {
				t.Errorf("%s column %s (%s): width %v", name, col, h, w)
			}
		}
	}

	// Identifiers, and every other data cell, are text cells.
	for _, name := range []string{SheetSucceeded, SheetFailed, SheetInvalid} {
		rows, _ := x.GetRows(name)
		for r, row := range rows {
			for c, v := range row {
				if v == "" {
					continue
				}
				cell, _ := excelize.CoordinatesToCellName(c+1, r+1)
				typ, err := x.GetCellType(name, cell)
				if err != nil {
					t.Fatal(err)
				}
				if typ != excelize.CellTypeInlineString && typ != excelize.CellTypeSharedString {
					t.Errorf("%s!%s %q: cell type %v, want a text cell", name, cell, v, typ)
				}
			}
		}
	}
	// An identifier that Excel would turn into a number, checked directly.
	rows, _ := x.GetRows(SheetSucceeded)
	eidCol := slices.Index(rows[0], "EID")
	cell, _ := excelize.CoordinatesToCellName(eidCol+1, 3)
	if v, _ := x.GetCellValue(SheetSucceeded, cell); v != eid(2) {
		t.Errorf("EID cell %s = %q, want %q", cell, v, eid(2))
	}
	if typ, _ := x.GetCellType(SheetSucceeded, cell); typ != excelize.CellTypeInlineString {
		t.Errorf("EID cell type %v, want inline string", typ)
	}

	// Summary figures.
	sum, err := x.GetRows(SheetSummary)
	if err != nil {
		t.Fatal(err)
	}
	find := func(label string) []string {
		for _, r := range sum {
			if len(r) > 0 && r[0] == label {
				return r
			}
		}
		t.Errorf("Summary has no %q row", label)
		return nil
	}
	if r := find("Run"); r != nil && r[1] != f.run.ID {
		t.Errorf("Summary run %q", r[1])
	}
	if r := find("succeeded"); r != nil && r[1] != "2" {
		t.Errorf("Summary succeeded %q", r[1])
	}
	if r := find("cli_exists"); r != nil && r[1] != "2" {
		t.Errorf("Summary cli_exists %q", r[1])
	}
	if r := find("iotconnect"); r == nil {
		t.Error("Summary lacks the iotconnect row")
	}

	checkWorkbookXML(t, path)
}

// checkWorkbookXML parses every XML part of the workbook (a malformed part
// is what makes Excel offer to "repair" a file) and checks each data
// sheet's autofilter covers its rows.
func checkWorkbookXML(t *testing.T, path string) {
	t.Helper()
	z, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	filters := 0
	for _, zf := range z.File {
		if !strings.HasSuffix(zf.Name, ".xml") && !strings.HasSuffix(zf.Name, ".rels") {
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		d := xml.NewDecoder(strings.NewReader(string(body)))
		for {
			if _, err := d.Token(); err != nil {
				if !errors.Is(err, io.EOF) {
					t.Errorf("%s: %v", zf.Name, err)
				}
				break
			}
		}
		if m := regexp.MustCompile(`<autoFilter ref="\$?A\$?1:\$?[A-Z]+\$?(\d+)"`).FindStringSubmatch(string(body)); m != nil {
			filters++
			rows := strings.Count(string(body), "<row ")
			if m[1] != fmt.Sprint(rows) {
				t.Errorf("%s: autofilter ends at row %s, the sheet has %d rows", zf.Name, m[1], rows)
			}
		}
	}
	if filters != 3 {
		t.Errorf("%d sheets with an autofilter, want 3", filters)
	}
}

// TestXLSXFormulaCells: no cell in the workbook holds a formula, and no
// text cell starts with a character a spreadsheet would evaluate.
func TestXLSXFormulaCells(t *testing.T) {
	f := newFixture(t, mixedManifest(), ingest.ValidateOptions{}, mixedPlan(), true)
	files := f.write(t, FormatXLSX)
	x := openXLSX(t, filepath.Join(files.Dir, ReportXLSX))
	neutralised := 0
	for _, name := range x.GetSheetList() {
		rows, err := x.GetRows(name)
		if err != nil {
			t.Fatal(err)
		}
		for r, row := range rows {
			for c, v := range row {
				cell, _ := excelize.CoordinatesToCellName(c+1, r+1)
				if formula, _ := x.GetCellFormula(name, cell); formula != "" {
					t.Errorf("%s!%s holds formula %q", name, cell, formula)
				}
				if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
					t.Errorf("%s!%s: live formula text %q", name, cell, v)
				}
				if strings.HasPrefix(v, "'") {
					neutralised++
				}
			}
		}
	}
	if neutralised < 8 {
		t.Errorf("only %d neutralised cells; the fixture has more", neutralised)
	}
	rows, _ := x.GetRows(SheetFailed)
	if got := rows[1][slices.Index(rows[0], "notes")]; got != `'=HYPERLINK("http://evil.example","x")` {
		t.Errorf("notes = %q", got)
	}
}

// TestXLSXSplitsLongTables: a table longer than a sheet continues on the
// next sheet, each with its header, frozen and filtered.
func TestXLSXSplitsLongTables(t *testing.T) {
	ctx := context.Background()
	cp, err := sqlite.Open(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	run, err := cp.CreateRun(ctx, "fp", "m.csv", []string{"provider", "EID"})
	if err != nil {
		t.Fatal(err)
	}
	var rows []pipeline.RowRecord
	for i := range 7 {
		rows = append(rows, pipeline.RowRecord{RunID: run.ID, Row: i + 2, Provider: "iotconnect", EID: eid(i),
			Cells: []string{"iotconnect", eid(i)}, State: pipeline.Succeeded, Result: map[string]string{"imsi": "23415000000000" + fmt.Sprint(i)}})
	}
	if err := cp.AddRows(ctx, rows); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	err = cp.ViewRun(ctx, run.ID, func(v pipeline.ReportView) error {
		book, err := newWorkbook(dir)
		if err != nil {
			return err
		}
		defer book.close()
		book.maxRows = 3 // header and two rows per sheet
		w := &writer{view: v, run: v.Run(), dir: dir, formats: []string{FormatXLSX}}
		t, err := newTable(ctx, v, pipeline.Succeeded)
		if err != nil {
			return err
		}
		if err := w.writeTable(ctx, t, book); err != nil {
			return err
		}
		f, err := createTemp(dir, ReportXLSX)
		if err != nil {
			return err
		}
		if err := book.save(ctx, f); err != nil {
			return err
		}
		if err := w.commit(f, ReportXLSX); err != nil {
			return err
		}
		return w.publish()
	})
	if err != nil {
		t.Fatal(err)
	}
	x := openXLSX(t, filepath.Join(dir, ReportXLSX))
	want := []string{SheetSummary, "Succeeded", "Succeeded (2)", "Succeeded (3)", "Succeeded (4)"}
	if got := x.GetSheetList(); !slices.Equal(got, want) {
		t.Fatalf("sheets %v, want %v", got, want)
	}
	var eids []string
	for _, name := range want[1:] {
		r, err := x.GetRows(name)
		if err != nil {
			t.Fatal(err)
		}
		if r[0][1] != "EID" {
			t.Errorf("%s: header %q", name, r[0])
		}
		for _, row := range r[1:] {
			eids = append(eids, row[1])
		}
		if p, _ := x.GetPanes(name); !p.Freeze {
			t.Errorf("%s: header not frozen", name)
		}
	}
	if len(eids) != 7 || eids[0] != eid(0) || eids[6] != eid(6) {
		t.Errorf("rows across sheets: %q", eids)
	}
}
