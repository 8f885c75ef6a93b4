package ingest

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"

	"golang.org/x/net/html/charset"
)

// partReader feeds one zip part to encoding/xml and keeps the decoder
// within the limits whatever the part holds.
//
// encoding/xml holds each token whole: a run of 1.5 GB of whitespace is
// one CharData, buffered in full before the reader sees any of it. So
// partReader is an io.ByteReader, which the decoder then reads directly
// (without a bufio.Reader of its own), and it counts the bytes the current
// token has taken; past tokenMax it fails, and the decoder with it. The
// caller marks each token's start (startToken) as it receives one.
//
// It also counts every byte of the part, markup and whitespace included,
// against the part's limit, and checks ctx each time it refills, every
// 32 KiB, so a cancelled open stops within milliseconds.
type partReader struct {
	ctx        context.Context
	src        io.Reader
	buf        []byte
	r, w       int
	read       int64 // bytes taken from src
	limit      int64 // most bytes src may give
	limitName  string
	n          int64 // bytes handed to the decoder
	tokenStart int64 // n when the current token began
	tokenMax   int64
	err        error // sticky
}

func newPartReader(ctx context.Context, src io.Reader, limits xlsxLimits) *partReader {
	return &partReader{
		ctx: ctx, src: src, buf: make([]byte, 32<<10),
		limit: limits.sheetBytes, limitName: "MaxSheetBytes", tokenMax: limits.tokenBytes,
	}
}

// errZipDamaged marks a fault in the zip data (a bad checksum, deflate
// data that does not inflate, a part longer than its declared size) as
// opposed to a fault in the XML.
type errZipDamaged struct{ err error }

func (e errZipDamaged) Error() string { return e.err.Error() }
func (e errZipDamaged) Unwrap() error { return e.err }

// ReadByte is what encoding/xml calls for every byte.
func (p *partReader) ReadByte() (byte, error) {
	if p.r == p.w {
		if err := p.fill(); err != nil {
			return 0, err
		}
	}
	p.n++
	if p.n-p.tokenStart > p.tokenMax {
		return 0, p.tokenTooLong()
	}
	b := p.buf[p.r]
	p.r++
	return b, nil
}

// Read serves the charset converter that encoding/xml puts in front of a
// part declared in another encoding; the token count is then only as
// exact as the converter's buffering (a few KiB).
func (p *partReader) Read(b []byte) (int, error) {
	if p.r == p.w {
		if err := p.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(b, p.buf[p.r:p.w])
	p.r += n
	p.n += int64(n)
	if p.n-p.tokenStart > p.tokenMax {
		return 0, p.tokenTooLong()
	}
	return n, nil
}

func (p *partReader) fill() error {
	if p.err != nil {
		return p.err
	}
	if err := p.ctx.Err(); err != nil {
		p.err = err
		return err
	}
	n, err := p.src.Read(p.buf)
	p.r, p.w = 0, n
	p.read += int64(n)
	if p.read > p.limit {
		p.err = &LimitError{
			Limit: p.limitName, Max: p.limit, Found: p.read, Unit: "bytes", atLeast: true, tooLarge: true,
			Where: "the part", Of: " of XML", Advice: adviceSplit,
		}
		return p.err
	}
	switch {
	case n > 0:
		return nil
	case err == io.EOF:
		return io.EOF // not sticky: the decoder may ask again
	case err == nil:
		return p.fill()
	}
	p.err = errZipDamaged{err}
	return p.err
}

func (p *partReader) tokenTooLong() error {
	p.err = &LimitError{
		Limit: "MaxXMLTokenBytes", Max: p.tokenMax, Found: p.n - p.tokenStart, Unit: "bytes", atLeast: true,
		Where: "the XML", Of: " in one token (text, whitespace or a tag)",
		Advice: fmt.Sprintf("no manifest cell is that long (a cell holds at most %s, MaxCellBytes), so the file is damaged or padded; %s", byteCount(MaxCellBytes), adviceCSV),
	}
	return p.err
}

// startToken marks where the next token begins.
func (p *partReader) startToken() { p.tokenStart = p.n }

// maxDepth bounds element nesting. A worksheet nests six deep; the
// decoder keeps a record of every open element, so a part of nothing but
// "<a>" would otherwise grow it by the gigabyte.
const maxDepth = 64

// xmlStream is a token decoder over a partReader with the nesting bound.
type xmlStream struct {
	in    *partReader
	dec   *xml.Decoder
	depth int
}

func newXMLStream(in *partReader) *xmlStream {
	dec := xml.NewDecoder(in)
	dec.CharsetReader = charset.NewReaderLabel // as excelize does
	return &xmlStream{in: in, dec: dec}
}

// next returns the next token. Token, not RawToken: it checks that tags
// match, so damage is noticed where it is.
func (s *xmlStream) next() (xml.Token, error) {
	s.in.startToken()
	tok, err := s.dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok.(type) {
	case xml.StartElement:
		s.depth++
		if s.depth > maxDepth {
			return nil, fmt.Errorf("elements nested more than %d deep", maxDepth)
		}
	case xml.EndElement:
		s.depth--
	}
	return tok, nil
}

// describe turns an error from next into what the user is told, prefixed
// by where (`sheet "Devices" row 7`); part names the XML ("worksheet").
func describe(where, part string, err error) error {
	var le *LimitError
	var zd errZipDamaged
	switch {
	case errors.As(err, &le):
		return fmt.Errorf("%s: %w", where, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: reading stopped: %w", where, err)
	case errors.As(err, &zd):
		return fmt.Errorf("%s: the workbook file is damaged (%w); open the file in Excel and save it again", where, err)
	}
	return fmt.Errorf("%s: the %s XML is damaged (%w); open the file in Excel and save it again", where, part, err)
}
