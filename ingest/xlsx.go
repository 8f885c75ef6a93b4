package ingest

import (
	"archive/zip"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/xuri/excelize/v2"
	"golang.org/x/net/html/charset"
)

// xlsxLimits bound what an XLSX manifest may unpack to. The sizes checked
// are those the zip directory declares; archive/zip refuses to inflate an
// entry past its declared size, so a lying header cannot get round them.
type xlsxLimits struct {
	// total is the sum of all parts, uncompressed (excelize's
	// UnzipSizeLimit). A 1,000,000-row sheet of 10 text columns is about
	// 750 MB as excelize's StreamWriter writes it (inline strings, ~70 bytes
	// a cell) and about 400 MB with shared strings; 2 GiB leaves room for
	// wider sheets while a zip bomb (deflate reaches ~1000:1) stops with an
	// error instead of filling the disk.
	total int64
	// spoolOver is excelize's UnzipXMLSizeLimit: worksheets and the shared
	// string table larger than this are unpacked to a temp file and read
	// as a stream; smaller ones stay in memory. 16 MiB is excelize's own
	// default and keeps the shared-string lookups of typical manifests
	// in memory.
	spoolOver int64
	// inMemory caps the sum of the parts excelize reads whole into memory:
	// everything not spooled above (styles, themes, drawings, images, small
	// sheets). A real workbook has a few MB of these; 512 MiB turns a bomb
	// hidden in, say, an image part into an error rather than an
	// out-of-memory kill.
	inMemory int64
}

func defaultXLSXLimits() xlsxLimits {
	return xlsxLimits{total: 2 << 30, spoolOver: 16 << 20, inMemory: 512 << 20}
}

// xlsxReader streams one sheet of an XLSX manifest.
//
// Values come from excelize's streaming row iterator with RawCellValue, so
// a number is the text stored in the file ("8.9441234567890117E+19"), not a
// display format. That iterator does not expose cell types (Rows.Columns
// returns strings only; GetCellType loads the whole sheet into memory), yet
// the validator must know whether an identifier sat in a numeric cell, and
// the text alone cannot tell: "356938035643809" may be a number or a text
// cell. So a second, light pass over the same worksheet XML (cellTypes)
// reads only the <row> and <c> tags, in step with excelize, and reports
// which cells are numbers. It also notices malformed XML, which excelize's
// iterator treats as the end of the sheet.
type xlsxReader struct {
	name    string // file name for messages
	sheet   string
	file    *os.File       // the zip cellTypes reads from
	book    *excelize.File // owns temp files until Close
	rows    *excelize.Rows
	part    io.ReadCloser // the worksheet part, for cellTypes
	types   *cellTypes
	header  Header
	row     int   // sheet row number of the last row read
	numeric []int // numeric columns of that row (0-based)
	err     error // sticky: fatal error or io.EOF
	closed  bool
}

// NewXLSXReader opens the XLSX workbook at path and reads the header of the
// sheet opts.Sheet (default: the first sheet in workbook order). The header
// is the first non-empty row; Record.Row is the sheet's own row number, so
// it matches what the spreadsheet shows. The caller must Close the reader:
// excelize unpacks large sheets to temp files that only Close removes.
func NewXLSXReader(path string, opts OpenOptions) (Reader, error) {
	return newXLSXReader(path, opts, defaultXLSXLimits())
}

