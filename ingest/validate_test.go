package ingest

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	goodEID    = "89049032123451234512345678901235"
	goodEID2   = "89044000000000000000000000000136"
	goodICCID  = "89441234567890123454"
	goodICCID2 = "89012601234567890121"
	goodIMEI   = "490154203237518"
)

// record builds a Record for row number row from cells in header order.
func record(row int, cells ...string) Record {
	return Record{Row: row, Values: cells, FieldCount: len(cells)}
}

// summary renders problems as "column:code[:w]" for compact comparison.
func summary(ps []Problem) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		s := p.Column + ":" + p.Code
		if p.Severity == SeverityWarning {
			s += ":w"
		}
		out = append(out, s)
	}
	return out
}

func checkOne(t *testing.T, names []string, opts ValidateOptions, cells ...string) (Row, []Problem) {
	t.Helper()
	v, _ := NewValidator(NewHeader(names), opts)
	return v.Check(record(2, cells...))
}

func find(ps []Problem, code string) (Problem, bool) {
	for _, p := range ps {
		if p.Code == code {
			return p, true
		}
	}
	return Problem{}, false
}

func TestValidateRowBasics(t *testing.T) {
	names := []string{"provider", "eid", "cmp", "euicc_agreement_id", "locale_id", "iccid", "Extra"}
	v, hp := NewValidator(NewHeader(names), ValidateOptions{})
	if len(hp) != 0 {
		t.Fatalf("header problems %v", hp)
	}
	cells := []string{" esim ", " " + goodEID + " ", "IOTA_EU", "agr", "loc", "'" + goodICCID, "keep me"}
	row, ps := v.Check(Record{Row: 7, Values: cells, FieldCount: len(cells)})
	if len(ps) != 0 {
		t.Fatalf("problems %v", ps)
	}
	if row.Number != 7 || row.ICCID != goodICCID || row.EID != goodEID || !slices.Equal(row.Values, cells) {
		t.Errorf("row = %+v", row)
	}
	want := map[string]string{ColCMP: "IOTA_EU", ColEUICCAgreementID: "agr", ColLocaleID: "loc"}
	if fmt.Sprint(row.Fields()) != fmt.Sprint(want) {
		t.Errorf("fields = %v, want %v", row.Fields(), want)
	}

	// Problems carry the row, the canonical column and the raw cell.
	_, ps = v.Check(record(9, "esim", goodEID2, "IOTA_EU", "agr", "loc", " 89441234567890123455", ""))
	if len(ps) != 1 || ps[0].Row != 9 || ps[0].Column != ColICCID || ps[0].Value != " 89441234567890123455" ||
		ps[0].Severity != SeverityError || !strings.Contains(ps[0].Message, "should be 4") {
		t.Errorf("problem = %+v", ps)
	}
}

func TestValidateDefaults(t *testing.T) {
	names := []string{"EID", "CMP", "Locale"}
	opts := ValidateOptions{
		Provider: "esim",
		Defaults: map[string]map[string]string{
			"esim":    {"cmp": "IOTA_EU", "euiccAgreementId": "agr-default", "locale_id": "loc-default", "eid": "ignored"},
			"simcard": {"account": "other"},
		},
	}
	v, hp := NewValidator(NewHeader(names), opts)
	if len(hp) != 0 {
		t.Fatalf("header problems %v", hp)
	}
	row, ps := v.Check(record(2, goodEID, "", ""))
	if len(ps) != 0 {
		t.Fatalf("problems %v", ps)
	}
	want := map[string]string{ColCMP: "IOTA_EU", ColEUICCAgreementID: "agr-default", ColLocaleID: "loc-default"}
	if fmt.Sprint(row.Fields()) != fmt.Sprint(want) {
		t.Errorf("fields = %v, want %v", row.Fields(), want)
	}
	// The row's own values win over defaults.
	row, ps = v.Check(record(3, goodEID2, "arqia_br", "loc-row"))
	if len(ps) != 0 || row.Fields()[ColCMP] != "ARQIA_BR" || row.Fields()[ColLocaleID] != "loc-row" {
		t.Errorf("row = %+v, problems %v", row, ps)
	}
	// A default is checked like a cell; the problem shows the default.
	opts.Defaults["esim"]["cmp"] = "NOPE"
	v, _ = NewValidator(NewHeader(names), opts)
	_, ps = v.Check(record(2, goodEID, "", ""))
	if got := summary(ps); !slices.Equal(got, []string{"cmp:bad_value"}) || ps[0].Value != "NOPE" {
		t.Errorf("problems = %v", ps)
	}
	// Identifiers never come from defaults.
	_, ps = v.Check(record(2, "", "IOTA_EU", ""))
	if got := summary(ps); !slices.Equal(got, []string{"eid:missing_value"}) {
		t.Errorf("problems = %v", got)
	}
}

