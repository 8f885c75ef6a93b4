package ingest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"strings"
	"unsafe"
)

// The plain-line path. Nearly every line of a real manifest is plain: no
// quote, no control character, short. Such a line at a record boundary is
// one record whose fields are its text between delimiters, which is what
// encoding/csv would return for it, and the fieldLimiter would pass it
// through untouched. So Next cuts such a line into its record itself,
// reading it straight from the text, and hands every other line to
// encoding/csv through the limiter as before (lineFeeder). That spares the
// plain lines three copies of their bytes and a pass of the CSV state
// machine, which made reading twice the bare encoding/csv read.
//
// encoding/csv only ever sees whole records: it asks for more text only
// while one is open, and the feeder never gives it more than can belong to
// that record (one line, or quoted text up to the next quote), so when it
// returns a record it holds nothing of the next. Lines it does
// not see are counted into lineOffset, so rows keep the numbers an editor
// shows. FuzzCSVReader reads every input both ways and requires the same
// records, row numbers, problems and errors.

// lineFeeder is encoding/csv's text (through the fieldLimiter): the line
// Next did not take (held), then the lines after it, at most one per read,
// but for text inside quotes: no record can end before the next quote, so
// up to it goes at once (many lines of a long quoted cell, or of a quote
// never closed, one at a time had made reading them twice as slow).
type lineFeeder struct {
	lines *bufio.Reader
	// inQuotes tells whether the text so far ends inside a quoted
	// field (the fieldLimiter's state); nil to feed line by line only.
	inQuotes func() bool
	held     []byte // the unread rest of what was read last
	err      error  // the text's error (io.EOF) after held
	ends     int    // line ends passed on, or held to be
}

func (f *lineFeeder) Read(p []byte) (int, error) {
	if len(f.held) == 0 {
		if f.err != nil {
			return 0, f.err
		}
		delim := byte('\n')
		if f.inQuotes != nil && f.inQuotes() {
			delim = '"'
		}
		text, err := f.lines.ReadSlice(delim)
		if err == bufio.ErrBufferFull {
			err = nil // the rest comes with the next read
		}
		f.hand(text, err)
		if len(text) == 0 {
			return 0, err
		}
	}
	n := copy(p, f.held)
	f.held = f.held[n:]
	return n, nil
}

// hand makes text, just read from f.lines, the next text encoding/csv
// reads, and err what comes after it. text stays valid until f reads
// f.lines again, which f does only once it has passed all of it on.
func (f *lineFeeder) hand(text []byte, err error) {
	f.held, f.err = text, err
	f.ends += bytes.Count(text, []byte{'\n'})
}

// nextPlain reads the next line and, when it is plain, puts its record in
// rd and reports true. Empty lines, which encoding/csv skips, are skipped
// here too. Any other line is handed to the feeder for encoding/csv; so is
// the end of the text, whose error the csv path reports.
func (r *csvReader) nextPlain(rd *csvRead) bool {
	for {
		line, err := r.lines.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			err = nil // too long to be plain: plainLine sees no line end
		}
		text, commas, plain := r.plainLine(line, err != nil)
		if !plain || len(line) == 0 {
			r.feed.hand(line, err)
			return false
		}
		r.plainBytes += int64(len(line))
		// A line encoding/csv does not see. Its number: the lines before
		// it that encoding/csv saw or the limiter dropped (all of them
		// fed), and those it did not see (the "sep=" line, plain lines).
		r.lineOffset++
		n := r.feed.ends + r.lineOffset - r.dropped
		if err != nil {
			r.feed.hand(nil, err) // the last line, without a line end
		}
		if len(text) == 0 {
			if err != nil {
				return false
			}
			continue // an empty line, which encoding/csv skips
		}
		r.records++
		r.lastLine = n
		*rd = csvRead{fields: r.splitLine(text, commas), line: n, offset: r.lineOffset}
		return true
	}
}

