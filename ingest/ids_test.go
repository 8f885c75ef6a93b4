package ingest

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

func TestEIDValid(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"89049032123451234512345678901235", true}, // the documented example
		{"89044000000000000000000000000136", true},
		{"12345678901234567890123456789039", true},
		{"89049032123451234512345678901234", false}, // last digit off by one
		{"89049032123451234512345678901253", false}, // check digits swapped
		{"98049032123451234512345678901235", false}, // leading digits swapped
		{"8904903212345123451234567890123", false},  // 31 digits
		{"890490321234512345123456789012350", false},
		{"8904903212345123451234567890123A", false},
		{"89049032 23451234512345678901235", false},
		{"", false},
		{"89049032123451200000000000000000", false}, // Excel zeroed
	}
	for _, tt := range tests {
		if got := EIDValid(tt.in); got != tt.want {
			t.Errorf("EIDValid(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestEIDCheckDigits(t *testing.T) {
	tests := []struct{ in, want string }{
		{"890490321234512345123456789012", "35"},
		{"890440000000000000000000000001", "36"},
		{"123456789012345678901234567890", "39"},
		{"89049032123451234512345678901", ""},   // 29 digits
		{"8904903212345123451234567890123", ""}, // 31 digits
		{"89049032123451234512345678901X", ""},
	}
	for _, tt := range tests {
		got := EIDCheckDigits(tt.in)
		if got != tt.want {
			t.Errorf("EIDCheckDigits(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got != "" && !EIDValid(tt.in+got) {
			t.Errorf("EIDValid(%q + EIDCheckDigits) = false", tt.in)
		}
	}
}

func TestCheckEID(t *testing.T) {
	tests := []struct {
		in, code, msg string
	}{
		{"89049032123451234512345678901235", "", ""},
		{"89049032123451234512345678901234", CodeBadChecksum, "should be 35"},
		{"8904903212345123451234567890123", CodeBadFormat, "has 31"},
		{"8904903212345123451234567890123X", CodeBadFormat, "'X'"},
		{"89049032123451200000000000000000", CodeExcelDamage, "Format the column as Text"},
	}
	for _, tt := range tests {
		p := checkEID(tt.in)
		if p.code != tt.code || !strings.Contains(strings.ToLower(p.msg), strings.ToLower(tt.msg)) {
			t.Errorf("checkEID(%q) = %+v, want code %q with %q", tt.in, p, tt.code, tt.msg)
		}
	}
}

func TestCheckICCID(t *testing.T) {
	tests := []struct {
		in      string
		allow   bool
		code    string
		msg     string
		wantCan string
	}{
		{in: "89441234567890123454", wantCan: "89441234567890123454"},
		{in: "8944123456789012348", wantCan: "8944123456789012348"},
		{in: "89441234567890123455", code: CodeBadChecksum, msg: "check digit is 5 but should be 4"},
		{in: "8944123456789012347", code: CodeBadChecksum, msg: "should be 8"},
		{in: "894412345678901234", code: CodeBadFormat, msg: "check digit missing"},
		{in: "894412345678901234545", code: CodeBadFormat, msg: "has 21"},
		{in: "99441234567890123454", code: CodeBadFormat, msg: "start with 89"},
		{in: "8944-1234567890123454", code: CodeBadFormat, msg: "'-'"},
		{in: "89441234567890100000", code: CodeExcelDamage, msg: "zeros after the 15th digit"},
		{in: "8944123456789010000", code: CodeExcelDamage, msg: "zeros after the 15th digit"},
		{in: "8", code: CodeBadFormat, msg: "start with 89"},

		// Without check digit allowed: 18 digits is a payload, 19 either way.
		{in: "894412345678901234", allow: true, wantCan: "8944123456789012348"},
		{in: "8944123456789012348", allow: true, wantCan: "8944123456789012348"},
		{in: "8944123456789012345", allow: true, wantCan: "89441234567890123454"},
		{in: "89441234567890123454", allow: true, wantCan: "89441234567890123454"},
		{in: "89441234567890123455", allow: true, code: CodeBadChecksum},
		{in: "8944123456789012", allow: true, code: CodeBadFormat, msg: "18 to 20"},
		{in: "8944123456789010000", allow: true, code: CodeExcelDamage},
	}
	for _, tt := range tests {
		canon, p := checkICCID(tt.in, tt.allow)
		if p.code != tt.code || !strings.Contains(p.msg, tt.msg) {
			t.Errorf("checkICCID(%q, %v) = %+v, want code %q with %q", tt.in, tt.allow, p, tt.code, tt.msg)
		}
		if tt.code == "" && canon != tt.wantCan {
			t.Errorf("checkICCID(%q, %v) canon = %q, want %q", tt.in, tt.allow, canon, tt.wantCan)
		}
	}
}

func TestCheckIMEI(t *testing.T) {
	tests := []struct{ in, code, msg string }{
		{"490154203237518", "", ""},
		{"356938035643809", "", ""},
		{"3569380356438091", "", ""}, // IMEISV: no check digit
		{"490154203237517", CodeBadChecksum, "check digit is 7 but should be 8"},
		{"49015420323751", CodeBadFormat, "check digit missing"},
		{"4901542032375", CodeBadFormat, "has 13"},
		{"49015420323751812", CodeBadFormat, "has 17"},
		{"49015420323751O", CodeBadFormat, "'O'"},
	}
	for _, tt := range tests {
		p := checkIMEI(tt.in)
		if p.code != tt.code || !strings.Contains(p.msg, tt.msg) {
			t.Errorf("checkIMEI(%q) = %+v, want code %q with %q", tt.in, p, tt.code, tt.msg)
		}
	}
}

func TestCheckIMSI(t *testing.T) {
	tests := []struct {
		in       string
		min, max int
		code     string
	}{
		{"234150999999999", imsiMin, imsiMax, ""},
		{"310260", imsiMin, imsiMax, ""},
		{"31026", imsiMin, imsiMax, CodeBadFormat},
		{"2341509999999991", imsiMin, imsiMax, CodeBadFormat},
		{"2341509999999991", 14, 16, ""},
		{"23415099999999", 14, 16, ""},
		{"2341509999999", 14, 16, CodeBadFormat},
		{"23415099999999912", 14, 16, CodeBadFormat},
		{"+23415099999999", 14, 16, CodeBadFormat},
	}
	for _, tt := range tests {
		if p := checkIMSI(tt.in, tt.min, tt.max); p.code != tt.code {
			t.Errorf("checkIMSI(%q, %d, %d) = %+v, want code %q", tt.in, tt.min, tt.max, p, tt.code)
		}
	}
}

func TestParseMSISDN(t *testing.T) {
	tests := []struct {
		in         string
		needCC     bool
		code       string
		digits, cc string
		bracketed  string
	}{
		{in: "+447700900123", needCC: true, digits: "447700900123", cc: "44", bracketed: "(+44)7700900123"},
		{in: "447700900123", needCC: true, digits: "447700900123", cc: "44", bracketed: "(+44)7700900123"},
		{in: "(+44)7700900123", needCC: true, digits: "447700900123", cc: "44", bracketed: "(+44)7700900123"},
		{in: "(44)7700900123", needCC: true, digits: "447700900123", cc: "44", bracketed: "(+44)7700900123"},
		{in: "(++44)7700900123", needCC: true, digits: "447700900123", cc: "44", bracketed: "(+44)7700900123"},
		{in: "+12025550123", needCC: true, digits: "12025550123", cc: "1", bracketed: "(+1)2025550123"},
		{in: "+79161234567", needCC: true, digits: "79161234567", cc: "7", bracketed: "(+7)9161234567"},
		{in: "+353871234567", needCC: true, digits: "353871234567", cc: "353", bracketed: "(+353)871234567"},
		{in: "(+1684)6331234", needCC: true, digits: "16846331234", cc: "1684", bracketed: "(+1684)6331234"},
		{in: "+882345678901", needCC: true, digits: "882345678901", cc: "882", bracketed: "(+882)345678901"},
		{in: "46000000001", digits: "46000000001"},
		{in: "2815551234", digits: "2815551234"},              // a US MDN without country code
		{in: "2815551234", needCC: true, code: CodeBadFormat}, // 28x is no country code
		{in: "+4477009001234567", code: CodeBadFormat},        // 16 digits
		{in: "+4412", code: CodeBadFormat},
		{in: "07700900123", code: CodeBadFormat},
		{in: "+44 7700 900123", code: CodeBadFormat},
		{in: "+44-7700900123", code: CodeBadFormat},
		{in: "(+44)770090", needCC: true, digits: "44770090", cc: "44", bracketed: "(+44)770090"},
		{in: "(+44)7700", code: CodeBadFormat},
		{in: "(+44 7700900123", code: CodeBadFormat},
		{in: "()7700900123", code: CodeBadFormat},
		{in: "(+123456)7700900", code: CodeBadFormat},
		{in: "(+44)77009x0123", code: CodeBadFormat},
		{in: "+", code: CodeBadFormat},
		{in: "(", code: CodeBadFormat},
		{in: "++447700900123", code: CodeBadFormat},
		{in: "+4477", needCC: true, code: CodeBadFormat}, // too short
		{in: "+440770", needCC: true, code: CodeBadFormat},
	}
	for _, tt := range tests {
		m, p := parseMSISDN(tt.in, tt.needCC)
		if p.code != tt.code {
			t.Errorf("parseMSISDN(%q, %v) = %+v, want code %q", tt.in, tt.needCC, p, tt.code)
			continue
		}
		if tt.code != "" {
			continue
		}
		if m.digits != tt.digits || m.cc != tt.cc {
			t.Errorf("parseMSISDN(%q, %v) = %+v, want digits %q cc %q", tt.in, tt.needCC, m, tt.digits, tt.cc)
		}
		if tt.bracketed != "" && m.bracketed() != tt.bracketed {
			t.Errorf("parseMSISDN(%q).bracketed() = %q, want %q", tt.in, m.bracketed(), tt.bracketed)
		}
	}
}

func TestSplitCountryCode(t *testing.T) {
	tests := []struct{ in, cc, nat string }{
		{"447700900123", "44", "7700900123"},
		{"12025550123", "1", "2025550123"},
		{"79161234567", "7", "9161234567"},
		{"4915112345678", "49", "15112345678"},
		{"353871234567", "353", "871234567"},
		{"97150123456", "971", "50123456"},
		{"2348031234567", "234", "8031234567"},
		{"8613812345678", "86", "13812345678"},
		{"5511912345678", "55", "11912345678"},
		{"2815551234", "", ""},    // 28x is spare
		{"0447700900123", "", ""}, // 0 starts no code
		{"44", "", ""},            // nothing after the code
		{"", "", ""},
	}
	for _, tt := range tests {
		cc, nat, ok := SplitCountryCode(tt.in)
		if cc != tt.cc || nat != tt.nat || ok != (tt.cc != "") {
			t.Errorf("SplitCountryCode(%q) = %q, %q, %v; want %q, %q", tt.in, cc, nat, ok, tt.cc, tt.nat)
		}
	}
}

// The split relies on no code being a prefix of another.
func TestCountryCallingCodesPrefixFree(t *testing.T) {
	for code := range countryCallingCodes {
		if len(code) < 1 || len(code) > 3 || !allDigits(code) || code[0] == '0' {
			t.Errorf("bad country code %q", code)
		}
		for n := 1; n < len(code); n++ {
			if _, ok := countryCallingCodes[code[:n]]; ok {
				t.Errorf("country code %q has prefix %q that is also a code", code, code[:n])
			}
		}
	}
	if len(countryCallingCodes) < 200 {
		t.Errorf("only %d country codes", len(countryCallingCodes))
	}
}

// The one-pass readings of an EID and an ICCID that validation takes for
// the common case agree with the full checks and with the duplicate
// index's packing, for valid values and for values one digit off.
func TestIdentifierFastPaths(t *testing.T) {
	d := newDupIndex()
	rnd := rand.New(rand.NewPCG(1, 2))
	digits := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('0' + rnd.IntN(10))
		}
		return string(b)
	}
	for range 20000 {
		eid := digits(30)
		eid += EIDCheckDigits(eid)
		if rnd.IntN(3) == 0 {
			eid = eid[:5] + digits(1) + eid[6:]
		}
		hi, lo, ok := eidNumbers(eid)
		fast := ok && eidMod97(hi, lo) == 1
		if want := checkEID(eid).ok(); fast != want {
			t.Fatalf("EID %s: one pass says %v, checkEID %v", eid, fast, want)
		}
		if fast && d.eidKey(hi, lo) != d.key(dupEID, eid) {
			t.Fatalf("EID %s: keys differ", eid)
		}

		n := 19 + rnd.IntN(2)
		iccid := "89" + digits(n-3)
		iccid += string(LuhnDigit(iccid))
		changed := rnd.IntN(3) == 0
		if changed {
			iccid = iccid[:7] + digits(1) + iccid[8:]
		}
		for _, allow := range []bool{false, true} {
			k, ok := iccidNumber(iccid)
			canon, p := checkICCID(iccid, allow)
			// The one pass may leave a value to checkICCID, never pass
			// one it would not, and passes every complete valid one.
			if (ok && (!p.ok() || canon != iccid)) || (!ok && !changed) || (!ok && !allow && p.ok()) {
				t.Fatalf("ICCID %s (allow %v): one pass says %v, checkICCID %q %v", iccid, allow, ok, canon, p)
			}
			if ok && d.shortKey(dupICCID, k) != d.key(dupICCID, iccid) {
				t.Fatalf("ICCID %s: keys differ", iccid)
			}
		}
	}
	for _, bad := range []string{"8944306091635171524", "894430609163517152", "8844306091635171524", "89443060916351715x4", "894430609163517152400"} {
		k, ok := iccidNumber(bad)
		if _, p := checkICCID(bad, false); ok && !p.ok() {
			t.Errorf("ICCID %s: one pass accepts it (%x), checkICCID does not", bad, k)
		}
	}
}

// digits8 against strconv, with every byte value in every position: the
// word-wide digit test must refuse exactly the bytes that are not digits.
func TestDigits8(t *testing.T) {
	for pos := range 8 {
		for b := range 256 {
			s := []byte("90817263")
			s[pos] = byte(b)
			got, ok := digits8(string(s))
			want, err := strconv.ParseUint(string(s), 10, 64)
			isDigit := b >= '0' && b <= '9'
			if ok != isDigit || (err == nil) != isDigit || ok && got != want {
				t.Fatalf("digits8(%q) = %d, %v; want %d, %v", s, got, ok, want, isDigit)
			}
		}
	}
	if n, ok := digits16("9999999999999999"); !ok || n != 9999999999999999 {
		t.Fatalf("digits16 of sixteen nines = %d, %v", n, ok)
	}
}