func newXLSXReader(name string, opts OpenOptions, limits xlsxLimits) (_ *xlsxReader, err error) {
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
	if err := checkUnzipSizes(zr, limits); err != nil {
		return nil, err
	}
	if findPart(zr, "[Content_Types].xml") == nil {
		return nil, fmt.Errorf("%w: a zip archive, but not an XLSX workbook; save the spreadsheet as .xlsx or as CSV UTF-8", ErrNotManifest)
	}
	r.book, err = excelize.OpenFile(name, excelize.Options{
		UnzipSizeLimit:    limits.total,
		UnzipXMLSizeLimit: limits.spoolOver,
	})
	if err != nil {
		return nil, fmt.Errorf("read workbook: %w", err)
	}
	if r.sheet, err = pickSheet(r.book.GetSheetList(), opts.Sheet); err != nil {
		return nil, err
	}
	partName, err := worksheetPart(zr, r.sheet)
	if err != nil {
		return nil, fmt.Errorf("sheet %q: %w", r.sheet, err)
	}
	if r.rows, err = r.book.Rows(r.sheet); err != nil {
		return nil, fmt.Errorf("sheet %q: %w", r.sheet, err)
	}
	if r.part, err = findPart(zr, partName).Open(); err != nil {
		return nil, fmt.Errorf("sheet %q: %w", r.sheet, err)
	}
	r.types = newCellTypes(r.part)

	for {
		cells, err := r.nextRow()
		if err == io.EOF {
			return nil, fmt.Errorf("sheet %q: %w", r.sheet, ErrNoHeader)
		}
		if err != nil {
			return nil, err
		}
		if isBlankRow(cells) {
			continue
		}
		names := make([]string, len(cells))
		for i, c := range cells {
			names[i] = cleanHeaderCell(c)
		}
		r.header = NewHeader(names)
		return r, nil
	}
}

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

