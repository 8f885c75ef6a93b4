package reports

import (
	"encoding/csv"
	"encoding/json"
	"os"

	"github.com/gocarina/gocsv"
)

// Drift report file names, beside the run's other reports.
const (
	DriftCSV  = "drift.csv"
	DriftJSON = "drift.json"
)

// driftRecord is one line of drift.csv.
type driftRecord struct {
	Row      int    `csv:"row"`
	Provider string `csv:"provider"`
	ID       string `csv:"id"`
	Kind     string `csv:"kind"`
	Expected string `csv:"expected"`
	Actual   string `csv:"actual"`
}

// writeDrift writes drift.json (the `reconcile --json` shape) and
// drift.csv (one line per finding, cells neutralised like every CSV here).
func (w *writer) writeDrift() error {
	if err := w.replace(DriftJSON, func(f *os.File) error {
		enc := json.NewEncoder(f)
		enc.SetIndent("", "  ")
		d := *w.drift
		if d.Items == nil {
			d.Items = []DriftItem{} // an empty list, not null: scripts iterate it
		}
		return enc.Encode(d)
	}); err != nil {
		return err
	}
	return w.replace(DriftCSV, func(f *os.File) error {
		recs := make([]driftRecord, len(w.drift.Items))
		for i, d := range w.drift.Items {
			recs[i] = driftRecord{Row: d.Row, Provider: Neutralise(d.Provider), ID: Neutralise(d.ID), Kind: d.Kind,
				Expected: Neutralise(d.Expected), Actual: Neutralise(d.Actual)}
		}
		// A writer of our own per call: gocsv's package-level settings are
		// shared state.
		cw := csv.NewWriter(f)
		if err := gocsv.MarshalCSV(recs, gocsv.NewSafeCSVWriter(cw)); err != nil {
			return err
		}
		cw.Flush()
		return cw.Error()
	})
}
