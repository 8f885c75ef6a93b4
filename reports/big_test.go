package reports

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/pipeline/sqlite"
	"github.com/simbulk/simbulk/providers"
	"github.com/simbulk/simbulk/samples/peakmem"
)

// memoryLimit is what writing every report of a million-row run may take
// at its peak.
const memoryLimit = 300 << 20

// TestBigRunMemory writes every report of a 1,000,000-row run and checks
// that memory stays bounded. It takes a minute or two, so it runs only
// with SIMBULK_BIG=1 (SIMBULK_BIG_ROWS changes the row count):
//
//	SIMBULK_BIG=1 go test -run BigRunMemory -v ./reports/
func TestBigRunMemory(t *testing.T) {
	if os.Getenv("SIMBULK_BIG") == "" {
		t.Skip("set SIMBULK_BIG=1 to write the reports of a 1,000,000-row run")
	}
	n := 1_000_000
	if s := os.Getenv("SIMBULK_BIG_ROWS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			t.Fatalf("SIMBULK_BIG_ROWS: %v", err)
		}
	}
	ctx := context.Background()
	dir := t.TempDir()
	cp, err := sqlite.Open(filepath.Join(dir, "big.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	start := time.Now()
	runID := fillBigRun(t, cp, n)
	t.Logf("checkpoint of %d rows built in %v", n, time.Since(start).Round(time.Millisecond))

	runtime.GC()
	debug.FreeOSMemory()
	rssBefore := peakmem.RSS()
	var peakHeap atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peakHeap.Load() {
				peakHeap.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	start = time.Now()
	files, err := Write(ctx, cp, runID, filepath.Join(dir, "runs"), nil)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	rss := peakmem.RSS()
	for _, p := range files.Paths {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%-14s %8.1f MiB", filepath.Base(p), float64(fi.Size())/(1<<20))
	}
	t.Logf("reports of %d rows written in %v: peak Go heap in use %.1f MiB; peak RSS of the process %.1f MiB (%.1f MiB before writing)",
		n, elapsed.Round(time.Millisecond), float64(peakHeap.Load())/(1<<20), float64(rss)/(1<<20), float64(rssBefore)/(1<<20))
	if peakHeap.Load() > memoryLimit {
		t.Errorf("peak heap %.1f MiB exceeds %d MiB", float64(peakHeap.Load())/(1<<20), memoryLimit>>20)
	}
	if rss > memoryLimit {
		t.Errorf("peak RSS %.1f MiB exceeds %d MiB", float64(rss)/(1<<20), memoryLimit>>20)
	}

	var sum Summary
	b, err := os.ReadFile(filepath.Join(files.Dir, SummaryJSON))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Rows != n {
		t.Errorf("summary counts %d rows, want %d", sum.Rows, n)
	}
}

// fillBigRun stores a run of n rows through the store, as the pipeline
// would leave it: 95% succeeded with three result keys, 4% failed, 1%
// invalid, one attempt per sent row, finishing over an hour (each row's
// change stamped to the second it falls in).
func fillBigRun(t *testing.T, cp pipeline.Store, n int) string {
	t.Helper()
	ctx := context.Background()
	header := []string{"provider", "EID", "ICCID", "MSISDN", "account", "cmp", "euicc_agreement_id", "locale_id", "description", "notes"}
	run, err := cp.CreateRun(ctx, "big", "big.csv", header)
	if err != nil {
		t.Fatal(err)
	}
	const batch = 20_000
	provs := []string{"iotconnect", "asavie", "thingspace"}
	rows := make([]pipeline.RowRecord, 0, batch)
	for lo := 0; lo < n; lo += batch {
		rows = rows[:0]
		for i := lo; i < min(lo+batch, n); i++ {
			p := provs[i%3]
			e, ic, cli := eid(i), iccid(i%1_000_000), fmt.Sprintf("+4477%08d", i)
			rows = append(rows, pipeline.RowRecord{RunID: run.ID, Row: i + 2, Provider: p, EID: e, ICCID: ic, CLI: cli,
				Cells: []string{p, e, ic, cli, "ACC-1", "IOTA_EU", "AGR-1", "en-GB", "pallet " + strconv.Itoa(i/500), "-"}, State: pipeline.Pending})
		}
		if err := cp.AddRows(ctx, rows); err != nil {
			t.Fatal(err)
		}
	}
	var ts []pipeline.Transition
	var second time.Time
	flush := func() {
		if len(ts) > 0 {
			if err := cp.Apply(ctx, run.ID, "", second, ts); err != nil {
				t.Fatal(err)
			}
		}
		ts = ts[:0]
	}
	for i := range n {
		row := i + 2
		ic, cli := iccid(i%1_000_000), fmt.Sprintf("+4477%08d", i)
		tr := pipeline.Transition{Row: row, State: pipeline.Succeeded, Result: map[string]string{"imsi": fmt.Sprintf("2341500%08d", i), "iccid": ic, "msisdn": cli}}
		switch {
		case i%100 == 0:
			tr = pipeline.Transition{Row: row, State: pipeline.Invalid, ErrorCode: "bad_checksum", ErrorMessage: "EID check digits are wrong"}
		case i%25 == 1:
			tr = pipeline.Transition{Row: row, State: pipeline.Failed, ErrorCode: "cli_exists", ErrorMessage: "CLI already exists"}
		}
		done := t0.Add(time.Duration(i) * time.Hour / time.Duration(n))
		if tr.State != pipeline.Invalid {
			latency := time.Duration(50+i%400) * time.Millisecond
			tr.AddAttempt = true
			tr.Attempt = &pipeline.Attempt{Row: row, Kind: "submit", Started: done.Add(-latency), Latency: latency, HTTPStatus: 202, Outcome: providers.Status(tr.State)}
		}
		if s := done.Truncate(time.Second); !s.Equal(second) || len(ts) == batch {
			flush()
			second = s
		}
		ts = append(ts, tr)
	}
	flush()
	if err := cp.SetRunState(ctx, run.ID, pipeline.RunCompleted); err != nil {
		t.Fatal(err)
	}
	return run.ID
}
