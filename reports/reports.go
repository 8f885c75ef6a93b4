package reports

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/simbulk/simbulk/pipeline"
)

// Source is the checkpoint as reports read it. Every pipeline.Store
// (sqlite.Store, for one) satisfies it.
type Source interface {
	// ViewRun calls fn with a consistent read-only view of one run (a
	// unique prefix of its id is enough).
	ViewRun(ctx context.Context, runID string, fn func(pipeline.ReportView) error) error
}

// Report formats, as --format takes them.
const (
	FormatCSV  = "csv"  // succeeded.csv, failed.csv, invalid.csv
	FormatXLSX = "xlsx" // report.xlsx
	FormatJSON = "json" // summary.json
	FormatHTML = "html" // summary.html
)

// Formats lists every format, in the order files are written.
var Formats = []string{FormatCSV, FormatXLSX, FormatJSON, FormatHTML}

// File names in a run's report directory.
const (
	SucceededCSV = "succeeded.csv"
	FailedCSV    = "failed.csv"
	InvalidCSV   = "invalid.csv"
	ReportXLSX   = "report.xlsx"
	SummaryJSON  = "summary.json"
	SummaryHTML  = "summary.html"
)

// DefaultDir is where run directories go when --out is not given.
const DefaultDir = "simbulk-runs"

// ErrUnknownFormat is returned for a format not in Formats.
var ErrUnknownFormat = errors.New("unknown report format")

// ParseFormats reads --format: a comma-separated list of formats, "" for
// all of them.
func ParseFormats(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return slices.Clone(Formats), nil
	}
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		if f == "" {
			continue
		}
		if !slices.Contains(Formats, f) {
			return nil, fmt.Errorf("%w %q: choose from %s", ErrUnknownFormat, f, strings.Join(Formats, ", "))
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out, nil
}

// Options are the less common knobs of WriteWith.
type Options struct {
	// Formats to write; empty means all of them.
	Formats []string
	// Drift, when set, is a reconciliation's result: summary.json and
	// summary.html then show it.
	Drift *Drift
	// Now stamps generated_at; nil means time.Now.
	Now func() time.Time
}

// Files are what a Write produced.
type Files struct {
	Dir   string   // the run's report directory: DIR/<run-id>
	Paths []string // the files written, in the order they were written
}

// Write writes the reports of a run into dir/<run-id>/ (dir is --out,
// DefaultDir when empty), in the given formats (nil: all). The reports
// show the checkpoint as it is now, so an interrupted or still running run
// gets reports of its rows so far. Files are replaced whole: a report that
// fails half way leaves the previous files as they were.
//
// ctx bounds the whole report: once it is done, writing stops within a
// row and Write returns ctx's error, leaving the previous report's files
// as they were and no temporary file behind. After a run stopped by a
// signal, pass a context that the same signal did not cancel, or the
// report stops too.
func Write(ctx context.Context, src Source, runID, dir string, formats []string) (Files, error) {
	return WriteWith(ctx, src, runID, dir, Options{Formats: formats})
}

