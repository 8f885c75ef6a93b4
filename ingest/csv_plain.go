package ingest

import (
	"bufio"
	"bytes"
	"io"
	"strings"
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
// while one is open, and the feeder gives it at most one line per read,
// so when it returns a record it holds nothing of the next. Lines it does
// not see are counted into lineOffset, so rows keep the numbers an editor
// shows. FuzzCSVReader reads every input both ways and requires the same
// records, row numbers, problems and errors.

// lineFeeder is encoding/csv's text (through the fieldLimiter): the line
// Next did not take (held), then the lines after it, at most one per read.
type lineFeeder struct {
	lines *bufio.Reader
	held  []byte // the unread rest of a line Next handed over
	err   error  // the text's error (io.EOF) after held
	ends  int    // line ends passed on, or held to be
}

func (f *lineFeeder) Read(p []byte) (int, error) {
	if len(f.held) == 0 {
		if f.err != nil {
			return 0, f.err
		}
		line, err := f.lines.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			err = nil // the rest of a long line comes with the next read
		}
		f.hand(line, err)
		if len(line) == 0 {
			return 0, err
		}
	}
	n := copy(p, f.held)
	f.held = f.held[n:]
	return n, nil
}

// hand makes line, just read from f.lines, the next text encoding/csv
// reads, and err what comes after it. line stays valid until f reads
// f.lines again, which f does only once it has passed all of line on.
func (f *lineFeeder) hand(line []byte, err error) {
	f.held, f.err = line, err
	if n := len(line); n > 0 && line[n-1] == '\n' {
		f.ends++
	}
}

// nextPlain reads the next line and, when it is plain, returns its record
// (ok). Empty lines, which encoding/csv skips, are skipped here too. Any
// other line is handed to the feeder for encoding/csv; so is the end of
// the text, whose error the csv path reports.
func (r *csvReader) nextPlain() (rd csvRead, ok bool) {
	for {
		line, err := r.lines.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			err = nil // too long to be plain: plainLine sees no line end
		}
		text, plain := r.plainLine(line, err != nil)
		if !plain || len(line) == 0 {
			r.feed.hand(line, err)
			return csvRead{}, false
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
				return csvRead{}, false
			}
			continue // an empty line, which encoding/csv skips
		}
		r.records++
		r.lastLine = n
		return csvRead{fields: r.splitLine(text), line: n, offset: r.lineOffset}, true
	}
}

// plainLine reports whether line is plain and returns its text without
// the line end. A line that does not end in LF is complete only at the
// end of the text (atEnd); a longer one is never plain.
func (r *csvReader) plainLine(line []byte, atEnd bool) (text []byte, plain bool) {
	text = line
	if n := len(text); n > 0 && text[n-1] == '\n' {
		text = text[:n-1]
		if n := len(text); n > 0 && text[n-1] == '\r' {
			text = text[:n-1]
		}
	} else if !atEnd {
		return nil, false
	}
	limits := r.limit.limits
	comma := byte(r.cr.Comma)
	if limits.noShortcuts || int64(len(text)) >= limits.cellBytes ||
		!plainText(text, comma) || bytes.Count(text, []byte{comma}) >= limits.columns {
		return nil, false
	}
	return text, true
}

// splitLine cuts a plain line into its fields: one string for the line,
// which the fields share, as encoding/csv does, and room for the
// header's columns so that record need not grow it.
func (r *csvReader) splitLine(text []byte) []string {
	comma := byte(r.cr.Comma)
	n := bytes.Count(text, []byte{comma}) + 1
	fields := make([]string, n, max(n, len(r.header.Names)))
	s := string(text)
	for i := 0; i < n-1; i++ {
		j := strings.IndexByte(s, comma)
		fields[i], s = s[:j], s[j+1:]
	}
	fields[n-1] = s
	return fields
}

// readBytes is how much of the text the records so far took.
func (r *csvReader) readBytes() int64 { return r.plainBytes + r.cr.InputOffset() }

var _ io.Reader = (*lineFeeder)(nil)
