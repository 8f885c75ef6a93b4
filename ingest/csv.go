package ingest

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

const (
	// sniffSize is how much of the text is looked at to detect encoding,
	// delimiter and line endings; a header line is far shorter.
	sniffSize = 64 << 10
	// maxRecordBytes bounds one CSV record as encoding/csv sees it, after
	// the fieldLimiter has cut cells and columns: encoding/csv buffers a
	// whole record (and the line, and the record again as one string), so
	// 1,024 full cells would still be 64 MiB three times over. Real
	// manifest rows are well under 1 KiB.
	maxRecordBytes = 16 << 20
)

// errRecordTooLong completes "the row after line N ...".
var errRecordTooLong = fmt.Errorf("is longer than %d MiB, the most simbulk reads as one row (each cell may hold up to %d KiB, but not all %d of them at once); shorten its longest cells or move them to a separate file", maxRecordBytes>>20, csvMaxCellBytes>>10, csvMaxColumns)

// csvReader streams a CSV (or Excel "Unicode Text") manifest.
type csvReader struct {
	name       string    // file name for messages; "" when reading a stream
	closer     io.Closer // the file Open opened, nil for NewCSVReader
	cr         *csv.Reader
	limit      *fieldLimiter
	count      *recordLimiter
	text       *utf8Watch // nil for UTF-16 text
	utf16      bool       // text was decoded from UTF-16: bad input shows up as U+FFFD
	size       int64      // file size in bytes, 0 when unknown (a stream)
	records    int        // records encoding/csv has returned, blank ones and the header included
	lineOffset int        // lines encoding/csv did not see: "sep=", and those the limiter dropped
	dropped    int        // of lineOffset, the lines the limiter dropped
	header     Header
	lines      *bufio.Reader // the text, for the plain-line path (csv_plain.go)
	feed       *lineFeeder   // the text for encoding/csv: the lines that are not plain
	plainBytes int64         // bytes of the lines the plain-line path took
	arena      rowArena      // where the plain rows' text and fields come from
	pending    *csvRead      // a record read ahead to classify a quote error
	lastLine   int           // start line of the last record read
	err        error         // sticky: the fatal error, or io.EOF
}

// csvRead is one record as encoding/csv produced it, captured immediately
// (FieldPos only describes the latest Read).
type csvRead struct {
	fields []string
	line   int             // line the record starts on, as the user counts
	perr   *csv.ParseError // a quote error confined to this record
	err    error           // fatal read error, or io.EOF
	cuts   []csvCut        // what the fieldLimiter dropped of it
	offset int             // lineOffset when it started (for lines in perr)
}

// NewCSVReader reads a CSV manifest from r and reads its header at once, so
// an empty or unreadable file fails here rather than on the first Next.
//
// The text may be UTF-8 (with or without BOM) or UTF-16 with a BOM, as
// Excel's "Unicode Text" export writes it; the delimiter is ',', ';' or tab,
// found by counting them outside quotes on the header line (European Excel
// writes ';'), unless the file starts with Excel's "sep=X" line. Lines may
// end in LF, CRLF or (old Mac Excel) a lone CR.
//
// A cell longer than 64 KiB is the row's cell_too_long problem (the reader
// keeps none of it); a data row of more than 1,024 cells keeps the first
// 1,024 and its true FieldCount, and a header that wide is an error. So
// however the text is shaped, a row costs at most a few MiB to read.
//
// A stray or unbalanced quote in one row is not fatal: Next returns a
// *RowError for that row and carries on, because one bad description
// should not stop ten thousand good devices. A quote that is never closed
// and so swallows the rest of the file is fatal, since the rows it ate
// would otherwise vanish silently. Close does not close r.
func NewCSVReader(r io.Reader) (Reader, error) {
	cr, err := newCSVReader(r, "")
	if err != nil {
		return nil, err
	}
	return cr, nil
}

func newCSVReader(src io.Reader, name string) (*csvReader, error) {
	return newLimitedCSVReader(src, name, defaultCSVLimits())
}