// WriteWith is Write with Options.
func WriteWith(ctx context.Context, src Source, runID, dir string, opts Options) (Files, error) {
	formats := opts.Formats
	if len(formats) == 0 {
		formats = Formats
	}
	for _, f := range formats {
		if !slices.Contains(Formats, f) {
			return Files{}, fmt.Errorf("%w %q: choose from %s", ErrUnknownFormat, f, strings.Join(Formats, ", "))
		}
	}
	if dir == "" {
		dir = DefaultDir
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	var files Files
	err := src.ViewRun(ctx, runID, func(v pipeline.ReportView) error {
		w := &writer{view: v, run: v.Run(), formats: formats, drift: opts.Drift, now: now}
		var err error
		files.Dir, err = runDir(dir, w.run.ID)
		if err != nil {
			return err
		}
		w.dir = files.Dir
		err = w.write(ctx)
		files.Paths = w.written
		return err
	})
	if err != nil {
		return files, fmt.Errorf("write reports of run %s: %w", runID, err)
	}
	return files, nil
}

// runDir makes dir/<id> owner-only: the reports hold customer identifiers.
func runDir(dir, id string) (string, error) {
	d := filepath.Join(dir, id)
	if err := os.MkdirAll(d, 0o700); err != nil {
		return "", err
	}
	// MkdirAll leaves an existing directory's mode alone; this one is ours.
	if err := os.Chmod(d, 0o700); err != nil {
		return "", err
	}
	removeStale(d)
	return d, nil
}

// staleAge is how old a temporary file must be before a later report
// takes it for the leftover of one that crashed, rather than one being
// written by another simbulk right now.
const staleAge = time.Hour

// removeStale deletes temporary files that a crashed report left in the
// run directory: they hold customer data and would otherwise stay.
func removeStale(dir string) {
	for _, pattern := range []string{".*.tmp", "excelize-*"} {
		matches, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, m := range matches {
			if fi, err := os.Lstat(m); err == nil && fi.Mode().IsRegular() && time.Since(fi.ModTime()) > staleAge {
				os.Remove(m)
			}
		}
	}
}

// writer is one Write in progress.
type writer struct {
	view    pipeline.ReportView
	run     pipeline.Run
	dir     string
	formats []string
	drift   *Drift
	now     func() time.Time
	written []string
	staged  []staged // complete files waiting for publish
}

// staged is a complete temporary file and the name it is to get.
type staged struct{ tmp, final string }

func (w *writer) wants(f string) bool { return slices.Contains(w.formats, f) }

// write writes every file wanted into temporary files and, once all are
// complete, renames them over the previous report's: a report that fails
// or is cancelled half way leaves the previous report whole, not a mix of
// new and old files.
func (w *writer) write(ctx context.Context) error {
	defer w.discard()
	if err := w.writeAll(ctx); err != nil {
		return err
	}
	// The last moment to give up without touching the previous report.
	if err := ctx.Err(); err != nil {
		return err
	}
	return w.publish()
}

func (w *writer) writeAll(ctx context.Context) error {
	sum, err := buildSummary(ctx, w.view, w.now())
	if err != nil {
		return err
	}
	if w.drift != nil {
		w.drift = cleanDrift(w.drift)
	}
	sum.Drift = w.drift
	cleanSummary(sum)
	if w.wants(FormatCSV) || w.wants(FormatXLSX) {
		tables, err := layTables(ctx, w.view)
		if err != nil {
			return err
		}
		if w.wants(FormatXLSX) {
			// Known before anything is written, so that the Summary sheet
			// says it too.
			sum.Workbook = workbookCut(tables)
		}
		if err := w.writeTables(ctx, sum, tables); err != nil {
			return err
		}
	}
	steps := []struct {
		format, name string
		fn           func(*os.File) error
	}{
		{FormatJSON, SummaryJSON, func(f *os.File) error { return writeJSON(f, sum) }},
		{FormatHTML, SummaryHTML, func(f *os.File) error { return writeHTML(f, sum) }},
	}
	for _, s := range steps {
		if !w.wants(s.format) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := w.replace(s.name, s.fn); err != nil {
			return err
		}
	}
	if w.drift != nil {
		if err := ctx.Err(); err != nil {
			return err
		}
		return w.writeDrift()
	}
	return nil
}

// replace writes the file name in the run directory through fn: into an
// owner-only temporary file first, renamed over name only once complete.
func (w *writer) replace(name string, fn func(*os.File) error) error {
	f, err := createTemp(w.dir, name)
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("%s: %w", name, err)
	}
	return w.commit(f, name)
}

// createTemp makes the temporary file that becomes name. os.CreateTemp
// already creates it 0600; the chmod makes that independent of it.
func createTemp(dir, name string) (*os.File, error) {
	f, err := os.CreateTemp(dir, "."+name+"-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return f, nil
}

// commit syncs and closes a finished temporary file, to be renamed to
// name by publish.
func (w *writer) commit(f *os.File, name string) error {
	err := f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("%s: %w", name, err)
	}
	w.staged = append(w.staged, staged{tmp: f.Name(), final: filepath.Join(w.dir, name)})
	return nil
}

// publish renames every staged file to its name. Renames are quick and
// do not fail on a sound file system, so the files change together.
func (w *writer) publish() error {
	for len(w.staged) > 0 {
		s := w.staged[0]
		if err := os.Rename(s.tmp, s.final); err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(s.final), err)
		}
		w.staged = w.staged[1:]
		w.written = append(w.written, s.final)
	}
	return nil
}

// discard removes the staged files that were not published: they hold
// customer data.
func (w *writer) discard() {
	for _, s := range w.staged {
		os.Remove(s.tmp)
	}
	w.staged = nil
}