// plainLine reports whether line is plain and returns its text without
// the line end, and how many delimiters it holds. A line that does not end
// in LF is complete only at the end of the text (atEnd); a longer one is
// never plain.
func (r *csvReader) plainLine(line []byte, atEnd bool) (text []byte, commas int, plain bool) {
	text = line
	if n := len(text); n > 0 && text[n-1] == '\n' {
		text = text[:n-1]
		if n := len(text); n > 0 && text[n-1] == '\r' {
			text = text[:n-1]
		}
	} else if !atEnd {
		return nil, 0, false
	}
	limits := r.limit.limits
	comma := byte(r.cr.Comma)
	if limits.noShortcuts || int64(len(text)) >= limits.cellBytes || !plainText(text, comma) {
		return nil, 0, false
	}
	if commas = bytes.Count(text, []byte{comma}); commas >= limits.columns {
		return nil, 0, false
	}
	return text, commas, true
}

// plainText reports whether b holds no quote and no byte that may start a
// control character (C0 but a TAB delimiter, DEL, 0xC2), testing eight
// bytes at a time.
func plainText(b []byte, comma byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	// Each term has a byte's high bit set when that byte of x is below
	// 0x20 or equal to the other value (exact for "any", which is all
	// that is asked).
	var found uint64
	rest := b
	for ; len(rest) >= 8; rest = rest[8:] {
		x := binary.LittleEndian.Uint64(rest)
		q, d, c := x^('"'*ones), x^(0x7f*ones), x^(0xc2*ones)
		found |= (x-0x20*ones)&^x | (q-ones)&^q | (d-ones)&^d | (c-ones)&^c
	}
	if found&highs != 0 {
		if comma != '\t' {
			return false
		}
		rest = b // a TAB delimiter is below 0x20 too: look byte by byte
	}
	for _, c := range rest {
		if (c < 0x20 && c != comma) || c == '"' || c == 0x7f || c == 0xc2 {
			return false
		}
	}
	return true
}

// splitLine cuts a plain line into its fields, with room for the
// header's columns so that record need not grow them. The fields share
// one string, as encoding/csv's do; both the text and the fields come
// from blocks that many rows share (rowArena).
func (r *csvReader) splitLine(text []byte, commas int) []string {
	comma := byte(r.cr.Comma)
	n := commas + 1
	fields := r.arena.fields(n, max(n, len(r.header.Names)))
	s := r.arena.text(text)
	for i := 0; i < n-1; i++ {
		j := strings.IndexByte(s, comma)
		fields[i], s = s[:j], s[j+1:]
	}
	fields[n-1] = s
	return fields
}

// rowArena hands out the text and the fields of plain rows from blocks of
// many rows each, in place of two allocations per row, which with the
// garbage collector's share of them had cost a fifth of reading. A block
// is only ever appended to, never written over, so what it handed out
// stays as it was for as long as anything refers to it; the price is that
// a row kept keeps its block (a few KiB) alive, where the reader's
// callers keep rows only briefly or a few of them.
type rowArena struct {
	texts  []byte
	values []string
}

// Block sizes: a few dozen rows of a typical manifest each.
const (
	arenaTextBytes = 8 << 10
	arenaValues    = 512
)

// text returns b as a string that shares a block with other rows' text.
func (a *rowArena) text(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > arenaTextBytes/4 {
		return string(b) // a long line gets a block of its own
	}
	if cap(a.texts)-len(a.texts) < len(b) {
		a.texts = make([]byte, 0, arenaTextBytes)
	}
	start := len(a.texts)
	a.texts = append(a.texts, b...)
	return unsafe.String(&a.texts[start], len(b))
}

// fields returns n empty fields with room for size (the full slice
// expression keeps an append to them from reaching the next row's).
func (a *rowArena) fields(n, size int) []string {
	if size > arenaValues/4 {
		return make([]string, n, size)
	}
	if cap(a.values)-len(a.values) < size {
		a.values = make([]string, 0, arenaValues)
	}
	start := len(a.values)
	a.values = a.values[:start+size]
	return a.values[start : start+n : start+size]
}

// readBytes is how much of the text the records so far took.
func (r *csvReader) readBytes() int64 { return r.plainBytes + r.cr.InputOffset() }

var _ io.Reader = (*lineFeeder)(nil)
