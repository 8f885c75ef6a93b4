package ingest

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// FuzzXLSXReader feeds arbitrary worksheet and shared-string XML to the
// XLSX reader inside an otherwise valid workbook (fuzzing the zip bytes
// would spend its time on checksums). Whatever the XML, the reader must not
// panic, must end, and must keep every cell and row within its limits. Each
// input is read twice: with the real limits, and with tiny ones that the
// seeds (small versions of TestXLSXHostileMemory's workbooks) cross.
func FuzzXLSXReader(f *testing.F) {
	valid := `<row r="1"><c r="A1" t="s"><v>0</v></c><c t="s"><v>1</v></c></row>` +
		`<row r="3"><c r="A3"><v>8.9441234567890117E+19</v></c><c t="inlineStr"><is><r><t>a</t></r><r><t>b</t></r></is></c></row>`
	for _, seed := range [][2]string{
		{sheetXML(valid), sharedStringsXML},
		{sheetXML(`<row><c t="s"><v>3</v></c><c t="b"><v>1</v></c><c t="e"><v>#N/A</v></c><c t="str"><f>A1</f><v>x</v></c></row>`), sharedStringsXML},
		{sheetXML(valid), sstHeadForTest + strings.Repeat("<si/>", 100) + "</sst>"},
		{sheetXML(valid), sstHeadForTest + "<si><t>" + strings.Repeat("x", 100) + "</t></si></sst>"},
		{sheetXML(valid + `<row><c t="inlineStr"><is><t>` + strings.Repeat("y", 100) + `</t></is></c></row>`), sharedStringsXML},
		{sheetXML(valid + strings.Repeat(" ", 2000) + valid), sharedStringsXML},
		{sheetXML(valid + `<row>` + strings.Repeat(`<c><v>1</v></c>`, 20) + `</row>`), sharedStringsXML},
		{sheetXML(valid + `<row><c r="XFD4"><v>1</v></c></row>`), sharedStringsXML},
		{sheetXML(valid + strings.Repeat("<a>", 100)), sharedStringsXML},
		{sheetXML(valid + `<row><c><v>1</row>`), sharedStringsXML},
		{sheetXML(valid + `<row><c><v>&bogus;</v></c></row>`), "<sst><si><t>a</si>"},
		{"", ""},
	} {
		f.Add(seed[0], seed[1])
	}
	tiny := defaultXLSXLimits()
	tiny.cellBytes, tiny.columns, tiny.sharedStringBytes, tiny.sharedStrings = 16, 8, 256, 64
	tiny.sheetBytes, tiny.tokenBytes = 64<<10, 1<<10
	f.Fuzz(func(t *testing.T, sheet, sst string) {
		path := writeZip(t,
			[2]string{"[Content_Types].xml", contentTypesXML},
			[2]string{"_rels/.rels", rootRelsXML},
			[2]string{"xl/workbook.xml", workbookXML},
			[2]string{"xl/_rels/workbook.xml.rels", workbookRelsXML},
			[2]string{"xl/sharedStrings.xml", sst},
			[2]string{"xl/worksheets/sheet1.xml", sheet},
		)
		for _, limits := range []xlsxLimits{defaultXLSXLimits(), tiny} {
			checkXLSXBounded(t, path, limits)
		}
	})
}

func checkXLSXBounded(t *testing.T, path string, limits xlsxLimits) {
	r, err := newXLSXReader(context.Background(), path, OpenOptions{}, limits)
	if err != nil {
		return
	}
	defer r.Close()
	if n := len(r.Header().Names); n > limits.columns {
		t.Fatalf("header of %d columns, limit %d", n, limits.columns)
	}
	for i := 0; ; i++ {
		if i > 1_000_000 {
			t.Fatal("reader never ended")
		}
		rec, err := r.Next()
		var re *RowError
		switch {
		case err == io.EOF:
			return
		case errors.As(err, &re):
		case err != nil:
			if _, again := r.Next(); again == nil {
				t.Fatal("a fatal error was not sticky")
			}
			return
		}
		if len(rec.Values) > limits.columns || len(rec.Values) != len(rec.Numeric) {
			t.Fatalf("row %d: %d values, %d numeric flags, limit %d columns", rec.Row, len(rec.Values), len(rec.Numeric), limits.columns)
		}
		for _, v := range rec.Values {
			if len(v) > limits.cellBytes {
				t.Fatalf("row %d: a cell of %d bytes, limit %d", rec.Row, len(v), limits.cellBytes)
			}
		}
	}
}