func TestValidateMissingColumn(t *testing.T) {
	names := []string{"EID", "SIM Number"}
	v, hp := NewValidator(NewHeader(names), ValidateOptions{Provider: "esim",
		Defaults: map[string]map[string]string{"esim": {"locale_id": "loc"}}})
	if got := summary(hp); !slices.Equal(got, []string{"cmp:missing_column", "euicc_agreement_id:missing_column"}) {
		t.Fatalf("header problems = %v", hp)
	}
	for _, p := range hp {
		if p.Row != 1 || !strings.Contains(p.Message, "headers found: EID, SIM Number") || p.Severity != SeverityError {
			t.Errorf("header problem %+v", p)
		}
	}
	// Every row is invalid and says why.
	_, ps := v.Check(record(2, goodEID, goodICCID))
	if got := summary(ps); !slices.Equal(got, []string{"cmp:missing_value", "euicc_agreement_id:missing_value"}) {
		t.Fatalf("problems = %v", got)
	}
	if !strings.Contains(ps[0].Message, "no cmp column") || !strings.Contains(ps[0].Message, "headers found: EID, SIM Number") {
		t.Errorf("message %q", ps[0].Message)
	}

	// Without --provider and without a provider column, the provider
	// column itself is missing.
	v, hp = NewValidator(NewHeader(names), ValidateOptions{})
	if got := summary(hp); !slices.Equal(got, []string{"provider:missing_column"}) ||
		!strings.Contains(hp[0].Message, "headers found: EID, SIM Number") {
		t.Fatalf("header problems = %v", hp)
	}
	if _, ps := v.Check(record(2, goodEID, goodICCID)); !slices.Equal(summary(ps), []string{"provider:missing_value"}) {
		t.Errorf("problems = %v", ps)
	}

	// With a provider column, rows of a provider whose column is absent
	// get missing_value naming the headers; other providers' rows pass.
	names = []string{"provider", "EID", "CLI", "account"}
	v, hp = NewValidator(NewHeader(names), ValidateOptions{})
	if len(hp) != 0 {
		t.Fatalf("header problems = %v", hp)
	}
	_, ps = v.Check(record(2, "esim", goodEID, "", ""))
	if got := summary(ps); !slices.Equal(got, []string{"cmp:missing_value", "euicc_agreement_id:missing_value", "locale_id:missing_value"}) ||
		!strings.Contains(ps[0].Message, "headers found: provider, EID, CLI, account") {
		t.Errorf("problems = %v", ps)
	}
	if _, ps = v.Check(record(3, "simcard", "", "+447700900123", "acct")); len(ps) != 0 {
		t.Errorf("problems = %v", ps)
	}
	// An absent identifier column is named as such.
	v, hp = NewValidator(NewHeader([]string{"ICCID", "account"}), ValidateOptions{Provider: "simcard"})
	if got := summary(hp); !slices.Equal(got, []string{"cli:missing_column"}) {
		t.Errorf("header problems = %v", hp)
	}
	_, ps = v.Check(record(2, goodICCID, "acct"))
	if got := summary(ps); !slices.Equal(got, []string{"cli:missing_value"}) || !strings.Contains(ps[0].Message, "no CLI column") {
		t.Errorf("problems = %v", ps)
	}
}

func TestValidateUnknownProvider(t *testing.T) {
	names := []string{"provider", "ICCID"}
	v, _ := NewValidator(NewHeader(names), ValidateOptions{})
	_, ps := v.Check(record(2, "telenor", goodICCID))
	if got := summary(ps); !slices.Equal(got, []string{"provider:unknown_provider"}) {
		t.Fatalf("problems = %v", ps)
	}
	if !strings.Contains(ps[0].Message, "esim, simcard, device") || ps[0].Value != "telenor" {
		t.Errorf("problem %+v", ps[0])
	}
	// Identifiers are still checked.
	_, ps = v.Check(record(3, "telenor", "89441234567890123455"))
	if got := summary(ps); !slices.Equal(got, []string{"provider:unknown_provider", "iccid:bad_checksum"}) {
		t.Errorf("problems = %v", got)
	}
	// Empty provider cell.
	_, ps = v.Check(record(4, "", goodICCID2))
	if got := summary(ps); !slices.Equal(got, []string{"provider:missing_value"}) {
		t.Errorf("problems = %v", got)
	}

	// An unknown --provider is a header problem and fails every row.
	v, hp := NewValidator(NewHeader(names), ValidateOptions{Provider: "vodafone"})
	if got := summary(hp); !slices.Equal(got, []string{"provider:unknown_provider"}) || !strings.Contains(hp[0].Message, "simcard") {
		t.Fatalf("header problems = %v", hp)
	}
	if _, ps = v.Check(record(2, "", goodICCID)); !HasErrors(ps) {
		t.Errorf("row valid with unknown --provider: %v", ps)
	}

	// --provider and the provider column must agree.
	v, _ = NewValidator(NewHeader(names), ValidateOptions{Provider: "SIMCard"})
	_, ps = v.Check(record(2, "esim", goodICCID))
	if got := summary(ps); !slices.Contains(got, "provider:bad_value") {
		t.Errorf("problems = %v", got)
	}
}

