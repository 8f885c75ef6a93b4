package ingest

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
)

// xlsxRec is the part of an XLSX Record a test checks.
type xlsxRec struct {
	Row     int
	Values  []string
	Numeric []bool
	Fields  int
}

func gotXLSX(recs []Record) []xlsxRec {
	out := make([]xlsxRec, len(recs))
	for i, r := range recs {
		out[i] = xlsxRec{r.Row, r.Values, r.Numeric, r.FieldCount}
	}
	return out
}

// saveBook writes an excelize workbook into the test's temp dir.
func saveBook(t *testing.T, f *excelize.File) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "devices.xlsx")
	if err := f.SaveAs(path); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A minimal workbook, part by part, for cases excelize would not write:
// Excel's own number text, cells without references, damaged XML.
const (
	contentTypesXML = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>`
	rootRelsXML = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>`
	workbookXML = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Devices" sheetId="1" r:id="rId1"/></sheets></workbook>`
	workbookRelsXML = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="/xl/worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>`
	sharedStringsXML = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="4" uniqueCount="4"><si><t>ICCID</t></si><si><t>IMEI</t></si><si><t>Note</t></si><si><t>8944123456789012345</t></si></sst>`
)

func sheetXML(rows string) string {
	return `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>` + rows + `</sheetData></worksheet>`
}

// writeZip writes the given parts, in the given order, as a zip file.
func writeZip(t *testing.T, parts ...[2]string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, p := range parts {
		w, err := zw.Create(p[0])
		must(t, err)
		_, err = w.Write([]byte(p[1]))
		must(t, err)
	}
	must(t, zw.Close())
	path := filepath.Join(t.TempDir(), "hand.xlsx")
	must(t, os.WriteFile(path, buf.Bytes(), 0o600))
	return path
}

// handBook writes a one-sheet workbook ("Devices") with the given sheet
// rows.
func handBook(t *testing.T, rows string) string {
	t.Helper()
	return writeZip(t,
		[2]string{"[Content_Types].xml", contentTypesXML},
		[2]string{"_rels/.rels", rootRelsXML},
		[2]string{"xl/workbook.xml", workbookXML},
		[2]string{"xl/_rels/workbook.xml.rels", workbookRelsXML},
		[2]string{"xl/sharedStrings.xml", sharedStringsXML},
		[2]string{"xl/worksheets/sheet1.xml", sheetXML(rows)},
	)
}

func readXLSX(t *testing.T, path string, opts OpenOptions) (Header, []Record) {
	t.Helper()
	r, err := NewXLSXReader(path, opts)
	if err != nil {
		t.Fatalf("NewXLSXReader: %v", err)
	}
	defer func() { must(t, r.Close()) }()
	recs, rowErrs, err := readAll(t, r)
	if err != nil || len(rowErrs) > 0 {
		t.Fatalf("read: %v %v", err, rowErrs)
	}
	return r.Header(), recs
}

func TestXLSXReaderNumericCells(t *testing.T) {
	f := excelize.NewFile()
	const s = "Sheet1"
	for i, h := range []string{"EID", "ICCID", "IMEI", "MSISDN", "Note"} {
		cell, _ := excelize.CoordinatesToCellName(i+1, 1)
		must(t, f.SetCellStr(s, cell, h))
	}
	// Row 2: identifiers typed into Excel without a leading apostrophe;
	// excelize, like Excel, keeps 15 significant digits of the ICCID.
	must(t, f.SetCellStr(s, "A2", "89049032123451234512345678901235"))
	must(t, f.SetCellValue(s, "B2", 8.944123456789012e19))
	must(t, f.SetCellValue(s, "C2", int64(356938035643809)))
	must(t, f.SetCellValue(s, "D2", 447700900123))
	must(t, f.SetCellStr(s, "E2", "tracker"))
	// Row 3 left empty; row 4: everything as text, digits included.
	must(t, f.SetCellStr(s, "A4", "89049032123451234512345678901236"))
	must(t, f.SetCellStr(s, "B4", "8944123456789012345"))
	must(t, f.SetCellStr(s, "C4", "356938035643809"))
	must(t, f.SetCellStr(s, "D4", "447700900123"))
	// Row 5: a value beyond the header's last column, and a gap.
	must(t, f.SetCellStr(s, "A5", "x"))
	must(t, f.SetCellValue(s, "G5", 7))

	header, recs := readXLSX(t, saveBook(t, f), OpenOptions{})
	if want := []string{"EID", "ICCID", "IMEI", "MSISDN", "Note"}; !reflect.DeepEqual(header.Names, want) {
		t.Errorf("header = %q", header.Names)
	}
	want := []xlsxRec{
		{2, []string{"89049032123451234512345678901235", "89441234567890100000", "356938035643809", "447700900123", "tracker"},
			[]bool{false, true, true, true, false}, 5},
		{4, []string{"89049032123451234512345678901236", "8944123456789012345", "356938035643809", "447700900123", ""},
			[]bool{false, false, false, false, false}, 5},
		{5, []string{"x", "", "", "", "", "", "7"},
			[]bool{false, false, false, false, false, false, true}, 7},
	}
	if g := gotXLSX(recs); !reflect.DeepEqual(g, want) {
		t.Errorf("records:\n got %+v\nwant %+v", g, want)
	}
	if len(recs) > 0 && (!recs[0].IsNumeric(header, ColICCID) || recs[0].IsNumeric(header, ColEID)) {
		t.Error("Record.IsNumeric disagrees with Numeric")
	}
}

func TestXLSXReaderStreamWriter(t *testing.T) {
	f := excelize.NewFile()
	sw, err := f.NewStreamWriter("Sheet1")
	must(t, err)
	must(t, sw.SetRow("A1", []any{"EID", "ICCID", "IMEI"}))
	for i := 2; i <= 1001; i++ {
		row := []any{fmt.Sprintf("8904903212345123451234567%07d", i), fmt.Sprintf("894412345678%07d", i), int64(356938035600000 + i)}
		if i%2 == 0 {
			row[1] = float64(8944123456780000000 + i) // damaged: stored as a number
		}
		cell, _ := excelize.CoordinatesToCellName(1, i)
		must(t, sw.SetRow(cell, row))
	}
	must(t, sw.Flush())
	_, recs := readXLSX(t, saveBook(t, f), OpenOptions{})
	if len(recs) != 1000 {
		t.Fatalf("read %d rows, want 1000", len(recs))
	}
	for i, rec := range recs {
		n := i + 2
		want := []bool{false, n%2 == 0, true}
		if rec.Row != n || !reflect.DeepEqual(rec.Numeric, want) || rec.Values[2] != fmt.Sprint(356938035600000+n) {
			t.Fatalf("record %d = %+v, want row %d numeric %v", i, rec, n, want)
		}
	}
}

func TestXLSXReaderRawCells(t *testing.T) {
	// What Excel itself writes: a number that lost digits, in the <v>
	// text; cells without references; every cell type.
	rows := `<row r="2"><c r="B2" t="s"><v>0</v></c><c t="s"><v>1</v></c><c t="s"><v>2</v></c></row>` +
		`<row r="3"><c r="B3"><v>8.9441234567890117E+19</v></c><c r="C3" t="n"><v>356938035643809</v></c><c r="D3" t="inlineStr"><is><t>inline</t></is></c></row>` +
		`<row><c r="B4" t="s"><v>3</v></c><c r="C4" t="str"><f>A1</f><v>356938035643809</v></c><c r="D4" t="b"><v>1</v></c></row>` +
		`<row r="6" spans="1:4"><c r="B6" s="3"/><c r="C6"><f>1+1</f><v>2</v></c><c r="D6" t="e"><v>#N/A</v></c></row>` +
		`<row r="7"><c r="A7" s="1"/></row>`
	header, recs := readXLSX(t, handBook(t, rows), OpenOptions{})
	if want := []string{"", "ICCID", "IMEI", "Note"}; !reflect.DeepEqual(header.Names, want) {
		t.Errorf("header = %q", header.Names)
	}
	want := []xlsxRec{
		{3, []string{"", "8.9441234567890117E+19", "356938035643809", "inline"}, []bool{false, true, true, false}, 4},
		{4, []string{"", "8944123456789012345", "356938035643809", "1"}, []bool{false, false, false, false}, 4},
		{6, []string{"", "", "2", "#N/A"}, []bool{false, false, true, false}, 4},
	}
	if g := gotXLSX(recs); !reflect.DeepEqual(g, want) {
		t.Errorf("records:\n got %+v\nwant %+v", g, want)
	}
}

