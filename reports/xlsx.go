package reports

import (
	"archive/zip"
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"

	"github.com/simbulk/simbulk/pipeline"
)

// Sheet names of report.xlsx.
const (
	SheetSummary   = "Summary"
	SheetSucceeded = "Succeeded"
	SheetFailed    = "Failed"
	SheetInvalid   = "Invalid"
)

func sheetName(s pipeline.State) string {
	switch s {
	case pipeline.Succeeded:
		return SheetSucceeded
	case pipeline.Failed:
		return SheetFailed
	}
	return SheetInvalid
}

// Column widths, in characters: wide enough for a 32-digit EID, narrow
// enough that a long error message does not push everything off screen.
const (
	minColWidth = 8
	maxColWidth = 60
	// widthSample is how many rows decide the column widths. Widths must be
	// set before a streamed sheet's first row, so they come from the first
	// rows, held back until then.
	widthSample = 200
	// perColumnWidths is the widest sheet whose columns get widths of
	// their own. excelize keeps a sheet's column settings as one entry
	// per column and rebuilds the whole list, copying every entry, on
	// each width or style call: per-column widths cost time quadratic in
	// the columns (a 5,000-column sheet took over a minute). Up to this
	// many columns that stays a few milliseconds; a wider sheet gets one
	// width for all its columns, set in a single call, which excelize
	// stores as one entry.
	perColumnWidths = 128
	// maxSheetColumns is how many columns a sheet holds (XFD).
	maxSheetColumns = excelize.MaxColumns
)

// workbook is report.xlsx being written. The data sheets are streamed
// (excelize spools them to temporary files in the run directory), so
// memory stays flat however many rows a run has.
type workbook struct {
	f       *excelize.File
	bold    int // header cells
	text    int // data columns: Text format, so that what a person types there stays text
	maxRows int // rows per sheet, header included
}

func newWorkbook(tmpDir string) (*workbook, error) {
	f := excelize.NewFile(excelize.Options{TmpDir: tmpDir})
	b := &workbook{f: f, maxRows: excelize.TotalRows}
	var err error
	if b.bold, err = f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}, NumFmt: 49}); err != nil {
		f.Close()
		return nil, err
	}
	if b.text, err = f.NewStyle(&excelize.Style{NumFmt: 49}); err != nil { // 49 is "@", Text
		f.Close()
		return nil, err
	}
	if err := f.SetSheetName("Sheet1", SheetSummary); err != nil {
		f.Close()
		return nil, err
	}
	return b, nil
}

func (b *workbook) close() error { return b.f.Close() }

// save writes the workbook to w. excelize's own Write assembles the whole
// zip in a memory buffer first, which for a million-row sheet is hundreds
// of megabytes; handing it a zip writer on w instead streams the archive
// out (the buffer it is given stays empty). Each sheet stays below 4 GiB
// uncompressed (at most TotalRows rows of bounded cells), so the ZIP64
// header fix-up that works on that buffer is never needed.
func (b *workbook) save(ctx context.Context, w io.Writer) error {
	// Copying the spooled sheets into the archive takes a while for a big
	// run: stop at the next write once ctx is done.
	bw := bufio.NewWriterSize(ctxWriter{ctx, w}, 1<<16)
	zw := zip.NewWriter(bw)
	b.f.SetZipWriter(func(io.Writer) excelize.ZipWriter { return zw })
	if err := b.f.Write(io.Discard); err != nil {
		return err
	}
	return bw.Flush()
}

// ctxWriter is a writer that fails with ctx's error once ctx is done.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// sheet is one data table being streamed into one or more sheets: a state
// with more rows than a sheet holds continues on "Failed (2)" and so on.
type sheet struct {
	b      *workbook
	base   string
	header []string
	widths []float64
	// keep lists the table's columns the sheet shows, when a table is
	// wider than a sheet (see table.sheetColumns); nil shows them all.
	keep []int
	proj []string // reused per row: the kept cells

	part int
	sw   *excelize.StreamWriter
	name string
	row  int // last row written to the current sheet

	held [][]string // the first rows, until the widths are known
	vals []any      // reused per row
}

// sheet starts the sheet of a table with this header (already
// neutralised), showing only the columns keep lists when it is not nil.
func (b *workbook) sheet(name string, header []string, keep []int) *sheet {
	s := &sheet{b: b, base: name, keep: keep}
	s.header = append([]string(nil), s.project(header)...)
	return s
}

// project returns the cells of the columns the sheet shows, in a buffer
// reused between rows.
func (s *sheet) project(cells []string) []string {
	if s.keep == nil {
		return cells
	}
	s.proj = s.proj[:0]
	for _, i := range s.keep {
		c := ""
		if i < len(cells) {
			c = cells[i]
		}
		s.proj = append(s.proj, c)
	}
	return s.proj
}

// add writes one row of cells (already cleaned and neutralised).
func (s *sheet) add(cells []string) error {
	cells = s.project(cells)
	if s.widths == nil {
		s.held = append(s.held, append([]string(nil), cells...))
		if len(s.held) < widthSample {
			return nil
		}
		return s.release()
	}
	return s.write(cells)
}