// checkUnzipSizes refuses workbooks that would unpack beyond the limits,
// before excelize unpacks anything. It mirrors excelize's split between
// parts it spools to temp files and parts it holds in memory.
func checkUnzipSizes(zr *zip.Reader, limits xlsxLimits) error {
	var total, inMemory uint64
	for _, f := range zr.File {
		size := f.UncompressedSize64
		total += size
		if total > uint64(limits.total) {
			return fmt.Errorf("%w: more than %s uncompressed (a zip bomb?); a manifest of a million rows needs far less", ErrWorkbookTooLarge, byteSize(limits.total))
		}
		name := strings.ToLower(strings.ReplaceAll(f.Name, `\`, "/"))
		spooled := size > uint64(limits.spoolOver) &&
			(strings.HasPrefix(name, "xl/worksheets/sheet") || name == "xl/sharedstrings.xml")
		if !spooled {
			inMemory += size
			if inMemory > uint64(limits.inMemory) {
				return fmt.Errorf("%w: more than %s of workbook parts that must be held in memory (part %s is %s; a zip bomb?)", ErrWorkbookTooLarge, byteSize(limits.inMemory), f.Name, byteSize(int64(min(size, 1<<62))))
			}
		}
	}
	return nil
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// Header returns the sheet's header row.
func (r *xlsxReader) Header() Header { return r.header }

// Next returns the next non-empty row of the sheet, or io.EOF.
func (r *xlsxReader) Next() (Record, error) {
	if r.err != nil {
		return Record{}, r.err
	}
	for {
		cells, err := r.nextRow()
		if err == io.EOF {
			r.err = io.EOF
			return Record{}, io.EOF
		}
		if err != nil {
			r.err = fmt.Errorf("read manifest %s: %w", r.name, err)
			return Record{}, r.err
		}
		if isBlankRow(cells) {
			continue
		}
		return r.record(cells), nil
	}
}

// nextRow advances to the next sheet row, empty or not. excelize's
// iterator yields every row number up to the last row, gaps included, so
// counting Next calls gives the sheet's row number.
func (r *xlsxReader) nextRow() ([]string, error) {
	if !r.rows.Next() {
		if err := r.rows.Error(); err != nil {
			return nil, fmt.Errorf("sheet %q after row %d: %w", r.sheet, r.row, err)
		}
		// excelize's iterator takes malformed XML for the end of the
		// sheet; the type pass reads on and tells the two apart.
		if err := r.types.finish(); err != nil {
			return nil, r.damaged(err)
		}
		if r.types.row > r.row {
			return nil, r.damaged(fmt.Errorf("rows stop at %d but the sheet goes on to row %d", r.row, r.types.row))
		}
		return nil, io.EOF
	}
	r.row++
	cells, err := r.rows.Columns(excelize.Options{RawCellValue: true})
	if err != nil {
		return nil, fmt.Errorf("sheet %q row %d: %w", r.sheet, r.row, err)
	}
	// Reading the row's types reads the row through; a fault in it means
	// excelize may have handed over only part of the row.
	r.numeric = r.types.numericCells(r.row)
	if r.types.err != nil {
		return nil, r.damaged(r.types.err)
	}
	return cells, nil
}

func (r *xlsxReader) damaged(err error) error {
	return fmt.Errorf("sheet %q row %d: the worksheet XML is damaged (%w); open the file in Excel and save it again", r.sheet, max(r.types.row, 1), err)
}

// record builds a Record like the CSV reader does. A sheet row has no
// field count of its own (trailing empty cells are not stored), so a row
// counts as header-wide unless it has values beyond the header's last
// column.
func (r *xlsxReader) record(cells []string) Record {
	width := max(len(cells), len(r.header.Names))
	rec := Record{
		Row:        r.row,
		Values:     make([]string, width),
		Numeric:    make([]bool, width),
		FieldCount: width,
	}
	copy(rec.Values, cells)
	for _, col := range r.numeric {
		if col < width {
			rec.Numeric[col] = true
		}
	}
	return rec
}

// Close releases the row iterator, the workbook's temp files and the file.
// It is safe to call twice.
func (r *xlsxReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	if r.err == nil {
		r.err = errors.New("read manifest: reader is closed")
	}
	var errs []error
	if r.rows != nil {
		errs = append(errs, r.rows.Close())
	}
	if r.book != nil {
		errs = append(errs, r.book.Close())
	}
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

// worksheetPart resolves a sheet name to its XML part the way excelize
// does: the package relationships name the workbook part, the workbook
// lists sheets by relationship id, and the workbook's relationships give
// each id a target relative to the workbook.
func worksheetPart(zr *zip.Reader, sheet string) (string, error) {
	workbook := "xl/workbook.xml"
	rootRels, err := readRels(zr, "_rels/.rels")
	if err != nil {
		return "", err
	}
	for _, rel := range rootRels {
		if strings.HasSuffix(rel.Type, "/officeDocument") {
			workbook = strings.TrimPrefix(rel.Target, "/")
			break
		}
	}
	var wb struct {
		Sheets []struct {
			Name string     `xml:"name,attr"`
			Attr []xml.Attr `xml:",any,attr"`
		} `xml:"sheets>sheet"`
	}
	if err := readXMLPart(zr, workbook, &wb); err != nil {
		return "", err
	}
	id := ""
	for _, s := range wb.Sheets {
		if s.Name != sheet {
			continue
		}
		for _, a := range s.Attr {
			if a.Name.Local == "id" && a.Name.Space != "" {
				id = a.Value
			}
		}
	}
	if id == "" {
		return "", fmt.Errorf("%s does not link the sheet to a worksheet part", workbook)
	}
	dir, base := path.Split(workbook)
	rels, err := readRels(zr, dir+"_rels/"+base+".rels")
	if err != nil {
		return "", err
	}
	for _, rel := range rels {
		if rel.ID != id {
			continue
		}
		target := strings.ReplaceAll(rel.Target, `\`, "/")
		if strings.HasPrefix(target, "/") {
			return strings.TrimPrefix(path.Clean(target), "/"), nil
		}
		return strings.TrimPrefix(path.Join(dir, target), "/"), nil
	}
	return "", fmt.Errorf("no worksheet part for relationship %s", id)
}

type relationship struct {
	ID     string `xml:"Id,attr"`
	Type   string `xml:"Type,attr"`
	Target string `xml:"Target,attr"`
}

func readRels(zr *zip.Reader, name string) ([]relationship, error) {
	var rels struct {
		Rels []relationship `xml:"Relationship"`
	}
	if findPart(zr, name) == nil {
		return nil, nil
	}
	err := readXMLPart(zr, name, &rels)
	return rels.Rels, err
}

// readXMLPart decodes a small part (workbook, relationships). Its size is
// already bounded by checkUnzipSizes.
func readXMLPart(zr *zip.Reader, name string, v any) error {
	f := findPart(zr, name)
	if f == nil {
		return fmt.Errorf("the workbook has no %s", name)
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

// cellTypes reads a worksheet's XML alongside excelize and tells, row by
// row, which cells hold numbers. It looks only at tags and attributes and
// keeps one row's worth of state, so memory stays flat however long the
// sheet is. Rows and columns are numbered as excelize numbers them: the r
// attribute when present, else one after the previous.
type cellTypes struct {
	dec     *xml.Decoder
	row     int   // number of the row whose cells are in numeric
	numeric []int // 0-based columns of numeric cells in that row
	done    bool
	err     error
}

func newCellTypes(r io.Reader) *cellTypes {
	dec := xml.NewDecoder(r)
	dec.CharsetReader = charset.NewReaderLabel // as excelize does
	return &cellTypes{dec: dec}
}

// numericCells returns the numeric columns of sheet row n. Rows come in
// increasing order; asking for a row the XML does not have gives nil.
func (t *cellTypes) numericCells(n int) []int {
	for !t.done && t.row < n {
		t.readRow()
	}
	if t.row == n {
		return t.numeric
	}
	return nil
}

// finish reads the rest of the worksheet and returns any XML error.
func (t *cellTypes) finish() error {
	for !t.done {
		t.readRow()
	}
	return t.err
}

// readRow reads up to and through the next <row> element.
func (t *cellTypes) readRow() {
	t.numeric = t.numeric[:0]
	inRow := false
	var (
		col      int    // 1-based column of the current cell
		cellType string // its t attribute; "" or "n" is a number
		inCell   bool
		inValue  bool
		hasValue bool
	)
	for {
		// Token, not RawToken: it checks that tags match, as excelize's
		// decoder does, so both passes stop at the same damage.
		tok, err := t.dec.Token()
		if err != nil {
			t.done = true
			if err != io.EOF {
				t.err = err
			}
			return
		}
		switch el := tok.(type) {
		case xml.StartElement:
			switch el.Name.Local {
			case "row":
				if inRow {
					t.err, t.done = errors.New("a <row> inside a <row>"), true
					return
				}
				inRow, col = true, 0
				t.row++
				if v := attr(el.Attr, "r"); v != "" {
					if n, err := strconv.Atoi(v); err == nil && n > 0 {
						t.row = n
					}
				}
			case "c":
				if !inRow {
					continue
				}
				inCell, hasValue = true, false
				col++
				if c := columnOf(attr(el.Attr, "r")); c > 0 {
					col = c
				}
				cellType = attr(el.Attr, "t")
			case "v":
				inValue = inCell
			}
		case xml.CharData:
			if inValue && len(strings.TrimSpace(string(el))) > 0 {
				hasValue = true
			}
		case xml.EndElement:
			switch el.Name.Local {
			case "v":
				inValue = false
			case "c":
				if inCell && hasValue && (cellType == "" || cellType == "n") {
					t.numeric = append(t.numeric, col-1)
				}
				inCell = false
			case "row":
				if inRow {
					return
				}
			case "sheetData":
				t.done = true
				return
			}
		}
	}
}

func attr(attrs []xml.Attr, name string) string {
	for _, a := range attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

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
			if col > excelize.MaxColumns {
				return 0
			}
			return col
		default:
			return 0
		}
		if col > excelize.MaxColumns {
			return 0
		}
	}
	return 0
}
