package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/simbulk/simbulk/samples/peakmem"
)

// helperEnv names the hostile manifest TestHelperCSV reads. The big cases
// run in a child process (this test binary again) so that the peak
// resident set the kernel reports belongs to reading that manifest alone,
// and so that a reader that hangs or balloons is killed by the deadline
// instead of taking the test run down with it.
const helperEnv = "SIMBULK_CSV_HELPER"

// peakLimit is what reading any hostile manifest may cost at the most.
const peakLimit = 256 << 20

// hostileCase is one generated manifest: a header and rows, with a part in
// the middle that only exists while it is read.
type hostileCase struct {
	name string
	src  func() io.Reader
	// check judges what the child saw, once the reader is bounded.
	check func(t *testing.T, o helperOutcome)
}

// helperOutcome is what the child reports: what Scan made of the file and
// what it cost.
type helperOutcome struct {
	Err        string         `json:"err"` // fatal error, cut short
	Rows       int            `json:"rows"`
	Invalid    int            `json:"invalid"`
	Codes      map[string]int `json:"codes"`        // problem code -> count
	Messages   []string       `json:"messages"`     // one per code, cut short
	LongestMsg int            `json:"longest_msg"`  // bytes, of any problem message or the error
	MaxValues  int            `json:"max_values"`   // most Values any row kept
	MaxValue   int            `json:"max_value"`    // longest single value any row kept
	PeakRSS    uint64         `json:"peak_rss"`     // bytes
	Seconds    float64        `json:"seconds"`      // reading and checking
	RowNumbers []int          `json:"row_numbers"`  // first rows' numbers
	LastRow    int            `json:"last_row"`     // number of the last row
	HeaderCols int            `json:"header_cols"`  // columns the reader's header kept
	HeaderErr  bool           `json:"header_error"` // the fatal error came from opening
}

// repeatReader yields n bytes of pattern, repeated, without holding them.
type repeatReader struct {
	pattern []byte
	n       int64
	off     int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	w := 0
	for w < len(p) {
		c := copy(p[w:], r.pattern[r.off:])
		w += c
		r.off = (r.off + c) % len(r.pattern)
	}
	r.n -= int64(w)
	return w, nil
}

// stream joins literal text and generated parts into one reader.
func stream(parts ...any) io.Reader {
	rs := make([]io.Reader, len(parts))
	for i, p := range parts {
		switch p := p.(type) {
		case string:
			rs[i] = strings.NewReader(p)
		case io.Reader:
			rs[i] = p
		default:
			panic(fmt.Sprintf("stream: part %T", p))
		}
	}
	return io.MultiReader(rs...)
}

// repeat is n bytes of s over and over.
func repeat(s string, n int64) io.Reader { return &repeatReader{pattern: []byte(s), n: n} }

// Two good rows, for the text around a hostile part: they must still be
// read, and numbered as an editor would.
const (
	goodEID1 = "89049032123451234512345678901235"
	goodRow  = goodEID1 + ",esim,IOTA_EU,AG1,en\n"
)

// quotedLine is one line of a long quoted cell: delimiters, doubled quotes
// and a line end, all inside the quotes.
const quotedLine = "abc,efg\"\"i;klmnopqrstuvwxyz0123456789\tabcdefghijklmnopqrstuvwxyz\r\n"

