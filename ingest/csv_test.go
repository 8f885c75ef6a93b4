package ingest

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf16"
	"unicode/utf8"
)

// wantRec is the part of a Record a reader test checks.
type wantRec struct {
	Row    int
	Values []string
	Fields int
	Bad    bool
}

// readAll drains r, collecting records and row errors until EOF or a fatal
// error.
func readAll(t *testing.T, r Reader) (recs []Record, rowErrs []*RowError, fatal error) {
	t.Helper()
	for i := 0; i < 1_000_000; i++ {
		rec, err := r.Next()
		var re *RowError
		switch {
		case err == io.EOF:
			return recs, rowErrs, nil
		case errors.As(err, &re):
			rowErrs = append(rowErrs, re)
			continue
		case err != nil:
			return recs, rowErrs, err
		}
		recs = append(recs, rec)
	}
	t.Fatal("reader never returned io.EOF")
	return nil, nil, nil
}

func got(recs []Record) []wantRec {
	out := make([]wantRec, len(recs))
	for i, r := range recs {
		out[i] = wantRec{Row: r.Row, Values: r.Values, Fields: r.FieldCount, Bad: r.BadEncoding}
	}
	return out
}

// utf16Bytes encodes s as UTF-16 with a BOM, as Excel's "Unicode Text"
// export does (little-endian on Windows).
func utf16Bytes(s string, bigEndian, bom bool) []byte {
	units := utf16.Encode([]rune(s))
	if bom {
		units = append([]uint16{0xFEFF}, units...)
	}
	var b bytes.Buffer
	for _, u := range units {
		if bigEndian {
			b.WriteByte(byte(u >> 8))
			b.WriteByte(byte(u))
		} else {
			b.WriteByte(byte(u))
			b.WriteByte(byte(u >> 8))
		}
	}
	return b.Bytes()
}

