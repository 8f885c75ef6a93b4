package ingest

import (
	"archive/zip"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/net/html/charset"
)

// xlsxReader streams one sheet of an XLSX manifest.
//
// It reads the zip parts itself rather than through excelize, whose
// reading holds a whole shared-string table, a whole cell and sometimes a
// whole token in memory, and spools large parts to temp files: a 300 KB
// workbook could claim gigabytes. Here the shared-string table is read
// once into one arena (xlsx_sst.go) and the sheet is a stream of XML
// tokens (sheetRows), each bounded by partReader, with the limits of
// xlsx_limits.go. No temp files are written.
//
// Values are the text stored in the file: a number is "8.9441234567890117E+19"
// as Excel wrote it, not a display format, and Record.Numeric says which
// cells were numbers, so the Excel-damage checks (excel.go) can tell an
// identifier typed into a number cell from the same digits stored as text.
type xlsxReader struct {
	name   string // file name for messages
	sheet  string
	sheets []string // every sheet of the workbook, in workbook order
	file   *os.File
	part   io.ReadCloser // the worksheet part
	rows   *sheetRows
	header Header
	err    error // sticky: fatal error or io.EOF
	closed bool
}

// NewXLSXReader opens the XLSX workbook at path and reads the header of the
// sheet opts.Sheet (default: the first sheet in workbook order). The header
// is the first non-empty row; Record.Row is the sheet's own row number, so
// it matches what the spreadsheet shows. The caller must Close the reader.
func NewXLSXReader(path string, opts OpenOptions) (Reader, error) {
	return newXLSXReader(context.Background(), path, opts, defaultXLSXLimits())
}

// newXLSXReader opens the workbook. ctx bounds the open and every later
// Next: the Reader interface has no context of its own, so the reader
// keeps this one.
func newXLSXReader(ctx context.Context, name string, opts OpenOptions, limits xlsxLimits) (_ *xlsxReader, err error) {
	r := &xlsxReader{name: name}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	if r.file, err = os.Open(name); err != nil {
		return nil, unwrapPathError(err)
	}
	fi, err := r.file.Stat()
	if err != nil {
		return nil, unwrapPathError(err)
	}
	zr, err := zip.NewReader(r.file, fi.Size())
	if err != nil {
		return nil, fmt.Errorf("%w: the file starts like a zip archive but cannot be read as one (%v)", ErrNotManifest, err)
	}
	if findPart(zr, "[Content_Types].xml") == nil {
		return nil, fmt.Errorf("%w: a zip archive, but not an XLSX workbook; save the spreadsheet as .xlsx or as CSV UTF-8", ErrNotManifest)
	}
	wb, err := readWorkbook(zr, limits)
	if err != nil {
		return nil, err
	}
	r.sheets = wb.sheetNames()
	if r.sheet, err = pickSheet(r.sheets, opts.Sheet); err != nil {
		return nil, err
	}
	sheetPart, err := wb.worksheetPart(zr, r.sheet)
	if err != nil {
		return nil, fmt.Errorf("sheet %q: %w", r.sheet, err)
	}
	if sheetPart.UncompressedSize64 > uint64(limits.sheetBytes) {
		return nil, fmt.Errorf("sheet %q: %w", r.sheet, declaredTooLarge(sheetPart, limits))
	}
	var sst *sharedStrings
	if f := findPart(zr, wb.sharedStringsPart()); f != nil {
		if sst, err = readSharedStrings(ctx, f, limits); err != nil {
			return nil, err
		}
	}
	if r.part, err = sheetPart.Open(); err != nil {
		return nil, fmt.Errorf("sheet %q: the workbook file is damaged (%w); open the file in Excel and save it again", r.sheet, err)
	}
	r.rows = newSheetRows(ctx, r.part, sst, limits)
	return r, r.readHeader()
}

// readHeader skips blank rows to the first one with a value. A fault in
// it is fatal: without a header there is nothing to check rows against.
func (r *xlsxReader) readHeader() error {
	for {
		row, err := r.rows.next()
		if err == io.EOF {
			return fmt.Errorf("sheet %q: %w", r.sheet, ErrNoHeader)
		}
		if err != nil {
			return r.where(row, err)
		}
		if row.fault != nil {
			return r.where(row, row.fault)
		}
		if isBlankRow(row.values) {
			continue
		}
		names := make([]string, len(row.values))
		for i, c := range row.values {
			names[i] = cleanHeaderCell(c)
		}
		r.header = NewHeader(names)
		return nil
	}
}

