package reports

import (
	"strings"
	"unicode/utf8"
)

// clean replaces every character that no report may carry raw with
// U+FFFD, the replacement character: the C0 controls except tab, line
// feed and carriage return, DEL, the C1 controls (U+0080 to U+009F), the
// noncharacters U+FFFE and U+FFFF, and bytes that are not UTF-8.
//
// Why: XML 1.0 cannot hold most of them at all (a NUL makes report.xlsx a
// file Excel refuses or "repairs"), a terminal shown a CSV file obeys an
// ESC sequence in it, and a NUL in a CSV file cuts the line short for
// many tools. One visible mark, the same in every file, says "something
// unprintable was here" without pretending to know what it meant; the
// checkpoint still has the original bytes. A string with nothing to
// replace is returned as it is, without copying.
func clean(s string) string {
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if unsafeASCII(c) {
				return cleanFrom(s, i)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if unsafeRune(r, n) {
			return cleanFrom(s, i)
		}
		i += n
	}
	return s
}

// cleanFrom is clean once the first character to replace is known to be
// at i: the copy starts there.
func cleanFrom(s string, i int) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r < utf8.RuneSelf && unsafeASCII(byte(r))) || unsafeRune(r, n) {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func unsafeASCII(c byte) bool {
	return (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f
}

// unsafeRune reports a decoded non-ASCII rune (n bytes long) as one to
// replace.
func unsafeRune(r rune, n int) bool {
	switch {
	case r == utf8.RuneError && n == 1: // not UTF-8
		return true
	case r >= 0x80 && r <= 0x9f: // C1
		return true
	case r == 0xfffe || r == 0xffff:
		return true
	}
	return false
}

// safeCell is a cell as every table file holds it: cleaned, then
// neutralised (clean first, so that what neutralising looks at is what
// gets written).
func safeCell(s string) string { return Neutralise(clean(s)) }
