package sqlite

import (
	"strings"

	"github.com/simbulk/simbulk/pipeline"
)

// sqlLit is a state as a quoted SQL literal, 'pending', for queries built
// from the pipeline's constants rather than spelling states by hand.
// Literal, not a bound parameter: SQLite matches a partial index
// (rows_done_*) only against literal values, and plans the other queries
// as before.
func sqlLit[S ~string](s S) string { return "'" + string(s) + "'" }

// sqlIn is "IN ('a', 'b')" for the given states, built the same way.
func sqlIn[S ~string](ss ...S) string {
	var b strings.Builder
	b.WriteString("IN (")
	for i, s := range ss {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(sqlLit(s))
	}
	b.WriteString(")")
	return b.String()
}

// SQL fragments naming row states, built once from the constants.
var (
	sqlOpen        = sqlIn(pipeline.Pending, pipeline.InFlight, pipeline.Accepted) // rows with work left
	sqlProvisioned = sqlIn(pipeline.Succeeded, pipeline.Skipped)                   // rows a reconciliation checks
)

// placeholders returns "?, ?, ?" for n values.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
