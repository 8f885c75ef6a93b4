package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/simbulk/simbulk/ingest"
	"github.com/simbulk/simbulk/providers/asavie"
	"github.com/simbulk/simbulk/providers/iotconnect"
	"github.com/simbulk/simbulk/providers/thingspace"
)

const samplesDir = "../../samples"

// validateReport is the --json output.
type validateReport struct {
	Rows     int              `json:"rows"`
	Valid    int              `json:"valid"`
	Invalid  int              `json:"invalid"`
	Problems []ingest.Problem `json:"problems"`
}

// validateJSON runs `simbulk validate --json args...` in-process.
func validateJSON(t *testing.T, args ...string) (int, validateReport) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"validate", "--json"}, args...), nil, &stdout, &stderr)
	var rep validateReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("validate %v: exit %d, output is not JSON: %v\nstdout:\n%s\nstderr:\n%s", args, code, err, &stdout, &stderr)
	}
	return code, rep
}

func TestValidSamplesAreClean(t *testing.T) {
	for _, tc := range []struct {
		file     string
		provider string
		rows     int
	}{
		{"mixed.csv", "", 30},
		{"mixed.xlsx", "", 30},
		{"iotconnect.csv", iotconnect.Name, 10},
		{"iotconnect.xlsx", iotconnect.Name, 10},
		{"asavie.csv", asavie.Name, 10},
		{"asavie.xlsx", asavie.Name, 10},
		{"thingspace.csv", thingspace.Name, 10},
		{"thingspace.xlsx", thingspace.Name, 10},
	} {
		t.Run(tc.file, func(t *testing.T) {
			args := []string{filepath.Join(samplesDir, tc.file)}
			if tc.provider != "" {
				args = append(args, "--provider", tc.provider)
			}
			code, rep := validateJSON(t, args...)
			if code != exitOK || rep.Rows != tc.rows || rep.Valid != tc.rows || len(rep.Problems) != 0 {
				t.Errorf("exit %d, %d rows, %d valid, want exit 0 and %d valid rows; problems: %v",
					code, rep.Rows, rep.Valid, tc.rows, rep.Problems)
			}
		})
	}
}

// brokenSamples says where each problem code is shown in samples/. Each
// entry is one problem the file must report; together they must cover
// every problem code ingest defines (see TestBrokenSamplesShowEveryCode).
var brokenSamples = []struct {
	file   string
	args   []string
	row    int
	column string
	code   string
}{
	{"broken-missing-column.csv", []string{"--provider", "thingspace"}, 1, ingest.ColEID, ingest.CodeMissingColumn},
	{"broken-missing-column.csv", []string{"--provider", "thingspace"}, 2, ingest.ColEID, ingest.CodeMissingValue},
	{"broken-missing-column.csv", []string{"--provider", "thingspace"}, 3, ingest.ColEID, ingest.CodeMissingValue},
	{"broken-missing-column.csv", []string{"--provider", "thingspace"}, 4, ingest.ColEID, ingest.CodeMissingValue},

	// Rows 2-4 of broken.csv are valid, for comparison.
	{"broken.csv", nil, 5, ingest.ColEID, ingest.CodeMissingValue},
	{"broken.csv", nil, 6, ingest.ColEID, ingest.CodeBadFormat},
	{"broken.csv", nil, 7, ingest.ColEID, ingest.CodeBadChecksum},
	{"broken.csv", nil, 8, ingest.ColICCID, ingest.CodeExcelDamage},
	{"broken.csv", nil, 9, ingest.ColIMEI, ingest.CodeExcelDamage},
	{"broken.csv", nil, 10, ingest.ColICCID, ingest.CodeExcelDamage},
	{"broken.csv", nil, 11, ingest.ColCLI, ingest.CodeDuplicate},
	{"broken.csv", nil, 12, ingest.ColProvider, ingest.CodeUnknownProvider},
	{"broken.csv", nil, 13, ingest.ColDescription, ingest.CodeBadEncoding},
	{"broken.csv", nil, 14, ingest.ColCMP, ingest.CodeBadValue},
	{"broken.csv", nil, 15, "", ingest.CodeFieldCount},
	{"broken.csv", nil, 16, ingest.ColCLI, ingest.CodeBadFormat},
	{"broken.csv", nil, 17, ingest.ColICCID, ingest.CodeBadChecksum},
	{"broken.csv", nil, 18, ingest.ColAccountName, ingest.CodeMissingValue},
	{"broken.csv", nil, 19, ingest.ColState, ingest.CodeBadFormat},
	{"broken.csv", nil, 20, ingest.ColProvider, ingest.CodeMissingValue},

	{"broken.xlsx", nil, 3, ingest.ColEID, ingest.CodeExcelDamage},
	{"broken.xlsx", nil, 4, ingest.ColICCID, ingest.CodeExcelDamage},
	{"broken.xlsx", nil, 5, ingest.ColIMEI, ingest.CodeExcelDamage}, // a warning
	{"broken.xlsx", nil, 6, ingest.ColCLI, ingest.CodeExcelDamage},  // a warning
	{"broken.xlsx", nil, 7, ingest.ColICCID, ingest.CodeExcelDamage},
}

