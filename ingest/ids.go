package ingest

import (
	"fmt"
	"strconv"

	"github.com/simbulk/simbulk/ingest/checkdigit"
)

// Identifier checks. The exported functions are the bare arithmetic of
// package checkdigit with the EID's length rule added; they stay here for
// the sample generator and the tests of other packages that build valid
// identifiers. The unexported check* functions add the length and prefix
// rules and say in words what is wrong, for a person fixing a manifest.
// None of them use regular expressions or allocate unless they find a
// problem: they run once per cell of a million-row manifest.

// EIDValid reports whether s is a valid EID: 32 digits whose value mod 97 is
// 1 (ISO/IEC 7064 MOD 97-10, as for IBANs).
func EIDValid(s string) bool {
	return len(s) == 32 && checkdigit.Mod97Valid(s)
}

// EIDCheckDigits returns the two check digits that make the 30-digit prefix
// first30 a valid EID (first30 + EIDCheckDigits(first30) passes EIDValid),
// or "" when first30 is not 30 digits.
func EIDCheckDigits(first30 string) string {
	if len(first30) != 30 {
		return ""
	}
	return checkdigit.Mod97Digits(first30)
}

// LuhnValid reports whether digits (at least two: a payload and its check
// digit) pass the Luhn check used by ICCIDs and IMEIs. It is
// checkdigit.LuhnValid.
func LuhnValid(digits string) bool { return checkdigit.LuhnValid(digits) }

// LuhnDigit returns the Luhn check digit ('0'-'9') to append to payload, or
// 0 when payload contains anything but ASCII digits. It is
// checkdigit.LuhnDigit.
func LuhnDigit(payload string) byte { return checkdigit.LuhnDigit(payload) }

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// firstNonDigit describes the first character of s that is not a digit,
// for messages.
func firstNonDigit(s string) string {
	for _, r := range s {
		if r < '0' || r > '9' {
			return strconv.QuoteRune(r)
		}
	}
	return ""
}

// idProblem says why an identifier was rejected; the zero value means it is
// fine. Code is CodeBadFormat, CodeBadChecksum or CodeExcelDamage (digits
// zeroed by a spreadsheet, detected through a failed check digit).
type idProblem struct {
	code string
	msg  string
}

func (p idProblem) ok() bool { return p.code == "" }

func badFormat(format string, args ...any) idProblem {
	return idProblem{code: CodeBadFormat, msg: fmt.Sprintf(format, args...)}
}

// checkEID applies the EID rules to a trimmed value.
func checkEID(s string) idProblem {
	switch {
	case !allDigits(s):
		return badFormat("EID must be 32 digits; this one contains %s", firstNonDigit(s))
	case len(s) != 32:
		return badFormat("EID must be 32 digits; this one has %d", len(s))
	case !EIDValid(s):
		if zeroTail(s) {
			return idProblem{code: CodeExcelDamage, msg: zeroTailMessage("EID", "check digits (MOD 97-10)")}
		}
		return idProblem{code: CodeBadChecksum, msg: fmt.Sprintf(
			"EID check digits are %s but should be %s for the first 30 digits (ISO 7064 MOD 97-10); look for a mistyped digit",
			s[30:], EIDCheckDigits(s[:30]))}
	}
	return idProblem{}
}

// eidNumbers reads an EID of 32 digits as two numbers, its first and last
// 16 digits; ok is false when s is not 32 ASCII digits.
func eidNumbers(s string) (hi, lo uint64, ok bool) {
	if len(s) != 32 {
		return 0, 0, false
	}
	hi, ok1 := digits16(s[:16])
	lo, ok2 := digits16(s[16:])
	return hi, lo, ok1 && ok2
}

// digits16 is packDigits for exactly 16 digits, eight at a time: two of
// them for every EID were a twentieth of validating a narrow row, one
// digit after the other.
func digits16(s string) (uint64, bool) {
	hi, ok1 := digits8(s[:8])
	lo, ok2 := digits8(s[8:16])
	return hi*100_000_000 + lo, ok1 && ok2
}

