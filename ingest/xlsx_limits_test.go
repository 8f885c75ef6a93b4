package ingest

import (
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

// splitWhitespaceBook has 1.5 GB of whitespace in 64 KiB runs between
// empty comments, so no single token trips MaxXMLTokenBytes: reading it
// through takes seconds, the time a cancellation must cut short. before
// puts it ahead of the header (the open skips it), else after.
func splitWhitespaceBook(t *testing.T, before bool) string {
	p := xlsxPart{prefix: xlsxSheetHead, chunk: xlsxSpaces(1, true), n: 1500, suffix: xlsxHeaderRow + hostileGoodRow + xlsxSheetTail}
	if !before {
		p.prefix, p.suffix = xlsxSheetHead+xlsxHeaderRow, hostileGoodRow+xlsxSheetTail
	}
	return xlsxHostileBook(t, t.TempDir(), p, xlsxPlainSST())
}

func TestXLSXOpenContextCancel(t *testing.T) {
	path := splitWhitespaceBook(t, true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	r, err := OpenContext(ctx, path, OpenOptions{})
	took := time.Since(start)
	t.Logf("OpenContext returned after %v: %v", took, err)
	if err == nil {
		r.Close()
		t.Fatal("the open finished before it was cancelled; the test does not test what it says")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}
	if took > 2*time.Second {
		t.Errorf("OpenContext took %v after a cancel at 200ms", took)
	}
}

func TestXLSXNextCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := OpenContext(ctx, splitWhitespaceBook(t, false), OpenOptions{})
	must(t, err)
	defer r.Close()
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	_, err = r.Next()
	if took := time.Since(start); !errors.Is(err, context.Canceled) || took > 2*time.Second {
		t.Errorf("Next = %v after %v, want context.Canceled well within 2s", err, took)
	}
}

func TestOpenContextCancelledCSV(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := OpenContext(ctx, "testdata/readers/excel-european.csv", OpenOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled", err)
	}
}

// TestXLSXRowLimits: faults confined to a row are row errors; the row is
// read through and reading goes on.
func TestXLSXRowLimits(t *testing.T) {
	long := strings.Repeat("é", 600) // 1,200 bytes
	rows := `<row r="1"><c t="s"><v>0</v></c><c t="s"><v>2</v></c></row>` +
		`<row r="2"><c><v>1</v></c><c t="inlineStr"><is><t>` + long + `</t></is></c></row>` +
		`<row r="3"><c><v>2</v></c><c r="E3"><v>5</v></c><c><v>6</v></c><c r="D3" t="s"><v>1</v></c></row>` +
		`<row r="4"><c t="s"><v>9</v></c></row>` +
		`<row r="5"><c t="s"><v>4</v></c></row>` +
		`<row r="6"><c t="str"><v>ok</v></c><c r="Z6" s="1"/></row>`
	sst := sstHeadForTest + `<si><t>ICCID</t></si><si><t>IMEI</t></si><si><t>Note</t></si><si><t>x</t></si><si><t>` + long + `</t></si></sst>`
	path := writeZip(t,
		[2]string{"[Content_Types].xml", contentTypesXML},
		[2]string{"_rels/.rels", rootRelsXML},
		[2]string{"xl/workbook.xml", workbookXML},
		[2]string{"xl/_rels/workbook.xml.rels", workbookRelsXML},
		[2]string{"xl/sharedStrings.xml", sst},
		[2]string{"xl/worksheets/sheet1.xml", sheetXML(rows)},
	)
	limits := defaultXLSXLimits()
	limits.cellBytes, limits.columns = 1000, 4
	r, err := newXLSXReader(context.Background(), path, OpenOptions{}, limits)
	must(t, err)
	defer r.Close()
	recs, rowErrs, err := readAll(t, r)
	must(t, err)
	if len(recs) != 1 || recs[0].Row != 6 || !reflect.DeepEqual(recs[0].Values, []string{"ok", ""}) {
		t.Errorf("records = %+v", recs)
	}
	want := []struct {
		row       int
		col, text string
		limit     bool
	}{
		{2, "Note", "cell B2 has 1.2 KiB of text, over the limit of 1000 bytes (MaxCellBytes)", true},
		{3, "#5", "row 3 has 6 columns with values, over the limit of 4 columns (MaxColumns)", true},
		{4, "ICCID", `cell A4 refers to shared string "9", but the workbook's table has 5`, false},
		{5, "ICCID", "cell A5 has 1.2 KiB of text, over the limit of 1000 bytes (MaxCellBytes)", true},
	}
	if len(rowErrs) != len(want) {
		t.Fatalf("row errors = %v", rowErrs)
	}
	for i, w := range want {
		e := rowErrs[i]
		if e.Row != w.row || e.Column != w.col || !strings.Contains(e.Message, w.text) || errors.Is(e, ErrLimit) != w.limit {
			t.Errorf("row error %d = %+v, want row %d column %s %q", i, e, w.row, w.col, w.text)
		}
	}
}

const sstHeadForTest = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">`

// TestXLSXSheetBytesRead: the bytes actually read count, whitespace
// included, whatever the zip directory declares. (archive/zip holds a
// part to its declared size too; this is the reader's own guard.)
func TestXLSXSheetBytesRead(t *testing.T) {
	sheet := xlsxSheetHead + xlsxHeaderRow + strings.Repeat(xlsxSpaces(1, true), 3) + hostileGoodRow + xlsxSheetTail
	limits := defaultXLSXLimits()
	limits.sheetBytes = 2 << 20
	rows := newSheetRows(context.Background(), strings.NewReader(sheet), nil, limits)
	if _, err := rows.next(); err != nil {
		t.Fatal(err)
	}
	_, err := rows.next()
	if err == nil || !errors.Is(err, ErrWorkbookTooLarge) || !strings.Contains(err.Error(), "over the limit of 2.0 MiB (MaxSheetBytes)") {
		t.Errorf("error = %v", err)
	}
	// The declared size is checked before anything is read.
	path := xlsxHostileBook(t, t.TempDir(), xlsxPart{prefix: sheet}, xlsxPlainSST())
	if _, err := newXLSXReader(context.Background(), path, OpenOptions{}, limits); !errors.Is(err, ErrWorkbookTooLarge) {
		t.Errorf("declared size: error = %v", err)
	}
}

// TestXLSXReaderTextForms: rich text, phonetic guides, entities,
// xml:space, CDATA and cells without references.
func TestXLSXReaderTextForms(t *testing.T) {
	sst := sstHeadForTest + `<si><t>ICCID</t></si><si><r><rPr><b/></rPr><t>89441234</t></r><r><t xml:space="preserve">56789012345 </t></r><rPh sb="0" eb="1"><t>ph</t></rPh></si><si><t>a &amp; b &#x41;</t><rPh><t>no</t></rPh></si></sst>`
	rows := `<row><c t="s"><v>0</v></c><c t="inlineStr"><is><t>Note</t></is></c><c t="inlineStr"><is><t>Extra</t></is></c></row>` +
		`<row><c t="s"><v> 1 </v></c><c t="s"><v>2</v></c><c t="inlineStr"><is><r><t>x</t></r><r><t><![CDATA[<y>]]></t></r><rPh><t>z</t></rPh></is></c></row>` +
		`<row r="9"><c><v>1<!-- c -->2</v></c><c/><c t="d"><v>2024-01-02</v></c></row>`
	path := writeZip(t,
		[2]string{"[Content_Types].xml", contentTypesXML},
		[2]string{"_rels/.rels", rootRelsXML},
		[2]string{"xl/workbook.xml", workbookXML},
		[2]string{"xl/_rels/workbook.xml.rels", workbookRelsXML},
		[2]string{"xl/sharedStrings.xml", sst},
		[2]string{"xl/worksheets/sheet1.xml", sheetXML(rows)},
	)
	header, recs := readXLSX(t, path, OpenOptions{})
	if want := []string{"ICCID", "Note", "Extra"}; !reflect.DeepEqual(header.Names, want) {
		t.Errorf("header = %q", header.Names)
	}
	want := []xlsxRec{
		{2, []string{"8944123456789012345 ", "a & b A", "x<y>"}, []bool{false, false, false}, 3},
		{9, []string{"12", "", "2024-01-02"}, []bool{true, false, false}, 3},
	}
	if g := gotXLSX(recs); !reflect.DeepEqual(g, want) {
		t.Errorf("records:\n got %+v\nwant %+v", g, want)
	}
}

// TestXLSXDeepNesting: the decoder's record of open elements is bounded.
func TestXLSXDeepNesting(t *testing.T) {
	path := xlsxHostileBook(t, t.TempDir(), xlsxPart{
		prefix: xlsxSheetHead + xlsxHeaderRow, chunk: "<a>", n: 1_000_000, suffix: xlsxSheetTail}, xlsxPlainSST())
	r, err := NewXLSXReader(path, OpenOptions{})
	must(t, err)
	defer r.Close()
	_, err = r.Next()
	if err == nil || !strings.Contains(err.Error(), "nested more than 64 deep") {
		t.Errorf("error = %v", err)
	}
	if _, err2 := r.Next(); err2 != err {
		t.Errorf("second Next = %v, want the same error", err2)
	}
	_ = io.EOF
}
