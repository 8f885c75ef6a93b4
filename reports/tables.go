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

// layTables lays out the table of every state with one (see newTable).
func layTables(ctx context.Context, v pipeline.ReportView) ([]*table, error) {
	var out []*table
	for _, st := range tableStates {
		t, err := newTable(ctx, v, st)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// workbookCut is what report.xlsx leaves out of tables wider than a
// sheet, for the summaries to say; nil when it holds every column.
func workbookCut(tables []*table) *WorkbookCut {
	left, widest := 0, 0
	for _, t := range tables {
		_, n := t.sheetColumns(maxSheetColumns)
		left = max(left, n)
		widest = max(widest, len(t.header))
	}
	if left == 0 {
		return nil
	}
	return &WorkbookCut{
		ColumnsLeftOut: left,
		SheetColumns:   maxSheetColumns,
		Note: fmt.Sprintf("%s leaves out %s of the %s columns of the widest table (a sheet holds at most %s columns; "+
			"the columns simbulk adds are kept, manifest columns past the limit are dropped); %s, %s and %s have every column.",
			ReportXLSX, formatInt(left), formatInt(widest), formatInt(maxSheetColumns), SucceededCSV, FailedCSV, InvalidCSV),
	}
}

// writeTables writes the CSV files and report.xlsx. Each state's rows are
// read once, in row order, and go to its CSV file and its sheet together.
func (w *writer) writeTables(ctx context.Context, sum *Summary, tables []*table) error {
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
	for _, t := range tables {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := w.writeTable(ctx, t, book); err != nil {
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
	if err := book.save(ctx, f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("%s: %w", ReportXLSX, err)
	}
	return w.commit(f, ReportXLSX)
}

// writeTable streams the rows of one table into its CSV file (when CSV is
// wanted) and its sheet of book (when not nil). It stops with ctx's error
// at the next row once ctx is done.
func (w *writer) writeTable(ctx context.Context, t *table, book *workbook) error {
	st := t.state
	header := t.headerCells()

	var file *os.File
	var cw *csv.Writer
	if w.wants(FormatCSV) {
		var err error
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
		keep, _ := t.sheetColumns(maxSheetColumns)
		sh = book.sheet(sheetName(st), header, keep)
	}

	var buf []string
	err := w.view.Rows(ctx, st, func(r pipeline.ReportRow) error {
		// Checked every row: ctx.Err is nanoseconds against the
		// microseconds a row takes, and one row can be very wide.
		if err := ctx.Err(); err != nil {
			return err
		}
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
