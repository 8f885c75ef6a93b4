package iotconnect_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/simbulk/simbulk/ingest"
	_ "github.com/simbulk/simbulk/providers/all"
	"github.com/simbulk/simbulk/providers/iotconnect"
	"github.com/simbulk/simbulk/providers/providertest"
)

func TestManifest(t *testing.T) {
	names := []string{"Provider", "EID", "CMP", "Domain ID", "eUICC Agreement ID", "Locale ID", "ICCID", "IMEI", "Notes"}
	tests := []struct {
		name  string
		cells []string
		want  []string
	}{
		{"valid", []string{"iotconnect", providertest.EID, "IOTA_EU", "AB12CD34-EF56GH78", "agr-1", "loc-1", providertest.ICCID, providertest.IMEI, "x"}, nil},
		{"valid minimal", []string{"IoTConnect", providertest.EID, "ARQIA_BR", "", "agr-1", "loc-1", "", "", ""}, nil},
		{"cmp lower case", []string{"iotconnect", providertest.EID, "thingspace_us", "", "agr-1", "loc-1", "", "", ""}, nil},
		{"missing eid", []string{"iotconnect", "", "IOTA_EU", "", "agr-1", "loc-1", "", "", ""}, []string{"eid:missing_value"}},
		{"all required missing", []string{"iotconnect", "", "", "", "", "", "", "", ""},
			[]string{"eid:missing_value", "cmp:missing_value", "euicc_agreement_id:missing_value", "locale_id:missing_value"}},
		{"bad cmp", []string{"iotconnect", providertest.EID, "IOTA", "", "agr-1", "loc-1", "", "", ""}, []string{"cmp:bad_value"}},
		{"bad domain", []string{"iotconnect", providertest.EID, "IOTA_EU", "AB12CD3", "agr-1", "loc-1", "", "", ""}, []string{"domain_id:bad_format"}},
		{"domain with 8 groups", []string{"iotconnect", providertest.EID, "IOTA_EU", strings.Repeat("AB12CD34-", 7) + "AB12CD34", "agr-1", "loc-1", "", "", ""}, []string{"domain_id:bad_format"}},
		{"domain with 7 groups", []string{"iotconnect", providertest.EID, "IOTA_EU", strings.Repeat("AB12CD34-", 6) + "AB12CD34", "agr-1", "loc-1", "", "", ""}, nil},
		{"every problem at once", []string{"iotconnect", "8904903212345123451234567890123", "X", "bad", "", "loc-1", "89441234567890123455", "490154203237517", ""},
			[]string{"eid:bad_format", "iccid:bad_checksum", "imei:bad_checksum", "cmp:bad_value", "euicc_agreement_id:missing_value", "domain_id:bad_format"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			row, ps := providertest.CheckRow(t, names, ingest.ValidateOptions{}, tt.cells...)
			if got := providertest.Summary(ps); !slices.Equal(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
				t.Fatalf("problems = %v, want %v\n%v", got, tt.want, ps)
			}
			if ingest.HasErrors(ps) != (len(tt.want) > 0) {
				t.Errorf("ingest.HasErrors = %v", ingest.HasErrors(ps))
			}
			if len(tt.want) == 0 {
				if row.Provider != iotconnect.Name || row.EID != providertest.EID {
					t.Errorf("row = %+v", row)
				}
				if cmp := row.Fields()[ingest.ColCMP]; cmp != strings.ToUpper(tt.cells[2]) {
					t.Errorf("cmp = %q", cmp)
				}
			}
		})
	}
}
