package reports

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/simbulk/simbulk/ingest"
	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/pipeline/sqlite"
)

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return recs
}

func column(t *testing.T, header []string, name string) int {
	t.Helper()
	i := slices.Index(header, name)
	if i < 0 {
		t.Fatalf("no column %q in %q", name, header)
	}
	return i
}

func TestWriteFilesAndPermissions(t *testing.T) {
	f := newFixture(t, mixedManifest(), ingest.ValidateOptions{}, mixedPlan(), true)
	files := f.write(t)

	if want := filepath.Join(f.out, f.run.ID); files.Dir != want {
		t.Errorf("Dir = %s, want %s", files.Dir, want)
	}
	var names []string
	for _, p := range files.Paths {
		names = append(names, filepath.Base(p))
	}
	want := []string{SucceededCSV, FailedCSV, InvalidCSV, ReportXLSX, SummaryJSON, SummaryHTML}
	if !slices.Equal(names, want) {
		t.Errorf("files written = %v, want %v", names, want)
	}
	for _, d := range []string{f.out, files.Dir} {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v, want 0700", d, fi.Mode().Perm())
		}
	}
	entries, err := os.ReadDir(files.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(want) {
		t.Errorf("run directory holds %d entries, want %d (no temporary files left)", len(entries), len(want))
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", e.Name(), fi.Mode().Perm())
		}
	}

	// Written again (`simbulk report` after the run), the files are
	// replaced and stay owner-only even if someone loosened them.
	os.Chmod(files.Dir, 0o755)
	os.Chmod(filepath.Join(files.Dir, SummaryJSON), 0o644)
	f.write(t)
	for _, p := range []string{files.Dir, filepath.Join(files.Dir, SummaryJSON)} {
		fi, _ := os.Stat(p)
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: mode %v after rewrite, want owner-only", p, fi.Mode().Perm())
		}
	}
}

func TestWriteSomeFormats(t *testing.T) {
	f := newFixture(t, mixedManifest(), ingest.ValidateOptions{}, mixedPlan(), true)
	files := f.write(t, FormatJSON)
	if len(files.Paths) != 1 || filepath.Base(files.Paths[0]) != SummaryJSON {
		t.Errorf("json only wrote %v", files.Paths)
	}
	if _, err := Write(context.Background(), f.cp, f.run.ID, f.out, []string{"pdf"}); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("format pdf: err = %v, want ErrUnknownFormat", err)
	}
	if _, err := Write(context.Background(), f.cp, "nosuchrun", f.out, nil); !errors.Is(err, pipeline.ErrNoRun) {
		t.Errorf("unknown run: err = %v, want ErrNoRun", err)
	}
	// A prefix of the run id is enough, and the directory gets the full id.
	files, err := Write(context.Background(), f.cp, f.run.ID[:17], f.out, []string{FormatJSON})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(files.Dir) != f.run.ID {
		t.Errorf("Dir = %s, want the full run id", files.Dir)
	}
}