// notInSamples are codes no manifest row can show, and why.
var notInSamples = map[string]string{
	ingest.CodeUnreadable:  "a manifest that cannot be read at all is a fatal error (exit 1), tested in testdata/script/errors.txtar",
	ingest.CodeCellTooLong: "needs a cell over 64 KiB, which a sample meant to be read should not hold; generated in ingest's limits tests",
	ingest.CodeControlChar: "a control character in a committed sample would be invisible in an editor; generated in ingest's control tests",
}

// TestBrokenSamples checks that each broken sample reports exactly the
// mistakes it was made with, on the rows and columns where they are.
func TestBrokenSamples(t *testing.T) {
	type key struct {
		row          int
		column, code string
	}
	files := map[string][]string{}
	want := map[string][]key{}
	for _, b := range brokenSamples {
		files[b.file] = b.args
		want[b.file] = append(want[b.file], key{b.row, b.column, b.code})
	}
	for file, args := range files {
		t.Run(file, func(t *testing.T) {
			code, rep := validateJSON(t, append([]string{filepath.Join(samplesDir, file)}, args...)...)
			if code != exitRowsFailed {
				t.Errorf("exit %d, want %d", code, exitRowsFailed)
			}
			var got []key
			for _, p := range rep.Problems {
				got = append(got, key{p.Row, p.Column, p.Code})
			}
			sortKeys := func(ks []key) {
				slices.SortFunc(ks, func(a, b key) int {
					return cmp.Or(cmp.Compare(a.row, b.row), strings.Compare(a.column, b.column), strings.Compare(a.code, b.code))
				})
			}
			sortKeys(got)
			sortKeys(want[file])
			if !slices.Equal(got, want[file]) {
				t.Errorf("problems (row, column, code):\n got %v\nwant %v", got, want[file])
			}
		})
	}
}

// TestBrokenSamplesShowEveryCode makes adding a problem code without a
// sample that shows it (or a reason in notInSamples) fail, so that the
// samples stay a tour of every mistake simbulk catches.
func TestBrokenSamplesShowEveryCode(t *testing.T) {
	shown := map[string]bool{}
	for _, b := range brokenSamples {
		shown[b.code] = true
	}
	for _, code := range problemCodes(t) {
		if !shown[code] && notInSamples[code] == "" {
			t.Errorf("problem code %q appears in no broken sample; add a row to samples/gen/broken.go and to brokenSamples", code)
		}
	}
}

// TestREADMEListsEveryCode keeps the README's problem-code table, which
// scripts rely on, complete.
func TestREADMEListsEveryCode(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, code := range problemCodes(t) {
		if !bytes.Contains(readme, []byte("| `"+code+"` |")) {
			t.Errorf("README.md has no row for problem code %q", code)
		}
	}
}

// problemCodes returns the value of every Code* string constant in the
// ingest package, read from its source so that new codes are found
// without anyone listing them here.
func problemCodes(t *testing.T) []string {
	t.Helper()
	paths, err := filepath.Glob("../../ingest/*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var codes []string
	for _, path := range paths {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !strings.HasPrefix(name.Name, "Code") || !name.IsExported() || i >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, err := strconv.Unquote(lit.Value)
						if err != nil {
							t.Fatal(err)
						}
						codes = append(codes, v)
					}
				}
			}
		}
	}
	if len(codes) < 8 {
		t.Fatalf("found only %d problem codes in ingest: %v", len(codes), codes)
	}
	slices.Sort(codes)
	return codes
}