func TestValidateChecksumSeverity(t *testing.T) {
	names := []string{"provider", "eid", "iccid", "imei", "cmp", "euicc_agreement_id", "locale_id"}
	cells := []string{"esim", "89049032123451234512345678901234", "89441234567890123455", "490154203237517", "IOTA_EU", "a", "l"}

	_, ps := checkOne(t, names, ValidateOptions{}, cells...)
	if got := summary(ps); !slices.Equal(got, []string{"eid:bad_checksum", "iccid:bad_checksum", "imei:bad_checksum"}) || !HasErrors(ps) {
		t.Errorf("default: problems = %v", got)
	}
	_, ps = checkOne(t, names, ValidateOptions{Rules: map[string]ProviderRules{"esim": {Checksum: SeverityError}}}, cells...)
	if !HasErrors(ps) {
		t.Errorf("error: problems = %v", summary(ps))
	}
	row, ps := checkOne(t, names, ValidateOptions{Rules: map[string]ProviderRules{"esim": {Checksum: SeverityWarning}}}, cells...)
	if got := summary(ps); !slices.Equal(got, []string{"eid:bad_checksum:w", "iccid:bad_checksum:w", "imei:bad_checksum:w"}) || HasErrors(ps) {
		t.Errorf("warning: problems = %v", got)
	}
	if row.EID != cells[1] || row.ICCID != cells[2] || row.IMEI != cells[3] {
		t.Errorf("warned values not passed on: %+v", row)
	}
	// The config's spelling "warn" is a warning too.
	_, ps = checkOne(t, names, ValidateOptions{Rules: map[string]ProviderRules{"ESIM": {Checksum: "warn"}}}, cells...)
	if HasErrors(ps) {
		t.Errorf(`"warn": problems = %v`, summary(ps))
	}
	// The warning applies to the provider it is set for only.
	_, ps = checkOne(t, names, ValidateOptions{Rules: map[string]ProviderRules{"simcard": {Checksum: SeverityWarning}}}, cells...)
	if !HasErrors(ps) {
		t.Errorf("other provider's rule applied: %v", summary(ps))
	}
	// Format problems stay errors under a checksum warning.
	cells[2] = "894412345678901234"
	_, ps = checkOne(t, names, ValidateOptions{Rules: map[string]ProviderRules{"esim": {Checksum: SeverityWarning}}}, cells...)
	if p, _ := find(ps, CodeBadFormat); p.Column != ColICCID || p.Severity != SeverityError {
		t.Errorf("problems = %v", ps)
	}
	// ... unless the provider accepts ICCIDs without check digit.
	_, ps = checkOne(t, names, ValidateOptions{Rules: map[string]ProviderRules{"esim": {AllowICCIDWithoutCheckDigit: true}}}, cells...)
	if _, found := find(ps, CodeBadFormat); found {
		t.Errorf("problems = %v", ps)
	}
}

