package ingest

import (
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"testing"
)

// FuzzEID checks EIDValid and EIDCheckDigits against math/big.
func FuzzEID(f *testing.F) {
	f.Add(goodEID)
	f.Add(goodEID2)
	f.Add("89049032123451200000000000000000")
	f.Add("8904903212345123451234567890123")
	f.Add("8904903212345123451234567890123X")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		want := false
		if len(s) == 32 && allDigits(s) {
			n, _ := new(big.Int).SetString(s, 10)
			want = new(big.Int).Mod(n, big.NewInt(97)).Int64() == 1
		}
		if got := EIDValid(s); got != want {
			t.Fatalf("EIDValid(%q) = %v, want %v", s, got, want)
		}
		if p := checkEID(s); p.ok() != want {
			t.Fatalf("checkEID(%q) = %+v, want ok %v", s, p, want)
		}
		// The word-at-a-time reading of the duplicate index and the
		// row check's fast path.
		hi, lo, ok := eidNumbers(s)
		if digits := len(s) == 32 && allDigits(s); ok != digits {
			t.Fatalf("eidNumbers(%q) ok = %v, want %v", s, ok, digits)
		}
		if ok {
			wantHi, _ := strconv.ParseUint(s[:16], 10, 64)
			wantLo, _ := strconv.ParseUint(s[16:], 10, 64)
			if hi != wantHi || lo != wantLo {
				t.Fatalf("eidNumbers(%q) = %d, %d, want %d, %d", s, hi, lo, wantHi, wantLo)
			}
			if (eidMod97(hi, lo) == 1) != want {
				t.Fatalf("eidMod97(%q) = %d, want valid %v", s, eidMod97(hi, lo), want)
			}
		}
		if len(s) < 30 {
			return
		}
		prefix := s[:30]
		cd := EIDCheckDigits(prefix)
		if !allDigits(prefix) {
			if cd != "" {
				t.Fatalf("EIDCheckDigits(%q) = %q for a non-digit prefix", prefix, cd)
			}
			return
		}
		if len(cd) != 2 || !EIDValid(prefix+cd) {
			t.Fatalf("EIDCheckDigits(%q) = %q does not complete a valid EID", prefix, cd)
		}
	})
}

// FuzzLuhn checks that LuhnDigit completes any payload and that the check
// catches every single-digit change.
func FuzzLuhn(f *testing.F) {
	f.Add("8944123456789012345")
	f.Add("49015420323751")
	f.Add("")
	f.Add("0")
	f.Add("12a4")
	f.Fuzz(func(t *testing.T, payload string) {
		d := LuhnDigit(payload)
		if !allDigits(payload) {
			if d != 0 {
				t.Fatalf("LuhnDigit(%q) = %q for a non-digit payload", payload, d)
			}
			if LuhnValid(payload) {
				t.Fatalf("LuhnValid(%q) = true for a non-digit string", payload)
			}
			return
		}
		if d < '0' || d > '9' {
			t.Fatalf("LuhnDigit(%q) = %q", payload, d)
		}
		if payload == "" || len(payload) > 64 {
			return
		}
		full := payload + string(d)
		if !LuhnValid(full) {
			t.Fatalf("LuhnValid(%q + LuhnDigit) = false", payload)
		}
		b := []byte(full)
		for i := range b {
			orig := b[i]
			for c := byte('0'); c <= '9'; c++ {
				if c == orig {
					continue
				}
				b[i] = c
				if LuhnValid(string(b)) {
					t.Fatalf("LuhnValid(%q) = true after changing digit %d of %q", b, i, full)
				}
			}
			b[i] = orig
		}
	})
}

// bracketedCLI is the pattern a provider that takes the bracketed CLI
// form with IMSIs of 14 to 16 digits documents (Asavie's SIMCard.CLI), as
// the simcard test provider takes it.
var bracketedCLI = regexp.MustCompile(`^(?P<msisdn>\(\+*(\d{1,5})\)(\d{5,16}))$|^(?P<imsi>\d{14,16})$`)

