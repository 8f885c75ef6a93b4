package ingest

import (
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestValidateControlCharacters: every class of control character, in an
// identifier, a provider field and a carried column. In a provider column
// it is an error (the row is never sent), elsewhere a warning; either way
// the row's values and the problem's value hold U+FFFD, never the
// character, and the message names row, column and the character.
func TestValidateControlCharacters(t *testing.T) {
	names := []string{"cli", "ICCID", "account", "description", "Notes"} // after provider
	const iccid = "8944123456789012345"
	classes := []struct {
		name  string
		c     string
		esc   string
		ident bool // a control character only inside identifiers
	}{
		{"NUL", "\x00", `\x00`, false},
		{"ESC", "\x1b", `\x1b`, false},
		{"BEL", "\a", `\a`, false},
		{"VT", "\v", `\v`, false},
		{"DEL", "\x7f", `\x7f`, false},
		{"C1 NEL", "\u0085", `\u0085`, false},
		{"C1 CSI", "\u009b", `\u009b`, false},
		{"TAB", "\t", `\t`, true},
		{"LF", "\n", `\n`, true},
		{"CR", "\r", `\r`, true},
	}
	for _, cl := range classes {
		t.Run(cl.name, func(t *testing.T) {
			v, _ := NewValidator(NewHeader([]string{"provider", "cli", "ICCID", "account", "description", "Notes"}), ValidateOptions{})
			cases := []struct {
				col      int
				value    string
				want     string // summary of the control_character problem, "" for none
				sentSafe bool
			}{
				{2, "89441234" + cl.c + "56789012345", "iccid:control_character", false},
				{3, "ac" + cl.c + "ct", "account:control_character", false},
				{4, "two" + cl.c + "lines", "description:control_character", false},
				{5, "a note" + cl.c, "Notes:control_character:w", true},
			}
			for _, tc := range cases {
				cells := []string{"simcard", "+447700900123", iccid, "acct", "desc", "note"}
				cells[tc.col] = tc.value
				row, ps := v.Check(Record{Row: 7, Values: slices.Clone(cells), FieldCount: 6})
				want := tc.want
				if cl.ident && tc.col != 2 {
					want = "" // TAB, CR and LF are text outside identifiers
				}
				var got []string
				for _, p := range ps {
					if p.Code == CodeControlChar {
						got = append(got, summary([]Problem{p})...)
						if strings.ContainsAny(p.Value, cl.c) || strings.ContainsAny(row.Values[tc.col], cl.c) {
							t.Errorf("column %d: the character is still in the value: %q / %q", tc.col, p.Value, row.Values[tc.col])
						}
						if !strings.Contains(row.Values[tc.col], "\uFFFD") {
							t.Errorf("column %d: value %q has no U+FFFD", tc.col, row.Values[tc.col])
						}
						wantPos := fmt.Sprintf("%s at position %d", cl.esc, strings.Index(tc.value, cl.c)+1)
						if !strings.Contains(p.Message, "row 7, column "+names[tc.col-1]) || !strings.Contains(p.Message, wantPos) {
							t.Errorf("message %q does not name row 7, column %s and %s", p.Message, names[tc.col-1], wantPos)
						}
					}
				}
				if want == "" && len(got) > 0 || want != "" && !slices.Equal(got, []string{want}) {
					t.Errorf("column %d (%q): control problems %v, want %q (all: %v)", tc.col, tc.value, got, want, ps)
				}
				if want != "" && !tc.sentSafe && !HasErrors(ps) {
					t.Errorf("column %d: the row is valid, so it would be sent", tc.col)
				}
				if tc.col == 2 && want != "" {
					if _, dup := find(ps, CodeBadFormat); dup {
						t.Errorf("the identifier also got bad_format: %v", ps)
					}
				}
			}
		})
	}
}

// TestValidateControlAroundIdentifier: TAB, CR and LF around an identifier
// are trimmed like spaces, not reported.
func TestValidateControlAroundIdentifier(t *testing.T) {
	_, ps := checkOne(t, []string{"provider", "cli", "account"}, ValidateOptions{}, "simcard", "\t+447700900123\r\n", "acct")
	if len(ps) != 0 {
		t.Errorf("problems = %v", ps)
	}
}

// TestCSVControlCharactersWholeFile: a NUL far past the first 64 KiB
// (which is all encoding detection looks at) is found, in a carried column
// as a warning with the value made safe, in the EID column as an error.
func TestCSVControlCharactersWholeFile(t *testing.T) {
	var b strings.Builder
	b.WriteString("provider,cli,account,Notes\n")
	for i := 0; b.Len() < 100<<10; i++ {
		fmt.Fprintf(&b, "simcard,+4477009%05d,acct,row %d\n", i, i)
	}
	b.WriteString("simcard,+447700812345,acct,\"a\x00b\"\n")
	b.WriteString("simcard,+4477008\x0012346,acct,ok\n")
	r, err := NewCSVReader(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var found []Problem
	var last Row
	_, _, err = Scan(r, ValidateOptions{}, func(row Row, ps []Problem) error {
		for _, p := range ps {
			if p.Code == CodeControlChar {
				found = append(found, p)
				last = row
			}
		}
		for _, v := range row.Values {
			if strings.ContainsRune(v, 0) {
				t.Errorf("row %d: a NUL reached the row's values: %q", row.Number, v)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 2 || found[0].Severity != SeverityWarning || found[0].Column != "Notes" ||
		found[1].Severity != SeverityError || found[1].Column != ColCLI {
		t.Fatalf("control problems = %v", found)
	}
	if !strings.Contains(found[0].Message, `\x00 at position 2`) || found[0].Value != "a\uFFFDb" {
		t.Errorf("warning = %v", found[0])
	}
	if last.CLI != "" {
		t.Errorf("the CLI with a NUL was kept: %q", last.CLI)
	}
}

// TestHeaderListsCapped: a wide header is listed in messages by its first
// names and a count, whatever its width.
func TestHeaderListsCapped(t *testing.T) {
	names := make([]string, 1000)
	for i := range names {
		names[i] = fmt.Sprintf("col%d", i)
	}
	names[3] = "bad\x00name"
	_, ps := NewValidator(NewHeader(names), ValidateOptions{})
	if len(ps) == 0 {
		t.Fatal("no problems for a header without a provider column")
	}
	for _, p := range ps {
		if len(p.Message) > 600 || !strings.Contains(p.Message, "… and 980 more") || strings.ContainsRune(p.Message, 0) {
			t.Errorf("message of %d bytes: %.300q", len(p.Message), p.Message)
		}
	}
	if got := listNames([]string{strings.Repeat("é", 100)}); len(got) > 50 || !utf8.ValidString(got) {
		t.Errorf("a long name is listed as %q", got)
	}
}

// TestCSVHeaderControlCharacters: control characters in header names never
// reach the header as read.
func TestCSVHeaderControlCharacters(t *testing.T) {
	r, err := NewCSVReader(strings.NewReader("EID,No\x1btes\n1,2\n"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := r.Header().Names[1]; got != "No\uFFFDtes" {
		t.Errorf("header name %q", got)
	}
}

// limitedRead reads input with small limits and returns the rows, their
// problems by code and the fatal error.
func limitedRead(t *testing.T, input string, limits csvLimits) (recs []Record, rowErrs []*RowError, fatal error) {
	t.Helper()
	r, err := newLimitedCSVReader(strings.NewReader(input), "", limits)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	return readAll(t, r)
}

// TestFieldLimiter: with a 4-byte cell limit and 3 columns, every way a
// cell can be cut keeps the text well formed, the cut cell is reported
// with its true size and dropped, and the rows keep their line numbers.
func TestFieldLimiter(t *testing.T) {
	small := csvLimits{cellBytes: 4, columns: 3}
	tests := []struct {
		name   string
		input  string
		want   []wantRec
		cuts   []string // "row:column:size"
		rowErr int      // rows with a RowError
	}{
		{
			name:  "fits",
			input: "a,b,c\n1234,\"ab\"\"\",x\n",
			want:  []wantRec{{Row: 2, Values: []string{"1234", `ab"`, "x"}, Fields: 3}},
		},
		{
			name:  "unquoted cut",
			input: "a,b,c\n12345678,y,z\nok,2,3\n",
			want:  []wantRec{{Row: 2, Values: []string{"", "y", "z"}, Fields: 3}, {Row: 3, Values: []string{"ok", "2", "3"}, Fields: 3}},
			cuts:  []string{"2:a:8"},
		},
		{
			name:  "quoted cut over lines",
			input: "a,b,c\n1,\"ab\ncd\nef,\"\"g\",z\nok,2,3\n",
			want:  []wantRec{{Row: 2, Values: []string{"1", "", "z"}, Fields: 3}, {Row: 5, Values: []string{"ok", "2", "3"}, Fields: 3}},
			cuts:  []string{"2:b:12"},
		},
		{
			name:  "doubled quote across the limit",
			input: "a,b,c\n1,\"abc\"\"d\",z\nok,2,3\n",
			want:  []wantRec{{Row: 2, Values: []string{"1", "", "z"}, Fields: 3}, {Row: 3, Values: []string{"ok", "2", "3"}, Fields: 3}},
			cuts:  []string{"2:b:6"},
		},
		{
			name:  "too many columns",
			input: "a,b,c\n1,2,3,4,\"5\n6\",7\nok,2,3\n",
			want:  []wantRec{{Row: 2, Values: []string{"1", "2", "3"}, Fields: 6}, {Row: 4, Values: []string{"ok", "2", "3"}, Fields: 3}},
		},
		{
			name:   "quote error after a cut",
			input:  "a,b,c\n1,\"abcdefg\"x,z\nok,2,3\n",
			want:   []wantRec{{Row: 3, Values: []string{"ok", "2", "3"}, Fields: 3}},
			rowErr: 1,
		},
		{
			name:  "CRLF",
			input: "a,b,c\r\n\"abcdefg\"\r\nok,2,3\r\n",
			want:  []wantRec{{Row: 2, Values: []string{"", "", ""}, Fields: 1}, {Row: 3, Values: []string{"ok", "2", "3"}, Fields: 3}},
			cuts:  []string{"2:a:7"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, rowErrs, err := limitedRead(t, tt.input, small)
			if err != nil {
				t.Fatal(err)
			}
			if g := got(recs); !slices.EqualFunc(g, tt.want, func(a, b wantRec) bool {
				return a.Row == b.Row && slices.Equal(a.Values, b.Values) && a.Fields == b.Fields
			}) {
				t.Errorf("records = %+v, want %+v", g, tt.want)
			}
			var cuts []string
			for _, r := range recs {
				for _, p := range r.Problems {
					if p.Code != CodeCellTooLong || p.Severity != SeverityError {
						t.Errorf("problem %v", p)
					}
					size := strings.Split(p.Message, "the cell is ")[1]
					size = size[:strings.IndexByte(size, ' ')]
					cuts = append(cuts, fmt.Sprintf("%d:%s:%s", p.Row, p.Column, size))
				}
			}
			if !slices.Equal(cuts, tt.cuts) {
				t.Errorf("cuts = %v, want %v", cuts, tt.cuts)
			}
			if len(rowErrs) != tt.rowErr {
				t.Errorf("row errors = %v, want %d", rowErrs, tt.rowErr)
			}
		})
	}
}

// TestFieldLimiterFatal: a header past the limits, and a quote never
// closed that the limiter was skipping, stop the reading with a message
// naming what was found and the limit.
func TestFieldLimiterFatal(t *testing.T) {
	small := csvLimits{cellBytes: 4, columns: 3}
	tests := []struct{ input, want string }{
		{"a,b,c,d,e\n1\n", "header (line 1) has 5 columns; simbulk reads at most 1,024"},
		{"\n\na,\"bbbbbbb\",c\n1\n", "header (line 3), column 2: the name is 7 bytes long"},
		{"a,b\n1,\"abcdef\n2,3\n4,5\n", "line 2: a quoted field opened on this line is never closed, so it runs to the end of the file (line 5)"},
		{"sep=,\na,b\n1,\"abcdef\n2,3\n", "line 3: a quoted field opened on this line is never closed, so it runs to the end of the file (line 5)"},
	}
	for _, tt := range tests {
		_, _, err := limitedRead(t, tt.input, small)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want %q", tt.input, err, tt.want)
		}
	}
}

// TestFieldLimiterAgreesWithCSV: below the limits encoding/csv reads the
// same records, errors and lines through the limiter as without it (the
// limiter only drops what encoding/csv drops anyway: a line's rest after a
// quote error).
func TestFieldLimiterAgreesWithCSV(t *testing.T) {
	input := "EID,Note\n1,\"a\nb\"\n2,7\" tablet,x\n3,\"x\"y,z\n\n4,ok\r\n\"5\",\"\"\"\"\n6,\"a\"\rb\n7,\"never"
	read := func(r io.Reader) []string {
		cr := csv.NewReader(r)
		cr.FieldsPerRecord = -1
		var out []string
		for {
			rec, err := cr.Read()
			if err == io.EOF {
				return out
			}
			line := 0
			if len(rec) > 0 {
				line, _ = cr.FieldPos(0)
			}
			out = append(out, fmt.Sprintf("%d %q %v", line, rec, err))
		}
	}
	want := read(strings.NewReader(input))
	if got := read(newFieldLimiter(strings.NewReader(input), ',', defaultCSVLimits())); !slices.Equal(got, want) {
		t.Errorf("through the limiter:\n%s\nwithout:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestMayHoldControlMatchesBytes: the word-at-a-time scan agrees with the
// plain byte test on every byte value at every position of short strings.
func TestMayHoldControlMatchesBytes(t *testing.T) {
	slow := func(s string) bool {
		for i := 0; i < len(s); i++ {
			if b := s[i]; b < 0x20 || b == 0x7f || b == 0xc2 {
				return true
			}
		}
		return false
	}
	base := []byte("89441234567890123456 abc")
	for n := 0; n <= len(base); n++ {
		for pos := 0; pos < n; pos++ {
			for v := 0; v < 256; v++ {
				b := append([]byte(nil), base[:n]...)
				b[pos] = byte(v)
				if got, want := mayHoldControl(string(b)), slow(string(b)); got != want {
					t.Fatalf("%q: mayHoldControl %v, want %v", b, got, want)
				}
			}
		}
	}
}

// The CSV reader tells the validator a row has no control character only
// when none can be in it: whatever the line ends, the delimiter, the
// quoting and the way the text arrives in pieces, validating every row as
// if the reader had said nothing finds the same problems.
func TestCSVNoControlsAgrees(t *testing.T) {
	eid := "89049032123451234512345678901235"
	inputs := []string{
		"provider,eid,description\r\nesim," + eid + ",plain\r\nesim," + eid + ",x\x01y\r\n",
		"provider,eid,description\nesim," + eid + ",\"two\nlines\"\nesim," + eid + ",after\n",
		"provider,eid,description\r\nesim," + eid + ",\"two\r\nlines\"\r\nesim," + eid + ",after\r\n",
		"provider,eid,description\nesim," + eid + ",lone\rcr\nesim," + eid + ",after\n",
		"provider,eid,description\nesim," + eid + "\r,cr after\nesim,\r" + eid + ",cr before\n",
		"provider\teid\tdescription\nesim\t" + eid + "\t\"a\ttab\"\nesim\t" + eid + "\tafter\n",
		"provider;eid;description\nesim;" + eid + ";del\x7f\nesim;" + eid + ";c1\xc2\x85;\n",
		"provider,eid,description\nesim," + eid + ",£5 and 30°\nesim," + eid + ",\"quoted \"\"ok\"\"\"\n",
		"provider,eid,description\r\nesim," + eid + ",clean\r\nesim," + eid + ",clean too\r\n",
		"provider,eid,desc\x02ription\nesim," + eid + ",clean\n",
		"provider,eid,description\nesim," + eid + "\x1b,esc\nesim,\"" + eid + "\",\"quoted\"\r\n",
		"provider,eid,description\nesim," + eid + ",\"closed\"\r\nesim," + eid + ",x\r",
		"provider,eid,description\nesim,\"" + eid[:10] + "\n" + eid[10:] + "\",lf in an identifier\n",
		"provider,eid,description\r\nesim,\"" + eid[:10] + "\r\n" + eid[10:] + "\",crlf in an identifier\r\n",
		"provider,eid,description\nesim,\"" + eid[:10] + "\r" + eid[10:] + "\",cr in an identifier\n",
		"provider\teid\tdescription\nesim\t\"" + eid[:10] + "\t" + eid[10:] + "\"\ttab in an identifier\n",
	}
	// Files where the reader must say so for every row, or the test
	// would pass with a reader that never does.
	clean := map[string]bool{inputs[8]: true}
	for _, in := range inputs {
		for _, piece := range []int{0, 1, 2, 3, 7} {
			var src io.Reader = strings.NewReader(in)
			if piece > 0 {
				src = &pieceReader{s: in, n: piece}
			}
			r, err := NewCSVReader(src)
			if err != nil {
				t.Fatalf("%q: %v", in, err)
			}
			told, _ := NewValidator(r.Header(), ValidateOptions{})
			every, _ := NewValidator(r.Header(), ValidateOptions{})
			for {
				rec, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					continue // a quote error: unreadRow looks at every cell anyway
				}
				if clean[in] && !rec.noControls {
					t.Errorf("%q in pieces of %d, row %d: the reader did not tell the row is free of control characters", in, piece, rec.Row)
				}
				plain := rec
				plain.noControls = false
				plain.Values = slices.Clone(rec.Values)
				_, got := told.Check(rec)
				_, want := every.Check(plain)
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%q in pieces of %d, row %d: problems %v, want %v", in, piece, rec.Row, got, want)
				}
			}
		}
	}
}

// pieceReader hands out s n bytes at a time, so that every byte meets a
// buffer's end somewhere.
type pieceReader struct {
	s string
	n int
}

func (p *pieceReader) Read(b []byte) (int, error) {
	if p.s == "" {
		return 0, io.EOF
	}
	k := copy(b[:min(len(b), p.n)], p.s)
	p.s = p.s[k:]
	return k, nil
}