func TestParseFormats(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"", Formats, false},
		{"csv", []string{"csv"}, false},
		{" CSV, html ,csv", []string{"csv", "html"}, false},
		{"csv,pdf", nil, true},
	} {
		got, err := ParseFormats(tc.in)
		if (err != nil) != tc.wantErr || !slices.Equal(got, tc.want) {
			t.Errorf("ParseFormats(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestSucceededCSV(t *testing.T) {
	f := newFixture(t, mixedManifest(), ingest.ValidateOptions{}, mixedPlan(), true)
	files := f.write(t, FormatCSV)
	recs := readCSV(t, filepath.Join(files.Dir, SucceededCSV))
	header := recs[0]
	wantHeader := append(slices.Clone(f.header),
		"result_iccid", "result_imsi", "result_msisdn", "result_state", "result_status_url", // every key any row returned, sorted
		"attempts", "row", "finished_at") // provider: the manifest has its own column
	if !slices.Equal(header, wantHeader) {
		t.Fatalf("header\n got %q\nwant %q", header, wantHeader)
	}
	rows := recs[1:]
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rows))
	}
	plan := mixedPlan()
	for i, n := range []int{2, 3} {
		got := rows[i]
		if got[column(t, header, "row")] != strconv.Itoa(n) {
			t.Errorf("row %d: row column %q", n, got[column(t, header, "row")])
		}
		for j, v := range f.rows[n].Values {
			if got[j] != Neutralise(v) {
				t.Errorf("row %d column %s = %q, want %q", n, header[j], got[j], Neutralise(v))
			}
		}
		for _, k := range []string{"iccid", "imsi", "msisdn", "state", "status_url"} {
			if g, w := got[column(t, header, "result_"+k)], Neutralise(plan[n].result[k]); g != w {
				t.Errorf("row %d result_%s = %q, want %q", n, k, g, w)
			}
		}
		if g, w := got[column(t, header, "attempts")], strconv.Itoa(len(plan[n].latencies)); g != w {
			t.Errorf("row %d attempts = %q, want %q", n, g, w)
		}
		if g, w := got[column(t, header, "finished_at")], t0.Add(plan[n].at).Format(time.RFC3339); g != w {
			t.Errorf("row %d finished_at = %q, want %q", n, g, w)
		}
	}
	// The MSISDN a provider returned keeps its plus, protected.
	if g := rows[1][column(t, header, "result_msisdn")]; g != "'+447700900003" {
		t.Errorf("result_msisdn = %q", g)
	}
}

func TestFailedAndInvalidCSV(t *testing.T) {
	f := newFixture(t, mixedManifest(), ingest.ValidateOptions{}, mixedPlan(), true)
	files := f.write(t, FormatCSV)

	failed := readCSV(t, filepath.Join(files.Dir, FailedCSV))
	wantHeader := append(slices.Clone(f.header), "error_code", "error_message", "retryable", "attempts", "row")
	if !slices.Equal(failed[0], wantHeader) {
		t.Fatalf("failed.csv header\n got %q\nwant %q", failed[0], wantHeader)
	}
	var got []string
	for _, r := range failed[1:] {
		got = append(got, r[column(t, failed[0], "row")]+":"+r[column(t, failed[0], "error_code")]+":"+r[column(t, failed[0], "retryable")])
	}
	if want := []string{"4:cli_exists:false", "5:rate_limited:true", "6:cli_exists:false"}; !slices.Equal(got, want) {
		t.Errorf("failed rows = %q, want %q", got, want)
	}
	// A provider's message is data too: it is neutralised like any cell.
	if g := failed[2][column(t, failed[0], "error_message")]; g != "'=cmd|' /C calc'!A0" {
		t.Errorf("error_message = %q", g)
	}

	invalid := readCSV(t, filepath.Join(files.Dir, InvalidCSV))
	wantHeader = append(slices.Clone(f.header), "error_code", "error_message", "attempts", "row")
	if !slices.Equal(invalid[0], wantHeader) {
		t.Fatalf("invalid.csv header\n got %q\nwant %q", invalid[0], wantHeader)
	}
	got = nil
	for _, r := range invalid[1:] {
		got = append(got, r[column(t, invalid[0], "row")]+":"+r[column(t, invalid[0], "error_code")])
		if r[column(t, invalid[0], "error_message")] == "" {
			t.Errorf("invalid row %s has no error message", r[column(t, invalid[0], "row")])
		}
	}
	if want := []string{"7:bad_format", "8:bad_checksum", "10:missing_value"}; !slices.Equal(got, want) {
		t.Errorf("invalid rows = %q, want %q", got, want)
	}
}

