package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/simbulk/simbulk/ingest"
	"github.com/simbulk/simbulk/pipeline/sqlite"
	"github.com/simbulk/simbulk/providers/asavie"
	"github.com/simbulk/simbulk/providers/iotconnect"
	"github.com/simbulk/simbulk/providers/simset"
	"github.com/simbulk/simbulk/providers/thingspace"
	"github.com/simbulk/simbulk/samples"
)

// injectDrift changes (or repairs) one record in a `sim serve` process.
func injectDrift(t *testing.T, base string, d simset.Drift) {
	t.Helper()
	body, _ := json.Marshal(d)
	resp, err := http.Post(base+"/_sim/drift", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("drift %+v: HTTP %d", d, resp.StatusCode)
	}
}

// reconcileCron runs reconcile as cron would: no terminal, JSON logs.
func reconcileCron(t *testing.T, dir, cfg, db string, extra ...string) (int, reconcileJSON, string) {
	t.Helper()
	cmd := exec.Command("simbulk", append([]string{"reconcile", "devices.csv", "--config", cfg, "--db", db, "--log-format", "json", "--json"}, extra...)...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	code := exitCode(cmd.Run())
	var out reconcileJSON
	if stdout.Len() > 0 {
		if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
			t.Fatalf("reconcile --json: %v\n%s", err, stdout.String())
		}
	}
	return code, out, stderr.String()
}

func driftKeys(r reconcileJSON) []string {
	var keys []string
	for _, d := range r.Drift {
		keys = append(keys, fmt.Sprintf("%s %s %s", d.Provider, d.ID, d.Kind))
	}
	sort.Strings(keys)
	return keys
}

// TestReconcileFindsExactlyTheInjectedDrift provisions a fleet, injects
// one drift of each kind into the simulators, and checks that a cron-style
// reconcile reports exactly those records and exits 3, and that after
// repair it exits 0.
func TestReconcileFindsExactlyTheInjectedDrift(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	const rows = 60
	dir := t.TempDir()
	writeManifest(t, dir, rows)
	base, _ := startSimServe(t, "--async-delay", "20ms")
	cfg := writeConfig(t, dir, base)
	db := filepath.Join(dir, "simbulk.db")
	if code, out := runManifest(t, dir, "devices.csv", cfg, db); code != 0 {
		t.Fatalf("rollout exit %d:\n%s", code, out)
	}

	// In sync right after the rollout.
	code, res, logs := reconcileCron(t, dir, cfg, db)
	if code != 0 || len(res.Drift) != 0 || res.Checked != rows || res.InSync != rows {
		t.Fatalf("fresh fleet: exit %d %+v\n%s", code, res, logs)
	}

	// Devices 1, 2, 3 of the manifest are iotconnect, asavie, thingspace.
	iot := samples.NewDevice(iotconnect.Name, 1)
	asv := samples.NewDevice(asavie.Name, 2)
	ts := samples.NewDevice(thingspace.Name, 3)
	asvCLI := asavieCLI(t, asv.CLI)
	injectDrift(t, base, simset.Drift{Provider: "iotconnect", ID: iot.EID, Action: "state", Value: "PAUSED"})
	injectDrift(t, base, simset.Drift{Provider: "asavie", ID: asvCLI, Action: "alter", Field: "sim_number", Value: "89440000000000000010"})
	injectDrift(t, base, simset.Drift{Provider: "thingspace", ID: ts.EID, Action: "delete"})

	code, res, logs = reconcileCron(t, dir, cfg, db)
	if code != exitRowsFailed {
		t.Fatalf("with drift: exit %d, want 3\n%s", code, logs)
	}
	want := []string{
		"asavie " + asvCLI + " mismatch",
		"iotconnect " + iot.EID + " state",
		"thingspace " + ts.EID + " missing",
	}
	sort.Strings(want)
	if got := driftKeys(res); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("drift reported:\n%s\nwant exactly:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if res.Checked != rows || res.InSync != rows-3 {
		t.Errorf("checked %d in sync %d, want %d and %d", res.Checked, res.InSync, rows, rows-3)
	}
	if strings.Contains(logs, "demo-asavie-secret") || !strings.Contains(logs, `"msg":"drift"`) {
		t.Errorf("logs: want a JSON drift line per finding and no secret:\n%s", logs)
	}

	// Repair, and the next night's run is clean.
	injectDrift(t, base, simset.Drift{Provider: "iotconnect", ID: iot.EID, Action: "state", Value: "ACTIVE"})
	injectDrift(t, base, simset.Drift{Provider: "asavie", ID: asvCLI, Action: "alter", Field: "sim_number", Value: asv.ICCID})
	injectDrift(t, base, simset.Drift{Provider: "thingspace", ID: ts.EID, Action: "create",
		Fields: map[string]string{"account_name": ts.AccountName, "iccid": ts.ICCID}})
	// A re-created line gets a new number; give it back the one the
	// rollout recorded (succeeded.csv, result_msisdn).
	injectDrift(t, base, simset.Drift{Provider: "thingspace", ID: ts.EID, Action: "alter", Field: "msisdn",
		Value: reportedResult(t, dir, ts.EID, "result_msisdn")})
	if code, res, logs := reconcileCron(t, dir, cfg, db); code != 0 || len(res.Drift) != 0 {
		t.Errorf("after repair: exit %d drift %v\n%s", code, res.Drift, logs)
	}
}

