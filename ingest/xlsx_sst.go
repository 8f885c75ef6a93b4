package ingest

import (
	"archive/zip"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"unicode/utf8"
)

// sharedStrings is a workbook's shared-string table, held compactly: all
// items' text back to back in one arena, and where each item ends. A
// million short items cost their text plus 4 bytes each, not a Go string
// header (16 bytes) and an allocation apiece.
type sharedStrings struct {
	text []byte
	ends []uint32 // item i is text[ends[i-1]:ends[i]]
	// long holds the items cut at the cell limit: index -> bytes found.
	// Each costs more than MaxCellBytes of XML, so there are few.
	long map[int]int64
}

func (s *sharedStrings) len() int {
	if s == nil {
		return 0
	}
	return len(s.ends)
}

// item returns item i and its full length (more than the text when the
// item was cut at the cell limit).
func (s *sharedStrings) item(i int) (string, int64) {
	start := uint32(0)
	if i > 0 {
		start = s.ends[i-1]
	}
	t := s.text[start:s.ends[i]]
	if n, ok := s.long[i]; ok {
		return string(t), n
	}
	return string(t), int64(len(t))
}

// readSharedStrings streams the table twice: once to measure it, once to
// keep it. The first pass sizes the arena exactly, so it is neither copied
// while it grows (which would hold it twice) nor reserved from the zip
// directory's size (which counts markup: a table of empty items declares
// hundreds of MB and holds no text). Both passes enforce the limits.
func readSharedStrings(ctx context.Context, f *zip.File, limits xlsxLimits) (*sharedStrings, error) {
	if f.UncompressedSize64 > uint64(limits.sheetBytes) {
		return nil, declaredTooLarge(f, limits)
	}
	measure := &sstParser{s: &sharedStrings{}, limits: limits}
	if err := measure.parse(ctx, f); err != nil {
		return nil, err
	}
	s := &sharedStrings{text: make([]byte, 0, measure.n), ends: make([]uint32, 0, measure.items)}
	if err := (&sstParser{s: s, limits: limits, keep: true}).parse(ctx, f); err != nil {
		return nil, err
	}
	return s, nil
}

// parse runs the parser over the part f.
func (p *sstParser) parse(ctx context.Context, f *zip.File) error {
	rc, err := f.Open()
	if err != nil {
		return describe(f.Name, "shared-string", errZipDamaged{err})
	}
	defer rc.Close()
	p.xs = newXMLStream(newPartReader(ctx, rc, p.limits))
	if err := p.run(); err != nil {
		return describe(fmt.Sprintf("shared strings (%s) item %d", f.Name, p.items+1), "shared-string", err)
	}
	return nil
}

// sstParser reads <si> items: the text of <t> directly in <si>, and of
// <t> in rich-text runs (<si><r><t>), concatenated; phonetic guides
// (<rPh><t>) are not part of the value.
type sstParser struct {
	s      *sharedStrings
	limits xlsxLimits
	xs     *xmlStream
	path   [maxDepth + 1]string // local names of the open elements
	// keep is false on the measuring pass: text and ends are counted
	// (n, items), not stored.
	keep  bool
	n     int   // bytes of text kept so far
	items int   // items ended so far
	start int   // where the current item's text starts
	found int64 // its length, beyond what is kept
}

func (p *sstParser) run() error {
	for {
		tok, err := p.xs.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		d := p.xs.depth
		switch el := tok.(type) {
		case xml.StartElement:
			p.path[d] = el.Name.Local
			if d == 2 && el.Name.Local == "si" {
				p.start, p.found = p.n, 0
			}
		case xml.CharData:
			if p.inText(d) {
				if err := p.add(el); err != nil {
					return err
				}
			}
		case xml.EndElement:
			if d == 1 && el.Name.Local == "si" {
				if err := p.endItem(); err != nil {
					return err
				}
			}
		}
	}
}

// inText reports whether character data at depth d is item text:
// sst/si/t or sst/si/r/t.
func (p *sstParser) inText(d int) bool {
	switch {
	case d == 3:
		return p.path[2] == "si" && p.path[3] == "t"
	case d == 4:
		return p.path[2] == "si" && p.path[3] == "r" && p.path[4] == "t"
	}
	return false
}

// add keeps text up to the cell limit for the item and the table.
func (p *sstParser) add(b []byte) error {
	p.found += int64(len(b))
	room := p.limits.cellBytes - (p.n - p.start)
	b = cutUTF8(b, room)
	if int64(p.n+len(b)) > p.limits.sharedStringBytes {
		return &LimitError{
			Limit: "MaxSharedStringBytes", Max: p.limits.sharedStringBytes, Found: int64(p.n + len(b)), atLeast: true,
			Unit: "bytes", Where: "the shared-string table", Of: " of text", Advice: adviceSplit,
		}
	}
	if p.keep {
		p.s.text = append(p.s.text, b...)
	}
	p.n += len(b)
	return nil
}

func (p *sstParser) endItem() error {
	if p.items >= p.limits.sharedStrings {
		return &LimitError{
			Limit: "MaxSharedStrings", Max: int64(p.limits.sharedStrings), Found: int64(p.items + 1), atLeast: true,
			Unit: "items", Where: "the shared-string table", Advice: adviceSplit,
		}
	}
	if p.keep {
		p.s.ends = append(p.s.ends, uint32(p.n))
		if p.found > int64(p.n-p.start) {
			if p.s.long == nil {
				p.s.long = make(map[int]int64)
			}
			p.s.long[p.items] = p.found
		}
	}
	p.items++
	p.start, p.found = p.n, 0
	return nil
}

// cutUTF8 returns at most n bytes of b, not splitting a character.
func cutUTF8(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	if n <= 0 {
		return b[:0]
	}
	for n > 0 && !utf8.RuneStart(b[n]) {
		n--
	}
	return b[:n]
}

func declaredTooLarge(f *zip.File, limits xlsxLimits) error {
	return &LimitError{
		Limit: "MaxSheetBytes", Max: limits.sheetBytes, Found: int64(min(f.UncompressedSize64, 1<<62)), Unit: "bytes",
		Where: "part " + f.Name, Of: " of XML (as the zip directory declares)", Advice: adviceSplit, tooLarge: true,
	}
}
