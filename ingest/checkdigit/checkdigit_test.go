package checkdigit

import (
	"math/big"
	"testing"
)

func TestLuhnValid(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"490154203237518", true}, // IMEI
		{"356938035643809", true}, // IMEI
		{"89441234567890123454", true},
		{"8944123456789012348", true},
		{"89012601234567890121", true},
		{"79927398713", true}, // the textbook example
		{"00", true},
		{"490154203237517", false},
		{"89441234567890123455", false},
		{"89441234567890123445", false}, // adjacent transposition 54->45
		{"89441234567890100000", false}, // Excel zeroed
		{"0", false},                    // no payload
		{"", false},
		{"4901542032375l8", false},
		{"-490154203237518", false},
	}
	for _, tt := range tests {
		if got := LuhnValid(tt.in); got != tt.want {
			t.Errorf("LuhnValid(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestLuhnDigit(t *testing.T) {
	tests := []struct {
		in   string
		want byte
	}{
		{"49015420323751", '8'},
		{"8944123456789012345", '4'},
		{"894412345678901234", '8'},
		{"7992739871", '3'},
		{"", '0'},
		{"0", '0'},
		{"12a", 0},
	}
	for _, tt := range tests {
		got := LuhnDigit(tt.in)
		if got != tt.want {
			t.Errorf("LuhnDigit(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got != 0 && tt.in != "" && !LuhnValid(tt.in+string(got)) {
			t.Errorf("LuhnValid(%q + LuhnDigit) = false", tt.in)
		}
	}
}

func TestMod97Valid(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"89049032123451234512345678901235", true}, // the GSMA EID example
		{"89044000000000000000000000000136", true},
		{"12345678901234567890123456789039", true},
		{"195", true}, // the shortest: a one-digit payload
		{"100", false},
		{"89049032123451234512345678901234", false}, // last digit off by one
		{"89049032123451234512345678901253", false}, // check digits swapped
		{"98049032123451234512345678901235", false}, // leading digits swapped
		{"8904903212345123451234567890123A", false},
		{"89049032 23451234512345678901235", false},
		{"89049032123451200000000000000000", false}, // Excel zeroed
		{"01", false}, // no payload
		{"", false},
	}
	for _, tt := range tests {
		if got := Mod97Valid(tt.in); got != tt.want {
			t.Errorf("Mod97Valid(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestMod97Digits(t *testing.T) {
	tests := []struct{ in, want string }{
		{"890490321234512345123456789012", "35"},
		{"890440000000000000000000000001", "36"},
		{"123456789012345678901234567890", "39"},
		{"1", "95"},
		{"89049032123451234512345678901X", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got := Mod97Digits(tt.in)
		if got != tt.want {
			t.Errorf("Mod97Digits(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got != "" && !Mod97Valid(tt.in+got) {
			t.Errorf("Mod97Valid(%q + Mod97Digits) = false", tt.in)
		}
	}
}

// TestMod97AgainstBig compares the chunked reduction with math/big for
// lengths around the 16-digit chunk boundary.
func TestMod97AgainstBig(t *testing.T) {
	for _, s := range []string{
		"0", "96", "97", "98", "9999999999999999", "10000000000000000",
		"18446744073709551615", "99999999999999999999999999999999",
		"89049032123451234512345678901235", "123456789012345678901234567890123456789012345678",
	} {
		want := new(big.Int)
		want.SetString(s, 10)
		want.Mod(want, big.NewInt(97))
		got, ok := mod97(s)
		if !ok || got != want.Uint64() {
			t.Errorf("mod97(%q) = %d, %v; want %d", s, got, ok, want.Uint64())
		}
	}
}
