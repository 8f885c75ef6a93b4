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

// readSharedStrings streams the table once. The sizes come from the zip
// directory, which archive/zip holds the data to, so the arena is
// allocated once at its final size and never copied while it grows.
func readSharedStrings(ctx context.Context, f *zip.File, limits xlsxLimits) (*sharedStrings, error) {
	if f.UncompressedSize64 > uint64(limits.sheetBytes) {
		return nil, declaredTooLarge(f, limits)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, describe(f.Name, "shared-string", errZipDamaged{err})
	}
	defer rc.Close()
	declared := int64(f.UncompressedSize64)
	s := &sharedStrings{
		text: make([]byte, 0, min(declared, limits.sharedStringBytes)),
		ends: make([]uint32, 0, min(declared/int64(len("<si/>"))+1, int64(limits.sharedStrings))),
	}
	p := sstParser{s: s, limits: limits, xs: newXMLStream(newPartReader(ctx, rc, limits))}
	if err := p.run(); err != nil {
		return nil, describe(fmt.Sprintf("shared strings (%s) item %d", f.Name, len(s.ends)+1), "shared-string", err)
	}
	return s, nil
}

// sstParser reads <si> items: the text of <t> directly in <si>, and of
// <t> in rich-text runs (<si><r><t>), concatenated; phonetic guides
// (<rPh><t>) are not part of the value.
type sstParser struct {
	s      *sharedStrings
	limits xlsxLimits
	xs     *xmlStream
	path   [maxDepth + 1]string // local names of the open elements
	start  int                  // where the current item's text starts
	found  int64                // its length, beyond what is kept
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
				p.start, p.found = len(p.s.text), 0
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
	room := p.limits.cellBytes - (len(p.s.text) - p.start)
	b = cutUTF8(b, room)
	if int64(len(p.s.text)+len(b)) > p.limits.sharedStringBytes {
		return &LimitError{
			Limit: "MaxSharedStringBytes", Max: p.limits.sharedStringBytes, Found: int64(len(p.s.text) + len(b)), atLeast: true,
			Unit: "bytes", Where: "the shared-string table", Of: " of text", Advice: adviceSplit,
		}
	}
	p.s.text = append(p.s.text, b...)
	return nil
}

func (p *sstParser) endItem() error {
	if len(p.s.ends) >= p.limits.sharedStrings {
		return &LimitError{
			Limit: "MaxSharedStrings", Max: int64(p.limits.sharedStrings), Found: int64(len(p.s.ends) + 1), atLeast: true,
			Unit: "items", Where: "the shared-string table", Advice: adviceSplit,
		}
	}
	i := len(p.s.ends)
	p.s.ends = append(p.s.ends, uint32(len(p.s.text)))
	if p.found > int64(len(p.s.text)-p.start) {
		if p.s.long == nil {
			p.s.long = make(map[int]int64)
		}
		p.s.long[i] = p.found
	}
	p.start, p.found = len(p.s.text), 0
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
