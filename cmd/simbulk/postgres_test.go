package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/pipeline/postgres"
	"github.com/simbulk/simbulk/pipeline/postgres/pgtest"
)

// TestPostgresCheckpoint: --db postgres://… puts the checkpoint in
// PostgreSQL, SIMBULK_DB and the config's checkpoint: name it too, and
// the connection string's password shows nowhere.
func TestPostgresCheckpoint(t *testing.T) {
	c := pgtest.New(t)
	db := strings.Replace(c.NewDB(t), "postgres@", "postgres:s3cret-pw@", 1) // trust auth: the password is never asked for
	dir := t.TempDir()
	manifest := writeManifest(t, dir, 40)
	simbulk := func(env []string, args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command("simbulk", args...)
		cmd.Env = append(cmd.Environ(), env...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		code := exitCode(cmd.Run())
		if strings.Contains(out.String(), "s3cret") {
			t.Errorf("simbulk %s showed the password:\n%s", args[0], out.String())
		}
		return out.String(), code
	}

	out, code := simbulk(nil, "run", manifest, "--simulate", "--db", db, "--out", filepath.Join(dir, "runs"), "--log-format", "json")
	if code != 0 {
		t.Fatalf("run exited %d:\n%s", code, out)
	}
	if !strings.Contains(out, `"checkpoint":"postgres://postgres:xxxxx@`) {
		t.Errorf("the log does not name the checkpoint, password redacted:\n%s", out)
	}
	var runs []statusJSON
	out, code = simbulk([]string{"SIMBULK_DB=" + db}, "status", "--json")
	if err := json.Unmarshal([]byte(out), &runs); code != 0 || err != nil || len(runs) != 1 {
		t.Fatalf("status with SIMBULK_DB: exit %d, %v:\n%s", code, err, out)
	}
	if r := runs[0]; r.State != pipeline.RunCompleted || r.Counts[pipeline.Succeeded] != 40 {
		t.Errorf("run in PostgreSQL: %+v, want completed with 40 succeeded", r)
	}
	// Running the same manifest again finds its run in the same database,
	// now named by the config.
	t.Setenv("TEST_CHECKPOINT", db)
	cfg := filepath.Join(dir, "simbulk.yaml")
	if err := os.WriteFile(cfg, []byte("checkpoint: ${TEST_CHECKPOINT}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code = simbulk(nil, "report", runs[0].RunID, "--config", cfg, "--out", filepath.Join(dir, "again"), "--format", "json")
	if code != 0 || !strings.Contains(out, "summary.json") {
		t.Errorf("report with checkpoint: in the config: exit %d:\n%s", code, out)
	}
	out, code = simbulk(nil, "checkpoint", "backup", filepath.Join(dir, "copy.db"), "--db", db)
	if code == 0 || !strings.Contains(out, "pg_dump") {
		t.Errorf("backup of a PostgreSQL checkpoint: exit %d:\n%s", code, out)
	}
}

// TestReconcileRefusedTwice: a reconciliation of a run already being
// reconciled (from another host's cron, say) is refused on PostgreSQL;
// one of another run is not.
func TestReconcileRefusedTwice(t *testing.T) {
	c := pgtest.New(t)
	db := c.NewDB(t)
	dir := t.TempDir()
	manifest := writeManifest(t, dir, 6)
	run := exec.Command("simbulk", "run", manifest, "--simulate", "--db", db, "--out", filepath.Join(dir, "runs"))
	if out, err := run.CombinedOutput(); err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	runID := runStatus(t, db)[0].RunID
	ctx := context.Background()
	cp, err := postgres.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	unlock, err := cp.Lock(ctx, "reconcile "+runID, 0) // the other reconciliation
	if err != nil {
		t.Fatal(err)
	}
	reconcile := func() (int, string) {
		cmd := exec.Command("simbulk", "reconcile", "--run", runID[:12], "--simulate", "--db", db, "--lock-wait", "300ms", "--out", filepath.Join(dir, "runs"))
		out, err := cmd.CombinedOutput()
		return exitCode(err), string(out)
	}
	if code, out := reconcile(); code != exitFatal || !strings.Contains(out, "another simbulk is working on") {
		t.Errorf("second reconcile of a run: exit %d:\n%s\nwant 1 and a message about the other", code, out)
	}
	unlock()
	if _, out := reconcile(); strings.Contains(out, "another simbulk") {
		t.Errorf("reconcile refused once the other finished:\n%s", out)
	}
	// A rollout's setup lock is not a reconciliation's.
	unlock, err = cp.Lock(ctx, "setup", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if _, out := reconcile(); strings.Contains(out, "another simbulk") {
		t.Errorf("reconcile refused while a rollout set up:\n%s", out)
	}
}
