package ingest

import (
	"fmt"
	"io"
)

// Limits of a CSV manifest. A manifest row is a few hundred bytes in a few
// dozen columns; these are far beyond that and still keep one row's
// memory small. They are the XLSX reader's MaxCellBytes and MaxColumns
// (xlsx_limits.go): one pair of limits for every manifest. They are not
// configurable: a manifest past them is not a manifest, and the messages
// say how to cut it down.
const (
	// csvMaxCellBytes is the longest cell read, in bytes as in the file
	// (a doubled quote counts two). A longer cell is the row's
	// cell_too_long problem; the reader never holds more of it than this.
	csvMaxCellBytes = MaxCellBytes
	// csvMaxColumns is the most cells read of one line. A wider header is
	// a fatal error; a wider data row keeps its first csvMaxColumns cells
	// and its true count, for field_count.
	csvMaxColumns = MaxColumns
)

// csvLimits are the bounds one reader applies; tests shrink them to reach
// the limits with small inputs (at least 2 of each: a cut must come after
// its record's first byte).
type csvLimits struct {
	cellBytes int64
	columns   int
	// noShortcuts turns off the reader's plain-line path and its feeding
	// of quoted text in one piece, for the tests that compare them with
	// the long way through encoding/csv and the fieldLimiter.
	noShortcuts bool
}

func defaultCSVLimits() csvLimits {
	return csvLimits{cellBytes: csvMaxCellBytes, columns: csvMaxColumns}
}

// fieldLimiter sits between the text and encoding/csv, which reads a whole
// line, and then a whole record, into memory before it looks at a field:
// a 500 MB cell or a line of a million cells would be held whole. The
// limiter follows the CSV syntax byte by byte, as encoding/csv parses it
// (without LazyQuotes or TrimLeadingSpace), and passes on at most
// cellBytes of a cell and columns cells of a record. What it drops is noted
// as a cut, by where in the passed text it happened, so that the reader can
// tell which record and field it belongs to and report it.
//
// Dropping keeps the text well formed: an unquoted cell just ends early; a
// quoted one gets its closing quote at once, and the quoted text up to the
// real closing quote is skipped; dropped columns are skipped with their
// delimiters up to the end of the record. Line ends inside what is dropped
// are counted, so that rows keep the numbers an editor shows.
//
// Every byte it writes replaces one it read, so it filters in place.
type fieldLimiter struct {
	r      io.Reader
	limits csvLimits
	comma  byte

	state      limitState
	fields     int   // fields of the current record so far, the current one included
	cell       int64 // bytes of the current field so far
	line       int   // line ends read so far
	quoteAt    int   // line ends read before the current quoted field opened
	dropping   bool  // skipping the rest of a cell or of a record (the last cut)
	cutColumns bool  // the record's columns, not a cell's rest
	swap       byte  // what to pass on instead of the byte step just took, if not 0
	class      [256]uint8
	out        int64 // bytes passed on so far
	cuts       []csvCut
	eof        bool  // the text has ended
	err        error // sticky: a quoted field never closed

	// controls is set once a byte has gone by that may put a control
	// character in a cell (see mayHoldControl): until then no record
	// holds one, and the validator need not look at every cell. A CR
	// outside quotes counts only when no LF follows it (encoding/csv
	// drops it from the line end); crPending is a CR that ended the last
	// buffer.
	controls, crPending bool
}

type limitState uint8

const (
	inField   limitState = iota // at the start of a field or in an unquoted one
	inQuotes                    // inside a quoted field
	quoteSeen                   // just after a quote inside a quoted field
	quoteCR                     // just after a closing quote and a CR
	skipLine                    // after a quote error, encoding/csv drops the rest of the line
)

// csvCut is one cell cut short or one record's columns dropped.
type csvCut struct {
	at      int64 // bytes passed on before the cut: it lies inside the record
	field   int   // 0-based field it happened in (for columns, the first dropped)
	columns bool  // dropped columns rather than the rest of a cell
	size    int64 // bytes of the cell in the file (cells)
	dropped int   // fields dropped (columns)
	lines   int   // line ends dropped with it
}