// hostileCases are the generated manifests; scale divides their sizes, for
// the race detector's slower runs.
func hostileCases(scale int64) []hostileCase {
	header := "eid,provider,cmp,euicc_agreement_id,locale_id,note\n"
	return []hostileCase{
		{
			name: "cell500MB",
			src: func() io.Reader {
				return stream(header, goodEID1+",esim,IOTA_EU,AG1,en,", repeat("abcdefgh", 500<<20/scale), "\n",
					"8904903212345123451234567890129,esim,IOTA_EU,AG1,en,ok\n")
			},
			check: func(t *testing.T, o helperOutcome) {
				wantNoFatal(t, o)
				wantCode(t, o, CodeCellTooLong, 1)
				if o.Rows != 2 || o.LastRow != 3 {
					t.Errorf("rows %d, last row %d; want 2 rows, the last row 3", o.Rows, o.LastRow)
				}
				if o.MaxValue > csvMaxCellBytes {
					t.Errorf("a row kept a %d-byte value", o.MaxValue)
				}
			},
		},
		{
			// A quoted cell that spans a million lines: the rows after it
			// must keep their numbers.
			name: "quotedCell500MB",
			src: func() io.Reader {
				return stream(header, goodEID1+",esim,IOTA_EU,AG1,en,\"", repeat(quotedLine, 500<<20/scale), "\"\n",
					"8904903212345123451234567890129,esim,IOTA_EU,AG1,en,ok\n")
			},
			check: func(t *testing.T, o helperOutcome) {
				wantNoFatal(t, o)
				wantCode(t, o, CodeCellTooLong, 1)
				lines := 500 << 20 / scale / int64(len(quotedLine))
				if o.Rows != 2 || o.LastRow != int(3+lines) {
					t.Errorf("rows %d, last row %d; want 2 rows, the last row %d", o.Rows, o.LastRow, 3+lines)
				}
			},
		},
		{
			name: "unclosedQuote500MB",
			src: func() io.Reader {
				return stream(header, goodEID1+",esim,IOTA_EU,AG1,en,\"", repeat("x,y\n", 500<<20/scale))
			},
			check: func(t *testing.T, o helperOutcome) {
				if !strings.Contains(o.Err, "never closed") || !strings.Contains(o.Err, "line 2") {
					t.Errorf("error %q; want one saying the quote opened on line 2 is never closed", o.Err)
				}
			},
		},
		{
			name: "header1Mcolumns",
			src: func() io.Reader {
				return stream(strings.TrimSuffix(header, "\n"), repeat(",column", 1_000_000/scale*7), "\n", goodRow)
			},
			check: func(t *testing.T, o helperOutcome) {
				if !o.HeaderErr || !strings.Contains(o.Err, "1,024") || !strings.Contains(o.Err, groupDigits(6+1_000_000/scale)) {
					t.Errorf("error %q; want the header refused, naming its column count and the limit", o.Err)
				}
				if o.LongestMsg > 1000 {
					t.Errorf("a %d-byte error message", o.LongestMsg)
				}
			},
		},
		{
			name: "row1Mcells",
			src: func() io.Reader {
				return stream(header, goodEID1+",esim,IOTA_EU,AG1,en", repeat(",", 1_000_000/scale), "\n", goodRow)
			},
			check: func(t *testing.T, o helperOutcome) {
				wantNoFatal(t, o)
				wantCode(t, o, CodeFieldCount, 2) // the good row lacks the note
				if !strings.Contains(o.Messages[0], fmt.Sprint(5+1_000_000/scale)) {
					t.Errorf("field_count message %q does not name the row's field count", o.Messages[0])
				}
				if o.MaxValues > csvMaxColumns {
					t.Errorf("a row kept %d values", o.MaxValues)
				}
				if o.LastRow != 3 {
					t.Errorf("last row %d, want 3", o.LastRow)
				}
			},
		},
		{
			// 1,000 columns the validator does not know, and none it needs:
			// every message that lists the headers must stay short.
			name: "header1000unknown",
			src: func() io.Reader {
				return stream("c", repeat(",c", 2*999), "\n", "x\n")
			},
			check: func(t *testing.T, o helperOutcome) {
				wantNoFatal(t, o)
				if o.LongestMsg > 1000 {
					t.Errorf("a %d-byte problem message", o.LongestMsg)
				}
			},
		},
	}
}

func wantNoFatal(t *testing.T, o helperOutcome) {
	t.Helper()
	if o.Err != "" {
		t.Errorf("fatal error %q", o.Err)
	}
}

func wantCode(t *testing.T, o helperOutcome, code string, n int) {
	t.Helper()
	if o.Codes[code] != n {
		t.Errorf("%d %s problems, want %d (all: %v)", o.Codes[code], code, n, o.Codes)
	}
}

// TestCSVHostileBounded reads each hostile manifest in a child process
// with a deadline and checks its peak resident set and what it reported.
func TestCSVHostileBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("reads several 500 MB manifests")
	}
	if os.Getenv(helperEnv) != "" {
		t.Skip("in the child")
	}
	for _, tc := range hostileCases(hostileScale) {
		t.Run(tc.name, func(t *testing.T) {
			o := runHelper(t, tc.name)
			t.Logf("%s: peak RSS %.1f MiB, %.2f s, rows %d, codes %v, longest message %d bytes, err %.200q",
				tc.name, float64(o.PeakRSS)/(1<<20), o.Seconds, o.Rows, o.Codes, o.LongestMsg, o.Err)
			if o.PeakRSS > peakLimit {
				t.Errorf("peak RSS %d MiB, limit %d MiB", o.PeakRSS>>20, peakLimit>>20)
			}
			if tc.check != nil {
				tc.check(t, o)
			}
		})
	}
}