func TestValidateExcelDamage(t *testing.T) {
	names := []string{"provider", "eid", "iccid", "cli", "imei", "cmp", "euicc_agreement_id", "locale_id"}
	tests := []struct {
		name    string
		col     string
		value   string
		numeric bool
		rules   ProviderRules
		want    []string
	}{
		{"iccid scientific", "iccid", "8.94412345678901E+19", false, ProviderRules{}, []string{"iccid:excel_damage"}},
		{"iccid scientific comma", "iccid", "8,94412345678901E+19", false, ProviderRules{}, []string{"iccid:excel_damage"}},
		{"iccid scientific lower", "iccid", "8.94412345678901e+19", false, ProviderRules{}, []string{"iccid:excel_damage"}},
		{"iccid trailing .0", "iccid", "89441234567890123454.0", false, ProviderRules{}, []string{"iccid:excel_damage"}},
		{"iccid zero tail", "iccid", "89441234567890100000", false, ProviderRules{}, []string{"iccid:excel_damage"}},
		{"iccid zero tail, checksum warn", "iccid", "89441234567890100000", false, ProviderRules{Checksum: SeverityWarning}, []string{"iccid:excel_damage:w"}},
		{"iccid 19 zero tail", "iccid", "8944123456789010000", false, ProviderRules{}, []string{"iccid:excel_damage"}},
		{"iccid numeric cell", "iccid", "89441234567890100000", true, ProviderRules{}, []string{"iccid:excel_damage"}},
		{"iccid numeric cell that passes Luhn", "iccid", goodICCID, true, ProviderRules{}, []string{"iccid:excel_damage"}},
		{"eid scientific", "eid", "8.90490321234512E+31", false, ProviderRules{}, []string{"eid:excel_damage"}},
		{"eid zero tail", "eid", "89049032123451200000000000000000", false, ProviderRules{}, []string{"eid:excel_damage"}},
		{"eid numeric", "eid", goodEID, true, ProviderRules{}, []string{"eid:excel_damage"}},
		{"imei numeric exact", "imei", goodIMEI, true, ProviderRules{}, []string{"imei:excel_damage:w"}},
		{"imei numeric exact bad luhn", "imei", "490154203237517", true, ProviderRules{}, []string{"imei:excel_damage:w", "imei:bad_checksum"}},
		{"imei trailing .0", "imei", "490154203237518.0", false, ProviderRules{}, []string{"imei:excel_damage"}},
		{"imeisv numeric", "imei", "4901542032375180", true, ProviderRules{}, []string{"imei:excel_damage"}},
		{"cli scientific", "cli", "4.47700900123E+11", false, ProviderRules{}, []string{"cli:excel_damage"}},
		{"cli numeric exact", "cli", "447700900123", true, ProviderRules{}, []string{"cli:excel_damage:w"}},
		{"iccid as text with apostrophe", "iccid", "'" + goodICCID, false, ProviderRules{}, nil},
		{"iccid as formula text", "iccid", `="` + goodICCID + `"`, false, ProviderRules{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vals := map[string]string{"provider": "esim", "eid": goodEID, "cmp": "IOTA_EU", "euicc_agreement_id": "a", "locale_id": "l"}
			vals[tt.col] = tt.value
			cells := make([]string, len(names))
			numeric := make([]bool, len(names))
			for i, n := range names {
				cells[i] = vals[n]
				numeric[i] = n == tt.col && tt.numeric
			}
			v, _ := NewValidator(NewHeader(names), ValidateOptions{Rules: map[string]ProviderRules{"esim": tt.rules}})
			_, ps := v.Check(Record{Row: 2, Values: cells, Numeric: numeric, FieldCount: len(cells)})
			if got := summary(ps); !slices.Equal(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
				t.Fatalf("problems = %v, want %v\n%v", got, tt.want, ps)
			}
			for _, p := range ps {
				if p.Code == CodeExcelDamage && (p.Value != tt.value || !strings.Contains(p.Message, "Text")) {
					t.Errorf("problem %+v", p)
				}
			}
		})
	}
}

