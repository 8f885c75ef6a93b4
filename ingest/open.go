package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"unicode"
)

// Manifest-level failures. Open and Next wrap them with the file name and
// where in the file it happened; callers test for them with errors.Is.
var (
	// ErrNoHeader: the file or sheet is empty or holds only blank rows.
	ErrNoHeader = errors.New("no header row: the manifest is empty or has only blank rows")
	// ErrNotManifest: the file is neither CSV/text nor an XLSX workbook.
	ErrNotManifest = errors.New("not a CSV or XLSX manifest")
	// ErrWorkbookTooLarge: an XLSX file unpacks to more than simbulk is
	// willing to hold or spool (a zip bomb, or a workbook far beyond a
	// manifest's size).
	ErrWorkbookTooLarge = errors.New("workbook unpacks to more than simbulk accepts")
)

// RowError is a fault confined to one row that the reader can step past,
// such as a stray quote in a CSV row. Next returns it together with the
// row's Record (Values hold only the fields read before the fault, for
// reports); calling Next again continues with the next row. A caller that
// treats every error from Next as fatal stays safe: a half-read row is never
// handed out as if it were whole.
type RowError struct {
	Row     int    // as Record.Row
	Column  string // header of the field where the fault is, "" if unknown
	Message string // what is wrong and how to fix it, for a person
	Err     error  // the underlying parse error
}

func (e *RowError) Error() string {
	if e.Column != "" {
		return fmt.Sprintf("row %d, column %s: %s", e.Row, e.Column, e.Message)
	}
	return fmt.Sprintf("row %d: %s", e.Row, e.Message)
}

func (e *RowError) Unwrap() error { return e.Err }

// Problem turns the fault into the row's problem (bad_format), so it is
// reported like any other bad cell and the row is marked invalid.
func (e *RowError) Problem() Problem {
	return Problem{
		Row:      e.Row,
		Column:   e.Column,
		Code:     CodeBadFormat,
		Message:  e.Message,
		Severity: SeverityError,
	}
}

// zipMagic starts every XLSX (a zip archive); oleMagic starts legacy .xls
// files and password-protected workbooks (an OLE compound file).
var (
	zipMagic = []byte("PK\x03\x04")
	oleMagic = []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}
)

// Open opens a manifest for streaming. The format is chosen by content, not
// by extension, because manifests are often renamed or mislabelled (a CSV
// saved as "devices.xlsx", an XLSX mailed as "devices.csv"). The returned
// Reader has already read the header; the caller must Close it.
func Open(path string, opts OpenOptions) (Reader, error) {
	return OpenContext(context.Background(), path, opts)
}

// OpenContext is Open under ctx. For an XLSX workbook ctx bounds the open
// (reading the shared strings, skipping to the header) and every later
// Next, which return an error wrapping ctx.Err() within milliseconds of
// its cancellation. For CSV it is checked before the file is opened.
func OpenContext(ctx context.Context, path string, opts OpenOptions) (Reader, error) {
	r, err := open(ctx, path, opts, defaultXLSXLimits())
	if err != nil {
		return nil, fmt.Errorf("open manifest %s: %w", path, err)
	}
	return r, nil
}

func open(ctx context.Context, path string, opts OpenOptions, limits xlsxLimits) (Reader, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, unwrapPathError(err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, unwrapPathError(err)
	}
	if fi.IsDir() {
		f.Close()
		return nil, errors.New("is a directory, not a manifest file")
	}
	magic := make([]byte, len(oleMagic))
	n, err := f.ReadAt(magic, 0)
	if err != nil && err != io.EOF {
		f.Close()
		return nil, unwrapPathError(err)
	}
	magic = magic[:n]
	switch {
	case bytes.HasPrefix(magic, zipMagic):
		f.Close() // the XLSX reader opens the file by path itself
		return newXLSXReader(ctx, path, opts, limits)
	case bytes.Equal(magic, oleMagic):
		f.Close()
		return nil, fmt.Errorf("%w: this is a legacy Excel .xls file or a password-protected workbook; save it as .xlsx (without a password) or as CSV UTF-8", ErrNotManifest)
	}
	if opts.Sheet != "" {
		f.Close()
		return nil, fmt.Errorf("sheet %q was asked for, but the file is CSV/text, which has no sheets", opts.Sheet)
	}
	r, err := newCSVReader(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.closer = f
	if fi.Mode().IsRegular() {
		r.size = fi.Size()
	}
	return r, nil
}

// unwrapPathError drops the *fs.PathError layer, whose message repeats the
// path that Open's own wrapping already names.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// cleanHeaderCell trims what editors leave around header names: spaces,
// non-breaking spaces and stray byte-order marks (a BOM written twice, or
// one a tool copied into the first cell).
func cleanHeaderCell(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return unicode.IsSpace(r) || r == '\ufeff' })
}

// isBlankRow reports whether a row holds nothing but whitespace: an empty
// line, or a line of bare delimiters as Excel writes for empty rows
// (",,,,").
func isBlankRow(fields []string) bool {
	for _, f := range fields {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// headerColumn names the field at position i for messages: the header as
// the user wrote it, or its 1-based position when the row is wider than the
// header.
func headerColumn(h Header, i int) string {
	if i >= 0 && i < len(h.Names) && h.Names[i] != "" {
		return h.Names[i]
	}
	return fmt.Sprintf("#%d", i+1)
}
