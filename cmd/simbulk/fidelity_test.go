package main

import (
	"encoding/csv"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/providers"
	"github.com/simbulk/simbulk/providers/simkit"
)

// TestGarbageForeverEndsTheRun: every answer of every provider is garbled
// (the work is done, the answer unreadable), lookups included. The run
// must end by itself with exit 3, every row failed as unreadable_answer
// and marked for a lookup, and no identifier sent twice.
func TestGarbageForeverEndsTheRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs sim serve and simbulk run as processes")
	}
	const rows = 30
	dir := t.TempDir()
	manifest := writeManifest(t, dir, rows)
	base, _ := startSimServe(t, "--fault-rate", "1", "--fault-kinds", "malformed", "--async-delay", "50ms")
	cfg := writeConfig(t, dir, base)
	// Three attempts: one send and two lookups, or three token fetches.
	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(strings.ReplaceAll(string(raw), "max_attempts: 12", "max_attempts: 3")), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "simbulk.db")
	code, out := runManifest(t, dir, manifest, cfg, db)
	if code != exitRowsFailed {
		t.Fatalf("exit %d, want %d (finished, rows failed):\n%s", code, exitRowsFailed, out)
	}
	st := runStatus(t, db)[0]
	if st.State != pipeline.RunCompleted || st.Counts[pipeline.Failed] != rows {
		t.Fatalf("state %s counts %v, want completed with all %d rows failed", st.State, st.Counts, rows)
	}
	failed := readCSV(t, filepath.Join(dir, "simbulk-runs", st.RunID, "failed.csv"))
	col := map[string]int{}
	for i, h := range failed[0] {
		col[h] = i
	}
	for _, rec := range failed[1:] {
		if got := rec[col["error_code"]]; got != providers.CodeUnreadable {
			t.Errorf("row %s: error_code %q, want %s (%s)", rec[col["row"]], got, providers.CodeUnreadable, rec[col["error_message"]])
		}
	}
	for name, s := range simStats(t, base) {
		if len(s.Duplicates) > 0 {
			t.Errorf("%s received duplicate provisioning requests: %v", name, s.Duplicates)
		}
	}
}

// TestRefusedCredentialsStopTheLane: a wrong ThingSpace password. The
// ThingSpace lane stops at once with at most two failed logins (Verizon
// locks the account after five), its rows stay pending, the other
// providers finish, and the run ends with exit 1 naming the keys to check.
func TestRefusedCredentialsStopTheLane(t *testing.T) {
	if testing.Short() {
		t.Skip("runs sim serve and simbulk run as processes")
	}
	const rows = 60
	dir := t.TempDir()
	manifest := writeManifest(t, dir, rows)
	base, _ := startSimServe(t)
	cfg := writeConfig(t, dir, base)
	t.Setenv("TEST_TS_PASSWORD", "not-the-password")
	db := filepath.Join(dir, "simbulk.db")
	code, out := runManifest(t, dir, manifest, cfg, db)
	if code != exitFatal {
		t.Fatalf("exit %d, want %d:\n%s", code, exitFatal, out)
	}
	for _, want := range []string{"thingspace refused simbulk's credentials", "providers.thingspace.key, secret, username and password"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "not-the-password") {
		t.Errorf("the password reached the output")
	}
	st := runStatus(t, db)[0]
	if st.Counts[pipeline.Pending] != rows/3 || st.Counts[pipeline.Succeeded] != rows-rows/3 || st.Counts[pipeline.Failed] != 0 {
		t.Errorf("counts %v, want the %d ThingSpace rows pending, none failed, the rest succeeded", st.Counts, rows/3)
	}
	ts := simStats(t, base)["thingspace"]
	if n := ts.Requests[simkit.OpLogin]; n == 0 || n > 2 {
		t.Errorf("%d session logins with a refused password, want 1 or 2", n)
	}
	if n := ts.Requests[simkit.OpProvision]; n != 0 {
		t.Errorf("%d activate requests reached ThingSpace", n)
	}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil || len(recs) == 0 {
		t.Fatalf("read %s: %v", path, err)
	}
	return recs
}

// TestRefusedCallbacksCounted: strangers post to the ThingSpace callback
// listener while a rollout runs. Their deliveries are refused, the real
// ones land (every row succeeds), and the refusals are in the run's log
// and in its summary, which status shows again later.
func TestRefusedCallbacksCounted(t *testing.T) {
	if testing.Short() {
		t.Skip("runs sim serve and simbulk run as processes")
	}
	const rows = 90
	dir, manifest, _, cfg, db := slowRollout(t, rows)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(raw), "listen: 127.0.0.1:0", "listen: "+addr, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, out := startRun(t, dir, manifest, cfg, db)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	sent := 0
	for stop := false; !stop; {
		select {
		case err := <-done:
			if code := exitCode(err); code != 0 {
				t.Fatalf("run exit %d:\n%s", code, out)
			}
			stop = true
		case <-time.After(20 * time.Millisecond):
			resp, err := http.Post("http://"+addr+"/callbacks", "application/json", strings.NewReader(`{"username":"x","password":"y"}`))
			if err == nil {
				resp.Body.Close()
				sent++
			}
		}
	}
	if sent == 0 {
		t.Fatal("no stranger's delivery reached the listener; the test proves nothing")
	}
	if !strings.Contains(out.String(), "callback deliveries refused") || !strings.Contains(out.String(), "deliveries refused (bad_path ") {
		t.Errorf("refusals not in the log and summary:\n%s", out)
	}
	got := runStatus(t, db)[0]
	if got.Counts[pipeline.Succeeded] != rows {
		t.Errorf("counts %v, want all %d succeeded", got.Counts, rows)
	}
	st, err := exec.Command("simbulk", "status", got.RunID, "--db", db).Output()
	if err != nil || !strings.Contains(string(st), "deliveries refused (bad_path ") {
		t.Errorf("status %s does not show the refusals (%v):\n%s", got.RunID, err, st)
	}
	t.Logf("%d strangers' deliveries sent; status:\n%s", sent, st)
}
