package ingest

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// sheetRow is one <row> element as read.
type sheetRow struct {
	num     int      // the sheet's row number: r, else one after the last
	between bool     // on error: the reader was after row num, not in it
	values  []string // cells, by column; trailing empty cells left out
	numeric []int    // 0-based columns of number cells
	// fault is what is wrong with the row alone (a cell too long, a
	// value beyond the last column allowed); the row was still read
	// through, so the next row can be read. faultCol is its 0-based
	// column.
	fault    error
	faultCol int
	wide     *LimitError // the MaxColumns fault, to count the columns
}

// sheetRows reads a worksheet's <row> elements one at a time. It keeps
// one row's cells and one cell's text (cut at the cell limit), so memory
// stays flat however long the sheet, its rows or its cells are.
type sheetRows struct {
	xs     *xmlStream
	sst    *sharedStrings
	limits xlsxLimits
	last   int // number of the last row read
	done   bool
	cell   cellState
	text   []byte // the current cell's text, up to the cell limit
}

// cellState is what the reader knows of the <c> element it is in.
type cellState struct {
	col     int    // 1-based column
	typ     string // the t attribute
	formula bool
	inValue bool  // in <v>
	inText  int   // depth of the <t> it is in (inline strings), 0 if none
	inPh    bool  // in a phonetic guide (<rPh>), whose text is not the value
	found   int64 // bytes of text seen, kept or not
}

func newSheetRows(ctx context.Context, part io.Reader, sst *sharedStrings, limits xlsxLimits) *sheetRows {
	return &sheetRows{
		xs:     newXMLStream(newPartReader(ctx, part, limits)),
		sst:    sst,
		limits: limits,
	}
}

// next reads up to and through the next <row>. On error, row.num says
// where the reader was.
func (s *sheetRows) next() (sheetRow, error) {
	row := sheetRow{num: s.last, between: true}
	inRow, inCell := false, false
	for !s.done {
		tok, err := s.xs.next()
		if err == io.EOF {
			if inRow {
				return row, io.ErrUnexpectedEOF
			}
			break
		}
		if err != nil {
			return row, err
		}
		switch el := tok.(type) {
		case xml.StartElement:
			switch {
			case el.Name.Local == "row":
				if inRow {
					return row, fmt.Errorf("a <row> inside a <row>")
				}
				inRow, row.between = true, false
				row.num = s.last + 1
				if n, err := strconv.Atoi(attr(el.Attr, "r")); err == nil && n > 0 {
					row.num = n
				}
				s.last = row.num
				s.cell = cellState{}
			case !inRow:
			case el.Name.Local == "c":
				inCell = true
				s.startCell(el, &row)
			case inCell:
				s.startInCell(el)
			}
		case xml.CharData:
			if inCell {
				s.addText(el)
			}
		case xml.EndElement:
			switch el.Name.Local {
			case "row":
				if inRow {
					return row, nil
				}
			case "c":
				if inCell {
					inCell = false
					s.endCell(&row)
				}
			case "v":
				s.cell.inValue = false
			case "rPh":
				s.cell.inPh = false
			case "t":
				if s.cell.inText == s.xs.depth+1 {
					s.cell.inText = 0
				}
			case "sheetData":
				s.done = true
			}
		}
	}
	return row, io.EOF
}

func (s *sheetRows) startCell(el xml.StartElement, row *sheetRow) {
	col := s.cell.col + 1 // without a reference, cells follow each other
	if c := columnOf(attr(el.Attr, "r")); c > 0 {
		col = c
	}
	s.cell = cellState{col: col, typ: attr(el.Attr, "t")}
	s.text = s.text[:0]
}

func (s *sheetRows) startInCell(el xml.StartElement) {
	switch el.Name.Local {
	case "v":
		s.cell.inValue = true
	case "f":
		s.cell.formula = true
	case "rPh":
		s.cell.inPh = true
	case "t":
		s.cell.inText = s.xs.depth
	}
}

// addText keeps a cell's text up to the cell limit: of <v>, or for an
// inline string of its <t> elements (rich-text runs concatenate).
func (s *sheetRows) addText(b []byte) {
	c := &s.cell
	want := c.inValue
	if c.typ == "inlineStr" {
		want = c.inText > 0 && !c.inPh
	}
	if !want {
		return
	}
	c.found += int64(len(b))
	s.text = append(s.text, cutUTF8(b, s.limits.cellBytes-len(s.text))...)
}

// endCell resolves the cell's value and puts it in its column.
func (s *sheetRows) endCell(row *sheetRow) {
	c := &s.cell
	value, found := string(s.text), c.found
	numeric := false
	switch c.typ {
	case "s":
		i, err := strconv.Atoi(strings.TrimSpace(value))
		if err != nil || i < 0 || i >= s.sst.len() {
			s.fault(row, c.col, fmt.Errorf("cell %s%d refers to shared string %q, but the workbook's table has %d; the workbook is damaged: open the file in Excel and save it again",
				columnName(c.col), row.num, clipText(value), s.sst.len()))
			value, found = "", 0
			break
		}
		value, found = s.sst.item(i)
	case "", "n":
		numeric = strings.TrimSpace(value) != ""
	}
	if value == "" && !c.formula {
		return
	}
	if found > int64(s.limits.cellBytes) {
		s.fault(row, c.col, &LimitError{
			Limit: "MaxCellBytes", Max: int64(s.limits.cellBytes), Found: found, Unit: "bytes",
			Where: fmt.Sprintf("cell %s%d", columnName(c.col), row.num), Of: " of text", Advice: adviceCSV,
		})
	}
	if c.col > s.limits.columns {
		s.tooWide(row, c.col)
		return
	}
	i := c.col - 1
	for len(row.values) < i {
		row.values = append(row.values, "")
	}
	if i < len(row.values) {
		row.values[i] = value
	} else {
		row.values = append(row.values, value)
	}
	if numeric {
		row.numeric = append(row.numeric, i)
	}
}

// tooWide records a value beyond the last column allowed; the fault
// names the furthest such column.
func (s *sheetRows) tooWide(row *sheetRow, col int) {
	if row.wide == nil {
		row.wide = &LimitError{
			Limit: "MaxColumns", Max: int64(s.limits.columns), Unit: "columns",
			Where: fmt.Sprintf("row %d", row.num), Of: " with values",
			Advice: "delete the columns beyond the last one the manifest needs, or " + adviceCSV,
		}
		s.fault(row, col, row.wide)
	}
	row.wide.Found = max(row.wide.Found, int64(col))
}

// fault records the row's first fault.
func (s *sheetRows) fault(row *sheetRow, col int, err error) {
	if row.fault == nil {
		row.fault, row.faultCol = err, col-1
	}
}

func clipText(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