// runHelper runs TestHelperCSV on one case in a child process.
func runHelper(t *testing.T, name string) helperOutcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperCSV$", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"="+name)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if ctx.Err() != nil {
		t.Fatalf("%s: no answer within the deadline", name)
	}
	if err != nil {
		t.Fatalf("%s: child failed: %v\n%s%s", name, err, out, stderr.Bytes())
	}
	line := out
	if i := bytes.Index(out, []byte("OUTCOME ")); i >= 0 {
		line = out[i+len("OUTCOME "):]
		if j := bytes.IndexByte(line, '\n'); j >= 0 {
			line = line[:j]
		}
	} else {
		t.Fatalf("%s: child said nothing:\n%s", name, out)
	}
	var o helperOutcome
	if err := json.Unmarshal(line, &o); err != nil {
		t.Fatalf("%s: %v in %q", name, err, line)
	}
	return o
}

// TestHelperCSV is the child's side: it reads the case named in the
// environment and prints what it saw. It does nothing in a normal run.
func TestHelperCSV(t *testing.T) {
	name := os.Getenv(helperEnv)
	if name == "" {
		t.Skip("runs only as TestCSVHostileBounded's child")
	}
	debug.SetMemoryLimit(MemoryBudget) // as simbulk itself runs
	var tc *hostileCase
	for _, c := range hostileCases(hostileScale) {
		if c.name == name {
			tc = &c
		}
	}
	if tc == nil {
		t.Fatalf("no case %q", name)
	}
	o := helperOutcome{Codes: map[string]int{}}
	start := time.Now()
	readHostile(tc.src(), &o)
	o.Seconds = time.Since(start).Seconds()
	o.PeakRSS = peakmem.RSS()
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("OUTCOME %s\n", b)
}

func readHostile(src io.Reader, o *helperOutcome) {
	r, err := NewCSVReader(src)
	if err != nil {
		o.Err, o.HeaderErr, o.LongestMsg = cut(err.Error()), true, len(err.Error())
		return
	}
	defer r.Close()
	o.HeaderCols = len(r.Header().Names)
	seen := map[string]bool{}
	sum, head, err := Scan(r, ValidateOptions{}, func(row Row, problems []Problem) error {
		if len(o.RowNumbers) < 5 {
			o.RowNumbers = append(o.RowNumbers, row.Number)
		}
		o.LastRow = row.Number
		o.MaxValues = max(o.MaxValues, len(row.Values))
		for _, v := range row.Values {
			o.MaxValue = max(o.MaxValue, len(v))
		}
		for _, p := range problems {
			o.count(p, seen)
		}
		return nil
	})
	for _, p := range head {
		o.count(p, seen)
	}
	o.Rows, o.Invalid = sum.Rows, sum.Invalid
	if err != nil {
		o.Err = cut(err.Error())
		o.LongestMsg = max(o.LongestMsg, len(err.Error()))
	}
}

func (o *helperOutcome) count(p Problem, seen map[string]bool) {
	o.Codes[p.Code]++
	o.LongestMsg = max(o.LongestMsg, len(p.Message))
	if !seen[p.Code] {
		seen[p.Code] = true
		o.Messages = append(o.Messages, cut(p.Message))
	}
}

func cut(s string) string {
	if len(s) > 500 {
		return s[:500] + "…"
	}
	return s
}

// A line end that is itself the first byte past the cell limit is dropped
// with the rest of the cell, and the rows after it keep the numbers an
// editor shows (the cut once forgot to count it: the row on line 4 came
// out as row 3).
func TestCutAtLineEndKeepsRowNumbers(t *testing.T) {
	// The quoted cell's 16 bytes fill the limit (a doubled quote counts
	// two), so the line end inside it is the 17th.
	data := "EID\n\"000\"\"000\"\"000\"\"0\n\"\n8904\n"
	for _, noShortcuts := range []bool{false, true} {
		read, end := readAllCSV([]byte(data), csvLimits{cellBytes: 16, columns: 8, noShortcuts: noShortcuts})
		if end != "" {
			t.Fatal(end)
		}
		var rows []int
		var cut int
		for _, x := range read[1:] { // after the header
			rec := x.(Record)
			rows = append(rows, rec.Row)
			cut += len(rec.Problems)
		}
		if fmt.Sprint(rows) != "[2 4]" || cut != 1 {
			t.Errorf("noShortcuts %v: rows %v with %d cut cells, want rows [2 4], the first cut", noShortcuts, rows, cut)
		}
	}
}
