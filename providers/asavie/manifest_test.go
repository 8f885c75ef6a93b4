package asavie_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/simbulk/simbulk/ingest"
	_ "github.com/simbulk/simbulk/providers/all"
	"github.com/simbulk/simbulk/providers/providertest"
)

func TestManifestCLI(t *testing.T) {
	tests := []struct {
		name   string
		header string
		cli    string
		want   string // normalised CLI, or the problem code
	}{
		{"plain E.164 with plus", "CLI", "+447700900123", "(+44)7700900123"},
		{"bracket form kept", "CLI", "(+44)7700900123", "(+44)7700900123"},
		{"bracket form without plus", "CLI", "(44)7700900123", "(+44)7700900123"},
		{"short bare digits are an MSISDN", "CLI", "447700900123", "(+44)7700900123"},
		{"NANP", "CLI", "+12025550123", "(+1)2025550123"},
		{"15 bare digits are an IMSI", "CLI", "234150999999999", "234150999999999"},
		{"14 bare digits are an IMSI", "CLI", "23415099999999", "23415099999999"},
		{"16 bare digits are an IMSI", "CLI", "2341509999999999", "2341509999999999"},
		{"17 bare digits", "CLI", "23415099999999999", ingest.CodeBadFormat},
		{"MSISDN header bare digits", "MSISDN", "447700900123", "(+44)7700900123"},
		{"MSISDN header 15 digits", "MSISDN", "447700900123456", "(+44)7700900123456"},
		{"MSISDN header 16 digits", "MSISDN", "4477009001234567", ingest.CodeBadFormat},
		{"IMSI header", "IMSI", "234150999999999", "234150999999999"},
		{"IMSI header too short", "IMSI", "2341509999999", ingest.CodeBadFormat},
		{"IMSI header with plus", "IMSI", "+234150999999999", ingest.CodeBadFormat},
		{"national format", "CLI", "07700900123", ingest.CodeBadFormat},
		{"unknown country code", "MSISDN", "+2815551234", ingest.CodeBadFormat},
		{"spaces", "CLI", "+44 7700 900123", ingest.CodeBadFormat},
		{"letters", "CLI", "abc", ingest.CodeBadFormat},
		{"scientific", "CLI", "4.47700900123E+11", ingest.CodeExcelDamage},
		{"empty", "CLI", "", ingest.CodeMissingValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			row, ps := providertest.CheckRow(t, []string{"Provider", tt.header, "ForeignAccountKey", "SIMNumber"}, ingest.ValidateOptions{},
				"asavie", tt.cli, "acct-1", providertest.ICCID)
			if strings.Contains(tt.want, "_") {
				if got := providertest.Summary(ps); !slices.Equal(got, []string{"cli:" + tt.want}) {
					t.Fatalf("problems = %v", ps)
				}
				return
			}
			if len(ps) != 0 {
				t.Fatalf("problems = %v", ps)
			}
			if row.CLI != tt.want || row.ICCID != providertest.ICCID || row.Fields()[ingest.ColAccount] != "acct-1" {
				t.Errorf("row = %+v, want CLI %q", row, tt.want)
			}
		})
	}
	// account is required.
	_, ps := providertest.CheckRow(t, []string{"provider", "cli", "account"}, ingest.ValidateOptions{}, "asavie", "+447700900123", "")
	if got := providertest.Summary(ps); !slices.Equal(got, []string{"account:missing_value"}) {
		t.Errorf("problems = %v", got)
	}
}