// maxPendingCuts bounds the cuts waiting for their record. encoding/csv
// reads only a few KiB ahead and every cut costs kilobytes of text, so a
// handful wait at a time; the bound only guards against a reader that
// stops asking. Past it, cuts only count their line ends.
const maxPendingCuts = 4096

// Byte classes for plainRun: the bytes that end a run of cell text.
const (
	specialInField  uint8 = 1 << iota // delimiter, quote, line end
	specialInQuotes                   // quote, line end
	controlByte                       // may start a control character: C0 but LF, DEL, 0xC2 (C1)
)

func newFieldLimiter(r io.Reader, comma rune, limits csvLimits) *fieldLimiter {
	f := &fieldLimiter{r: r, comma: byte(comma), limits: limits, fields: 1}
	for c := range 0x20 {
		if c != '\n' {
			f.class[c] |= controlByte
		}
	}
	f.class[0x7f] |= controlByte
	f.class[0xc2] |= controlByte
	f.class[f.comma] |= specialInField
	f.class['"'] |= specialInField | specialInQuotes
	f.class['\n'] |= specialInField | specialInQuotes
	return f
}

// inQuotedField reports whether the text so far ends inside a quoted
// field, where only a quote can lead to the end of the record.
func (f *fieldLimiter) inQuotedField() bool { return f.state == inQuotes }

// noteControl takes a byte of class controlByte (step's, or plainFields'
// with the byte after it, next, when b has one: -1 otherwise).
func (f *fieldLimiter) noteControl(c byte, next int) {
	switch {
	case c == f.comma && f.state != inQuotes && !f.dropping:
		// A TAB delimiter.
	case c == '\r' && (f.state == inField || f.state == quoteSeen) && next < 0:
		f.crPending = true
	case c == '\r' && (f.state == inField || f.state == quoteSeen) && next == '\n':
	default:
		f.controls = true
	}
}

func (f *fieldLimiter) Read(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	for {
		n, err := f.r.Read(p)
		w := f.filter(p[:n])
		f.eof = f.eof || err == io.EOF
		if err == io.EOF && f.dropping && f.state == inQuotes {
			f.err = &unclosedQuoteError{start: f.quoteAt + 1, end: f.line + 1}
			err = f.err
		}
		if w > 0 || err != nil || n == 0 {
			return w, err
		}
		// All of it was dropped: read on rather than return 0, nil.
	}
}

// filter runs b through the CSV syntax and moves the bytes encoding/csv
// should see to its front; it returns how many there are. Runs of plain
// cell text, most of any file, go by in one tight loop; only the bytes
// that change the state (delimiters, quotes, line ends, the first byte
// past the limit) take a step.
func (f *fieldLimiter) filter(b []byte) int {
	w := 0
	for i := 0; i < len(b); {
		if f.crPending {
			f.crPending = false
			f.controls = f.controls || b[i] != '\n'
		}
		if w == i && f.state == inField && !f.dropping {
			// Nothing dropped so far: unquoted text goes by in place.
			if n := f.plainFields(b[i:]); n > 0 {
				i, w = i+n, w+n
				continue
			}
		}
		if n := f.plainRun(b[i:]); n > 0 {
			if !f.dropping {
				if w != i {
					copy(b[w:], b[i:i+n])
				}
				w += n
				f.out += int64(n)
			}
			i += n
			continue
		}
		c := b[i]
		i++
		if f.class[c]&controlByte != 0 {
			next := -1
			if i < len(b) {
				next = int(b[i])
			}
			f.noteControl(c, next)
		}
		if f.step(c) {
			if f.swap != 0 {
				c, f.swap = f.swap, 0
			}
			b[w] = c
			w++
			f.out++
		}
	}
	return w
}

