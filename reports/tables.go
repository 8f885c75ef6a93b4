package reports

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"

	"github.com/simbulk/simbulk/pipeline"
)

// tableStates are the states with a CSV file and a sheet of their own.
var tableStates = []pipeline.State{pipeline.Succeeded, pipeline.Failed, pipeline.Invalid}

func csvName(s pipeline.State) string {
	switch s {
	case pipeline.Succeeded:
		return SucceededCSV
	case pipeline.Failed:
		return FailedCSV
	}
	return InvalidCSV
}

// writeTables writes the CSV files and report.xlsx. Each state's rows are
// read once, in row order, and go to its CSV file and its sheet together.
func (w *writer) writeTables(ctx context.Context, sum *Summary) error {
	var book *workbook
	if w.wants(FormatXLSX) {
		var err error
		// Spool the streamed sheets next to the report, in the owner-only
		// run directory, not in a shared temporary directory.
		if book, err = newWorkbook(w.dir); err != nil {
			return fmt.Errorf("%s: %w", ReportXLSX, err)
		}
		defer book.close()
		if err := book.writeSummary(sum); err != nil {
			return fmt.Errorf("%s: %w", ReportXLSX, err)
		}
	}
	for _, st := range tableStates {
		if err := w.writeTable(ctx, st, book); err != nil {
			return err
		}
	}
	if book == nil {
		return nil
	}
	f, err := createTemp(w.dir, ReportXLSX)
	if err != nil {
		return err
	}
	if err := book.save(f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("%s: %w", ReportXLSX, err)
	}
	return w.commit(f, ReportXLSX)
}

// writeTable streams the rows of one state into its CSV file (when CSV is
// wanted) and its sheet of book (when not nil).
func (w *writer) writeTable(ctx context.Context, st pipeline.State, book *workbook) error {
	t, err := newTable(ctx, w.view, st)
	if err != nil {
		return err
	}
	header := t.headerCells()

	var file *os.File
	var cw *csv.Writer
	if w.wants(FormatCSV) {
		if file, err = createTemp(w.dir, csvName(st)); err != nil {
			return err
		}
		defer func() {
			if file != nil { // not committed: an error on the way
				file.Close()
				os.Remove(file.Name())
			}
		}()
		cw = csv.NewWriter(file)
		if err := cw.Write(header); err != nil {
			return fmt.Errorf("%s: %w", csvName(st), err)
		}
	}
	var sh *sheet
	if book != nil {
		sh = book.sheet(sheetName(st), header)
	}

	var buf []string
	err = w.view.Rows(ctx, st, func(r pipeline.ReportRow) error {
		buf = t.cells(r, buf)
		if cw != nil {
			if err := cw.Write(buf); err != nil {
				return fmt.Errorf("%s: %w", csvName(st), err)
			}
		}
		if sh != nil {
			if err := sh.add(buf); err != nil {
				return fmt.Errorf("%s: %w", ReportXLSX, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if sh != nil {
		if err := sh.close(); err != nil {
			return fmt.Errorf("%s: %w", ReportXLSX, err)
		}
	}
	if cw != nil {
		cw.Flush()
		if err := cw.Error(); err != nil {
			return fmt.Errorf("%s: %w", csvName(st), err)
		}
		f := file
		file = nil
		return w.commit(f, csvName(st))
	}
	return nil
}
