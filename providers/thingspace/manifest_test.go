package thingspace_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/simbulk/simbulk/ingest"
	_ "github.com/simbulk/simbulk/providers/all"
	"github.com/simbulk/simbulk/providers/providertest"
)

func TestManifest(t *testing.T) {
	names := []string{"provider", "eid", "iccid", "imei", "account_name", "mdn_zip_code",
		"title", "first_name", "last_name", "address_line1", "city", "state", "zip", "zip4", "country"}
	base := func(mod map[string]string) []string {
		vals := map[string]string{"provider": "thingspace", "eid": providertest.EID, "account_name": "0000123456-00001"}
		for k, v := range mod {
			vals[k] = v
		}
		out := make([]string, len(names))
		for i, n := range names {
			out[i] = vals[n]
		}
		return out
	}
	place := map[string]string{"first_name": "Jane", "last_name": "Doe-Smith #2", "address_line1": "1 Main St",
		"city": "Boston", "state": "ma", "zip": "02134", "country": "usa"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range place {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name string
		mod  map[string]string
		want []string
	}{
		{"minimal", nil, nil},
		{"with iccid and imei", map[string]string{"iccid": providertest.ICCID, "imei": providertest.IMEI, "mdn_zip_code": "02134"}, nil},
		{"missing eid", map[string]string{"eid": ""}, []string{"eid:missing_value"}},
		{"missing account", map[string]string{"account_name": ""}, []string{"account_name:missing_value"}},
		{"bad account", map[string]string{"account_name": "123456-1"}, []string{"account_name:bad_format"}},
		{"bad mdn zip", map[string]string{"mdn_zip_code": "2134"}, []string{"mdn_zip_code:bad_format"}},
		{"bad iccid", map[string]string{"iccid": "8944123456789012345"}, []string{"iccid:bad_checksum"}},
		{"full place of use", place, nil},
		{"title alone starts the place of use", map[string]string{"title": "Dr"},
			[]string{"first_name:missing_value", "last_name:missing_value", "address_line1:missing_value",
				"city:missing_value", "state:missing_value", "zip:missing_value", "country:missing_value"}},
		{"place of use without city", with(map[string]string{"city": ""}), []string{"city:missing_value"}},
		{"long first name", with(map[string]string{"first_name": strings.Repeat("a", 21)}), []string{"first_name:bad_format"}},
		{"20 char first name", with(map[string]string{"first_name": strings.Repeat("a", 20)}), nil},
		{"long last name", with(map[string]string{"last_name": strings.Repeat("a", 26)}), []string{"last_name:bad_format"}},
		{"name with accent", with(map[string]string{"first_name": "José"}), []string{"first_name:bad_format"}},
		{"name with dot", with(map[string]string{"last_name": "St. John"}), []string{"last_name:bad_format"}},
		{"bad state", with(map[string]string{"state": "Mass"}), []string{"state:bad_format"}},
		{"bad zip", with(map[string]string{"zip": "2134"}), []string{"zip:bad_format"}},
		{"bad zip4", with(map[string]string{"zip4": "12"}), []string{"zip4:bad_format"}},
		{"bad country", with(map[string]string{"country": "Canada"}), []string{"country:bad_format"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			row, ps := providertest.CheckRow(t, names, ingest.ValidateOptions{}, base(tt.mod)...)
			if got := providertest.Summary(ps); !slices.Equal(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
				t.Fatalf("problems = %v, want %v\n%v", got, tt.want, ps)
			}
			if tt.name == "full place of use" && (row.Fields()[ingest.ColState] != "MA" || row.Fields()[ingest.ColCountry] != "USA" || row.Fields()[ingest.ColZip] != "02134") {
				t.Errorf("fields = %v", row.Fields())
			}
		})
	}

	// A place of use from the config's defaults applies to every row.
	opts := ingest.ValidateOptions{Provider: "thingspace", Defaults: map[string]map[string]string{
		"thingspace": {"account_name": "0000123456-00001", "city": "Boston", "state": "MA", "zip": "02134", "country": "US", "address_line1": "1 Main St"},
	}}
	v, hp := ingest.NewValidator(ingest.NewHeader([]string{"eid", "first_name"}), opts)
	if got := providertest.Summary(hp); !slices.Equal(got, []string{"last_name:missing_column"}) {
		t.Errorf("header problems = %v", hp)
	}
	_, ps := v.Check(ingest.Record{Row: 2, FieldCount: 2, Values: []string{providertest.EID, "Jane"}})
	if got := providertest.Summary(ps); !slices.Equal(got, []string{"last_name:missing_value"}) || !strings.Contains(ps[0].Message, "primary place of use") {
		t.Errorf("problems = %v", ps)
	}
}