// where prefixes err with the place in the sheet.
func (r *xlsxReader) where(row sheetRow, err error) error {
	at := fmt.Sprintf("sheet %q row %d", r.sheet, max(row.num, 1))
	switch {
	case row.between && row.num > 0:
		at = fmt.Sprintf("sheet %q after row %d", r.sheet, row.num)
	case row.between:
		at = fmt.Sprintf("sheet %q before its first row", r.sheet)
	}
	return describe(at, "worksheet", err)
}

// Sheet is the sheet being read; Sheets every sheet of the workbook, in
// workbook order (see SheetReader).
func (r *xlsxReader) Sheet() string    { return r.sheet }
func (r *xlsxReader) Sheets() []string { return r.sheets }

// pickSheet finds the requested sheet, exactly or else ignoring case (as
// Excel does: it does not allow two sheets differing only in case).
func pickSheet(sheets []string, want string) (string, error) {
	if len(sheets) == 0 {
		return "", errors.New("the workbook has no sheets")
	}
	if want == "" {
		return sheets[0], nil
	}
	for _, s := range sheets {
		if s == want {
			return s, nil
		}
	}
	for _, s := range sheets {
		if strings.EqualFold(s, want) {
			return s, nil
		}
	}
	return "", fmt.Errorf("sheet %q not found (sheets: %s)", want, strings.Join(sheets, ", "))
}

// Header returns the sheet's header row.
func (r *xlsxReader) Header() Header { return r.header }

// Next returns the next non-empty row of the sheet, or io.EOF. A row past
// a per-row limit (a cell over MaxCellBytes, a value beyond MaxColumns) comes
// back with a *RowError, as the CSV reader's damaged rows do.
func (r *xlsxReader) Next() (Record, error) {
	if r.err != nil {
		return Record{}, r.err
	}
	for {
		row, err := r.rows.next()
		if err == io.EOF {
			r.err = io.EOF
			return Record{}, io.EOF
		}
		if err != nil {
			r.err = fmt.Errorf("read manifest %s: %w", r.name, r.where(row, err))
			return Record{}, r.err
		}
		if row.fault != nil {
			rec := r.record(row)
			return rec, &RowError{Row: row.num, Column: headerColumn(r.header, row.faultCol), Message: row.fault.Error(), Err: row.fault}
		}
		if isBlankRow(row.values) {
			continue
		}
		return r.record(row), nil
	}
}

// record builds a Record like the CSV reader does. A sheet row has no
// field count of its own (trailing empty cells are not stored), so a row
// counts as header-wide unless it has values beyond the header's last
// column.
func (r *xlsxReader) record(row sheetRow) Record {
	width := max(len(row.values), len(r.header.Names))
	rec := Record{
		Row:        row.num,
		Values:     make([]string, width),
		Numeric:    make([]bool, width),
		FieldCount: width,
	}
	copy(rec.Values, row.values)
	for _, col := range row.numeric {
		if col < width {
			rec.Numeric[col] = true
		}
	}
	return rec
}

// Close releases the sheet part and the file. It is safe to call twice.
func (r *xlsxReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	if r.err == nil {
		r.err = errors.New("read manifest: reader is closed")
	}
	var errs []error
	if r.part != nil {
		errs = append(errs, r.part.Close())
	}
	if r.file != nil {
		errs = append(errs, r.file.Close())
	}
	return errors.Join(errs...)
}