func newLimitedCSVReader(src io.Reader, name string, limits csvLimits) (*csvReader, error) {
	text, isUTF16, err := decodeText(bufio.NewReaderSize(src, sniffSize))
	if err != nil {
		return nil, err
	}
	head, err := text.Peek(sniffSize)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return nil, err
	}
	comma, sepLine := sniffDelimiter(head)
	r := &csvReader{name: name, utf16: isUTF16}
	if sepLine > 0 {
		if _, err := text.Discard(sepLine); err != nil {
			return nil, err
		}
		r.lineOffset = 1
	}
	var lines io.Reader = text
	if crOnlyLineEnds(head) {
		lines = crToLF{text}
	}
	if !isUTF16 {
		r.text = &utf8Watch{r: lines}
		lines = r.text
	}
	r.lines = bufio.NewReaderSize(lines, sniffSize)
	r.feed = &lineFeeder{lines: r.lines}
	r.limit = newFieldLimiter(r.feed, comma, limits)
	if !limits.noShortcuts {
		r.feed.inQuotes = r.limit.inQuotedField
	}
	r.count = &recordLimiter{r: r.limit, max: maxRecordBytes}
	r.cr = csv.NewReader(r.count)
	r.cr.Comma = comma
	r.cr.FieldsPerRecord = -1 // a short or long row is the validator's field_count, not a stop
	// ReuseRecord stays off: each record's fields become its Values, which
	// the caller keeps, so a reused slice would only have to be copied.

	if err := r.readHeader(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *csvReader) readHeader() error {
	for {
		var rd csvRead
		r.read(&rd)
		switch {
		case rd.err == io.EOF:
			return ErrNoHeader
		case rd.err != nil:
			return rd.err
		case rd.perr != nil:
			return fmt.Errorf("header (line %d): %s", rd.line, quoteErrorMessage(rd.perr))
		case isBlankRow(rd.fields):
			continue
		}
		if err := headerCut(rd); err != nil {
			return err
		}
		names := make([]string, len(rd.fields))
		for i, f := range rd.fields {
			f, _ = r.validText(f)
			if mayHoldControl(f) {
				// Header names end up in reports and messages; a control
				// character there is shown, never written raw.
				f = replaceControls(f, textControls)
			}
			names[i] = cleanHeaderCell(f)
		}
		r.header = NewHeader(names)
		return nil
	}
}

// headerCut turns what the fieldLimiter cut from the header into an
// error: a header is the map of every row, so it is read whole or not at
// all.
func headerCut(rd csvRead) error {
	for _, c := range rd.cuts {
		switch {
		case c.columns:
			return fmt.Errorf("header (line %d) has %s columns; simbulk reads at most %s. Delete the columns that are not needed (or, for a manifest that really is this wide, split it into files of fewer columns that share the identifier columns)",
				rd.line, groupDigits(int64(len(rd.fields)+c.dropped)), groupDigits(csvMaxColumns))
		case c.field >= 0:
			return fmt.Errorf("header (line %d), column %d: the name is %s bytes long; simbulk reads at most %d KiB in one cell. Shorten the name (a quote (\") that opens the cell and is never closed makes the rest of the file part of it)",
				rd.line, c.field+1, groupDigits(c.size), csvMaxCellBytes>>10)
		}
	}
	return nil
}

// Header returns the manifest's header row.
func (r *csvReader) Header() Header { return r.header }

// Next returns the next non-blank row, io.EOF after the last one, or a
// *RowError (with the row's Record) for a row with a quote error, after
// which reading may go on.
func (r *csvReader) Next() (Record, error) {
	var rec Record
	err := r.nextInto(&rec)
	return rec, err
}

// nextInto is Next, into rec (see recordFiller).
func (r *csvReader) nextInto(rec *Record) error {
	if r.err != nil {
		return r.err
	}
	var rd csvRead
	for {
		if r.pending != nil {
			rd, r.pending = *r.pending, nil
		} else if !r.nextPlain(&rd) {
			r.read(&rd) // through encoding/csv
		}
		switch {
		case rd.err == io.EOF:
			r.err = io.EOF
			return io.EOF
		case rd.err != nil:
			r.err = r.wrap(rd.err)
			return r.err
		case rd.perr != nil:
			var err error
			*rec, err = r.rowError(rd)
			return err
		case isBlankRow(rd.fields):
			continue
		}
		r.record(rec, &rd)
		return nil
	}
}

// Close releases the file opened by Open. It is safe to call twice.
func (r *csvReader) Close() error {
	if r.err == nil {
		r.err = errors.New("read manifest: reader is closed")
	}
	c := r.closer
	r.closer = nil
	if c != nil {
		return c.Close()
	}
	return nil
}

func (r *csvReader) wrap(err error) error {
	if r.name == "" {
		return fmt.Errorf("read manifest: %w", err)
	}
	return fmt.Errorf("read manifest %s: %w", r.name, err)
}

