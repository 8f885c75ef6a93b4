// Package ingest reads device manifests (CSV or XLSX) one row at a time and
// checks every row against the identifier rules and the field rules of its
// provider before anything is sent anywhere. It knows no provider itself:
// each provider package holds its rules as a Manifest, which the provider
// registry hands to RegisterManifest (providers/all registers the shipped
// ones).
//
// Reading and checking are separate steps so that the same checks apply to
// both formats: a Reader turns a file into a Header and a stream of Records,
// and a Validator turns each Record into a Row (normalised values the
// pipeline can send) plus the Problems found in it. Nothing here holds a
// whole manifest in memory; only the duplicate index grows with row count,
// by a fixed few bytes per identifier.
//
// Nor does a hostile file make one row expensive: the CSV reader keeps at
// most 64 KiB of a cell (a longer one is the row's cell_too_long problem)
// and 1,024 cells of a row, whatever the file's shape, and no message
// grows with the number of columns. Control characters are looked for in
// every cell of the whole file (control_character): they are never sent to
// a provider, and the values handed on for reports have them replaced.
package ingest