// TestResubmitRoundTrip feeds failed.csv and invalid.csv, and the Failed
// and Invalid sheets, back to ingest as manifests: the original columns
// come back in their order with their values, and every row reads as the
// same device it was.
func TestResubmitRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name     string
		manifest string
		opts     ingest.ValidateOptions
	}{
		{"provider column", mixedManifest(), ingest.ValidateOptions{}},
		{"provider flag", asavieManifest(), ingest.ValidateOptions{Provider: "asavie"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := map[int]outcome{
				2: {state: pipeline.Succeeded, latencies: []int64{5}},
				4: {state: pipeline.Failed, code: "cli_exists", msg: "exists", latencies: []int64{5}},
				5: {state: pipeline.Failed, code: "server_error", msg: "-boom", retryable: true, latencies: []int64{5}},
				6: {state: pipeline.Failed, code: "cli_exists", msg: "exists", latencies: []int64{5}},
			}
			f := newFixture(t, tc.manifest, tc.opts, plan, true)
			files := f.write(t, FormatCSV, FormatXLSX)
			for _, src := range []struct {
				name, file, sheet string
				state             pipeline.State
			}{
				{FailedCSV, FailedCSV, "", pipeline.Failed},
				{InvalidCSV, InvalidCSV, "", pipeline.Invalid},
				{"sheet Failed", ReportXLSX, SheetFailed, pipeline.Failed},
				{"sheet Invalid", ReportXLSX, SheetInvalid, pipeline.Invalid},
			} {
				name, state := src.name, src.state
				wantRows := f.rowsIn(state)
				if len(wantRows) == 0 {
					t.Fatalf("fixture has no %s rows", state)
				}
				r, err := ingest.Open(filepath.Join(files.Dir, src.file), ingest.OpenOptions{Sheet: src.sheet})
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				names := r.Header().Names
				if !slices.Equal(names[:len(f.header)], f.header) {
					t.Fatalf("%s: header starts %q, want the manifest's %q", name, names[:len(f.header)], f.header)
				}
				// The manifest's --provider is given again, as a person
				// re-running it would; the added provider column agrees.
				if !r.Header().Has(ingest.ColProvider) {
					t.Errorf("%s: no provider column", name)
				}
				var back []ingest.Row
				_, _, err = ingest.Scan(r, tc.opts, func(row ingest.Row, problems []ingest.Problem) error {
					back = append(back, row)
					if state == pipeline.Failed && ingest.HasErrors(problems) {
						t.Errorf("%s row %d: re-ingest finds problems %v", name, row.Number, problems)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if len(back) != len(wantRows) {
					t.Fatalf("%s: %d rows back, want %d", name, len(back), len(wantRows))
				}
				for i, row := range back {
					orig := f.rows[wantRows[i]]
					for j, v := range orig.Values {
						if row.Values[j] != Neutralise(v) {
							t.Errorf("%s row %d, column %s = %q, want %q", name, orig.Number, f.header[j], row.Values[j], Neutralise(v))
						}
					}
					if state == pipeline.Invalid {
						continue // the same problems again; nothing to compare
					}
					if row.Provider != orig.Provider || row.EID != orig.EID || row.ICCID != orig.ICCID || row.CLI != orig.CLI || row.IMEI != orig.IMEI {
						t.Errorf("%s row %d reads back as %s %q/%q/%q/%q, want %s %q/%q/%q/%q", name, orig.Number,
							row.Provider, row.EID, row.ICCID, row.CLI, row.IMEI, orig.Provider, orig.EID, orig.ICCID, orig.CLI, orig.IMEI)
					}
					for k, v := range orig.Fields() {
						if Neutralise(v) != v {
							// A provider field that starts like a formula keeps
							// its apostrophe (ingest unwraps only identifiers).
							continue
						}
						if row.Field(k) != v {
							t.Errorf("%s row %d field %s = %q, want %q", name, orig.Number, k, row.Field(k), v)
						}
					}
				}
			}
		})
	}
}

// asavieManifest has no provider column: it is run with --provider asavie.
func asavieManifest() string {
	var b strings.Builder
	b.WriteString(csvLine("MSISDN", "SIM Number", "account", "description", "Notes"))
	b.WriteString(csvLine("+447700900201", iccid(201), "ACC-1", "ok", "n1"))
	b.WriteString(csvLine("+447700900202", "", "", "no account", "n2")) // 3 invalid
	b.WriteString(csvLine("+447700900203", iccid(203), "ACC-1", "-minus", "=1+2"))
	b.WriteString(csvLine("(+44)7700900204", "", "ACC-2", "", "@x"))
	b.WriteString(csvLine("+447700900205", "", "ACC-1", "", "n5"))
	b.WriteString(csvLine("+44770090020", iccid(207)[:10], "ACC-1", "", "n7")) // 7 invalid
	return b.String()
}

// TestResubmitTwice: a failed.csv re-submitted as a manifest has the
// report columns already; its own failed.csv fills them in place instead
// of stacking a second set.
func TestResubmitTwice(t *testing.T) {
	plan := map[int]outcome{
		4: {state: pipeline.Failed, code: "cli_exists", msg: "exists", latencies: []int64{5}},
		5: {state: pipeline.Failed, code: "server_error", msg: "boom", retryable: true, latencies: []int64{5, 5}},
	}
	first := newFixture(t, asavieManifest(), ingest.ValidateOptions{Provider: "asavie"}, plan, true)
	files := first.write(t, FormatCSV)
	resubmit, err := os.ReadFile(filepath.Join(files.Dir, FailedCSV))
	if err != nil {
		t.Fatal(err)
	}
	second := newFixture(t, string(resubmit), ingest.ValidateOptions{Provider: "asavie"}, map[int]outcome{
		3: {state: pipeline.Failed, code: "timeout", msg: "no answer", retryable: true, latencies: []int64{5, 5, 5}},
	}, true)
	files = second.write(t, FormatCSV)
	recs := readCSV(t, filepath.Join(files.Dir, FailedCSV))
	if !slices.Equal(recs[0], second.header) {
		t.Errorf("second failed.csv header %q, want the re-submitted manifest's %q", recs[0], second.header)
	}
	h := recs[0]
	if len(recs) != 2 {
		t.Fatalf("%d records, want header and one row", len(recs))
	}
	got := recs[1]
	if got[column(t, h, "error_code")] != "timeout" || got[column(t, h, "attempts")] != "3" || got[column(t, h, "row")] != "3" || got[column(t, h, "retryable")] != "true" {
		t.Errorf("row = %q: the report columns should hold this run's values", got)
	}
}

func TestSummaryJSON(t *testing.T) {
	f := newFixture(t, mixedManifest(), ingest.ValidateOptions{}, mixedPlan(), true)
	files := f.write(t, FormatJSON)
	b, err := os.ReadFile(filepath.Join(files.Dir, SummaryJSON))
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	check := func(path string, want any) {
		t.Helper()
		var v any = s
		for _, k := range strings.Split(path, ".") {
			switch x := v.(type) {
			case map[string]any:
				v = x[k]
			case []any:
				i, _ := strconv.Atoi(k)
				if i >= len(x) {
					t.Errorf("%s: index out of range", path)
					return
				}
				v = x[i]
			}
		}
		if !jsonEqual(v, want) {
			t.Errorf("%s = %v, want %v", path, v, want)
		}
	}
	check("schema_version", 1)
	check("run_id", f.run.ID)
	check("manifest", f.manifest)
	check("state", "completed")
	check("started_at", "2026-11-24T11:00:00Z")
	check("finished_at", "2026-11-24T11:10:00Z")
	check("duration_seconds", 600)
	check("rows", 10)
	check("counts.succeeded", 2)
	check("counts.failed", 3)
	check("counts.invalid", 3)
	check("counts.skipped", 1)
	check("counts.pending", 1)
	check("counts.in_flight", 0)
	check("by_provider.asavie.succeeded", 1)
	check("by_provider.asavie.failed", 2)
	check("by_provider.asavie.invalid", 1)
	check("by_provider.asavie.skipped", 1)
	check("by_provider.asavie.pending", 1)
	check("by_provider.iotconnect.succeeded", 1)
	check("by_provider.iotconnect.invalid", 1)
	check("by_provider.thingspace.invalid", 1)
	check("top_errors.0.code", "cli_exists")
	check("top_errors.0.count", 2)
	check("top_errors.0.message", "CLI (+44)7700900105 already exists")
	check("throughput.rows_per_second", 5.0/600)
	check("throughput.peak_rows_per_minute", 2)
	check("throughput.per_minute.0.minute", "2026-11-24T11:00:00Z")
	check("throughput.per_minute.0.succeeded", 1)
	check("throughput.per_minute.1.minute", "2026-11-24T11:01:00Z")
	check("throughput.per_minute.1.succeeded", 1)
	check("throughput.per_minute.1.failed", 1)
	// asavie requests: 120, 80, 40, 50 ms; iotconnect: 200, 10, 20, 30, 1000, 2000.
	check("latency_ms.asavie.count", 4)
	check("latency_ms.asavie.p50", 50)
	check("latency_ms.asavie.p95", 120)
	check("latency_ms.asavie.max", 120)
	check("latency_ms.iotconnect.count", 6)
	check("latency_ms.iotconnect.p50", 30)
	check("latency_ms.iotconnect.p99", 2000)
	if _, ok := s["drift"]; ok {
		t.Error("drift present without reconciliation data")
	}
	for _, k := range []string{"top_errors", "latency_ms", "by_provider"} {
		if s[k] == nil {
			t.Errorf("%s is null, want an empty collection", k)
		}
	}
}

func jsonEqual(got, want any) bool {
	switch w := want.(type) {
	case int:
		g, ok := got.(float64)
		return ok && g == float64(w)
	case float64:
		g, ok := got.(float64)
		return ok && g > w-0.001 && g < w+0.001
	}
	return got == want
}

// TestInterruptedRun: a run that stopped half way gets reports of its
// rows so far, timed to its last change.
func TestInterruptedRun(t *testing.T) {
	f := newFixture(t, mixedManifest(), ingest.ValidateOptions{}, mixedPlan(), false)
	files := f.write(t, FormatJSON, FormatCSV)
	var s Summary
	b, _ := os.ReadFile(filepath.Join(files.Dir, SummaryJSON))
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if s.State != pipeline.RunInterrupted || s.FinishedAt != nil {
		t.Errorf("state %s, finished %v", s.State, s.FinishedAt)
	}
	if s.DurationSeconds != 300 { // to the run's last recorded change
		t.Errorf("duration %v, want 300", s.DurationSeconds)
	}
	if s.Unfinished() != 1 {
		t.Errorf("unfinished %d, want 1", s.Unfinished())
	}
	if recs := readCSV(t, filepath.Join(files.Dir, SucceededCSV)); len(recs) != 3 {
		t.Errorf("succeeded.csv has %d records, want 3", len(recs))
	}
}

func TestEmptyRun(t *testing.T) {
	f := newFixture(t, csvLine("provider", "EID"), ingest.ValidateOptions{}, nil, true)
	files := f.write(t)
	for _, name := range []string{SucceededCSV, FailedCSV, InvalidCSV} {
		recs := readCSV(t, filepath.Join(files.Dir, name))
		if len(recs) != 1 {
			t.Errorf("%s: %d records, want the header only", name, len(recs))
		}
	}
	b, _ := os.ReadFile(filepath.Join(files.Dir, SummaryHTML))
	for _, id := range []string{"chart-outcomes", "chart-throughput", "chart-latency", "chart-errors"} {
		if !strings.Contains(string(b), `id="`+id+`"`) {
			t.Errorf("summary.html of an empty run lacks %s", id)
		}
	}
}

// TestWideRows: cells beyond the header (a stray delimiter) are kept, in
// columns named as ingest names them.
func TestWideRows(t *testing.T) {
	ctx := context.Background()
	cp, err := sqlite.Open(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	run, err := cp.CreateRun(ctx, "fp", "m.csv", []string{"provider", "EID"})
	if err != nil {
		t.Fatal(err)
	}
	err = cp.AddRows(ctx, []pipeline.RowRecord{
		{RunID: run.ID, Row: 2, Provider: "iotconnect", Cells: []string{"iotconnect", "1", "stray"}, State: pipeline.Invalid, ErrorCode: "field_count", ErrorMessage: "3 fields"},
		{RunID: run.ID, Row: 3, Provider: "", Cells: []string{"x"}, State: pipeline.Invalid, ErrorCode: "unknown_provider", ErrorMessage: "x"},
	})
	if err != nil {
		t.Fatal(err)
	}
	files, err := Write(ctx, cp, run.ID, t.TempDir(), []string{FormatCSV})
	if err != nil {
		t.Fatal(err)
	}
	recs := readCSV(t, filepath.Join(files.Dir, InvalidCSV))
	want := [][]string{
		{"provider", "EID", "#3", "error_code", "error_message", "attempts", "row"},
		{"iotconnect", "1", "stray", "field_count", "3 fields", "0", "2"},
		{"x", "", "", "unknown_provider", "x", "0", "3"},
	}
	for i := range want {
		if !slices.Equal(recs[i], want[i]) {
			t.Errorf("record %d = %q, want %q", i, recs[i], want[i])
		}
	}
}

func TestNeutralise(t *testing.T) {
	for in, want := range map[string]string{
		"":                                 "",
		"=1+1":                             "'=1+1",
		"+447700900123":                    "'+447700900123",
		"-2":                               "'-2",
		"@SUM(A1)":                         "'@SUM(A1)",
		"\t=1":                             "'\t=1",
		"\r=1":                             "'\r=1",
		"(+44)7700900123":                  "(+44)7700900123",
		"89049032123451234512345678901235": "89049032123451234512345678901235",
		" =1":                              " =1",
		"a=1":                              "a=1",
		"'=1":                              "'=1",
	} {
		if got := Neutralise(in); got != want {
			t.Errorf("Neutralise(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCSVFormulaCells: no cell of any CSV file starts with a character a
// spreadsheet would evaluate.
func TestCSVFormulaCells(t *testing.T) {
	f := newFixture(t, mixedManifest(), ingest.ValidateOptions{}, mixedPlan(), true)
	files := f.write(t, FormatCSV)
	seen := 0
	for _, name := range []string{SucceededCSV, FailedCSV, InvalidCSV} {
		for _, rec := range readCSV(t, filepath.Join(files.Dir, name)) {
			for _, c := range rec {
				if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
					t.Errorf("%s: live formula cell %q", name, c)
				}
				if strings.HasPrefix(c, "'") {
					seen++
				}
			}
		}
	}
	if seen < 8 {
		t.Errorf("only %d neutralised cells; the fixture has more", seen)
	}
}

// TestRemovesStaleTemporaryFiles: leftovers of a crashed report go; a
// temporary file being written right now stays.
func TestRemovesStaleTemporaryFiles(t *testing.T) {
	f := newFixture(t, mixedManifest(), ingest.ValidateOptions{}, mixedPlan(), true)
	dir := filepath.Join(f.out, f.run.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	old, fresh, other := filepath.Join(dir, ".report.xlsx-123.tmp"), filepath.Join(dir, "excelize-456"), filepath.Join(dir, "notes.txt")
	for _, p := range []string{old, fresh, other} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-2 * time.Hour)
	os.Chtimes(old, past, past)
	os.Chtimes(other, past, past)
	f.write(t, FormatJSON)
	for p, want := range map[string]bool{old: false, fresh: true, other: true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
}

func TestThroughputBuckets(t *testing.T) {
	for span, want := range map[time.Duration]time.Duration{
		6 * time.Second:  time.Second,
		60 * time.Second: time.Second,
		61 * time.Second: 2 * time.Second,
		4 * time.Minute:  5 * time.Second,
		10 * time.Minute: 10 * time.Second,
		11 * time.Minute: 0, // minutes do
	} {
		if got := fineBucket(span); got != want {
			t.Errorf("fineBucket(%v) = %v, want %v", span, got, want)
		}
	}
	for d, want := range map[time.Duration]string{
		time.Second: "second", 5 * time.Second: "5 seconds", time.Minute: "minute", 3 * time.Minute: "3 minutes",
	} {
		if got := describeInterval(d); got != want {
			t.Errorf("describeInterval(%v) = %q, want %q", d, got, want)
		}
	}
}