func TestValidateDuplicates(t *testing.T) {
	names := []string{"provider", "eid", "iccid", "cli", "cmp", "euicc_agreement_id", "locale_id", "account"}
	v, _ := NewValidator(NewHeader(names), ValidateOptions{
		Rules: map[string]ProviderRules{"simcard": {AllowICCIDWithoutCheckDigit: true}},
	})
	iot := func(row int, eid, iccid string) []Problem {
		_, ps := v.Check(record(row, "esim", eid, iccid, "", "IOTA_EU", "a", "l", ""))
		return ps
	}
	asv := func(row int, iccid, cli string) []Problem {
		_, ps := v.Check(record(row, "simcard", "", iccid, cli, "", "", "", "acct"))
		return ps
	}
	eid3 := "890490321234512345123456789013" + EIDCheckDigits("890490321234512345123456789013")
	eid4 := "890490321234512345123456789014" + EIDCheckDigits("890490321234512345123456789014")
	steps := []struct {
		ps   []Problem
		want []string
		msg  string
	}{
		{iot(2, goodEID, goodICCID), nil, ""},
		{iot(3, goodEID2, goodICCID2), nil, ""},
		{iot(4, goodEID, ""), []string{"eid:duplicate"}, "same EID as row 2"},
		{iot(12, eid3, goodICCID), []string{"iccid:duplicate"}, "same ICCID as row 2"},
		{iot(13, eid4, " '"+goodICCID2), []string{"iccid:duplicate"}, "same ICCID as row 3"},
		// An invalid value is not indexed; nor does it clash.
		{iot(14, "89049032123451234512345678901234", ""), []string{"eid:bad_checksum"}, ""},
		{iot(15, "89049032123451234512345678901234", ""), []string{"eid:bad_checksum"}, ""},
		// CLI duplicates compare the normalised number.
		{asv(20, "", "+447700900123"), nil, ""},
		{asv(21, "", "(+44)7700900123"), []string{"cli:duplicate"}, "same MSISDN as row 20"},
		{asv(22, "", "447700900123"), []string{"cli:duplicate"}, "same MSISDN as row 20"},
		// Kinds are separate: an IMSI with an MSISDN's digits is no duplicate.
		{asv(23, "", "+234150999999999"), nil, ""},
		{asv(24, "", "234150999999999"), nil, ""},
		{asv(25, "", "234150999999999"), []string{"cli:duplicate"}, "same IMSI as row 24"},
		// The same SIM with and without its check digit.
		{asv(26, "8944123456789012345", "+447700900124"), []string{"iccid:duplicate"}, "same ICCID as row 2"},
	}
	for i, s := range steps {
		if got := summary(s.ps); !slices.Equal(got, s.want) && !(len(got) == 0 && len(s.want) == 0) {
			t.Errorf("step %d: problems = %v, want %v", i, got, s.want)
			continue
		}
		if s.msg != "" {
			p, _ := find(s.ps, CodeDuplicate)
			if !strings.Contains(p.Message, s.msg) || p.Severity != SeverityError {
				t.Errorf("step %d: problem %+v, want message with %q", i, p, s.msg)
			}
		}
	}
	// A fresh Validator starts a fresh index.
	v, _ = NewValidator(NewHeader(names), ValidateOptions{})
	if ps := iot(2, goodEID, goodICCID); len(ps) != 0 {
		t.Errorf("problems = %v", ps)
	}
}

func TestValidateFieldCountAndEncoding(t *testing.T) {
	names := []string{"provider", "cli", "account", "Notes"}
	v, _ := NewValidator(NewHeader(names), ValidateOptions{})

	_, ps := v.Check(Record{Row: 2, Values: []string{"simcard", "+447700900123", "acct"}, FieldCount: 3})
	if got := summary(ps); !slices.Equal(got, []string{":field_count"}) || !strings.Contains(ps[0].Message, "has 3 fields but the header has 4") {
		t.Errorf("problems = %v", ps)
	}
	_, ps = v.Check(Record{Row: 3, Values: []string{"simcard", "+447700900124", "acct", "n", "extra"}, FieldCount: 5})
	if got := summary(ps); !slices.Equal(got, []string{":field_count"}) {
		t.Errorf("problems = %v", ps)
	}
	// Bad bytes in a field sent to the provider are an error, in an extra
	// column a warning.
	_, ps = v.Check(Record{Row: 4, Values: []string{"simcard", "+447700900125", "ac\uFFFDct", "n\uFFFD"}, FieldCount: 4, BadEncoding: true})
	if got := summary(ps); !slices.Equal(got, []string{"account:bad_encoding", "Notes:bad_encoding:w"}) {
		t.Errorf("problems = %v", ps)
	}
	_, ps = v.Check(Record{Row: 5, Values: []string{"simcard", "+447700900126", "acct", "n"}, FieldCount: 4, BadEncoding: true})
	if got := summary(ps); !slices.Equal(got, []string{":bad_encoding"}) {
		t.Errorf("problems = %v", ps)
	}
}

func TestHasErrors(t *testing.T) {
	if HasErrors(nil) {
		t.Error("nil has errors")
	}
	if HasErrors([]Problem{{Severity: SeverityWarning}}) {
		t.Error("warning is an error")
	}
	if !HasErrors([]Problem{{Severity: SeverityWarning}, {Severity: SeverityError}}) {
		t.Error("error missed")
	}
	if !HasErrors([]Problem{{}}) {
		t.Error("a problem without severity must count as an error")
	}
}

// fakeReader serves a header and records from memory.
type fakeReader struct {
	h       Header
	recs    []Record
	rowErrs map[int]*RowError // by Record.Row: returned with that record
	err     error             // returned after the records instead of io.EOF
}

func (r *fakeReader) Header() Header { return r.h }
func (r *fakeReader) Close() error   { return nil }
func (r *fakeReader) Next() (Record, error) {
	if len(r.recs) == 0 {
		if r.err != nil {
			return Record{}, r.err
		}
		return Record{}, io.EOF
	}
	rec := r.recs[0]
	r.recs = r.recs[1:]
	if e := r.rowErrs[rec.Row]; e != nil {
		return rec, fmt.Errorf("read manifest: %w", e)
	}
	return rec, nil
}

