package reports

import (
	"archive/zip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/pipeline/sqlite"
)

// controls is one character of every class clean replaces, and bytes
// that are not UTF-8.
var controls = []string{"\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1b", "\x1f", "\x7f", "\u0080", "\u0085", "\u009b", "\u009f", "\ufffe", "\xff", "\xc3"}

// rawControl returns the first character in b that no report may hold
// raw, and whether there is one. Tab, LF and CR are allowed.
func rawControl(b []byte) (string, bool) {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		switch {
		case r == utf8.RuneError && n == 1,
			r < 0x20 && r != '\t' && r != '\n' && r != '\r',
			r >= 0x7f && r <= 0x9f,
			r == 0xfffe || r == 0xffff:
			return string(b[:n]), true
		}
		b = b[n:]
	}
	return "", false
}

func TestClean(t *testing.T) {
	for _, c := range controls {
		if got := clean("a" + c + "b"); got != "a\ufffdb" {
			t.Errorf("clean(%q) = %q", "a"+c+"b", got)
		}
	}
	for _, s := range []string{"", "plain", "tab\tlf\ncr\r", "ünïcødé €", "\ufffd", "+447700900123"} {
		if got := clean(s); got != s {
			t.Errorf("clean(%q) = %q, want it unchanged", s, got)
		}
	}
	// Cleaned first, then neutralised: the formula guard sees what is
	// written.
	if got := safeCell("=\x00cmd"); got != "'=\ufffdcmd" {
		t.Errorf("safeCell = %q", got)
	}
	if got := safeCell("\x00=cmd"); got != "\ufffd=cmd" {
		t.Errorf("safeCell = %q", got)
	}
}

// TestControlCharacters puts every class of control character in header
// names, cells, result values, error codes and messages and drift
// findings, writes every report, and checks that none is in any file raw,
// that the workbook opens again and that formula neutralisation holds.
func TestControlCharacters(t *testing.T) {
	ctx := context.Background()
	cp, err := sqlite.Open(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	all := strings.Join(controls, "")
	header := []string{"provider", "EID", "no" + all + "tes", "=x" + all}
	run, err := cp.CreateRun(ctx, "fp", "m\x1b[31m.csv", header)
	if err != nil {
		t.Fatal(err)
	}
	var rows []pipeline.RowRecord
	for i, c := range controls {
		cells := []string{"iotconnect", eid(i), "a" + c + "b", "=" + c + "cmd", c + "=x" + c}
		r := pipeline.RowRecord{RunID: run.ID, Row: i + 2, Provider: "iotconnect", EID: eid(i), Cells: cells, Attempts: 1}
		switch i % 3 {
		case 0:
			r.State, r.Result = pipeline.Succeeded, map[string]string{"imsi": "2341" + c, "st" + c + "ate": c}
		case 1:
			r.State, r.ErrorCode, r.ErrorMessage = pipeline.Failed, "code"+c, "message "+c+all
		default:
			r.State, r.ErrorCode, r.ErrorMessage, r.Provider = pipeline.Invalid, "bad"+c, "-"+c, "prov"+c
		}
		rows = append(rows, r)
	}
	if err := cp.AddRows(ctx, rows); err != nil {
		t.Fatal(err)
	}
	drift := &Drift{Checked: 1, Items: []DriftItem{{Row: 2, Provider: "iot" + all, ID: "=" + all, Kind: "state", Expected: "a\x00", Actual: "\x1b[2J"}}}
	files, err := WriteWith(ctx, cp, run.ID, t.TempDir(), Options{Drift: drift})
	if err != nil {
		t.Fatal(err)
	}
	if drift.Items[0].Expected != "a\x00" {
		t.Error("WriteWith changed the caller's Drift")
	}
	if len(files.Paths) != 8 {
		t.Errorf("wrote %d files, want 8", len(files.Paths))
	}
	for _, p := range files.Paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(p, ".xlsx") {
			checkZipParts(t, p)
			continue
		}
		if c, ok := rawControl(b); ok {
			t.Errorf("%s holds %q raw", filepath.Base(p), c)
		}
		// encoding/json would write \u0000 for a NUL: valid, but the value
		// is to be the same replacement in every file.
		if strings.HasSuffix(p, ".json") && strings.Contains(string(b), `\u00`) {
			t.Errorf("%s holds an escaped control character", filepath.Base(p))
		}
		if !strings.Contains(string(b), "\ufffd") {
			t.Errorf("%s shows no replacement character", filepath.Base(p))
		}
	}

	recs := readCSV(t, filepath.Join(files.Dir, SucceededCSV))
	if got, want := recs[0][3], "'=x"+strings.Repeat("\ufffd", len(controls)); got != want {
		t.Errorf("header %q, want %q", got, want)
	}
	if got := recs[1][3]; got != "'=\ufffdcmd" {
		t.Errorf("cell %q, want it cleaned and neutralised", got)
	}

	x := openXLSX(t, filepath.Join(files.Dir, ReportXLSX))
	checkWorkbookXML(t, filepath.Join(files.Dir, ReportXLSX))
	for _, name := range x.GetSheetList() {
		rows, err := x.GetRows(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, r := range rows {
			for _, v := range r {
				if c, ok := rawControl([]byte(v)); ok {
					t.Errorf("%s: cell %q holds %q", name, v, c)
				}
				if v != "" && strings.ContainsRune("=+-@", rune(v[0])) {
					t.Errorf("%s: live formula text %q", name, v)
				}
			}
		}
	}
	sheet, _ := x.GetRows(SheetFailed)
	if got := sheet[1][3]; got != "'=\ufffdcmd" {
		t.Errorf("Failed sheet cell %q", got)
	}
}

// checkZipParts checks every part of a workbook for raw control
// characters: excelize escapes some of them, but XML 1.0 cannot carry
// them even escaped.
func checkZipParts(t *testing.T, path string) {
	t.Helper()
	z, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	for _, zf := range z.File {
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if c, ok := rawControl(b); ok {
			t.Errorf("%s: %s holds %q", filepath.Base(path), zf.Name, c)
		}
		if strings.Contains(string(b), "&#x0;") || strings.Contains(string(b), "_x0000_") {
			t.Errorf("%s: %s holds an escaped NUL", filepath.Base(path), zf.Name)
		}
	}
}