func TestXLSXReaderHeaderRowAndGaps(t *testing.T) {
	f := excelize.NewFile()
	must(t, f.SetCellStr("Sheet1", "B3", "  ICCID "))
	must(t, f.SetCellStr("Sheet1", "C3", "Provider"))
	must(t, f.SetCellStr("Sheet1", "B4", "8944123456789012345"))
	must(t, f.SetCellStr("Sheet1", "C9", "simcard"))
	must(t, f.SetCellStr("Sheet1", "A12", "  "))
	header, recs := readXLSX(t, saveBook(t, f), OpenOptions{})
	if want := []string{"", "ICCID", "Provider"}; !reflect.DeepEqual(header.Names, want) || header.Index(ColICCID) != 1 {
		t.Errorf("header = %q", header.Names)
	}
	if g, want := gotXLSX(recs), []xlsxRec{
		{4, []string{"", "8944123456789012345", ""}, []bool{false, false, false}, 3},
		{9, []string{"", "", "simcard"}, []bool{false, false, false}, 3},
	}; !reflect.DeepEqual(g, want) {
		t.Errorf("records:\n got %+v\nwant %+v", g, want)
	}
}

func TestXLSXReaderSheets(t *testing.T) {
	f := excelize.NewFile()
	must(t, f.SetCellStr("Sheet1", "A1", "Readme"))
	_, err := f.NewSheet("Data")
	must(t, err)
	must(t, f.SetCellStr("Data", "A1", "ICCID"))
	must(t, f.SetCellStr("Data", "A2", "8944123456789012345"))
	_, err = f.NewSheet("Empty")
	must(t, err)
	path := saveBook(t, f)

	tests := []struct {
		sheet   string
		header  string
		rows    int
		wantErr string
		is      error
	}{
		{sheet: "", header: "Readme"},
		{sheet: "Data", header: "ICCID", rows: 1},
		{sheet: "DATA", header: "ICCID", rows: 1},
		{sheet: "Foo", wantErr: `sheet "Foo" not found (sheets: Sheet1, Data, Empty)`},
		{sheet: "Empty", wantErr: `sheet "Empty": no header row`, is: ErrNoHeader},
	}
	for _, tt := range tests {
		t.Run(tt.sheet, func(t *testing.T) {
			r, err := NewXLSXReader(path, OpenOptions{Sheet: tt.sheet})
			if tt.wantErr != "" {
				if err == nil {
					r.Close()
					t.Fatal("no error")
				}
				if !strings.Contains(err.Error(), tt.wantErr) || (tt.is != nil && !errors.Is(err, tt.is)) {
					t.Fatalf("error = %q, want %q", err, tt.wantErr)
				}
				return
			}
			must(t, err)
			defer r.Close()
			if got := r.Header().Names; len(got) != 1 || got[0] != tt.header {
				t.Errorf("header = %q, want %q", got, tt.header)
			}
			recs, _, err := readAll(t, r)
			must(t, err)
			if len(recs) != tt.rows {
				t.Errorf("%d rows, want %d", len(recs), tt.rows)
			}
		})
	}
}

