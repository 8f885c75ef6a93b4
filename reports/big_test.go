package reports

import (
	"context"
	"database/sql"
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
	cp, err := pipeline.OpenCheckpoint(filepath.Join(dir, "big.db"))
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

// fillBigRun stores a run of n rows straight into the checkpoint, as the
// pipeline would leave it: 95% succeeded with three result keys, 4%
// failed, 1% invalid, one attempt per sent row, finishing over an hour.
func fillBigRun(t *testing.T, cp *pipeline.Checkpoint, n int) string {
	t.Helper()
	ctx := context.Background()
	header := []string{"provider", "EID", "ICCID", "MSISDN", "account", "cmp", "euicc_agreement_id", "locale_id", "description", "notes"}
	run, err := cp.CreateRun(ctx, "big", "big.csv", header)
	if err != nil {
		t.Fatal(err)
	}
	const batch = 20_000
	providers := []string{"iotconnect", "asavie", "thingspace"}
	for lo := 0; lo < n; lo += batch {
		err := cp.Write(ctx, func(tx *sql.Tx) error {
			ins, err := tx.Prepare(`INSERT INTO rows (run_id, row, provider, eid, iccid, cli, cells, state, attempts, result, error_code, error_message, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
			if err != nil {
				return err
			}
			defer ins.Close()
			att, err := tx.Prepare("INSERT INTO attempts (run_id, row, started_at, latency_ms, kind, http_status, outcome) VALUES (?, ?, ?, ?, 'submit', 202, ?)")
			if err != nil {
				return err
			}
			defer att.Close()
			for i := lo; i < min(lo+batch, n); i++ {
				row := i + 2
				p := providers[i%3]
				e, ic, cli := eid(i), iccid(i%1_000_000), fmt.Sprintf("+4477%08d", i)
				cells, _ := json.Marshal([]string{p, e, ic, cli, "ACC-1", "IOTA_EU", "AGR-1", "en-GB", "pallet " + strconv.Itoa(i/500), "-"})
				state, result, code, msg, attempts := "succeeded", fmt.Sprintf(`{"imsi":"2341500%08d","iccid":%q,"msisdn":%q}`, i, ic, cli), "", "", 1
				switch {
				case i%100 == 0:
					state, result, code, msg, attempts = "invalid", "{}", "bad_checksum", "EID check digits are wrong", 0
				case i%25 == 1:
					state, result, code, msg = "failed", "{}", "cli_exists", "CLI already exists"
				}
				done := t0.Add(time.Duration(i) * time.Hour / time.Duration(n))
				if _, err := ins.Exec(run.ID, row, p, e, ic, cli, string(cells), state, attempts, result, code, msg, done.UnixMilli()); err != nil {
					return err
				}
				if attempts > 0 {
					if _, err := att.Exec(run.ID, row, done.UnixMilli()-int64(50+i%400), 50+i%400, state); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := cp.SetRunState(ctx, run.ID, pipeline.RunCompleted); err != nil {
		t.Fatal(err)
	}
	return run.ID
}
