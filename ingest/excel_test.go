package ingest

import (
	"strings"
	"testing"
)

func TestExcelDamage(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		numeric bool
		lossy   bool
		sev     Severity // "" = no damage
		msg     string
	}{
		{name: "scientific", in: "8.94412345678901E+19", lossy: true, sev: SeverityError, msg: "scientific notation"},
		{name: "scientific lower e", in: "8.94412345678901e+19", sev: SeverityError, msg: "scientific notation"},
		{name: "scientific comma", in: "8,94412345678901E+19", sev: SeverityError, msg: "scientific notation"},
		{name: "scientific no sign", in: "8.9441E19", sev: SeverityError, msg: "scientific notation"},
		{name: "scientific no fraction", in: "9E+19", sev: SeverityError, msg: "scientific notation"},
		{name: "scientific negative exponent", in: "8.9E-05", sev: SeverityError, msg: "scientific notation"},
		{name: "trailing .0", in: "89441234567890100000.0", sev: SeverityError, msg: `ends in ".0"`},
		{name: "trailing ,00", in: "356938035643809,00", sev: SeverityError, msg: `ends in ",00"`},
		{name: "thousands commas", in: "356,938,035,643,809", sev: SeverityError, msg: "thousands separators"},
		{name: "thousands dots", in: "89.441.234.567.890.100.000", sev: SeverityError, msg: "thousands separators"},
		{name: "numeric ICCID", in: "89441234567890100000", numeric: true, lossy: true, sev: SeverityError, msg: "only 15 significant digits"},
		{name: "numeric short ICCID still lossy", in: "8944", numeric: true, lossy: true, sev: SeverityError},
		{name: "numeric 16-digit IMEISV", in: "3569380356438091", numeric: true, sev: SeverityError, msg: "only 15 significant digits"},
		{name: "numeric 15-digit IMEI exact", in: "356938035643809", numeric: true, sev: SeverityWarning, msg: "still has all its digits"},
		{name: "numeric MSISDN exact", in: "447700900123", numeric: true, sev: SeverityWarning},
		{name: "text ICCID", in: "89441234567890123454", lossy: true},
		{name: "text with E inside", in: "89E4", lossy: true, sev: SeverityError}, // 89E4 is what Excel makes of it too
		{name: "letters", in: "ABCDEF"},
		{name: "plain decimal", in: "12.5"},
		{name: "E alone", in: "E+19"},
		{name: "sign only", in: "+E5"},
		{name: "MSISDN with plus", in: "+447700900123"},
		{name: "simcard form", in: "(+44)7700900123"},
		{name: "two groups wrong size", in: "1,23,456"},
		{name: "dot only", in: "."},
		{name: "empty", in: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, sev, found := excelDamage("ICCID", tt.in, tt.numeric, tt.lossy)
			if found != (tt.sev != "") || sev != tt.sev {
				t.Fatalf("excelDamage(%q) = %q, %q, %v; want severity %q", tt.in, msg, sev, found, tt.sev)
			}
			if !strings.Contains(msg, tt.msg) {
				t.Errorf("message %q lacks %q", msg, tt.msg)
			}
			if sev == SeverityError && !strings.Contains(msg, "Text") {
				t.Errorf("message %q does not say how to fix it", msg)
			}
		})
	}
}

func TestExcelZeroTail(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"89441234567890100000", true},
		{"8944123456789010000", true},
		{"89049032123451200000000000000000", true},
		{"89441234567890100001", false},
		{"894412345678901", false}, // 15 digits: nothing lost
		{"8944123456789010", true},
	}
	for _, tt := range tests {
		if got := zeroTail(tt.in); got != tt.want {
			t.Errorf("zeroTail(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestExcelUnwrapText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"'89441234567890123454", "89441234567890123454"},
		{`="89441234567890123454"`, "89441234567890123454"},
		{"89441234567890123454", "89441234567890123454"},
		{"'", "'"},
		{`=""`, `=""`},
		{`="1`, `="1`},
	}
	for _, tt := range tests {
		if got := unwrapText(tt.in); got != tt.want {
			t.Errorf("unwrapText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