func TestXLSXReaderHeaderOnly(t *testing.T) {
	f := excelize.NewFile()
	must(t, f.SetCellStr("Sheet1", "A1", "EID"))
	_, recs := readXLSX(t, saveBook(t, f), OpenOptions{})
	if len(recs) != 0 {
		t.Errorf("got %d rows", len(recs))
	}
}

// TestXLSXReaderNoTempFiles reads a sheet and shared-string table that
// excelize would have unpacked to temp files, checks that cell types stay
// in step over many rows, and that nothing is written to TMPDIR.
func TestXLSXReaderNoTempFiles(t *testing.T) {
	f := excelize.NewFile()
	must(t, f.SetSheetRow("Sheet1", "A1", &[]any{"EID", "ICCID", "IMEI"}))
	const rows = 3000
	for i := 2; i <= rows+1; i++ {
		if i%7 == 0 {
			continue // gaps
		}
		vals := []any{fmt.Sprintf("8904903212345123451234567%07d", i), fmt.Sprintf("894412345678%07d", i), int64(356938035600000 + i)}
		if i%3 == 0 {
			vals[0] = float64(i)
		}
		cell, _ := excelize.CoordinatesToCellName(1, i)
		must(t, f.SetSheetRow("Sheet1", cell, &vals))
	}
	path := saveBook(t, f)

	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	r, err := newXLSXReader(context.Background(), path, OpenOptions{}, defaultXLSXLimits())
	must(t, err)
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Fatalf("temp files written: %v", entries)
	}
	recs, _, err := readAll(t, r)
	must(t, err)
	n := 0
	for i := 2; i <= rows+1; i++ {
		if i%7 == 0 {
			continue
		}
		rec := recs[n]
		n++
		if want := []bool{i%3 == 0, false, true}; rec.Row != i || !reflect.DeepEqual(rec.Numeric, want) {
			t.Fatalf("row %d: got row %d numeric %v, want %v", i, rec.Row, rec.Numeric, want)
		}
	}
	if n != len(recs) {
		t.Errorf("read %d rows, want %d", len(recs), n)
	}
	must(t, r.Close())
	must(t, r.Close())
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("temp files written: %v", entries)
	}
}

