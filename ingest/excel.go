package ingest

import "fmt"

// Excel keeps 15 significant digits of a number. EIDs (32 digits) and
// ICCIDs (19-20) are longer, so once a spreadsheet has taken one for a
// number its last digits are gone and cannot be recovered from the file: the
// only fix is to re-export with the identifier columns formatted as text.
// These checks look at the raw cell, before the format checks, so the user
// gets that one clear message instead of a confusing "wrong check digit".
//
// Numeric XLSX cells (Record.Numeric):
//   - EID and ICCID: always damage (error); they cannot fit in 15 digits.
//   - CLI and IMEI with more than 15 digits: damage (error).
//   - CLI and IMEI with at most 15 digits: the number is exact, so the cell
//     gets an excel_damage warning (the row stays valid) and is then checked
//     like any other; a 15-digit IMEI in a numeric cell is fine to send.

const maxExactDigits = 15

const textAdvice = "format the column as Text (or export identifiers as text, e.g. prefix each with an apostrophe) and re-export from the original source"

// excelDamage reports spreadsheet damage in a trimmed identifier cell.
// label names the identifier for the message (EID, ICCID, CLI, IMEI);
// alwaysLossy is true for identifiers longer than 15 digits by definition.
// A warning means the value is still exact and should be checked as usual.
func excelDamage(label, s string, numeric, alwaysLossy bool) (msg string, sev Severity, found bool) {
	switch {
	case !numeric && allDigits(s):
		return "", "", false // the common case, kept cheap
	case isScientific(s):
		return fmt.Sprintf("Excel turned this %s into scientific notation and lost its last digits; %s", label, textAdvice), SeverityError, true
	case isZeroDecimal(s):
		return fmt.Sprintf("Excel stored this %s as a number (it ends in %q), so digits may have been lost; %s", label, s[decimalPoint(s):], textAdvice), SeverityError, true
	case isThousandsGrouped(s):
		return fmt.Sprintf("Excel formatted this %s as a number with thousands separators, so digits may have been lost; %s", label, textAdvice), SeverityError, true
	case numeric && (alwaysLossy || significantDigits(s) > maxExactDigits):
		return fmt.Sprintf("this %s is stored as a number in the spreadsheet, and Excel keeps only %d significant digits, so its last digits are lost; %s", label, maxExactDigits, textAdvice), SeverityError, true
	case numeric:
		return fmt.Sprintf("this %s is stored as a number in the spreadsheet; it still has all its digits, but format the column as Text so that identifiers are always kept exactly", label), SeverityWarning, true
	}
	return "", "", false
}

// zeroTailMessage explains a long identifier that fails its check digits
// and has only zeros after the 15th digit: the mark of a spreadsheet.
func zeroTailMessage(label, check string) string {
	return fmt.Sprintf("this %s fails its %s and has only zeros after the 15th digit: Excel keeps %d significant digits and replaced the rest with zeros; %s",
		label, check, maxExactDigits, textAdvice)
}

// zeroTail reports whether s has more than 15 digits and only zeros after
// the 15th.
func zeroTail(s string) bool {
	if len(s) <= maxExactDigits {
		return false
	}
	for i := maxExactDigits; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}

// isScientific matches a number in scientific notation as a spreadsheet
// writes it: 8.94412345678901E+19, 8,94412345678901e+19, 8.9E19, 1E+19.
func isScientific(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	start := i
	i = skipDigits(s, i)
	if i == start {
		return false
	}
	if i < len(s) && (s[i] == '.' || s[i] == ',') {
		i = skipDigits(s, i+1)
	}
	if i == len(s) || (s[i] != 'E' && s[i] != 'e') {
		return false
	}
	i++
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	expStart := i
	i = skipDigits(s, i)
	return i > expStart && i == len(s)
}

// isZeroDecimal matches digits followed by a decimal point and only zeros:
// 89441234567890100000.0, 356938035643809,00.
func isZeroDecimal(s string) bool {
	p := decimalPoint(s)
	if p <= 0 || p == len(s)-1 || !allDigits(s[:p]) {
		return false
	}
	for i := p + 1; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}

// decimalPoint returns the index of the first '.' or ',' in s, or -1.
func decimalPoint(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '.' || s[i] == ',' {
			return i
		}
	}
	return -1
}

// isThousandsGrouped matches a number written with thousands separators,
// 1 to 3 digits then groups of 3 each after the same ',' or '.':
// 356,938,035,643,809 or 89.441.234.567.890.100.000.
func isThousandsGrouped(s string) bool {
	p := decimalPoint(s)
	if p < 1 || p > 3 || !allDigits(s[:p]) {
		return false
	}
	sep := s[p]
	for i := p; i < len(s); i += 4 {
		if s[i] != sep || i+4 > len(s) || !allDigits(s[i+1:i+4]) {
			return false
		}
	}
	return true
}

func skipDigits(s string, i int) int {
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// significantDigits counts the characters of a digit string after its
// leading zeros: what a spreadsheet number has to hold exactly.
func significantDigits(s string) int {
	i := 0
	for i < len(s) && s[i] == '0' {
		i++
	}
	return len(s) - i
}

// unwrapText removes what people put around an identifier to stop a
// spreadsheet from taking it for a number: a leading apostrophe ('8944...)
// and the formula form ="8944...". The advice in the messages above
// suggests the apostrophe, so a cell that follows it must be accepted.
func unwrapText(s string) string {
	if len(s) > 1 && s[0] == '\'' {
		return s[1:]
	}
	if len(s) > 3 && s[0] == '=' && s[1] == '"' && s[len(s)-1] == '"' {
		return s[2 : len(s)-1]
	}
	return s
}