// FuzzValidatorCheck feeds arbitrary cells to every provider's rules: Check
// must never panic, every problem must be well formed, and a row without
// errors must hold identifiers that pass their own checks.
func FuzzValidatorCheck(f *testing.F) {
	f.Add("esim", goodEID, goodICCID, "+447700900123", goodIMEI, "IOTA_EU", "acct", "0000123456-00001", "Jane", uint8(0), uint16(0), uint8(10))
	f.Add("simcard", "", "8.94412345678901E+19", "(+44)7700900123", "", "", "acct", "", "", uint8(1), uint16(4), uint8(10))
	f.Add("simcard", "", "8944123456789012345", "234150999999999", "490154203237518.0", "", "acct", "", "", uint8(6), uint16(0x1f), uint8(10))
	f.Add("device", goodEID, "89441234567890100000", "2815551234", "", "", "", "0000123456-00001", "José", uint8(2), uint16(0), uint8(9))
	f.Add("Device", "'"+goodEID, `="`+goodICCID+`"`, "+", "4901542032375180", "x", "", "123-1", "", uint8(7), uint16(0xffff), uint8(3))
	f.Add("", "", "", "(", "", "", "", "", "", uint8(0), uint16(0), uint8(0))
	f.Add("telenor", "\uFFFD", "89", "()", "\x00", "", "", "", "", uint8(3), uint16(2), uint8(12))
	f.Fuzz(func(t *testing.T, provider, eid, iccid, cli, imei, cmp, account, accountName, firstName string, flags uint8, numeric uint16, fields uint8) {
		cliHeaders := []string{"CLI", "MSISDN", "IMSI"}
		names := []string{"provider", "eid", "iccid", cliHeaders[int(flags%3)], "imei", "cmp", "euicc_agreement_id", "locale_id",
			"account", "account_name", "first_name", "notes"}
		cells := []string{provider, eid, iccid, cli, imei, cmp, "agr", "loc", account, accountName, firstName, "n"}
		rules := ProviderRules{AllowICCIDWithoutCheckDigit: flags&4 != 0}
		if flags&8 != 0 {
			rules.Checksum = SeverityWarning
		}
		opts := ValidateOptions{Rules: map[string]ProviderRules{
			"esim": rules, "simcard": rules, "device": rules,
		}}
		if flags&16 != 0 {
			opts.Defaults = map[string]map[string]string{"device": {"city": "Boston"}, "esim": {"cmp": cmp}}
		}
		if flags&32 != 0 {
			opts.Provider = provider
		}
		rec := Record{Row: 2, Values: cells[:min(int(fields), len(cells))], FieldCount: int(fields), BadEncoding: flags&64 != 0}
		for i := range rec.Values {
			rec.Numeric = append(rec.Numeric, numeric&(1<<i) != 0)
		}

		v, headerProblems := NewValidator(NewHeader(names), opts)
		for _, p := range headerProblems {
			if p.Row != 1 || p.Code == "" || p.Message == "" {
				t.Fatalf("bad header problem %+v", p)
			}
		}
		row, problems := v.Check(rec)
		for _, p := range problems {
			if p.Row != 2 || p.Code == "" || p.Message == "" || (p.Severity != SeverityError && p.Severity != SeverityWarning) {
				t.Fatalf("bad problem %+v", p)
			}
		}
		if row.Number != 2 || len(row.Values) != len(rec.Values) {
			t.Fatalf("row %+v", row)
		}
		if HasErrors(problems) {
			return
		}
		if !knownProvider(row.Provider) {
			t.Fatalf("valid row with provider %q", row.Provider)
		}
		warned := func(col string) bool {
			for _, p := range problems {
				if p.Column == col && p.Severity == SeverityWarning {
					return true
				}
			}
			return false
		}
		if row.EID != "" && !EIDValid(row.EID) && !warned(ColEID) {
			t.Fatalf("valid row with EID %q: %v", row.EID, problems)
		}
		if row.ICCID != "" {
			if _, p := checkICCID(row.ICCID, rules.AllowICCIDWithoutCheckDigit); !p.ok() && !warned(ColICCID) {
				t.Fatalf("valid row with ICCID %q: %v", row.ICCID, problems)
			}
		}
		if row.Provider == "simcard" && !bracketedCLI.MatchString(row.CLI) {
			t.Fatalf("simcard CLI %q does not match the bracketed pattern", row.CLI)
		}
		if row.Provider == "esim" && !slices.Contains(testPlatforms, row.Fields()[ColCMP]) {
			t.Fatalf("esim cmp %q", row.Fields()[ColCMP])
		}

		// The same row again repeats every identifier it indexed.
		again := rec
		again.Row = 3
		_, problems = v.Check(again)
		if (row.EID != "" || row.ICCID != "" || row.CLI != "") && !slices.ContainsFunc(problems, func(p Problem) bool { return p.Code == CodeDuplicate }) {
			t.Fatalf("repeated row not a duplicate: %+v %v", row, problems)
		}
	})
}

// FuzzICCIDNumber holds the word-wide ICCID reading to the plain one:
// the same key and the same Luhn verdict for every string.
func FuzzICCIDNumber(f *testing.F) {
	f.Add("89148000003908108900")
	f.Add("8944306091635171524")
	f.Add("89443060916351715x4")
	f.Add("8914800000390810890/")
	f.Fuzz(func(t *testing.T, s string) {
		k, ok := iccidNumber(s)
		wantK, wantOK := iccidNumberByDigit(s)
		if ok != wantOK || ok && k != wantK {
			t.Fatalf("iccidNumber(%q) = %x, %v; digit by digit %x, %v", s, k, ok, wantK, wantOK)
		}
	})
}

// iccidNumberByDigit is what iccidNumber must give, from the general
// parts: strconv for the key, LuhnValid for the verdict.
func iccidNumberByDigit(s string) (k uint64, ok bool) {
	n := len(s)
	if (n != 19 && n != 20) || s[:2] != "89" || !allDigits(s) {
		return 0, false
	}
	v, err := strconv.ParseUint(s[2:], 10, 64)
	if err != nil {
		return 0, false
	}
	return uint64(n-17)<<60 | v, LuhnValid(s)
}
