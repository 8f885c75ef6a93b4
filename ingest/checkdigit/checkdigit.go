// Package checkdigit is the check-digit arithmetic simbulk needs for SIM
// identifiers: Luhn for ICCIDs and IMEIs, ISO/IEC 7064 MOD 97-10 for EIDs.
// It is a leaf: it depends on the standard library only, so that the
// manifest reader (ingest) and the provider clients and simulators can
// share it without the providers depending on the manifest reader.
//
// The functions are the bare arithmetic. Length and prefix rules (an EID
// has 32 digits, an ICCID starts with 89) belong to the callers. None of
// them allocate: they run once per cell of a million-row manifest.
package checkdigit

// LuhnValid reports whether digits (at least two: a payload and its check
// digit) pass the Luhn check used by ICCIDs and IMEIs.
func LuhnValid(digits string) bool {
	sum, ok := luhnSum(digits, false)
	return ok && len(digits) >= 2 && sum%10 == 0
}

// LuhnDigit returns the Luhn check digit ('0'-'9') to append to payload, or
// 0 when payload contains anything but ASCII digits.
func LuhnDigit(payload string) byte {
	sum, ok := luhnSum(payload, true)
	if !ok {
		return 0
	}
	return byte('0' + (10-sum%10)%10)
}

// luhnDoubled[d] is the Luhn value of a doubled digit d.
var luhnDoubled = [10]int{0, 2, 4, 6, 8, 1, 3, 5, 7, 9}

// luhnSum sums digits from the right, doubling every second one; ok is
// false when digits has anything but ASCII digits. With doubleFirst the
// rightmost digit is doubled, as it is in a payload whose check digit is
// still to come.
func luhnSum(digits string, doubleFirst bool) (sum int, ok bool) {
	double := doubleFirst
	for i := len(digits) - 1; i >= 0; i-- {
		d := digits[i] - '0'
		if d > 9 {
			return 0, false
		}
		if double {
			sum += luhnDoubled[d]
		} else {
			sum += int(d)
		}
		double = !double
	}
	return sum, true
}

// Mod97Valid reports whether digits (at least three: a payload and its two
// check digits) pass ISO/IEC 7064 MOD 97-10, as EIDs and IBANs do: the
// decimal value is 1 mod 97.
func Mod97Valid(digits string) bool {
	r, ok := mod97(digits)
	return ok && len(digits) >= 3 && r == 1
}

// Mod97Digits returns the two MOD 97-10 check digits that make payload +
// Mod97Digits(payload) pass Mod97Valid, or "" when payload is empty or
// contains anything but ASCII digits.
func Mod97Digits(payload string) string {
	r, ok := mod97(payload)
	if !ok || payload == "" {
		return ""
	}
	// Append "00", then choose the check number c so that the whole is 1 mod 97.
	c := 98 - r*100%97
	return string([]byte{byte('0' + c/10), byte('0' + c%10)})
}

// mod97 reduces the decimal number s mod 97; ok is false when s has
// anything but ASCII digits. Sixteen digits at a time fit in a uint64
// together with a remainder below 97, so an EID takes two divisions.
func mod97(s string) (r uint64, ok bool) {
	for len(s) > 0 {
		n := min(len(s), 16)
		var chunk uint64
		for i := 0; i < n; i++ {
			d := s[i] - '0'
			if d > 9 {
				return 0, false
			}
			chunk = chunk*10 + uint64(d)
		}
		r = (r*pow10[n] + chunk) % 97
		s = s[n:]
	}
	return r, true
}

var pow10 = func() (p [17]uint64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()
