package ingest

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
)

// TestOpenFixtures reads files as Excel writes them, committed under
// testdata/readers.
func TestOpenFixtures(t *testing.T) {
	tests := []struct {
		file   string
		header []string
		want   []wantRec
	}{
		{
			"excel-unicode-text.txt",
			[]string{"EID", "ICCID", "Provider", "Description"},
			[]wantRec{
				{2, []string{"89049032123451234512345678901235", "8944123456789012345", "iotconnect", "Café tracker"}, 4, false},
				{4, []string{"89049032123451234512345678901236", "8944123456789012346", "iotconnect", "two\nlines"}, 4, false},
				{6, []string{"89049032123451234512345678901237", "8944123456789012347", "iotconnect", "last"}, 4, false},
			},
		},
		{
			"excel-european.csv",
			[]string{"ICCID", "MSISDN", "Provider", "Account"},
			[]wantRec{
				{2, []string{"8944123456789012345", "447700900123", "asavie", "ACME"}, 4, false},
				{4, []string{"8944123456789012346", "447700900124", "asavie", "ACME; Ltd"}, 4, false},
			},
		},
		{
			"excel-mac-cr.csv",
			[]string{"IMEI", "Note"},
			[]wantRec{
				{2, []string{"356938035643809", "Jos\uFFFD"}, 2, true},
				{3, []string{"356938035643810", "ok"}, 2, false},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			r, err := Open(filepath.Join("testdata", "readers", tt.file), OpenOptions{})
			must(t, err)
			defer r.Close()
			if !reflect.DeepEqual(r.Header().Names, tt.header) {
				t.Errorf("header = %q, want %q", r.Header().Names, tt.header)
			}
			recs, rowErrs, err := readAll(t, r)
			if err != nil || rowErrs != nil {
				t.Fatalf("read: %v %v", err, rowErrs)
			}
			if g := got(recs); !reflect.DeepEqual(g, tt.want) {
				t.Errorf("records:\n got %+v\nwant %+v", g, tt.want)
			}
		})
	}
}

// TestOpenByContent: the format follows the bytes, not the name.
func TestOpenByContent(t *testing.T) {
	dir := t.TempDir()
	f := excelize.NewFile()
	must(t, f.SetCellStr("Sheet1", "A1", "ICCID"))
	must(t, f.SetCellValue("Sheet1", "A2", 8944123456789012345.0))
	xlsxAsCSV := filepath.Join(dir, "devices.csv")
	must(t, f.SaveAs(filepath.Join(dir, "book.xlsx"))) // excelize insists on the extension
	must(t, f.Close())
	must(t, os.Rename(filepath.Join(dir, "book.xlsx"), xlsxAsCSV))
	csvAsXLSX := filepath.Join(dir, "devices.xlsx")
	must(t, os.WriteFile(csvAsXLSX, []byte("ICCID\n8944123456789012345\n"), 0o600))

	for path, numeric := range map[string]bool{xlsxAsCSV: true, csvAsXLSX: false} {
		r, err := Open(path, OpenOptions{})
		must(t, err)
		rec, err := r.Next()
		must(t, err)
		if rec.IsNumeric(r.Header(), ColICCID) != numeric {
			t.Errorf("%s: numeric = %v, want %v (read as the wrong format)", filepath.Base(path), !numeric, numeric)
		}
		must(t, r.Close())
		must(t, r.Close())
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "devices.csv")
	must(t, os.WriteFile(csvPath, []byte("EID\n1\n"), 0o600))
	empty := filepath.Join(dir, "empty.csv")
	must(t, os.WriteFile(empty, nil, 0o600))
	book := filepath.Join(dir, "devices.xlsx")
	f := excelize.NewFile()
	_, err := f.NewSheet("Data")
	must(t, err)
	must(t, f.SaveAs(book))
	must(t, f.Close())
	missing := filepath.Join(dir, "nope.csv")
	legacy := filepath.Join("testdata", "readers", "legacy.xls")

	tests := []struct {
		name    string
		path    string
		opts    OpenOptions
		wantErr string
		is      error
	}{
		{"missing file", missing, OpenOptions{}, "open manifest " + missing + ": no such file or directory", fs.ErrNotExist},
		{"directory", dir, OpenOptions{}, "open manifest " + dir + ": is a directory", nil},
		{"empty file", empty, OpenOptions{}, "open manifest " + empty + ": no header row", ErrNoHeader},
		{"legacy xls", legacy, OpenOptions{}, "open manifest " + legacy + ": not a CSV or XLSX manifest: this is a legacy Excel .xls file", ErrNotManifest},
		{"sheet for a CSV", csvPath, OpenOptions{Sheet: "Data"}, `open manifest ` + csvPath + `: sheet "Data" was asked for, but the file is CSV/text`, nil},
		{"unknown sheet", book, OpenOptions{Sheet: "Foo"}, `open manifest ` + book + `: sheet "Foo" not found (sheets: Sheet1, Data)`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Open(tt.path, tt.opts)
			if err == nil {
				r.Close()
				t.Fatal("no error")
			}
			if err.Error() != tt.wantErr && !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want %q", err, tt.wantErr)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
		})
	}
}

// TestOpenReadErrorsNameTheFile: a fatal error in the middle of a file
// says which file and where.
func TestOpenReadErrorsNameTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "devices.csv")
	must(t, os.WriteFile(path, []byte("EID,Note\n1,ok\n2,\"open\n3,x\n"), 0o600))
	r, err := Open(path, OpenOptions{})
	must(t, err)
	defer r.Close()
	_, _, err = readAll(t, r)
	if want := "read manifest " + path + ": line 3: a quoted field opened on this line is never closed"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error = %v, want %q", err, want)
	}
	if errors.Is(err, io.EOF) {
		t.Error("fatal error wraps io.EOF")
	}
}
