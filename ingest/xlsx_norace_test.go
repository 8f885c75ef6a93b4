//go:build !race

package ingest

const xlsxRace = false
