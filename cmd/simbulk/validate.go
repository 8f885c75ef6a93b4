package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/simbulk/simbulk/ingest"
	"github.com/simbulk/simbulk/pipeline/rollout"
	"github.com/simbulk/simbulk/providers"
)

type validateOptions struct {
	provider string
	sheet    string
	json     bool
}

func (a *app) validateCommand() *cobra.Command {
	var o validateOptions
	cmd := &cobra.Command{
		Use:   "validate MANIFEST",
		Short: "Check every row of a manifest without sending anything",
		Long: `Check every row of a CSV or XLSX manifest against the identifier rules (EID
MOD 97-10, ICCID and IMEI Luhn, lengths, E.164) and the provider's field rules,
and list what is wrong, where. Nothing is sent to any provider.

Rows are numbered as a spreadsheet or editor shows them: the header is row 1.
The manifest is read as a stream, so files of millions of rows are fine.

Exit status: 0 every row valid, 1 manifest unreadable, 2 usage error,
3 some rows invalid.`,
		Example: `  # Summary and the first problems, as a table
  simbulk validate devices.csv

  # A one-provider export that has no provider column
  simbulk validate sims.csv --provider asavie

  # A sheet other than the first
  simbulk validate devices.xlsx --sheet "March batch"

  # Every problem as JSON, e.g. to count excel_damage rows
  simbulk validate devices.csv --json | jq '[.problems[] | select(.code == "excel_damage")] | length'`,
		Args: argNames("MANIFEST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.validate(cmd.Context(), args[0], o)
		},
	}
	f := cmd.Flags()
	f.Var(newChoice(&o.provider, providers.Names()...), "provider",
		"the `PROVIDER` of every row ("+strings.Join(providers.Names(), "|")+"), for manifests without a provider column")
	f.StringVar(&o.sheet, "sheet", "", "XLSX sheet `NAME` to read (default: the first sheet)")
	f.BoolVar(&o.json, "json", false, "print the counts and every problem as JSON")
	return cmd
}

func (a *app) validate(ctx context.Context, path string, o validateOptions) error {
	local, cleanup, err := rollout.LocalManifest(ctx, path)
	if err != nil {
		return err
	}
	defer cleanup()
	r, err := ingest.OpenContext(ctx, local, ingest.OpenOptions{Sheet: o.sheet})
	if err != nil {
		return err // names the manifest already
	}
	defer r.Close()

	out := bufio.NewWriter(a.stdout)
	var report problemReport
	if o.json {
		report = newJSONReport(out)
	} else {
		report = newTextReport(out, path)
	}
	progress := progressLog{log: a.logger(), manifest: path, every: 5 * time.Second, last: time.Now()}
	rows := 0
	sum, headerProblems, err := ingest.Scan(r, ingest.ValidateOptions{Provider: o.provider},
		func(_ ingest.Row, problems []ingest.Problem) error {
			rows++
			if rows%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
				progress.rows(rows)
			}
			if err := report.add(problems); err != nil {
				return fmt.Errorf("write report: %w", err)
			}
			return nil
		})
	if err != nil {
		return err // the reader's errors name the manifest and the line
	}
	if err := report.finish(sum, headerProblems); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := out.Flush(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if sum.Invalid > 0 || ingest.HasErrors(headerProblems) {
		return exitWith(exitRowsFailed)
	}
	return nil
}

// problemReport receives problems as the manifest streams past and
// writes the report when the counts are known. Neither implementation
// keeps every problem: the text report keeps the first few for its table,
// the JSON report writes each one as it arrives.
type problemReport interface {
	add(problems []ingest.Problem) error
	finish(sum ingest.Summary, headerProblems []ingest.Problem) error
}

// jsonReport streams {"problems":[...],"rows":N,"valid":N,"invalid":N}.
// The counts come last because they are known only at the end; JSON
// objects are unordered, so this is the documented shape, and memory stays
// flat however many problems there are. One problem per line keeps the
// output greppable.
type jsonReport struct {
	w       *bufio.Writer
	buf     bytes.Buffer
	enc     *json.Encoder
	written int
}

func newJSONReport(w *bufio.Writer) *jsonReport {
	r := &jsonReport{w: w}
	r.enc = json.NewEncoder(&r.buf)
	r.enc.SetEscapeHTML(false) // values like "<none>" stay readable
	return r
}

