//go:build race

package ingest

// xlsxRace: the race detector multiplies memory and time, so the hostile
// workbooks' peak RSS is not checked under it.
const xlsxRace = true