func TestCSVReader(t *testing.T) {
	const plain = "EID,ICCID,Provider\n" +
		"89049032123451234512345678901235,8944123456789012345,esim\n" +
		"89049032123451234512345678901236,8944123456789012346,simcard\n"
	twoRows := []wantRec{
		{2, []string{"89049032123451234512345678901235", "8944123456789012345", "esim"}, 3, false},
		{3, []string{"89049032123451234512345678901236", "8944123456789012346", "simcard"}, 3, false},
	}
	tabbed := strings.NewReplacer(",", "\t").Replace(plain)
	crlf := strings.ReplaceAll(plain, "\n", "\r\n")

	tests := []struct {
		name   string
		input  []byte
		header []string
		want   []wantRec
	}{
		{"utf8 LF", []byte(plain), []string{"EID", "ICCID", "Provider"}, twoRows},
		{"utf8 CRLF", []byte(crlf), []string{"EID", "ICCID", "Provider"}, twoRows},
		{"utf8 BOM", append([]byte("\xEF\xBB\xBF"), plain...), []string{"EID", "ICCID", "Provider"}, twoRows},
		{"utf8 BOM written twice", []byte("\xEF\xBB\xBF\uFEFF" + plain), []string{"EID", "ICCID", "Provider"}, twoRows},
		{"utf16LE BOM tab (Excel Unicode Text)", utf16Bytes(strings.ReplaceAll(tabbed, "\n", "\r\n"), false, true), []string{"EID", "ICCID", "Provider"}, twoRows},
		{"utf16BE BOM tab", utf16Bytes(tabbed, true, true), []string{"EID", "ICCID", "Provider"}, twoRows},
		{"utf16LE without BOM", utf16Bytes(plain, false, false), []string{"EID", "ICCID", "Provider"}, twoRows},
		{"semicolon (European Excel)", []byte(strings.ReplaceAll(crlf, ",", ";")), []string{"EID", "ICCID", "Provider"}, twoRows},
		{"tab", []byte(tabbed), []string{"EID", "ICCID", "Provider"}, twoRows},
		{"no final newline", []byte(strings.TrimSuffix(plain, "\n")), []string{"EID", "ICCID", "Provider"}, twoRows},
		{"lone CR line ends (Mac Excel)", []byte(strings.ReplaceAll(plain, "\n", "\r")), []string{"EID", "ICCID", "Provider"}, twoRows},
		{
			"Excel sep= line",
			[]byte("sep=;\r\nEID;Description, notes\r\n8904;a, b\r\n"),
			[]string{"EID", "Description, notes"},
			[]wantRec{{3, []string{"8904", "a, b"}, 2, false}},
		},
		{
			"semicolon header with a comma inside quotes",
			[]byte("EID;\"Notes, misc\";ICCID\n1;\"x, y, z\";2\n"),
			[]string{"EID", "Notes, misc", "ICCID"},
			[]wantRec{{2, []string{"1", "x, y, z", "2"}, 3, false}},
		},
		{
			"quoted: delimiter, doubled quote, newline; rows after it keep their line",
			[]byte("EID,Description,ICCID\n" +
				"1,\"a, b\",2\n" +
				"3,\"7\"\" tablet\",4\n" +
				"5,\"line one\nline two\r\nline three\",6\n" +
				"7,after,8\n"),
			[]string{"EID", "Description", "ICCID"},
			[]wantRec{
				{2, []string{"1", "a, b", "2"}, 3, false},
				{3, []string{"3", "7\" tablet", "4"}, 3, false},
				{4, []string{"5", "line one\nline two\nline three", "6"}, 3, false},
				{7, []string{"7", "after", "8"}, 3, false},
			},
		},
		{
			"utf16 quoted newline keeps line numbers",
			utf16Bytes("EID\tNote\r\n1\t\"a\r\nb\"\r\n2\tc\r\n", false, true),
			[]string{"EID", "Note"},
			[]wantRec{{2, []string{"1", "a\nb"}, 2, false}, {4, []string{"2", "c"}, 2, false}},
		},
		{
			"blank lines and Excel's empty rows are skipped but counted",
			[]byte("\n\nEID,ICCID\n\n1,2\n,,\n,\n   ,  \n\r\n3,4\n\n"),
			[]string{"EID", "ICCID"},
			[]wantRec{{5, []string{"1", "2"}, 2, false}, {10, []string{"3", "4"}, 2, false}},
		},
		{
			"wrong field counts: short rows padded, long rows keep extras",
			[]byte("EID,ICCID,IMEI\n1,2\n1,2,3,4,5\n1\n"),
			[]string{"EID", "ICCID", "IMEI"},
			[]wantRec{
				{2, []string{"1", "2", ""}, 2, false},
				{3, []string{"1", "2", "3", "4", "5"}, 5, false},
				{4, []string{"1", "", ""}, 1, false},
			},
		},
		{
			"header cells trimmed, duplicates kept, unknown kept",
			[]byte(" EID , eid,\u00a0Colour\t\n1,2,3\n"),
			[]string{"EID", "eid", "Colour"},
			[]wantRec{{2, []string{"1", "2", "3"}, 3, false}},
		},
		{
			"trailing empty header cells kept so rows match",
			[]byte("EID,ICCID,,\n1,2,,\n"),
			[]string{"EID", "ICCID", "", ""},
			[]wantRec{{2, []string{"1", "2", "", ""}, 4, false}},
		},
		{
			"invalid UTF-8 replaced and flagged per row",
			[]byte("EID,Name\n1,Jos\xe9\n2,Jos\u00e9\n3,\xff\xfe\n"),
			[]string{"EID", "Name"},
			[]wantRec{
				{2, []string{"1", "Jos\uFFFD"}, 2, true},
				{3, []string{"2", "José"}, 2, false},
				{4, []string{"3", "\uFFFD"}, 2, true},
			},
		},
		{
			"utf16 lone surrogate flagged",
			append(utf16Bytes("EID\tName\r\n1\t", false, true), 0x00, 0xD8, '\r', 0, '\n', 0),
			[]string{"EID", "Name"},
			[]wantRec{{2, []string{"1", "\uFFFD"}, 2, true}},
		},
		{"header only", []byte("EID,ICCID\r\n"), []string{"EID", "ICCID"}, nil},
		{"header only, no newline", []byte("EID"), []string{"EID"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewCSVReader(bytes.NewReader(tt.input))
			if err != nil {
				t.Fatalf("NewCSVReader: %v", err)
			}
			defer r.Close()
			if names := r.Header().Names; !reflect.DeepEqual(names, tt.header) {
				t.Errorf("header = %q, want %q", names, tt.header)
			}
			recs, rowErrs, err := readAll(t, r)
			if err != nil || len(rowErrs) > 0 {
				t.Fatalf("read: %v, row errors %v", err, rowErrs)
			}
			if g := got(recs); !reflect.DeepEqual(g, tt.want) && !(len(g) == 0 && len(tt.want) == 0) {
				t.Errorf("records:\n got %+v\nwant %+v", g, tt.want)
			}
			for _, rec := range recs {
				if rec.Numeric != nil {
					t.Errorf("row %d: Numeric set for CSV", rec.Row)
				}
			}
		})
	}
}