// read reads one record and captures where it started.
func (r *csvReader) read(rd *csvRead) {
	r.count.reset()
	fields, err := r.cr.Read()
	*rd = csvRead{}
	// rd.perr's address would put every row's csvRead on the heap, so
	// the error gets a variable of its own, made only when there is one.
	if err != nil {
		if perr := new(*csv.ParseError); errors.As(err, perr) {
			rd.perr, err = *perr, nil
		}
	}
	if err != nil {
		var uq *unclosedQuoteError
		switch {
		case errors.Is(err, errRecordTooLong):
			err = fmt.Errorf("the row after line %d %w", r.lastLine, err)
		case errors.As(err, &uq):
			// The limiter counts every line it saw, dropped ones included;
			// only a "sep=" line went before it.
			sep := r.lineOffset - r.dropped
			err = &unclosedQuoteError{start: uq.start + sep, end: uq.end + sep}
		}
		rd.err = err
		return
	}
	r.records++
	rd.fields = fields
	switch {
	case len(fields) > 0:
		rd.line, _ = r.cr.FieldPos(0)
	case rd.perr != nil: // FieldPos panics when no field was read
		rd.line = rd.perr.StartLine
	}
	rd.offset = r.lineOffset
	rd.line += r.lineOffset
	r.lastLine = rd.line
	// Line ends dropped inside this record's cut cells come before every
	// later record.
	rd.cuts = r.limit.take(r.cr.InputOffset())
	for _, c := range rd.cuts {
		r.lineOffset += c.lines
		r.dropped += c.lines
	}
}

// record turns a good row into a Record: short rows are padded to the
// header's width so every column can be looked up, long rows keep their
// extra fields, and FieldCount keeps the truth for the validator.
func (r *csvReader) record(rec *Record, rd *csvRead) {
	n := len(rd.fields)
	width := max(n, len(r.header.Names))
	*rec = Record{Row: rd.line, Values: slices.Grow(rd.fields, width-n)[:width], FieldCount: n, noControls: !r.limit.controls}
	if len(rd.cuts) > 0 {
		r.applyCuts(rec, rd.cuts)
	}
	if r.text != nil && !r.text.bad {
		return // every byte so far was valid UTF-8, so every field is
	}
	for i, f := range rec.Values[:n] {
		var ok bool
		if rec.Values[i], ok = r.validText(f); !ok {
			rec.BadEncoding = true
		}
	}
}

// applyCuts reports what the fieldLimiter dropped of a record: the true
// field count of a row wider than the column limit, and a cell_too_long
// problem for each cell cut short, whose value is dropped. That value
// shares one string with the row's other cells (encoding/csv allocates a
// record at once), so they are copied to let it go.
func (r *csvReader) applyCuts(rec *Record, cuts []csvCut) {
	cut := false
	for _, c := range cuts {
		if c.columns {
			rec.FieldCount += c.dropped
			continue
		}
		if c.field < 0 || c.field >= rec.FieldCount {
			continue
		}
		start := rec.Values[c.field]
		rec.Values[c.field] = ""
		cut = true
		rec.Problems = append(rec.Problems, Problem{
			Row: rec.Row, Column: problemColumn(r.header, c.field), Code: CodeCellTooLong, Severity: SeverityError,
			Message: cellTooLongMessage(rec.Row, headerColumn(r.header, c.field), c.size, start),
		})
	}
	if cut {
		for i, v := range rec.Values {
			rec.Values[i] = strings.Clone(v)
		}
	}
}

// cellTooLongMessage names the limit, what was found and what to do, and
// quotes the cell's start so it can be found.
func cellTooLongMessage(row int, col string, size int64, start string) string {
	const shown = 24
	if n := utf8.RuneCountInString(start); n > shown {
		i := 0
		for range shown {
			_, w := utf8.DecodeRuneInString(start[i:])
			i += w
		}
		start = start[:i] + "…"
	}
	return fmt.Sprintf("row %d, column %s: the cell is %s bytes long, starting %+q; simbulk reads at most %d KiB in one cell, so the row is not sent. Shorten the cell or clear it; if a quote (\") opens the cell by mistake, remove it, since the cell then runs on to the next quote",
		row, safeName(col), groupDigits(size), start, csvMaxCellBytes>>10)
}