// release decides the column widths from the header and held rows, then
// writes them.
func (s *sheet) release() error {
	s.widths = make([]float64, len(s.header))
	for i, h := range s.header {
		w := utf8.RuneCountInString(h)
		for _, r := range s.held {
			if i < len(r) {
				w = max(w, utf8.RuneCountInString(r[i]))
			}
		}
		s.widths[i] = float64(min(max(w+2, minColWidth), maxColWidth))
	}
	held := s.held
	s.held = nil
	for _, r := range held {
		if err := s.write(r); err != nil {
			return err
		}
	}
	return nil
}

func (s *sheet) write(cells []string) error {
	if s.sw == nil || s.row >= s.b.maxRows {
		if err := s.next(); err != nil {
			return err
		}
	}
	s.row++
	s.vals = s.vals[:0]
	// The row's style makes every cell of it a Text cell, empty ones
	// included. Given with the row, it also spares excelize looking for
	// each cell's style among the column settings, which is a scan of
	// every column per cell.
	for _, c := range cells {
		if c == "" {
			s.vals = append(s.vals, nil) // leave the cell out
			continue
		}
		// A string is always written as a text cell: identifiers never
		// become numbers.
		s.vals = append(s.vals, c)
	}
	return s.sw.SetRow(cellName(1, s.row), s.vals, excelize.RowOpts{StyleID: s.b.text})
}

// next finishes the current sheet, if any, and starts the next part with
// its header row, frozen.
func (s *sheet) next() error {
	if err := s.finish(); err != nil {
		return err
	}
	s.part++
	s.name = s.base
	if s.part > 1 {
		s.name = fmt.Sprintf("%s (%d)", s.base, s.part)
	}
	f := s.b.f
	if _, err := f.NewSheet(s.name); err != nil {
		return fmt.Errorf("sheet %s: %w", s.name, err)
	}
	sw, err := f.NewStreamWriter(s.name)
	if err != nil {
		return fmt.Errorf("sheet %s: %w", s.name, err)
	}
	s.sw = sw
	if err := s.setColumns(); err != nil {
		return fmt.Errorf("sheet %s: %w", s.name, err)
	}
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return fmt.Errorf("sheet %s: %w", s.name, err)
	}
	hdr := make([]any, len(s.header))
	for i, h := range s.header {
		hdr[i] = excelize.Cell{StyleID: s.b.bold, Value: h}
	}
	s.row = 1
	if err := sw.SetRow("A1", hdr); err != nil {
		return fmt.Errorf("sheet %s: %w", s.name, err)
	}
	return nil
}

// setColumns gives the current sheet's columns their widths and the Text
// format. A sheet of up to perColumnWidths columns gets each column's own
// width, set once per run of equal widths; a wider one gets one width for
// all columns, in one call, and its Text format from the rows alone (see
// perColumnWidths).
func (s *sheet) setColumns() error {
	n := len(s.widths)
	if n == 0 {
		return nil
	}
	if n > perColumnWidths {
		return s.sw.SetColWidth(1, n, commonWidth(s.widths))
	}
	for lo := 0; lo < n; {
		hi := lo
		for hi+1 < n && s.widths[hi+1] == s.widths[lo] {
			hi++
		}
		if err := s.sw.SetColWidth(lo+1, hi+1, s.widths[lo]); err != nil {
			return err
		}
		lo = hi + 1
	}
	return s.sw.SetColStyle(1, n, s.b.text)
}

// commonWidth is the width most columns want: widths are whole numbers
// from minColWidth to maxColWidth, so counting them is one pass.
func commonWidth(widths []float64) float64 {
	var count [maxColWidth + 1]int
	best := minColWidth
	for _, w := range widths {
		i := int(w)
		count[i]++
		if count[i] > count[best] || (count[i] == count[best] && i > best) {
			best = i
		}
	}
	return float64(best)
}

// finish puts an autofilter over the current sheet's rows and ends its
// stream. The filter is set after the rows, when their count is known:
// excelize writes it from the worksheet the stream writer holds.
func (s *sheet) finish() error {
	if s.sw == nil {
		return nil
	}
	if len(s.header) > 0 {
		ref := "A1:" + cellName(len(s.header), s.row)
		if err := s.b.f.AutoFilter(s.name, ref, nil); err != nil {
			return fmt.Errorf("sheet %s: autofilter: %w", s.name, err)
		}
	}
	if err := s.sw.Flush(); err != nil {
		return fmt.Errorf("sheet %s: %w", s.name, err)
	}
	s.sw = nil
	return nil
}

// close writes what is still held and ends the last sheet. A table
// without rows still gets its sheet, with the header.
func (s *sheet) close() error {
	if s.widths == nil {
		if err := s.release(); err != nil {
			return err
		}
	}
	if s.sw == nil {
		if err := s.next(); err != nil {
			return err
		}
	}
	return s.finish()
}