func TestScan(t *testing.T) {
	newReader := func() *fakeReader {
		return &fakeReader{h: NewHeader([]string{"provider", "cli", "account"}), recs: []Record{
			record(2, "simcard", "+447700900123", "acct"),
			record(3, "simcard", "+447700900123", "acct"), // duplicate
			record(4, "simcard", "447700900999", ""),      // no account
			record(6, "simcard", "234150999999999", "acct"),
		}}
	}
	var rows []int
	var codes []string
	sum, hp, err := Scan(newReader(), ValidateOptions{}, func(row Row, ps []Problem) error {
		rows = append(rows, row.Number)
		codes = append(codes, strings.Join(summary(ps), " "))
		return nil
	})
	if err != nil || len(hp) != 0 {
		t.Fatalf("Scan: %v, %v", err, hp)
	}
	if sum != (Summary{Rows: 4, Valid: 2, Invalid: 2}) {
		t.Errorf("summary = %+v", sum)
	}
	if !slices.Equal(rows, []int{2, 3, 4, 6}) || !slices.Equal(codes, []string{"", "cli:duplicate", "account:missing_value", ""}) {
		t.Errorf("rows %v, codes %q", rows, codes)
	}

	// fn's error stops the scan.
	stop := errors.New("stop")
	sum, _, err = Scan(newReader(), ValidateOptions{}, func(row Row, ps []Problem) error {
		if row.Number == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || sum.Rows != 2 {
		t.Errorf("Scan = %+v, %v", sum, err)
	}

	// A read error is returned as is.
	r := newReader()
	r.err = errors.New("disk on fire")
	sum, _, err = Scan(r, ValidateOptions{}, nil)
	if err != r.err || sum.Rows != 4 {
		t.Errorf("Scan = %+v, %v", sum, err)
	}

	// A row the reader could not read whole is invalid with the reader's
	// problem, and the scan goes on.
	r = newReader()
	r.rowErrs = map[int]*RowError{3: {Row: 3, Column: "cli", Message: "stray quote"}}
	codes = nil
	sum, _, err = Scan(r, ValidateOptions{}, func(row Row, ps []Problem) error {
		codes = append(codes, fmt.Sprintf("%d %s", row.Number, strings.Join(summary(ps), " ")))
		return nil
	})
	if err != nil || sum != (Summary{Rows: 4, Valid: 2, Invalid: 2}) ||
		!slices.Equal(codes, []string{"2 ", "3 cli:bad_format", "4 account:missing_value", "6 "}) {
		t.Errorf("Scan = %+v, %v, %q", sum, err, codes)
	}

	// Many rows: read-ahead batches keep file order.
	r = &fakeReader{h: NewHeader([]string{"provider", "imei"})}
	for i := 0; i < 3*scanBatchSize+7; i++ {
		r.recs = append(r.recs, record(i+2, "telenor", ""))
	}
	next := 2
	sum, _, err = Scan(r, ValidateOptions{}, func(row Row, ps []Problem) error {
		if row.Number != next {
			return fmt.Errorf("row %d, want %d", row.Number, next)
		}
		next++
		return nil
	})
	if err != nil || sum.Rows != 3*scanBatchSize+7 || sum.Invalid != sum.Rows {
		t.Errorf("Scan = %+v, %v", sum, err)
	}

	// Header problems come back and the rows they affect are invalid.
	r = newReader()
	sum, hp, err = Scan(r, ValidateOptions{Provider: "esim"}, nil)
	if err != nil || sum.Invalid != 4 || len(hp) == 0 || hp[0].Code != CodeMissingColumn {
		t.Errorf("Scan = %+v, %v, %v", sum, hp, err)
	}
}

// TestScanMatchesCheck: Scan gives every row the same result as Check
// one row at a time, whether the caller's goroutine or the reading one
// checked its batch, with duplicates found across batches and each
// duplicate problem in its place among the row's other problems.
func TestScanMatchesCheck(t *testing.T) {
	h := NewHeader([]string{"provider", "eid", "iccid", "cli", "account", "cmp", "euicc_agreement_id", "locale_id", "description"})
	var recs []Record
	for i := range 6*scanBatchSize + 13 {
		n := i
		if i%7 == 3 && i > 300 {
			n = i - 300 // an identifier from a batch or two back
		}
		eid := fmt.Sprintf("890490321234512345%012d", n)
		eid += EIDCheckDigits(eid)
		iccid := fmt.Sprintf("8944%014d", n)
		iccid += string(LuhnDigit(iccid))
		row := i + 2
		switch i % 5 {
		case 0, 1:
			if i%11 == 0 {
				eid = eid[:31] // too short, and no duplicate check
			}
			recs = append(recs, record(row, "esim", eid, iccid, "", "", "iota_eu", "agr", "en_GB", " d "))
		case 2:
			recs = append(recs, record(row, "simcard", "", iccid, fmt.Sprintf("+4477009%05d", n), "acct", "", "", "", ""))
		case 3:
			recs = append(recs, record(row, "simcard", "", "'"+iccid, fmt.Sprintf("00101%010d", n), "", "", "", "", "x"))
		default:
			recs = append(recs, record(row, "", eid, iccid, "", "", "", "", ""))
		}
	}

	opts := ValidateOptions{Defaults: map[string]map[string]string{"simcard": {"account": "default", "tariff": "T"}}}
	v, _ := NewValidator(h, opts)
	type result struct {
		row      Row
		problems []Problem
	}
	var want []result
	for _, rec := range recs {
		row, ps := v.Check(rec)
		want = append(want, result{row, ps})
	}
	if !slices.ContainsFunc(want, func(r result) bool {
		return slices.ContainsFunc(r.problems, func(p Problem) bool { return p.Code == CodeDuplicate })
	}) {
		t.Fatal("no duplicates in the test data")
	}

	for _, slow := range []bool{false, true} {
		var got []result
		_, _, err := Scan(&fakeReader{h: h, recs: slices.Clone(recs)}, opts, func(row Row, ps []Problem) error {
			if slow && len(got)%scanBatchSize == 0 {
				time.Sleep(5 * time.Millisecond) // let the reading goroutine check batches
			}
			got = append(got, result{row, ps})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("slow %v: %d rows, want %d", slow, len(got), len(want))
		}
		for i := range want {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("slow %v: row %d:\n got %+v\nwant %+v", slow, want[i].row.Number, got[i], want[i])
			}
		}
	}
}

// benchManifest renders n esim rows as CSV.
func benchManifest(n int) string {
	var b strings.Builder
	b.WriteString("provider,eid,iccid,imei,cmp,euicc_agreement_id,locale_id,description\n")
	for i := 0; i < n; i++ {
		p := fmt.Sprintf("8904903212345123451234%08d", i)
		ic := fmt.Sprintf("894412345678%07d", i)
		im := fmt.Sprintf("35693803%06d", i)
		fmt.Fprintf(&b, "esim,%s%s,%s%c,%s%c,IOTA_EU,agr-1,loc-1,device %d\n",
			p, EIDCheckDigits(p), ic, LuhnDigit(ic), im, LuhnDigit(im), i)
	}
	return b.String()
}

const benchRows = 100_000

// BenchmarkCSVRead is the baseline: a bare encoding/csv read of the
// manifest that BenchmarkCSVValidate reads and validates.
func BenchmarkCSVRead(b *testing.B) {
	data := benchManifest(benchRows)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		r := csv.NewReader(strings.NewReader(data))
		r.ReuseRecord = false
		for {
			if _, err := r.Read(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkCSVValidate(b *testing.B) {
	data := benchManifest(benchRows)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		r := csv.NewReader(strings.NewReader(data))
		names, _ := r.Read()
		v, _ := NewValidator(NewHeader(names), ValidateOptions{})
		line := 1
		for {
			cells, err := r.Read()
			if err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
			line++
			if _, ps := v.Check(Record{Row: line, Values: cells, FieldCount: len(cells)}); len(ps) != 0 {
				b.Fatal(ps)
			}
		}
	}
}

// BenchmarkCSVReaderNext reads the manifest with simbulk's own CSV reader,
// the baseline for BenchmarkScanCSV.
func BenchmarkCSVReaderNext(b *testing.B) {
	data := benchManifest(benchRows)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		r, err := NewCSVReader(strings.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := r.Next(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkScanCSV is `simbulk validate` without the output: read, check,
// count.
func BenchmarkScanCSV(b *testing.B) { benchScan(b, benchManifest(benchRows)) }

// benchScan reads and checks data, benchRows valid rows, b.N times.
func benchScan(b *testing.B, data string) {
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		r, err := NewCSVReader(strings.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		sum, _, err := Scan(r, ValidateOptions{}, func(Row, []Problem) error { return nil })
		if err != nil || sum.Valid != benchRows {
			b.Fatal(sum, err)
		}
	}
}

// narrowManifest renders n ThingSpace rows in the narrow layout of make
// bench: five columns, two identifiers.
func narrowManifest(n int) string {
	var b strings.Builder
	b.WriteString("provider,eid,iccid,account_name,service_plan\n")
	for i := 0; i < n; i++ {
		p := fmt.Sprintf("8904903212345123451234%08d", i)
		ic := fmt.Sprintf("8914800000%09d", i)
		fmt.Fprintf(&b, "thingspace,%s%s,%s%c,0000123456-00001,M2M 5GB\n", p, EIDCheckDigits(p), ic, LuhnDigit(ic))
	}
	return b.String()
}

// BenchmarkScanCSVNarrow is BenchmarkScanCSV over the narrow layout, where
// the per-row costs weigh most against the bytes read.
func BenchmarkScanCSVNarrow(b *testing.B) { benchScan(b, narrowManifest(benchRows)) }

// BenchmarkValidatorCheck measures one row: esim with EID, ICCID and
// IMEI, all valid and distinct.
func BenchmarkValidatorCheck(b *testing.B) {
	r := csv.NewReader(strings.NewReader(benchManifest(1000)))
	recs, err := r.ReadAll()
	if err != nil {
		b.Fatal(err)
	}
	v, _ := NewValidator(NewHeader(recs[0]), ValidateOptions{})
	recs = recs[1:]
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if i == len(recs) {
			i = 0
			v.dups.reset() // the same rows again are no duplicates
		}
		if _, ps := v.Check(Record{Row: i + 2, Values: recs[i], FieldCount: len(recs[i])}); len(ps) != 0 {
			b.Fatal(ps)
		}
		i++
	}
}

func TestDupIndex(t *testing.T) {
	d := newDupIndex()
	const n = 100_000 // several doublings
	iccid := func(i int) string { return fmt.Sprintf("89%018d", i) }
	for i := 0; i < n; i++ {
		if earlier, dup := d.use(dupICCID, d.key(dupICCID, iccid(i)), i+2); dup {
			t.Fatalf("value %d: false duplicate of row %d", i, earlier)
		}
	}
	for i := 0; i < n; i += 997 {
		if earlier, dup := d.use(dupICCID, d.key(dupICCID, iccid(i)), n+i); !dup || earlier != i+2 {
			t.Fatalf("value %d: use = %d, %v; want row %d", i, earlier, dup, i+2)
		}
		if _, dup := d.use(dupEID, d.key(dupEID, fmt.Sprintf("%012d", 0)+iccid(i)), n+i); dup {
			t.Fatalf("value %d: an EID clashed with an ICCID", i)
		}
	}
	if d.n != n+n/997+1 || d.n*4 > d.size()*3 {
		t.Errorf("n = %d, size = %d", d.n, d.size())
	}
	d.reset()
	if _, dup := d.use(dupICCID, d.key(dupICCID, iccid(0)), 2); dup {
		t.Error("reset index remembers")
	}
}

// The index is exact: identifiers that differ only in length, leading
// zeros or a digit beyond what one word holds are different, whether they
// pack into integers or not, and only the same identifier is a duplicate.
func TestDupIndexExact(t *testing.T) {
	distinct := map[dupKind][]string{
		dupEID: {
			"89049032123455636959161810462812", "89049032123455636959161810462813",
			"99049032123455636959161810462812", "00000000000000000000000000000000",
			"00000000000000010000000000000000", "00000000000000000000000000000001",
			"8904903212345563695916181046281", "8904903212345563695916181046281x",
		},
		dupICCID: {
			"8944306091635171524", "89443060916351715240", "894430609163517152", "89443060916351715241",
			"8900000000000000000", "89000000000000000000", "890000000000000000", "8800000000000000000",
			"89999999999999999999", "899999999999999999999", "8944306091635171524a",
		},
		dupMSISDN: {"447700900123", "4477009001230", "0447700900123", "1", "01", "001", "99999999999999999", "999999999999999999"},
		dupIMSI:   {"001010123456789", "01010123456789", "1010123456789", "0010101234567890", "12345678901234567890"},
	}
	d := newDupIndex()
	row := 2
	for kind := dupEID; kind < dupKinds; kind++ {
		for _, v := range distinct[kind] {
			if earlier, dup := d.use(kind, d.key(kind, v), row); dup {
				t.Errorf("kind %d %q at row %d: false duplicate of row %d", kind, v, row, earlier)
			}
			row++
		}
	}
	row = 2
	for kind := dupEID; kind < dupKinds; kind++ {
		for _, v := range distinct[kind] {
			if earlier, dup := d.use(kind, d.key(kind, v), 1000+row); !dup || earlier != row {
				t.Errorf("kind %d %q again: use = %d, %v; want row %d", kind, v, earlier, dup, row)
			}
			row++
		}
	}
}