// findPart looks a zip entry up as excelize does: backslashes count as
// slashes, and case is ignored when there is no exact match.
func findPart(zr *zip.Reader, name string) *zip.File {
	var folded *zip.File
	for _, f := range zr.File {
		n := strings.ReplaceAll(f.Name, `\`, "/")
		if n == name {
			return f
		}
		if folded == nil && strings.EqualFold(n, name) {
			folded = f
		}
	}
	return folded
}

// workbook is what the reader needs of xl/workbook.xml: the sheets in
// workbook order and the relationships that link them to their parts.
type workbook struct {
	path   string // the workbook part, "xl/workbook.xml"
	sheets []workbookSheet
	rels   []relationship
}

type workbookSheet struct{ name, relID string }

// readWorkbook reads the workbook part the way excelize does: the package
// relationships name it, it lists the sheets by relationship id, and its
// own relationships give each id a target relative to it.
func readWorkbook(zr *zip.Reader, limits xlsxLimits) (workbook, error) {
	wb := workbook{path: "xl/workbook.xml"}
	rootRels, err := readRels(zr, "_rels/.rels", limits)
	if err != nil {
		return wb, err
	}
	for _, rel := range rootRels {
		if strings.HasSuffix(rel.Type, "/officeDocument") {
			wb.path = strings.TrimPrefix(rel.Target, "/")
			break
		}
	}
	var doc struct {
		Sheets []struct {
			Name string     `xml:"name,attr"`
			Attr []xml.Attr `xml:",any,attr"`
		} `xml:"sheets>sheet"`
	}
	if err := readXMLPart(zr, wb.path, &doc, limits); err != nil {
		return wb, err
	}
	for _, s := range doc.Sheets {
		ws := workbookSheet{name: s.Name}
		for _, a := range s.Attr {
			if a.Name.Local == "id" && a.Name.Space != "" {
				ws.relID = a.Value
			}
		}
		wb.sheets = append(wb.sheets, ws)
	}
	dir, base := path.Split(wb.path)
	wb.rels, err = readRels(zr, dir+"_rels/"+base+".rels", limits)
	return wb, err
}

func (wb workbook) sheetNames() []string {
	names := make([]string, len(wb.sheets))
	for i, s := range wb.sheets {
		names[i] = s.name
	}
	return names
}

// worksheetPart resolves a sheet name to its XML part.
func (wb workbook) worksheetPart(zr *zip.Reader, sheet string) (*zip.File, error) {
	id := ""
	for _, s := range wb.sheets {
		if s.name == sheet && s.relID != "" {
			id = s.relID
		}
	}
	if id == "" {
		return nil, fmt.Errorf("%s does not link the sheet to a worksheet part", wb.path)
	}
	for _, rel := range wb.rels {
		if rel.ID != id {
			continue
		}
		name := wb.target(rel)
		if f := findPart(zr, name); f != nil {
			return f, nil
		}
		return nil, fmt.Errorf("the workbook has no %s", name)
	}
	return nil, fmt.Errorf("no worksheet part for relationship %s", id)
}

// sharedStringsPart names the shared-string table: as the workbook's
// relationships say, or where Excel puts it.
func (wb workbook) sharedStringsPart() string {
	for _, rel := range wb.rels {
		if strings.HasSuffix(rel.Type, "/sharedStrings") {
			return wb.target(rel)
		}
	}
	return "xl/sharedStrings.xml"
}

// target resolves a relationship target relative to the workbook part.
func (wb workbook) target(rel relationship) string {
	dir, _ := path.Split(wb.path)
	target := strings.ReplaceAll(rel.Target, `\`, "/")
	if strings.HasPrefix(target, "/") {
		return strings.TrimPrefix(path.Clean(target), "/")
	}
	return strings.TrimPrefix(path.Join(dir, target), "/")
}

type relationship struct {
	ID     string `xml:"Id,attr"`
	Type   string `xml:"Type,attr"`
	Target string `xml:"Target,attr"`
}

func readRels(zr *zip.Reader, name string, limits xlsxLimits) ([]relationship, error) {
	var rels struct {
		Rels []relationship `xml:"Relationship"`
	}
	if findPart(zr, name) == nil {
		return nil, nil
	}
	err := readXMLPart(zr, name, &rels, limits)
	return rels.Rels, err
}

// readXMLPart decodes a small part (workbook, relationships) whole; its
// declared size, which archive/zip holds the data to, is capped first.
func readXMLPart(zr *zip.Reader, name string, v any, limits xlsxLimits) error {
	f := findPart(zr, name)
	if f == nil {
		return fmt.Errorf("the workbook has no %s", name)
	}
	if f.UncompressedSize64 > uint64(limits.partBytes) {
		return &LimitError{
			Limit: "MaxWorkbookPartBytes", Max: limits.partBytes, Found: int64(min(f.UncompressedSize64, 1<<62)), Unit: "bytes",
			Where: "part " + f.Name, Of: " of XML", Advice: "open the file in Excel and save it again, or save the sheet as CSV UTF-8", tooLarge: true,
		}
	}
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer rc.Close()
	dec := xml.NewDecoder(rc)
	dec.CharsetReader = charset.NewReaderLabel
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func attr(attrs []xml.Attr, name string) string {
	for _, a := range attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// maxSheetColumns is the widest sheet a spreadsheet can have (XFD).
const maxSheetColumns = 16384

// columnOf returns the 1-based column of a cell reference ("C12" -> 3), or
// 0 when it is not one.
func columnOf(ref string) int {
	col := 0
	for i := 0; i < len(ref); i++ {
		c := ref[i]
		switch {
		case 'A' <= c && c <= 'Z':
			col = col*26 + int(c-'A') + 1
		case 'a' <= c && c <= 'z':
			col = col*26 + int(c-'a') + 1
		case '0' <= c && c <= '9' && i > 0:
			if col > maxSheetColumns {
				return 0
			}
			return col
		default:
			return 0
		}
		if col > maxSheetColumns {
			return 0
		}
	}
	return 0
}

// columnName is the inverse of columnOf's letters: 3 -> "C".
func columnName(col int) string {
	var b []byte
	for col > 0 {
		col--
		b = append([]byte{byte('A' + col%26)}, b...)
		col /= 26
	}
	return string(b)
}