// groupDigits writes n with thousands separators, as messages show counts.
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n < 0 {
		return s
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// estimateRows guesses how many records the whole file holds from its
// size and the bytes per record read so far, for sizing the duplicate
// index; 0 when it cannot tell (a stream, UTF-16 text, or fewer than a
// few hundred records so far).
func (r *csvReader) estimateRows() int {
	read := r.readBytes()
	if r.size <= 0 || r.utf16 || r.records < 256 || read <= 0 {
		return 0
	}
	return int(float64(r.size) / float64(read) * float64(r.records))
}

// validText replaces bytes that are not UTF-8 with U+FFFD and reports
// whether the field was clean. UTF-16 input was already decoded (bad
// sequences became U+FFFD), so there the replacement character itself is
// the sign.
func (r *csvReader) validText(s string) (string, bool) {
	if r.utf16 {
		return s, !strings.ContainsRune(s, utf8.RuneError)
	}
	if utf8.ValidString(s) {
		return s, true
	}
	return strings.ToValidUTF8(s, "\uFFFD"), false
}

// rowError reports a quote error in one row. encoding/csv has consumed the
// faulty line(s), so reading can continue, unless the quote was never
// closed: then the field ran to the end of the file and every later row is
// inside it, which must stop the run rather than lose those rows quietly.
func (r *csvReader) rowError(rd csvRead) (Record, error) {
	pe := rd.perr
	if errors.Is(pe.Err, csv.ErrQuote) && pe.Line > pe.StartLine {
		var next csvRead
		r.read(&next)
		if next.err == io.EOF {
			r.err = r.wrap(fmt.Errorf("line %d: a quoted field opened on this line is never closed, so it runs to the end of the file (line %d); close or remove the stray \"", rd.line, pe.Line+r.lineOffset))
			return Record{}, r.err
		}
		r.pending = &next
	}
	var rec Record
	r.record(&rec, &rd)
	msg := quoteErrorMessage(pe)
	if pe.Line > pe.StartLine {
		dropped := 0
		for _, c := range rd.cuts {
			dropped += c.lines
		}
		msg = fmt.Sprintf("%s (the row spans lines %d-%d)", msg, pe.StartLine+rd.offset, pe.Line+rd.offset+dropped)
	}
	// The fault is in the field after the last one read whole.
	return rec, &RowError{Row: rd.line, Column: problemColumn(r.header, len(rd.fields)), Message: msg, Err: pe}
}

func quoteErrorMessage(pe *csv.ParseError) string {
	if errors.Is(pe.Err, csv.ErrBareQuote) {
		return `a " appears inside a field that does not start with one; put the whole field in quotes and double the inner quote ("7"" tablet"), or re-export the file from the spreadsheet`
	}
	return `a quoted field is not closed properly: after the closing " there must be a delimiter or the end of the line; double any quote inside the field ("")`
}

// problemColumn names column i the way Problems do: the canonical name
// when the header maps to one, else the header as written.
func problemColumn(h Header, i int) string {
	if i >= 0 && i < len(h.Names) {
		if canon, ok := Aliases[NormaliseHeader(h.Names[i])]; ok && h.Index(canon) == i {
			return canon
		}
	}
	return headerColumn(h, i)
}

// decodeText strips a UTF-8 BOM or decodes UTF-16 (found by its BOM, or by
// the zero bytes of ASCII text when the BOM is missing) into UTF-8. Other
// text passes through as is, so invalid UTF-8 can be reported per row
// rather than silently replaced. Zero bytes that are not UTF-16 mean a
// binary file.
func decodeText(br *bufio.Reader) (*bufio.Reader, bool, error) {
	head, err := br.Peek(sniffSize)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return nil, false, err
	}
	var order unicode.Endianness
	switch {
	case bytes.HasPrefix(head, []byte{0xEF, 0xBB, 0xBF}):
		_, err := br.Discard(3)
		return br, false, err
	case bytes.HasPrefix(head, []byte{0xFF, 0xFE}):
		order = unicode.LittleEndian
		br.Discard(2)
	case bytes.HasPrefix(head, []byte{0xFE, 0xFF}):
		order = unicode.BigEndian
		br.Discard(2)
	case bytes.IndexByte(head, 0) < 0:
		return br, false, nil
	default:
		le, ok := looksUTF16(head)
		if !ok {
			return nil, false, fmt.Errorf("%w: the file holds binary data, not text; save the spreadsheet as .xlsx or as CSV UTF-8", ErrNotManifest)
		}
		order = unicode.BigEndian
		if le {
			order = unicode.LittleEndian
		}
	}
	dec := unicode.UTF16(order, unicode.IgnoreBOM).NewDecoder()
	return bufio.NewReaderSize(transform.NewReader(br, dec), sniffSize), true, nil
}

// looksUTF16 recognises BOM-less UTF-16 of mostly ASCII text: one byte of
// every pair is zero, always the same one.
func looksUTF16(head []byte) (littleEndian, ok bool) {
	n := min(len(head), 1024) &^ 1
	if n < 4 {
		return false, false
	}
	var zeroEven, zeroOdd int
	for i := 0; i < n; i += 2 {
		if head[i] == 0 {
			zeroEven++
		}
		if head[i+1] == 0 {
			zeroOdd++
		}
	}
	pairs := n / 2
	switch {
	case zeroEven == 0 && zeroOdd*2 >= pairs:
		return true, true
	case zeroOdd == 0 && zeroEven*2 >= pairs:
		return false, true
	}
	return false, false
}