func TestCSVReaderHeaderAliases(t *testing.T) {
	r, err := NewCSVReader(strings.NewReader("\uFEFF SIM Number ;eUICC ID;MSISDN\n1;2;3\n"))
	if err != nil {
		t.Fatal(err)
	}
	h := r.Header()
	if h.Index(ColICCID) != 0 || h.Index(ColEID) != 1 || h.Index(ColCLI) != 2 || h.CLIKind != "msisdn" {
		t.Errorf("aliases not matched: %+v", h)
	}
}

func TestCSVReaderNoRecognisedColumns(t *testing.T) {
	r, err := NewCSVReader(strings.NewReader("foo,bar\n1,2\n"))
	if err != nil {
		t.Fatalf("a header without known columns is still a header: %v", err)
	}
	if len(r.Header().Names) != 2 || r.Header().Has(ColEID) {
		t.Errorf("header = %+v", r.Header())
	}
}

func TestCSVReaderFatal(t *testing.T) {
	tests := []struct {
		name    string
		input   []byte
		openErr error  // from NewCSVReader
		openMsg string // in NewCSVReader's error
		readErr string // from Next, after the good rows
	}{
		{name: "empty file", input: nil, openErr: ErrNoHeader},
		{name: "only a BOM", input: []byte("\xEF\xBB\xBF"), openErr: ErrNoHeader},
		{name: "only blank lines", input: []byte("\r\n\n,,,\n  \n"), openErr: ErrNoHeader},
		{name: "utf16 empty", input: []byte{0xFF, 0xFE}, openErr: ErrNoHeader},
		{name: "binary", input: []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00"), openErr: ErrNotManifest},
		{name: "quote error in header", input: []byte("\nEID,IC\"CID\n1,2\n"), openMsg: "header (line 2): a \" appears inside a field"},
		{
			name:    "quote never closed swallows the rest",
			input:   []byte("EID,Note\n1,ok\n2,\"never closed\n3,x\n4,y\n"),
			readErr: `line 3: a quoted field opened on this line is never closed, so it runs to the end of the file`,
		},
		{
			// The limiter cuts the cell at 64 KiB and skips the rest of
			// the file looking for the closing quote.
			name:    "quote never closed in a long file",
			input:   []byte("EID,Note\n1,\"" + strings.Repeat("x\n", maxRecordBytes)),
			readErr: "read manifest: line 2: a quoted field opened on this line is never closed, so it runs to the end of the file (line 16777218)",
		},
		{
			// Every cell within the cell limit, but 300 of them.
			name:    "row far too long",
			input:   []byte("EID,Note\n1," + strings.Repeat("\""+strings.Repeat("x", 60<<10)+"\",", 300)),
			readErr: "read manifest: the row after line 1 is longer than 16 MiB",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewCSVReader(bytes.NewReader(tt.input))
			if tt.openErr != nil || tt.openMsg != "" {
				if err == nil {
					r.Close()
					t.Fatal("NewCSVReader succeeded")
				}
				if tt.openErr != nil && !errors.Is(err, tt.openErr) {
					t.Errorf("NewCSVReader error = %v, want %v", err, tt.openErr)
				}
				if !strings.Contains(err.Error(), tt.openMsg) {
					t.Errorf("NewCSVReader error = %q, want it to contain %q", err, tt.openMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewCSVReader: %v", err)
			}
			defer r.Close()
			_, _, err = readAll(t, r)
			if err == nil || !strings.Contains(err.Error(), tt.readErr) {
				t.Fatalf("read error = %v, want it to contain %q", err, tt.readErr)
			}
			if _, again := r.Next(); again != err {
				t.Errorf("Next after a fatal error = %v, want the same error again", again)
			}
		})
	}
}

func TestCSVReaderQuoteErrorsAreRowErrors(t *testing.T) {
	input := "EID,Description,ICCID\n" +
		"1,ok,2\n" +
		"3,7\" tablet,4\n" + // bare quote
		"5,\"quoted\"junk,6\n" + // text after the closing quote
		"7,\"spans\nlines\"x,8\n" + // the same, over two lines
		"9,fine,10\n" +
		"11,\"unclosed on the last line"
	r, err := NewCSVReader(strings.NewReader(input))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	recs, rowErrs, err := readAll(t, r)
	if err != nil {
		t.Fatalf("fatal: %v", err)
	}
	if g, want := got(recs), []wantRec{
		{2, []string{"1", "ok", "2"}, 3, false},
		{7, []string{"9", "fine", "10"}, 3, false},
	}; !reflect.DeepEqual(g, want) {
		t.Errorf("good rows:\n got %+v\nwant %+v", g, want)
	}
	type rowErr struct {
		Row    int
		Column string
	}
	var gotErrs []rowErr
	for _, e := range rowErrs {
		gotErrs = append(gotErrs, rowErr{e.Row, e.Column})
		if p := e.Problem(); p.Code != CodeBadFormat || p.Severity != SeverityError || p.Row != e.Row {
			t.Errorf("Problem() = %+v", p)
		}
	}
	if want := []rowErr{{3, "description"}, {4, "description"}, {5, "description"}, {8, "description"}}; !reflect.DeepEqual(gotErrs, want) {
		t.Errorf("row errors = %+v, want %+v", gotErrs, want)
	}
	if len(rowErrs) > 0 {
		if !errors.Is(rowErrs[0], csv.ErrBareQuote) {
			t.Errorf("first row error does not wrap csv.ErrBareQuote: %v", rowErrs[0])
		}
		if msg := rowErrs[0].Error(); !strings.HasPrefix(msg, "row 3, column description: ") {
			t.Errorf("message = %q", msg)
		}
	}
	if len(rowErrs) > 2 && !strings.Contains(rowErrs[2].Message, "spans lines 5-6") {
		t.Errorf("multi-line row error does not name its lines: %q", rowErrs[2].Message)
	}
}

func TestCSVReaderRowErrorColumnIsCanonical(t *testing.T) {
	r, err := NewCSVReader(strings.NewReader("EID,SIM Number\n1,89\"44\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Next()
	var re *RowError
	if !errors.As(err, &re) || re.Column != ColICCID {
		t.Fatalf("err = %v, want a RowError in column %q", err, ColICCID)
	}
}

func TestCSVReaderClose(t *testing.T) {
	r, err := NewCSVReader(strings.NewReader("EID\n1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := r.Next(); err == nil || err == io.EOF {
		t.Errorf("Next after Close = %v, want an error", err)
	}
}

func TestCSVReaderEOFIsSticky(t *testing.T) {
	r, err := NewCSVReader(strings.NewReader("EID\n1\n"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	readAll(t, r)
	for range 3 {
		if _, err := r.Next(); err != io.EOF {
			t.Fatalf("Next after EOF = %v", err)
		}
	}
}

// TestCSVReaderStreams checks that reading does not hold the file: memory
// stays flat while many rows go by.
func TestCSVReaderStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 200,000 rows")
	}
	const rows = 200_000
	src := &generatedCSV{rows: rows}
	r, err := NewCSVReader(src)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n, last := 0, 0
	var early runtime.MemStats
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		last = rec.Row
		if n == rows/10 {
			runtime.GC()
			runtime.ReadMemStats(&early)
		}
	}
	if n != rows || last != rows+1 {
		t.Fatalf("read %d rows, last row %d", n, last)
	}
	var late runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&late)
	// The rows read after the first tenth are ~20 MB of text.
	if grew := int64(late.HeapAlloc) - int64(early.HeapAlloc); grew > 2<<20 {
		t.Errorf("heap grew by %d bytes while reading; the reader is holding rows", grew)
	}
}

// generatedCSV produces a manifest of n rows on the fly, so a test can
// read a large file without one existing anywhere.
type generatedCSV struct {
	rows, next int
	buf        []byte
}

func (g *generatedCSV) Read(p []byte) (int, error) {
	for len(g.buf) == 0 {
		if g.next > g.rows {
			return 0, io.EOF
		}
		if g.next == 0 {
			g.buf = []byte("EID,ICCID,IMEI,Provider,Description\r\n")
		} else {
			g.buf = fmt.Appendf(g.buf, "8904903212345123451234567%07d,894412345678%07d,35693803564%04d,esim,\"tracker, unit %d\"\r\n", g.next, g.next, g.next%10000, g.next)
		}
		g.next++
	}
	n := copy(p, g.buf)
	g.buf = g.buf[n:]
	return n, nil
}

func BenchmarkCSVReader(b *testing.B) {
	const rows = 100_000
	b.ReportAllocs()
	for b.Loop() {
		r, err := NewCSVReader(&generatedCSV{rows: rows})
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

// TestUTF8Watch: the watch flags text as bad exactly when it is not valid
// UTF-8, however the reads cut it, runes split between reads included.
func TestUTF8Watch(t *testing.T) {
	texts := []string{
		"", "plain ascii", "Zürich € 𝄞 ok", "\uFFFD is valid text",
		"bad \xff byte", "cut rune at the end \xe2\x82", "lone continuation \x80 byte",
		"surrogate \xed\xa0\x80", "overlong \xc0\xaf", "€𝄞€𝄞€𝄞€𝄞€𝄞€𝄞", "€\xe2\x82€",
	}
	readers := map[string]func(io.Reader) io.Reader{
		"whole":      func(r io.Reader) io.Reader { return r },
		"one byte":   iotest.OneByteReader,
		"half reads": iotest.HalfReader,
	}
	for _, text := range texts {
		for name, wrap := range readers {
			w := &utf8Watch{r: wrap(strings.NewReader(text))}
			if got, err := io.ReadAll(w); err != nil || string(got) != text {
				t.Fatalf("%q, %s: read %q, %v", text, name, got, err)
			}
			if w.bad != !utf8.ValidString(text) {
				t.Errorf("%q, %s: bad = %v", text, name, w.bad)
			}
		}
	}
}

// TestCSVReaderBadEncodingLate: a bad byte far into a file, after the rows
// were read without checking each field, still marks its own row and only
// that row.
func TestCSVReaderBadEncodingLate(t *testing.T) {
	var b strings.Builder
	b.WriteString("EID,Name\n")
	for i := range 5000 {
		fmt.Fprintf(&b, "%d,Zürich %d\n", i, i)
	}
	b.WriteString("bad,Jos\xe9\n")
	b.WriteString("after,Jos\u00e9\n")
	r, err := NewCSVReader(iotest.HalfReader(strings.NewReader(b.String())))
	if err != nil {
		t.Fatal(err)
	}
	var bad []string
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.BadEncoding {
			bad = append(bad, rec.Values[0]+" "+rec.Values[1])
		}
	}
	if want := []string{"bad Jos\uFFFD"}; !reflect.DeepEqual(bad, want) {
		t.Errorf("rows with bad encoding: %q, want %q", bad, want)
	}
}
