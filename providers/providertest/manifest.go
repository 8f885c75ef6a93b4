package providertest

import (
	"testing"

	"github.com/simbulk/simbulk/ingest"
)

// CheckRow validates one manifest row, cells in the order of names (the
// header), as row 2 of a manifest, for tests of a provider's manifest
// rules. The provider must be registered (import providers/all).
func CheckRow(t testing.TB, names []string, opts ingest.ValidateOptions, cells ...string) (ingest.Row, []ingest.Problem) {
	t.Helper()
	v, _ := ingest.NewValidator(ingest.NewHeader(names), opts)
	return v.Check(ingest.Record{Row: 2, Values: cells, FieldCount: len(cells)})
}

// Summary renders problems as "column:code[:w]" (w: a warning), for
// comparing a row's problems in one line.
func Summary(ps []ingest.Problem) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		s := p.Column + ":" + p.Code
		if p.Severity == ingest.SeverityWarning {
			s += ":w"
		}
		out = append(out, s)
	}
	return out
}

// Well-formed identifiers, check digits correct, for the rows of tests of
// a provider's manifest rules.
const (
	EID   = "89049032123451234512345678901235"
	ICCID = "89441234567890123454"
	IMEI  = "490154203237518"
)
