package reports

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/simbulk/simbulk/pipeline"
)

// wideRun stores a run of rows × cols manifest cells through the
// pipeline's public API (CreateRun, AddRows): 9 in 10 rows succeeded with
// two result keys, the rest failed.
func wideRun(t testing.TB, rows, cols int) (*pipeline.Checkpoint, string) {
	t.Helper()
	ctx := context.Background()
	cp, err := pipeline.OpenCheckpoint(filepath.Join(t.TempDir(), "wide.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cp.Close() })
	header := make([]string, cols)
	header[0] = "provider"
	if cols > 1 {
		header[1] = "EID"
	}
	for i := 2; i < cols; i++ {
		header[i] = "col_" + strconv.Itoa(i+1)
	}
	run, err := cp.CreateRun(ctx, "wide-"+t.Name(), "wide.csv", header)
	if err != nil {
		t.Fatal(err)
	}
	const batch = 5_000
	recs := make([]pipeline.RowRecord, 0, min(batch, rows))
	flush := func() {
		if err := cp.AddRows(ctx, recs); err != nil {
			t.Fatal(err)
		}
		recs = recs[:0]
	}
	for i := range rows {
		cells := make([]string, cols)
		cells[0] = "iotconnect"
		if cols > 1 {
			cells[1] = eid(i)
		}
		for c := 2; c < cols; c++ {
			cells[c] = "v" + strconv.Itoa(c%97)
		}
		r := pipeline.RowRecord{RunID: run.ID, Row: i + 2, Provider: "iotconnect", EID: eid(i), Cells: cells,
			State: pipeline.Succeeded, Attempts: 1, Result: map[string]string{"imsi": fmt.Sprintf("2341500%08d", i), "state": "active"}}
		if i%10 == 9 {
			r.State, r.Result, r.ErrorCode, r.ErrorMessage = pipeline.Failed, nil, "cli_exists", "CLI already exists"
		}
		recs = append(recs, r)
		if len(recs) == batch {
			flush()
		}
	}
	if len(recs) > 0 {
		flush()
	}
	return cp, run.ID
}

// TestWideTimings writes every report of runs of 1 row × 2,000 / 5,000 /
// 16,000 / 100,000 columns and of 100,000 rows × 10 columns, and logs how
// long each took. It takes a while, so it runs only with SIMBULK_WIDE=1;
// SIMBULK_WIDE_CASES (say 1x5000,100000x10) picks cases;
// SIMBULK_WIDE_BUDGET (a duration, default 10m) is how long to wait for
// one case before giving up on it.
//
//	SIMBULK_WIDE=1 go test -run WideTimings -v ./reports/
func TestWideTimings(t *testing.T) {
	if os.Getenv("SIMBULK_WIDE") == "" {
		t.Skip("set SIMBULK_WIDE=1 to time reports of very wide and long runs")
	}
	budget := 10 * time.Minute
	if s := os.Getenv("SIMBULK_WIDE_BUDGET"); s != "" {
		var err error
		if budget, err = time.ParseDuration(s); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ rows, cols int }{{1, 2_000}, {1, 5_000}, {1, 16_000}, {1, 100_000}, {100_000, 10}} {
		name := fmt.Sprintf("%dx%d", c.rows, c.cols)
		if only := os.Getenv("SIMBULK_WIDE_CASES"); only != "" && !slices.Contains(strings.Split(only, ","), name) {
			continue
		}
		cp, runID := wideRun(t, c.rows, c.cols)
		out := t.TempDir()
		ctx, cancel := context.WithTimeout(context.Background(), budget)
		start := time.Now()
		done := make(chan error, 1)
		go func() {
			_, err := Write(ctx, cp, runID, out, nil)
			done <- err
		}()
		select {
		case err := <-done:
			t.Logf("%-12s %v (err: %v)", name, time.Since(start).Round(time.Millisecond), err)
		case <-time.After(budget + 5*time.Second):
			t.Logf("%-12s did not finish in %v", name, budget)
		}
		cancel()
	}
}