func cellName(col, row int) string {
	name, err := excelize.CoordinatesToCellName(col, row)
	if err != nil {
		// Only out-of-range coordinates fail; the sheets stay within
		// excelize's limits (rows split at TotalRows).
		return "A" + strconv.Itoa(row)
	}
	return name
}

// writeSummary fills the Summary sheet: small, so written directly.
func (b *workbook) writeSummary(s *Summary) error {
	f := b.f
	const sh = SheetSummary
	row := 0
	put := func(vals ...any) error {
		row++
		for i, v := range vals {
			if str, ok := v.(string); ok {
				vals[i] = safeCell(str)
			}
		}
		return f.SetSheetRow(sh, cellName(1, row), &vals)
	}
	heading := func(title string, cols ...string) error {
		row++ // a blank line before each section
		if err := put(title); err != nil {
			return err
		}
		if err := f.SetCellStyle(sh, cellName(1, row), cellName(1, row), b.bold); err != nil {
			return err
		}
		if len(cols) == 0 {
			return nil
		}
		vals := make([]any, len(cols))
		for i, c := range cols {
			vals[i] = c
		}
		if err := put(vals...); err != nil {
			return err
		}
		return f.SetCellStyle(sh, cellName(1, row), cellName(len(cols), row), b.bold)
	}
	finished := ""
	if s.FinishedAt != nil {
		finished = s.FinishedAt.Format(timeLayout)
	}
	steps := []func() error{
		func() error {
			if err := put("simbulk run report"); err != nil {
				return err
			}
			return f.SetCellStyle(sh, "A1", "A1", b.bold)
		},
		func() error { return put("Run", s.RunID) },
		func() error { return put("Manifest", s.Manifest) },
		func() error { return put("State", string(s.State)) },
		func() error { return put("Started", s.StartedAt.Format(timeLayout)) },
		func() error { return put("Finished", finished) },
		func() error { return put("Duration (s)", s.DurationSeconds) },
		func() error { return put("Throughput (rows/s)", s.Throughput.RowsPerSecond) },
		func() error { return put("Report generated", s.GeneratedAt.Format(timeLayout)) },
		func() error { return heading("Rows by state", "State", "Rows") },
		func() error {
			for _, st := range pipeline.States {
				if err := put(string(st), s.Counts[st]); err != nil {
					return err
				}
			}
			return put("total", s.Rows)
		},
		func() error {
			cols := []string{"Provider"}
			for _, st := range pipeline.States {
				cols = append(cols, string(st))
			}
			return heading("Rows by provider", append(cols, "total")...)
		},
		func() error {
			for _, p := range s.Providers() {
				c := s.ByProvider[p]
				vals := []any{p}
				for _, st := range pipeline.States {
					vals = append(vals, c[st])
				}
				if err := put(append(vals, c.Total())...); err != nil {
					return err
				}
			}
			return nil
		},
		func() error {
			return heading("Top errors (failed and invalid rows)", "Error code", "Rows", "Example message")
		},
		func() error {
			for _, e := range s.TopErrors {
				if err := put(e.Code, e.Count, e.Message); err != nil {
					return err
				}
			}
			return nil
		},
		func() error {
			return heading("Request latency (ms)", "Provider", "Requests", "p50", "p95", "p99", "max")
		},
		func() error {
			for _, p := range s.LatencyProviders() {
				l := s.LatencyMs[p]
				if err := put(p, l.Count, l.P50, l.P95, l.P99, l.Max); err != nil {
					return err
				}
			}
			return nil
		},
		func() error {
			if s.Workbook == nil {
				return nil
			}
			if err := heading("Left out of this workbook"); err != nil {
				return err
			}
			if err := put("Columns left out", s.Workbook.ColumnsLeftOut); err != nil {
				return err
			}
			return put("Note", s.Workbook.Note)
		},
		func() error {
			if len(s.Counters) == 0 {
				return nil
			}
			if err := heading("Events"); err != nil {
				return err
			}
			for _, k := range slices.Sorted(maps.Keys(s.Counters)) {
				if err := put(k, s.Counters[k]); err != nil {
					return err
				}
			}
			return nil
		},
		func() error {
			if s.Drift == nil {
				return nil
			}
			if err := heading("Reconciliation"); err != nil {
				return err
			}
			for _, kv := range []struct {
				k string
				v int
			}{{"Checked", s.Drift.Checked}, {"In sync", s.Drift.InSync}, {"Drift", len(s.Drift.Items)}} {
				if err := put(kv.k, kv.v); err != nil {
					return err
				}
			}
			return nil
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return fmt.Errorf("sheet %s: %w", sh, err)
		}
	}
	for col, w := range []float64{34, 40, 60, 12, 12, 12, 12, 12, 12} {
		if err := f.SetColWidth(sh, excelColumn(col+1), excelColumn(col+1), w); err != nil {
			return fmt.Errorf("sheet %s: %w", sh, err)
		}
	}
	return nil
}

func excelColumn(n int) string {
	name, _ := excelize.ColumnNumberToName(n)
	return name
}

// timeLayout is how times read in the Summary sheet and summary.html.
const timeLayout = "2006-01-02 15:04:05 UTC"
