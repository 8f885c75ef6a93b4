package ingest

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Control characters in cells. A manifest cell is text a person typed or
// pasted; a control character in it is debris (a NUL from a binary file,
// an ESC from a terminal, a C1 code from a Windows-1252 file decoded as
// Latin-1) that a provider's API would store or refuse and that a report
// would write raw into someone's terminal or spreadsheet. TAB, CR and LF
// are the exception outside identifiers: a quoted description may hold
// them legitimately.

// controlPolicy says which characters count in a cell.
type controlPolicy uint8

const (
	// textControls: C0 but TAB, CR and LF, DEL, and C1.
	textControls controlPolicy = iota
	// identControls: every C0, DEL and C1. An identifier is one token, so
	// TAB, CR and LF have no business inside one (around it they are
	// trimmed before the cell is looked at).
	identControls
)

// mayHoldControl is the fast test run on every cell: false means the cell
// holds no control character under any policy. It looks at single bytes
// only and so never allocates; 0xC2 starts both the C1 codes (U+0080 to
// U+009F) and common text such as "£" or "°", which the slow path tells
// apart.
func mayHoldControl(s string) bool {
	// Eight bytes at a time: every cell of every row passes here, and a
	// byte loop with three comparisons cost validation a tenth of its
	// time. The word tests are the classic "has a byte less than n" and
	// "has a byte equal to b" bit tricks.
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		less := (x - ones*0x20) &^ x & highs
		del, c2 := x^(ones*0x7f), x^(ones*0xc2)
		if less|((del-ones)&^del&highs)|((c2-ones)&^c2&highs) != 0 {
			return true
		}
	}
	for ; i < len(s); i++ {
		if b := s[i]; b < 0x20 || b == 0x7f || b == 0xc2 {
			return true
		}
	}
	return false
}

// controlLen returns the length in bytes of the control character that
// starts s[i:], or 0 if none does.
func controlLen(s string, i int, p controlPolicy) int {
	switch b := s[i]; {
	case b == '\t' || b == '\n' || b == '\r':
		if p == identControls {
			return 1
		}
	case b < 0x20 || b == 0x7f:
		return 1
	case b == 0xc2 && i+1 < len(s) && s[i+1] >= 0x80 && s[i+1] < 0xa0:
		return 2
	}
	return 0
}

// controlFound describes the control characters of one cell: the first
// one, where it is, and how many there are.
type controlFound struct {
	r     rune
	pos   int // the first one's position in characters, from 1
	count int
}

// findControls looks for control characters in s[lo:hi]; positions count
// from the start of s. The second result is false when there are none.
func findControls(s string, lo, hi int, p controlPolicy) (controlFound, bool) {
	var f controlFound
	s = s[:hi]
	for i := lo; i < len(s); {
		n := controlLen(s, i, p)
		if n == 0 {
			i++
			continue
		}
		if f.count == 0 {
			f.r, _ = utf8.DecodeRuneInString(s[i:])
			f.pos = utf8.RuneCountInString(s[:i]) + 1
		}
		f.count++
		i += n
	}
	return f, f.count > 0
}

// replaceControls returns s with each control character replaced by
// U+FFFD, the mark every reader of the reports knows as "a character was
// here that could not be shown".
func replaceControls(s string, p controlPolicy) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		if n := controlLen(s, i, p); n > 0 {
			b.WriteRune(utf8.RuneError)
			i += n
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

// escapeControl writes a control character the way Go and most languages
// would in a string literal: \x00, \t, \u0085.
func escapeControl(r rune) string {
	q := strconv.QuoteRune(r)
	return q[1 : len(q)-1]
}

// describe says what was found, for a problem message: `\x00 at position
// 70000`, and how many more.
func (f controlFound) describe() string {
	s := escapeControl(f.r) + " at position " + strconv.Itoa(f.pos)
	if f.count > 1 {
		s += " (and " + strconv.Itoa(f.count-1) + " more)"
	}
	return s
}

// safeName shortens a name for a message and replaces control characters,
// so that no message grows with what a file holds nor carries a control
// character raw.
func safeName(s string) string {
	const max = 40
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	if mayHoldControl(s) {
		s = replaceControls(s, identControls)
	}
	return s
}

// listNames lists names for a message: the first few, then how many more,
// so that a header of a thousand columns gives a line, not a page.
func listNames(names []string) string {
	const shown = 20
	if len(names) == 0 {
		return "none"
	}
	var b strings.Builder
	for i, n := range names[:min(len(names), shown)] {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(safeName(n))
	}
	if more := len(names) - shown; more > 0 {
		b.WriteString(" … and " + strconv.Itoa(more) + " more")
	}
	return b.String()
}