// word8 is the first 8 bytes of s as one word, the first in its lowest
// byte.
func word8(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// digits8 returns the number the 8 bytes of s write and whether they are
// all ASCII digits, working on the 8 as one word (the first digit in its
// lowest byte): each step joins neighbouring numbers of 1, 2 and then 4
// digits, masking off what the shift leaves between them.
func digits8(s string) (uint64, bool) {
	x := word8(s)
	// A digit has 3 in its high nibble, and keeps it when 6 is added.
	const high, threes, sixes = 0xF0F0F0F0F0F0F0F0, 0x3030303030303030, 0x0606060606060606
	if x&high != threes || (x+sixes)&high != threes {
		return 0, false
	}
	x -= threes
	x = (x*10 + x>>8) & 0x00FF00FF00FF00FF
	x = (x*100 + x>>16) & 0x0000FFFF0000FFFF
	x = (x*10000 + x>>32) & 0xFFFFFFFF
	return x, true
}

// eidMod97 is the EID hi*10^16 + lo mod 97, as checkdigit.Mod97Valid
// works it out from the digits: a valid EID gives 1.
func eidMod97(hi, lo uint64) uint64 {
	const tenTo16 = 10_000_000_000_000_000 % 97
	return (hi%97*tenTo16 + lo%97) % 97
}

// iccidNumber reads an ICCID of 19 or 20 digits that starts with 89 and
// passes Luhn, and packs it as the duplicate index does (see dupKey); ok
// is false for any other value, which checkICCID then judges. One pass
// does both: every valid row has an ICCID.
func iccidNumber(s string) (k uint64, ok bool) {
	n := len(s)
	if (n != 19 && n != 20) || s[0] != '8' || s[1] != '9' {
		return 0, false
	}
	// The last 16 digits eight at a time (luhn8), the one or two between
	// them and the 89 one by one.
	hi, ok1 := digits8(s[n-16 : n-8])
	lo, ok2 := digits8(s[n-8:])
	if !ok1 || !ok2 {
		return 0, false
	}
	var v uint64
	sum := luhn8(s[n-16:n-8]) + luhn8(s[n-8:])
	for i := 2; i < n-16; i++ {
		d := int(s[i] - '0')
		if d > 9 {
			return 0, false
		}
		v = v*10 + uint64(d)
		if (n-1-i)&1 == 1 { // every second digit from the check digit's left
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	// The 8 and the 9: the 8 is doubled (16: 7) when n is even, else the
	// 9 is (18: 9).
	if n%2 == 0 {
		sum += 7 + 9
	} else {
		sum += 8 + 9
	}
	v = v*10_000_000_000_000_000 + hi*100_000_000 + lo
	return uint64(n-17)<<60 | v, sum%10 == 0
}

// luhn8 is the Luhn sum of 8 digits that end an even distance from the
// check digit (the last 8, or the 8 before them): the first, third, fifth
// and seventh are doubled, and a doubled digit of 5 or more loses 9. It
// works on the 8 as one word, the first digit in its lowest byte; s must
// be digits (digits8).
func luhn8(s string) int {
	x := word8(s)
	x -= 0x3030303030303030
	const doubled = 0x00FF00FF00FF00FF
	d := x & doubled
	// A digit is 5 or more when adding 123 reaches 128.
	five := (d + 0x007B007B007B007B) & 0x0080008000800080 >> 7
	x = x&^doubled + d*2 - five*9 // each byte a digit's share, 0 to 9
	return int(x * 0x0101010101010101 >> 56)
}

// checkICCID applies the ICCID rules to a trimmed value. canon is the ICCID
// with its check digit, so that the same SIM written with and without its
// check digit is caught as a duplicate.
//
// With allowNoCheck, 18 and 19 digit values are accepted without a check
// digit. A 19-digit value is ambiguous then (a 19-digit ICCID with its check
// digit, or a 20-digit one without): it is accepted either way, taken as
// complete when it passes Luhn and as missing its check digit when it does
// not. Only 20-digit values must pass Luhn. A 19-20 digit value that fails
// Luhn and has only zeros after the 15th digit is still reported as Excel
// damage: that is what a spreadsheet leaves of it.
func checkICCID(s string, allowNoCheck bool) (canon string, p idProblem) {
	switch {
	case !allDigits(s):
		return "", badFormat("ICCID must contain only digits; this one contains %s", firstNonDigit(s))
	case len(s) < 2 || s[:2] != "89":
		return "", badFormat("ICCID must start with 89; this one starts with %q", s[:min(len(s), 2)])
	}
	n := len(s)
	if allowNoCheck {
		switch {
		case n == 18:
			return s + string(checkdigit.LuhnDigit(s)), idProblem{}
		case n == 19 && !checkdigit.LuhnValid(s) && !zeroTail(s):
			return s + string(checkdigit.LuhnDigit(s)), idProblem{}
		case n < 18 || n > 20:
			return "", badFormat("ICCID must be 18 to 20 digits (with or without its check digit); this one has %d", n)
		}
	} else if n != 19 && n != 20 {
		hint := ""
		if n == 18 {
			hint = " (is the check digit missing?)"
		}
		return "", badFormat("ICCID must be 19 or 20 digits including the check digit; this one has %d%s", n, hint)
	}
	if !checkdigit.LuhnValid(s) {
		if zeroTail(s) {
			return "", idProblem{code: CodeExcelDamage, msg: zeroTailMessage("ICCID", "check digit (Luhn)")}
		}
		return "", idProblem{code: CodeBadChecksum, msg: fmt.Sprintf(
			"ICCID check digit is %c but should be %c for the digits before it (Luhn); look for a mistyped digit",
			s[n-1], checkdigit.LuhnDigit(s[:n-1]))}
	}
	return s, idProblem{}
}

// checkIMEI applies the IMEI rules: 15 digits with a Luhn check digit, or 16
// digits for an IMEISV, which has no check digit.
func checkIMEI(s string) idProblem {
	switch {
	case !allDigits(s):
		return badFormat("IMEI must contain only digits; this one contains %s", firstNonDigit(s))
	case len(s) == 16:
		return idProblem{}
	case len(s) == 14:
		return badFormat("IMEI must be 15 digits (16 for an IMEISV); this one has 14 (is the check digit missing?)")
	case len(s) != 15:
		return badFormat("IMEI must be 15 digits (16 for an IMEISV); this one has %d", len(s))
	case !checkdigit.LuhnValid(s):
		return idProblem{code: CodeBadChecksum, msg: fmt.Sprintf(
			"IMEI check digit is %c but should be %c for the digits before it (Luhn); look for a mistyped digit",
			s[14], checkdigit.LuhnDigit(s[:14]))}
	}
	return idProblem{}
}

// IMSI lengths: 6-15 digits in general (MCC+MNC+MSIN); a provider's
// CLIForm may set its own. Under a plain CLI header, bare digits from
// bareIMSIMin on are taken for an IMSI: an MSISDN that long is rare, an
// IMSI almost always is.
const (
	imsiMin     = 6
	imsiMax     = 15
	bareIMSIMin = 14
)

// checkIMSI applies the IMSI rules with the provider's length range.
func checkIMSI(s string, minLen, maxLen int) idProblem {
	switch {
	case !allDigits(s):
		return badFormat("IMSI must contain only digits; this one contains %s", firstNonDigit(s))
	case len(s) < minLen || len(s) > maxLen:
		return badFormat("IMSI must be %d to %d digits; this one has %d", minLen, maxLen, len(s))
	}
	return idProblem{}
}

// MSISDN lengths: E.164 allows at most 15 digits with the country code;
// fewer than 5 cannot be a subscriber number (IoT Connect's own pattern is
// ^[0-9]{5,15}$).
const (
	msisdnMin = 5
	msisdnMax = 15
)

// msisdn is an MSISDN taken apart.
type msisdn struct {
	digits string // country code and national number, no punctuation
	cc     string // country code, when the value said or the table found it
	nat    string // national number after cc
}

// parseMSISDN reads an MSISDN written "+447700900123", "447700900123" or
// "(+44)7700900123" (the bracketed form; "(44)" is accepted too, as the
// providers that key SIMs by it allow). With needCC the country code must
// be known, either because the value brackets it or because it starts with
// an ITU country calling code (the bracketed form needs the split);
// otherwise any E.164-shaped number passes (an MDN is often written
// without country code).
func parseMSISDN(s string, needCC bool) (msisdn, idProblem) {
	const form = "an MSISDN must be in international format, e.g. +447700900123 or (+44)7700900123"
	var m msisdn
	switch {
	case len(s) > 0 && s[0] == '(':
		end := 1
		for end < len(s) && s[end] == '+' {
			end++
		}
		ccStart := end
		for end < len(s) && s[end] >= '0' && s[end] <= '9' {
			end++
		}
		if end == len(s) || s[end] != ')' || end == ccStart {
			return m, badFormat("%s; the part in brackets must be + and the country code", form)
		}
		m.cc, m.nat = s[ccStart:end], s[end+1:]
		if len(m.cc) > 5 {
			return m, badFormat("country code %s in brackets is too long (at most 5 digits)", m.cc)
		}
		if !allDigits(m.nat) {
			return m, badFormat("%s; after the country code only digits are allowed, found %s", form, firstNonDigit(m.nat))
		}
		if len(m.nat) < 5 {
			return m, badFormat("the number after the country code must have at least 5 digits; this one has %d", len(m.nat))
		}
		m.digits = m.cc + m.nat
	case len(s) > 0 && s[0] == '+':
		m.digits = s[1:]
	default:
		m.digits = s
	}
	switch {
	case !allDigits(m.digits):
		return m, badFormat("%s; this one contains %s", form, firstNonDigit(m.digits))
	case len(m.digits) < msisdnMin || len(m.digits) > msisdnMax:
		return m, badFormat("an MSISDN has %d to %d digits including the country code; this one has %d", msisdnMin, msisdnMax, len(m.digits))
	case m.digits[0] == '0':
		return m, badFormat("%s, starting with the country code rather than 0", form)
	}
	if m.cc == "" && needCC {
		cc, nat, ok := SplitCountryCode(m.digits)
		if !ok {
			return m, badFormat("MSISDN %s does not start with a known country calling code; write it in international format, e.g. +447700900123", m.digits)
		}
		if len(nat) < 5 {
			return m, badFormat("the number after country code %s must have at least 5 digits; this one has %d", cc, len(nat))
		}
		m.cc, m.nat = cc, nat
	}
	return m, idProblem{}
}

// bracketed writes an MSISDN in the bracketed form: "(+44)7700900123".
func (m msisdn) bracketed() string { return "(+" + m.cc + ")" + m.nat }