// plainFields passes over unquoted text, the bulk of any manifest: cell
// bytes within the cell limit, delimiters within the column limit and line
// ends, in one loop, doing what step would do for each. It stops at a
// quote or at a limit, for step to take. Without it, every delimiter of
// every row cost a call to plainRun and to step.
func (f *fieldLimiter) plainFields(b []byte) int {
	cell, fields, lines := f.cell, f.fields, 0
	j := 0
loop:
	for ; j < len(b); j++ {
		// A run of cell text first, in a loop of its own that looks at
		// nothing but each byte's class; the cell limit bounds the run.
		run := b[j:]
		if room := f.limits.cellBytes - cell; room < int64(len(run)) {
			run = run[:max(room, 0)]
		}
		n := 0
		for _, c := range run {
			if f.class[c] != 0 {
				break
			}
			n++
		}
		j += n
		cell += int64(n)
		if j == len(b) {
			break
		}
		switch c := b[j]; {
		case f.class[c] == 0: // past the cell limit
			break loop
		case c == f.comma:
			if fields >= f.limits.columns {
				break loop
			}
			fields, cell = fields+1, 0
		case c == '\n':
			fields, cell = 1, 0
			lines++
		case c == '"':
			break loop
		default: // a byte that may start a control character
			if cell >= f.limits.cellBytes {
				break loop // step takes it, and notes it
			}
			next := -1
			if j+1 < len(b) {
				next = int(b[j+1])
			}
			f.noteControl(c, next)
			cell++
		}
	}
	f.cell, f.fields, f.line = cell, fields, f.line+lines
	f.out += int64(j)
	return j
}

// plainRun returns how many bytes at the start of b are cell text that
// changes nothing but the cell's length, which it adds: in a field, all
// but delimiters, quotes and line ends; in quotes, all but quotes and line
// ends. While a cell is passed on, the run stops where the limit would be
// crossed.
func (f *fieldLimiter) plainRun(b []byte) int {
	var mask uint8
	switch f.state {
	case inField:
		mask = specialInField | controlByte
	case inQuotes:
		mask = specialInQuotes | controlByte
	default:
		return 0
	}
	n := len(b)
	if f.dropping {
		if f.cutColumns {
			n = 0 // dropped columns: step counts their delimiters
		}
	} else if room := f.limits.cellBytes - f.cell; room < int64(n) {
		n = int(max(room, 0))
	}
	j := 0
	for j < n && f.class[b[j]]&mask == 0 {
		j++
	}
	f.cell += int64(j)
	if f.dropping && j > 0 {
		f.cuts[len(f.cuts)-1].size = f.cell
	}
	return j
}

// step takes one byte and reports whether it is passed on (as f.swap
// when that is set).
func (f *fieldLimiter) step(c byte) bool {
	switch f.state {
	case inField:
		return f.inField(c)
	case inQuotes:
		return f.inQuotes(c)
	case quoteSeen:
		return f.quoteSeen(c)
	case quoteCR:
		if c == '\n' {
			f.endRecord()
			return true
		}
		f.state = skipLine
		return !f.dropColumns()
	default: // skipLine
		if c == '\n' {
			f.endRecord()
			return true
		}
		return false // encoding/csv drops the rest of the line anyway
	}
}

func (f *fieldLimiter) inField(c byte) bool {
	switch {
	case c == f.comma:
		return f.endField()
	case c == '\n':
		f.endRecord()
		return true
	case c == '"' && f.cell == 0:
		f.state, f.quoteAt = inQuotes, f.line
		return !f.dropping
	case c == '"' && !f.dropping:
		// A bare quote: encoding/csv fails the row here and drops the
		// rest of its line. (In dropped text it is just text.)
		f.state = skipLine
		return true
	}
	return f.content(1)
}

