package ingest_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/simbulk/simbulk/ingest"
	_ "github.com/simbulk/simbulk/providers/all"
	"github.com/simbulk/simbulk/providers/providertest"
)

// TestValidateOptionalCLI: a provider that keys nothing by CLI takes one
// as an MSISDN or an IMSI, bare digits, by the header or by its length.
// It runs against the shipped providers' rules (providers/all).
func TestValidateOptionalCLI(t *testing.T) {
	tests := []struct {
		provider, header, cli, want string
	}{
		{"iotconnect", "CLI", "+447700900123", "447700900123"},
		{"iotconnect", "CLI", "(+44)7700900123", "447700900123"},
		{"iotconnect", "MSISDN", "46000000001", "46000000001"},
		{"iotconnect", "IMSI", "230000000000001", "230000000000001"},
		{"iotconnect", "IMSI", "310260", "310260"},
		{"iotconnect", "CLI", "230000000000001", "230000000000001"},
		{"iotconnect", "CLI", "2341509999999999", ingest.CodeBadFormat}, // 16: too long for either
		{"thingspace", "MDN", "2815551234", "2815551234"},               // no country code needed
		{"thingspace", "CLI", "", ""},
		{"thingspace", "MSISDN", "+1 281 555 1234", ingest.CodeBadFormat},
	}
	for _, tt := range tests {
		t.Run(tt.provider+" "+tt.header+" "+tt.cli, func(t *testing.T) {
			names := []string{"provider", "eid", tt.header, "cmp", "euicc_agreement_id", "locale_id", "account_name"}
			row, ps := providertest.CheckRow(t, names, ingest.ValidateOptions{}, tt.provider, providertest.EID, tt.cli, "IOTA_EU", "a", "l", "0000123456-00001")
			if strings.Contains(tt.want, "_") {
				if got := providertest.Summary(ps); !slices.Equal(got, []string{"cli:" + tt.want}) {
					t.Fatalf("problems = %v", ps)
				}
				return
			}
			if len(ps) != 0 || row.CLI != tt.want {
				t.Errorf("CLI = %q, problems %v; want %q", row.CLI, ps, tt.want)
			}
		})
	}
}