func (r *jsonReport) add(problems []ingest.Problem) error {
	for _, p := range problems {
		r.buf.Reset()
		if err := r.enc.Encode(p); err != nil {
			return err
		}
		sep := ",\n"
		if r.written == 0 {
			sep = `{"problems":[` + "\n"
		}
		r.w.WriteString(sep)
		r.w.Write(bytes.TrimSuffix(r.buf.Bytes(), []byte("\n")))
		r.written++
	}
	return nil
}

func (r *jsonReport) finish(sum ingest.Summary, headerProblems []ingest.Problem) error {
	if err := r.add(headerProblems); err != nil {
		return err
	}
	if r.written == 0 {
		r.w.WriteString(`{"problems":[`)
	} else {
		r.w.WriteString("\n")
	}
	_, err := fmt.Fprintf(r.w, `],"rows":%d,"valid":%d,"invalid":%d}`+"\n", sum.Rows, sum.Valid, sum.Invalid)
	return err
}

// maxShown is how many problems the text report lists; past that a person
// wants the counts by code, or --json.
const maxShown = 20

// textReport prints a summary, counts by code and a table of the first
// problems.
type textReport struct {
	w        io.Writer
	path     string
	shown    []ingest.Problem
	total    int
	warnings int
	byCode   map[string]int
}

func newTextReport(w io.Writer, path string) *textReport {
	return &textReport{w: w, path: path, byCode: make(map[string]int)}
}

func (r *textReport) add(problems []ingest.Problem) error {
	for _, p := range problems {
		r.total++
		r.byCode[p.Code]++
		if p.Severity == ingest.SeverityWarning {
			r.warnings++
		}
		if len(r.shown) < maxShown {
			r.shown = append(r.shown, p)
		}
	}
	return nil
}

func (r *textReport) finish(sum ingest.Summary, headerProblems []ingest.Problem) error {
	// Header problems explain everything below them, so they head the table.
	rowProblems := r.shown
	r.shown = nil
	r.add(headerProblems)
	r.shown = append(r.shown, rowProblems...)
	r.shown = r.shown[:min(len(r.shown), maxShown)]

	tw := tabwriter.NewWriter(r.w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "Manifest:\t%s\n", r.path)
	fmt.Fprintf(tw, "Rows:\t%d\n", sum.Rows)
	fmt.Fprintf(tw, "Valid:\t%d\n", sum.Valid)
	fmt.Fprintf(tw, "Invalid:\t%d\n", sum.Invalid)
	fmt.Fprintf(tw, "Warnings:\t%d\n", r.warnings)
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.total == 0 {
		_, err := fmt.Fprintln(r.w, "\nNo problems found.")
		return err
	}

	fmt.Fprintf(r.w, "\nProblems by code (%d in all):\n", r.total)
	tw = tabwriter.NewWriter(r.w, 0, 8, 2, ' ', 0)
	codes := slices.SortedFunc(maps.Keys(r.byCode), func(a, b string) int {
		return cmp.Or(cmp.Compare(r.byCode[b], r.byCode[a]), cmp.Compare(a, b))
	})
	for _, c := range codes {
		fmt.Fprintf(tw, "  %s\t%d\n", c, r.byCode[c])
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(r.w)
	tw = tabwriter.NewWriter(r.w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ROW\tCOLUMN\tCODE\tVALUE\tMESSAGE")
	for _, p := range r.shown {
		code := p.Code
		if p.Severity == ingest.SeverityWarning {
			code += " (warning)"
		}
		value := displayValue(p.Value)
		if p.Column == "" && p.Value == "" {
			value = "-" // a problem with the whole row, not one cell
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", p.Row, cmp.Or(p.Column, "-"), code, value, oneLine(p.Message))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if more := r.total - len(r.shown); more > 0 {
		fmt.Fprintf(r.w, "... and %d more (use --json for all)\n", more)
	}
	return nil
}

// maxValueRunes keeps one long cell from pushing the message column off
// the screen.
const maxValueRunes = 36

// displayValue shows a cell so that what is wrong with it is visible:
// empty cells, surrounding spaces, control characters and replaced bytes
// are quoted and escaped; long values are cut.
func displayValue(v string) string {
	if utf8.RuneCountInString(v) > maxValueRunes {
		v = string([]rune(v)[:maxValueRunes-1]) + "…"
	}
	odd := v == "" || strings.TrimSpace(v) != v || strings.ContainsFunc(v, func(r rune) bool {
		return r == utf8.RuneError || (!unicode.IsGraphic(r) && r != ' ')
	})
	if odd {
		return strconv.Quote(v)
	}
	return v
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