func TestXLSXReaderFatal(t *testing.T) {
	big := strings.Repeat(" ", 4<<20) // compresses to a few KB
	small := defaultXLSXLimits()
	small.sheetBytes, small.partBytes = 1<<20, 64<<10
	tests := []struct {
		name    string
		path    func(t *testing.T) string
		limits  xlsxLimits
		wantErr string
		is      error
	}{
		{
			name: "sheet declared past the sheet limit",
			path: func(t *testing.T) string {
				return handBook(t, `<row r="1"><c t="inlineStr"><is><t>EID</t></is></c></row>`+big)
			},
			limits:  small,
			wantErr: `sheet "Devices": part xl/worksheets/sheet1.xml has 4.0 MiB of XML (as the zip directory declares), over the limit of 1.0 MiB (MaxSheetBytes)`,
			is:      ErrWorkbookTooLarge,
		},
		{
			name: "workbook part past its limit",
			path: func(t *testing.T) string {
				return writeZip(t,
					[2]string{"[Content_Types].xml", contentTypesXML},
					[2]string{"_rels/.rels", rootRelsXML},
					[2]string{"xl/workbook.xml", workbookXML + big},
				)
			},
			limits:  small,
			wantErr: "part xl/workbook.xml has 4.0 MiB of XML, over the limit of 64.0 KiB (MaxWorkbookPartBytes)",
			is:      ErrLimit,
		},
		{
			name: "zip that is not a workbook",
			path: func(t *testing.T) string {
				return writeZip(t, [2]string{"devices.csv", "EID\n1\n"})
			},
			limits:  defaultXLSXLimits(),
			wantErr: "a zip archive, but not an XLSX workbook",
			is:      ErrNotManifest,
		},
		{
			name: "truncated zip",
			path: func(t *testing.T) string {
				p := filepath.Join(t.TempDir(), "cut.xlsx")
				must(t, os.WriteFile(p, []byte("PK\x03\x04 and then nothing"), 0o600))
				return p
			},
			limits:  defaultXLSXLimits(),
			wantErr: "starts like a zip archive but cannot be read as one",
			is:      ErrNotManifest,
		},
		{
			name: "empty sheet",
			path: func(t *testing.T) string {
				return handBook(t, "")
			},
			limits:  defaultXLSXLimits(),
			wantErr: `sheet "Devices": no header row`,
			is:      ErrNoHeader,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := newXLSXReader(context.Background(), tt.path(t), OpenOptions{}, tt.limits)
			if err == nil {
				r.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, tt.is) {
				t.Fatalf("error = %q, want %q (%v)", err, tt.wantErr, tt.is)
			}
		})
	}
}

// TestXLSXReaderDamagedXML: excelize's row iterator ends quietly at
// malformed XML; the reader must say so instead of losing the rest.
func TestXLSXReaderDamagedXML(t *testing.T) {
	tests := []struct {
		name, rows, wantErr string
		good                int
	}{
		{
			"bad entity",
			`<row r="1"><c t="s"><v>0</v></c></row><row r="2"><c><v>1</v></c></row>` +
				`<row r="3"><c><v>2</v></c><c><v>2&bogus;</v></c></row><row r="4"><c><v>3</v></c></row>`,
			`sheet "Devices" row 3: the worksheet XML is damaged (XML syntax error on line 2: invalid character entity &bogus;)`,
			1,
		},
		{
			"mismatched tags",
			`<row r="1"><c t="s"><v>0</v></c></row><row r="2"><c><v>1</v></c></row>` +
				`<row r="3"><c><v>2</v></row><row r="4"><c><v>3</v></c></row>`,
			`sheet "Devices" row 3: the worksheet XML is damaged (XML syntax error on line 2: element <c> closed by </row>)`,
			1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewXLSXReader(handBook(t, tt.rows), OpenOptions{})
			must(t, err)
			defer r.Close()
			recs, _, err := readAll(t, r)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want %q", err, tt.wantErr)
			}
			if len(recs) != tt.good {
				t.Errorf("%d rows before the error, want %d: a damaged row must not be handed out", len(recs), tt.good)
			}
		})
	}
}