// reportedResult reads one result column of a row from the run's
// succeeded.csv.
func reportedResult(t *testing.T, dir, eid, column string) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "simbulk-runs", "*", "succeeded.csv"))
	if len(files) != 1 {
		t.Fatalf("succeeded.csv: found %v", files)
	}
	f, err := os.Open(files[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	idx := map[string]int{}
	for i, h := range recs[0] {
		idx[h] = i
	}
	for _, r := range recs[1:] {
		if r[idx["eid"]] == eid {
			return r[idx[column]]
		}
	}
	t.Fatalf("no row with eid %s in succeeded.csv", eid)
	return ""
}

// asavieCLI is the CLI as simbulk sends it to Asavie.
func asavieCLI(t *testing.T, raw string) string {
	t.Helper()
	cc, national, ok := ingest.SplitCountryCode(strings.TrimPrefix(raw, "+"))
	if !strings.HasPrefix(raw, "+") || !ok {
		return raw
	}
	return "(+" + cc + ")" + national
}

// TestReconcileLock: a second reconcile on the same checkpoint waits
// briefly for the first, then gives up with exit 1 and a clear message.
func TestReconcileLock(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "simbulk.db")
	cp, err := sqlite.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	cp.Close()
	unlock, err := lockFile(db, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	cmd := exec.Command("simbulk", "reconcile", "--run", "x", "--simulate", "--db", db, "--lock-wait", "300ms")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	code := exitCode(cmd.Run())
	if code != exitFatal || !strings.Contains(stderr.String(), "another simbulk is working on") {
		t.Errorf("exit %d, stderr %q; want 1 and a message about the other run", code, stderr.String())
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Errorf("gave up after %v without waiting", waited)
	}
}

// TestReconcileResumesAfterKill kills a large reconciliation mid-way; the
// same command then finishes it, checking each row once more at most.
func TestReconcileResumesAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("process kill test")
	}
	const rows = 1500
	dir := t.TempDir()
	writeManifest(t, dir, rows)
	base, _ := startSimServe(t, "--async-delay", "10ms")
	cfg := writeConfig(t, dir, base)
	db := filepath.Join(dir, "simbulk.db")
	if code, out := runManifest(t, dir, "devices.csv", cfg, db); code != 0 {
		t.Fatalf("rollout exit %d:\n%s", code, out)
	}
	before := simStats(t, base)
	lookups := func() int {
		n := 0
		for name, st := range simStats(t, base) {
			for op, c := range st.Requests {
				if op == "lookup" || op == "status" {
					n += c - before[name].Requests[op]
				}
			}
		}
		return n
	}
	// Slow the simulators so that the kill lands mid-way.
	cmd := exec.Command("simbulk", "reconcile", "devices.csv", "--config", cfg, "--db", db, "--concurrency", "2")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for lookups() < rows/5 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	first := lookups()
	if first >= rows {
		t.Skipf("the reconciliation finished (%d lookups) before the kill", first)
	}
	code, res, logs := reconcileCron(t, dir, cfg, db)
	if code != 0 || res.Checked != rows {
		t.Fatalf("resumed reconcile: exit %d checked %d, want 0 and %d\n%s", code, res.Checked, rows, logs)
	}
	if !strings.Contains(logs, "resuming the unfinished reconciliation") {
		t.Errorf("the second reconcile did not resume the first:\n%s", logs)
	}
	// Rows checked before the kill are not looked up again (a page of
	// lookups in flight at the kill may be).
	if total := lookups(); total > rows+2*512 {
		t.Errorf("%d lookups for %d rows: the resumed reconciliation started over", total, rows)
	}
}