// sniffDelimiter picks the delimiter: the one named by Excel's "sep=X"
// first line (sepLine is that line's length, to skip it), else whichever of
// ',', ';' and tab occurs most often outside quotes on the first non-blank
// line. Ties and a one-column header go to ','.
func sniffDelimiter(head []byte) (comma rune, sepLine int) {
	if len(head) >= 5 && strings.EqualFold(string(head[:4]), "sep=") {
		d := head[4]
		rest := head[5:]
		if strings.IndexByte(",;\t|", d) >= 0 && (len(rest) == 0 || rest[0] == '\n' || rest[0] == '\r') {
			n := 5
			if bytes.HasPrefix(rest, []byte("\r\n")) {
				n += 2
			} else if len(rest) > 0 {
				n++
			}
			return rune(d), n
		}
	}
	candidates := [...]rune{',', ';', '\t'}
	var counts [len(candidates)]int
	inQuote, content := false, false
scan:
	for _, c := range head {
		if c == '"' {
			inQuote = !inQuote
			content = true
			continue
		}
		if inQuote {
			continue
		}
		switch c {
		case ',':
			counts[0]++
		case ';':
			counts[1]++
		case '\t':
			counts[2]++
		case '\n', '\r':
			if content {
				break scan
			}
			counts = [len(candidates)]int{} // a blank or delimiters-only line says nothing
		case ' ':
		default:
			content = true
		}
	}
	best := 0
	for i := range counts {
		if counts[i] > counts[best] {
			best = i
		}
	}
	return candidates[best], 0
}

// crOnlyLineEnds recognises files whose lines end in a lone CR (Excel's
// "CSV (Macintosh)"), which encoding/csv would read as a single line.
func crOnlyLineEnds(head []byte) bool {
	return bytes.IndexByte(head, '\n') < 0 && bytes.IndexByte(head, '\r') >= 0
}

// crToLF turns every CR into LF, for files that use CR alone as the line
// end.
type crToLF struct{ r io.Reader }

func (c crToLF) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	for i, b := range p[:n] {
		if b == '\r' {
			p[i] = '\n'
		}
	}
	return n, err
}

// utf8Watch passes text through to encoding/csv and notes whether all of
// it so far was valid UTF-8. While it was, so is every field cut from it
// (fields are split at ASCII delimiters, quotes and line ends), and the
// reader can skip checking each field: one utf8.Valid over a whole read is
// much cheaper than a call per field. From the first bad byte on, fields
// are checked one by one. Records come from bytes already read, so bad
// is set before any record holding the bad byte is returned.
type utf8Watch struct {
	r     io.Reader
	bad   bool
	carry [utf8.UTFMax]byte // the start of a rune cut off by the end of the last read
	nc    int
}

func (w *utf8Watch) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if !w.bad {
		w.check(p[:n])
		if err != nil && w.nc > 0 {
			w.bad = true // the text ends inside a rune
		}
	}
	return n, err
}

func (w *utf8Watch) check(b []byte) {
	if w.nc > 0 {
		// Finish the rune the last read cut off.
		var buf [utf8.UTFMax]byte
		m := copy(buf[:], w.carry[:w.nc])
		m += copy(buf[m:], b)
		if !utf8.FullRune(buf[:m]) { // b was shorter than the rest of the rune
			w.carry, w.nc = buf, m
			return
		}
		r, size := utf8.DecodeRune(buf[:m])
		if r == utf8.RuneError && size == 1 {
			w.bad = true
			return
		}
		b = b[size-w.nc:]
		w.nc = 0
	}
	// Keep back a rune cut off by the end of b for the next read.
	end := len(b)
	for i := len(b) - 1; i >= 0 && i > len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				end = i
			}
			break
		}
	}
	if !utf8.Valid(b[:end]) {
		w.bad = true
		return
	}
	w.nc = copy(w.carry[:], b[end:])
}

// recordLimiter fails once more than max bytes are read between two
// resets; the reader resets it before each record.
type recordLimiter struct {
	r   io.Reader
	n   int
	max int
}

func (l *recordLimiter) reset() { l.n = 0 }

func (l *recordLimiter) Read(p []byte) (int, error) {
	if l.n > l.max {
		return 0, errRecordTooLong
	}
	n, err := l.r.Read(p)
	l.n += n
	return n, err
}