func TestXLSXReaderClose(t *testing.T) {
	f := excelize.NewFile()
	must(t, f.SetCellStr("Sheet1", "A1", "EID"))
	must(t, f.SetCellStr("Sheet1", "A2", "1"))
	r, err := NewXLSXReader(saveBook(t, f), OpenOptions{})
	must(t, err)
	must(t, r.Close())
	must(t, r.Close())
	if _, err := r.Next(); err == nil {
		t.Error("Next after Close succeeded")
	}
}

func TestColumnOf(t *testing.T) {
	for ref, want := range map[string]int{"A1": 1, "Z9": 26, "AA10": 27, "xfd1": 16384, "XFE1": 0, "1": 0, "A": 0, "": 0, "A$1": 0} {
		if got := columnOf(ref); got != want {
			t.Errorf("columnOf(%q) = %d, want %d", ref, got, want)
		}
	}
}

// writeBigBook writes rows x 10 columns with excelize's StreamWriter, half
// the identifiers as numbers, as a large manifest would be.
func writeBigBook(tb testing.TB, rows int) string {
	tb.Helper()
	f := excelize.NewFile()
	sw, err := f.NewStreamWriter("Sheet1")
	if err != nil {
		tb.Fatal(err)
	}
	header := []any{"Provider", "EID", "ICCID", "IMEI", "MSISDN", "Account", "Tariff", "Bundle", "Description", "PO"}
	if err := sw.SetRow("A1", header); err != nil {
		tb.Fatal(err)
	}
	for i := 2; i <= rows+1; i++ {
		row := []any{"simcard", fmt.Sprintf("8904903212345123451234567%07d", i), fmt.Sprintf("894412345678%07d", i),
			int64(356938035600000 + i), fmt.Sprintf("4477009%05d", i%100000), "ACME-01", "IOT-5GB", "EU", "tracker unit", int64(4500012345)}
		cell, _ := excelize.CoordinatesToCellName(1, i)
		if err := sw.SetRow(cell, row); err != nil {
			tb.Fatal(err)
		}
	}
	if err := sw.Flush(); err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), "big.xlsx")
	if err := f.SaveAs(path); err != nil {
		tb.Fatal(err)
	}
	f.Close()
	return path
}

func BenchmarkXLSXReader(b *testing.B) {
	const rows = 100_000
	path := writeBigBook(b, rows)
	b.ResetTimer()
	for b.Loop() {
		r, err := NewXLSXReader(path, OpenOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := r.Next(); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
		}
		r.Close()
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkXLSXExcelizeOnly is the baseline: excelize's iterator alone,
// without the cell-type pass.
func BenchmarkXLSXExcelizeOnly(b *testing.B) {
	const rows = 100_000
	path := writeBigBook(b, rows)
	b.ResetTimer()
	for b.Loop() {
		f, err := excelize.OpenFile(path)
		if err != nil {
			b.Fatal(err)
		}
		it, err := f.Rows("Sheet1")
		if err != nil {
			b.Fatal(err)
		}
		for it.Next() {
			if _, err := it.Columns(excelize.Options{RawCellValue: true}); err != nil {
				b.Fatal(err)
			}
		}
		it.Close()
		f.Close()
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// TestXLSXReaderStreams checks that memory stays flat while a sheet big
// enough to be spooled to disk is read.
func TestXLSXReaderStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and reads a 40,000-row workbook")
	}
	const rows = 40_000
	r, err := NewXLSXReader(writeBigBook(t, rows), OpenOptions{})
	must(t, err)
	defer r.Close()
	var early, late runtime.MemStats
	n := 0
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		must(t, err)
		n++
		if rec.Row != n+1 || !rec.Numeric[3] || rec.Numeric[2] {
			t.Fatalf("row %d: %+v", n+1, rec)
		}
		if n == rows/10 {
			runtime.GC()
			runtime.ReadMemStats(&early)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&late)
	if n != rows {
		t.Fatalf("read %d rows, want %d", n, rows)
	}
	// The rows read after the first tenth are ~25 MB of sheet XML.
	if grew := int64(late.HeapAlloc) - int64(early.HeapAlloc); grew > 4<<20 {
		t.Errorf("heap grew by %d bytes while reading; the reader is holding rows", grew)
	}
}
