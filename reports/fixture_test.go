package reports

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/simbulk/simbulk/ingest"
	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/pipeline/sqlite"
	"github.com/simbulk/simbulk/providers"
	// The shipped providers' manifest rules, which the fixtures' manifests
	// are validated against.
	_ "github.com/simbulk/simbulk/providers/all"
)

// t0 is when every fixture run starts.
var t0 = time.Date(2026, 11, 24, 11, 0, 0, 0, time.UTC)

// outcome is what a fixture run did with one valid manifest row.
type outcome struct {
	state     pipeline.State
	result    map[string]string
	code, msg string
	retryable bool
	latencies []int64 // one attempt per latency, in milliseconds
	at        time.Duration
}

// fixture is a checkpoint holding one run of a manifest, built the way
// the pipeline builds it: the manifest is loaded (pipeline.Load: rows
// ingest finds invalid are stored invalid, the others pending), then rows
// are brought to the states, results, errors and attempts the plan says.
type fixture struct {
	cp       *sqlite.Store
	run      pipeline.Run
	manifest string
	header   []string
	rows     map[int]ingest.Row // by row number, as ingest read the manifest
	states   map[int]pipeline.State
	out      string // --out directory
}

func newFixture(t testing.TB, manifest string, opts ingest.ValidateOptions, plan map[int]outcome, finished bool) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "devices.csv")
	if err := os.WriteFile(path, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	// The store's clock stands at t0 while the run is created and loaded.
	clock := t0
	cp, err := sqlite.Open(filepath.Join(dir, "simbulk.db"), sqlite.WithClock(func() time.Time { return clock }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cp.Close() })

	r, err := ingest.Open(path, ingest.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f := &fixture{cp: cp, manifest: path, header: r.Header().Names, rows: map[int]ingest.Row{}, states: map[int]pipeline.State{}, out: filepath.Join(dir, "runs")}
	f.run, err = cp.CreateRun(ctx, "fp-"+t.Name(), path, f.header)
	if err != nil {
		t.Fatal(err)
	}
	// Load the manifest as `simbulk run` does; remember how ingest read
	// each row, from a second pass, to compare the reports against.
	if _, _, err := pipeline.Load(ctx, cp, f.run, r, opts); err != nil {
		t.Fatal(err)
	}
	r2, err := ingest.Open(path, ingest.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	_, _, err = ingest.Scan(r2, opts, func(row ingest.Row, problems []ingest.Problem) error {
		f.rows[row.Number] = row
		f.states[row.Number] = pipeline.Pending
		if ingest.HasErrors(problems) {
			f.states[row.Number] = pipeline.Invalid
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for n, o := range plan {
		if f.states[n] == pipeline.Invalid {
			t.Fatalf("fixture: row %d is planned %s but ingest finds it invalid", n, o.state)
		}
		f.states[n] = o.state
	}
	// Times the pipeline would have recorded: rows finishing at their
	// planned moments, one attempt per latency before them.
	for n, o := range plan {
		done := t0.Add(o.at)
		tr := pipeline.Transition{Row: n, State: o.state, Result: o.result, ErrorCode: o.code, ErrorMessage: o.msg, Retryable: o.retryable}
		if len(o.latencies) == 0 {
			err = cp.Apply(ctx, f.run.ID, "", done, []pipeline.Transition{tr})
		}
		for _, ms := range o.latencies {
			tr.AddAttempt = true
			tr.Attempt = &pipeline.Attempt{Row: n, Kind: "submit", Started: done.Add(-time.Duration(ms) * time.Millisecond),
				Latency: time.Duration(ms) * time.Millisecond, HTTPStatus: 202, Outcome: providers.Status(o.state), ErrorCode: o.code}
			if err = cp.Apply(ctx, f.run.ID, "", done, []pipeline.Transition{tr}); err != nil {
				break
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if finished {
		clock = t0.Add(10 * time.Minute)
		err = cp.SetRunState(ctx, f.run.ID, pipeline.RunCompleted)
	} else {
		clock = t0.Add(5 * time.Minute)
		err = cp.SetRunState(ctx, f.run.ID, pipeline.RunInterrupted)
	}
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// write writes the fixture's reports and returns the run directory.
func (f *fixture) write(t testing.TB, formats ...string) Files {
	t.Helper()
	files, err := Write(context.Background(), f.cp, f.run.ID, f.out, formats)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// rowsIn returns the fixture's row numbers in state, ascending.
func (f *fixture) rowsIn(s pipeline.State) []int {
	var out []int
	for n := 2; n < 2+len(f.rows)+10; n++ {
		if st, ok := f.states[n]; ok && st == s {
			out = append(out, n)
		}
	}
	return out
}

// eid makes a valid EID from a number.
func eid(n int) string {
	first := fmt.Sprintf("8904903200000000000000%08d", n)
	return first + ingest.EIDCheckDigits(first)
}

// iccid makes a valid 19-digit ICCID from a number.
func iccid(n int) string {
	payload := fmt.Sprintf("894412345678%06d", n)
	return payload + string(ingest.LuhnDigit(payload))
}

// csvLine joins cells as a CSV line, quoting where needed.
func csvLine(cells ...string) string {
	for i, c := range cells {
		if strings.ContainsAny(c, ",\"\n\r") {
			cells[i] = `"` + strings.ReplaceAll(c, `"`, `""`) + `"`
		}
	}
	return strings.Join(cells, ",") + "\n"
}

// mixedManifest is a manifest with a provider column: two providers, rows
// that will succeed, fail, be skipped or stay pending, rows ingest finds
// invalid, and cells a spreadsheet would run as formulas.
func mixedManifest() string {
	var b strings.Builder
	b.WriteString(csvLine("provider", "EID", "ICCID", "MSISDN", "account", "cmp", "euicc_agreement_id", "locale_id", "description", "notes"))
	b.WriteString(csvLine("asavie", "", iccid(1), "+447700900101", "ACC-1", "", "", "", "warehouse A", "first"))                                   // 2 succeeded
	b.WriteString(csvLine("iotconnect", eid(2), "", "", "", "IOTA_EU", "AGR-1", "en-GB", "", "batch 7"))                                           // 3 succeeded
	b.WriteString(csvLine("asavie", "", iccid(3), "+447700900103", "ACC-1", "", "", "", "-leading dash", `=HYPERLINK("http://evil.example","x")`)) // 4 failed
	b.WriteString(csvLine("iotconnect", eid(4), "", "", "", "IOTA_EU", "AGR-1", "en-GB", "", "@SUM(1+1)"))                                         // 5 failed
	b.WriteString(csvLine("asavie", "", "", "(+44)7700900105", "ACC-2", "", "", "", "", "+1+1"))                                                   // 6 failed
	b.WriteString(csvLine("asavie", "", "", "+4477", "ACC-1", "", "", "", "", "too short"))                                                        // 7 invalid
	bad := eid(8)
	bad = bad[:30] + "00"
	b.WriteString(csvLine("iotconnect", bad, "", "", "", "IOTA_EU", "AGR-1", "en-GB", "", "\tbad checksum")) // 8 invalid
	b.WriteString(csvLine("asavie", "", "", "+447700900109", "ACC-1", "", "", "", "", ""))                   // 9 pending
	b.WriteString(csvLine("thingspace", eid(10), "", "", "", "", "", "", "", "no account_name"))             // 10 invalid
	b.WriteString(csvLine("asavie", "", "", "+447700900111", "ACC-1", "", "", "", "", ""))                   // 11 skipped
	return b.String()
}

func mixedPlan() map[int]outcome {
	return map[int]outcome{
		2:  {state: pipeline.Succeeded, result: map[string]string{"iccid": iccid(1), "status_url": "/v1/status/abc%2F1", "state": "complete"}, latencies: []int64{120, 80}, at: 30 * time.Second},
		3:  {state: pipeline.Succeeded, result: map[string]string{"imsi": "234150000000003", "iccid": "8944000000000000031", "msisdn": "+447700900003"}, latencies: []int64{200}, at: 90 * time.Second},
		4:  {state: pipeline.Failed, code: "cli_exists", msg: "CLI already exists", latencies: []int64{40}, at: 95 * time.Second},
		5:  {state: pipeline.Failed, code: "rate_limited", msg: "=cmd|' /C calc'!A0", retryable: true, latencies: []int64{10, 20, 30, 1000, 2000}, at: 150 * time.Second},
		6:  {state: pipeline.Failed, code: "cli_exists", msg: "CLI (+44)7700900105 already exists", latencies: []int64{50}, at: 200 * time.Second},
		11: {state: pipeline.Skipped, code: "already_provisioned", msg: "already provisioned by run 20261101-090000-aaaaaa (row 2)", result: map[string]string{"iccid": iccid(11)}},
	}
}