func (f *fieldLimiter) inQuotes(c byte) bool {
	if c == '"' {
		f.state = quoteSeen
		return !f.dropping
	}
	if c == '\n' {
		f.controls = true // a line end inside a cell
		f.line++
	}
	wasDropping := f.dropping
	if f.content(1) {
		return true
	}
	if c == '\n' {
		// Dropped, whether the cut began with it or before: the rows
		// after it keep their numbers only if the cut counts it.
		f.cuts[len(f.cuts)-1].lines++
	}
	if wasDropping {
		return false
	}
	// c is the first byte past the limit: a quote goes in its place, to
	// close the field; the rest up to the real closing quote is dropped.
	f.swap = '"'
	return true
}

func (f *fieldLimiter) quoteSeen(c byte) bool {
	if c == '"' { // a doubled quote
		f.state = inQuotes
		// When the pair crosses the limit, its first quote, already
		// passed on, closes the field: the second is dropped.
		return f.content(2)
	}
	// The quote closed the field; a cut cell ends with it.
	if f.dropping && !f.dropColumns() {
		f.dropping = false
	}
	switch c {
	case f.comma:
		return f.endField()
	case '\n':
		f.endRecord()
		return true
	case '\r':
		f.state = quoteCR
	default:
		f.state = skipLine // encoding/csv: extraneous quote
	}
	return !f.dropColumns()
}

// content counts n bytes of the current field and reports whether they are
// passed on; the first byte past the limit starts a cut.
func (f *fieldLimiter) content(n int64) bool {
	f.cell += n
	if f.dropping {
		if !f.dropColumns() {
			f.cuts[len(f.cuts)-1].size = f.cell
		}
		return false
	}
	if f.cell <= f.limits.cellBytes {
		return true
	}
	f.startCut(csvCut{at: f.out, field: f.fields - 1, size: f.cell})
	return false
}

func (f *fieldLimiter) dropColumns() bool {
	return f.dropping && f.cutColumns
}

// endField handles a delimiter outside quotes and reports whether it is
// passed on: not when it starts a field past the column limit.
func (f *fieldLimiter) endField() bool {
	f.state, f.cell = inField, 0
	if f.dropColumns() {
		f.cuts[len(f.cuts)-1].dropped++
		return false
	}
	f.dropping = false
	if f.fields >= f.limits.columns {
		f.startCut(csvCut{at: f.out, field: f.fields, columns: true, dropped: 1})
		f.cutColumns = true
		return false
	}
	f.fields++
	return true
}

func (f *fieldLimiter) endRecord() {
	f.state, f.cell, f.fields = inField, 0, 1
	f.dropping, f.cutColumns = false, false
	f.line++
}

func (f *fieldLimiter) startCut(c csvCut) {
	f.dropping = true
	if len(f.cuts) < maxPendingCuts {
		f.cuts = append(f.cuts, c)
		return
	}
	// Keep counting line ends in the last cut, so rows keep their numbers.
	last := &f.cuts[len(f.cuts)-1]
	*last = csvCut{at: last.at, field: -1, lines: last.lines, columns: c.columns}
}

// take removes and returns the cuts that happened before offset end of
// the passed text: those of the records encoding/csv has returned. A cut
// lies inside its record, before the line end that closes it, except in a
// last record with no line end: there it may be at the very end.
func (f *fieldLimiter) take(end int64) []csvCut {
	in := func(c csvCut) bool { return c.at < end || c.at == end && f.eof }
	if len(f.cuts) == 0 || !in(f.cuts[0]) {
		return nil
	}
	n := 0
	for n < len(f.cuts) && in(f.cuts[n]) {
		n++
	}
	taken := append([]csvCut(nil), f.cuts[:n]...)
	f.cuts = append(f.cuts[:0], f.cuts[n:]...)
	return taken
}

// unclosedQuoteError: a quoted field that the limiter was skipping ran to
// the end of the text. Lines are as counted in the text the limiter saw.
type unclosedQuoteError struct{ start, end int }

func (e *unclosedQuoteError) Error() string {
	return fmt.Sprintf("line %d: a quoted field opened on this line is never closed, so it runs to the end of the file (line %d); close or remove the stray \"", e.start, e.end)
}
