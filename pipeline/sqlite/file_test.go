package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/simbulk/simbulk/pipeline"
)

// The SQLite store's own tests: what a file of customer data needs (only
// our own files opened, owner-only, read-only as nobody's writer, copies
// without their -wal refused, consistent backups). The store's contract,
// which every implementation keeps, is pipeline/storetest's (store_test.go).

// seedRun stores a run of n pending rows of provider "fake".
func seedRun(t *testing.T, cp *Store, n int) pipeline.Run {
	t.Helper()
	ctx := context.Background()
	run, err := cp.CreateRun(ctx, "fp", "m.csv", []string{"provider", "eid"})
	if err != nil {
		t.Fatal(err)
	}
	rows := make([]pipeline.RowRecord, n)
	for i := range rows {
		eid := fmt.Sprintf("E%03d", i)
		rows[i] = pipeline.RowRecord{RunID: run.ID, Row: i + 2, Provider: "fake", EID: eid, Cells: []string{"fake", eid}, State: pipeline.Pending}
	}
	if err := cp.AddRows(ctx, rows); err != nil {
		t.Fatal(err)
	}
	return run
}

// TestCheckpointTouchesOnlyItsOwnFiles: --db naming anything but a
// checkpoint (a device, a FIFO, a directory, a text file, somebody else's
// SQLite database, a symlink to any of those) is refused with
// ErrNotCheckpoint, and the thing named is left exactly as it was: same
// bytes, same mode.
func TestCheckpointTouchesOnlyItsOwnFiles(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "hosts.txt")
	if err := os.WriteFile(text, []byte("127.0.0.1 localhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(dir, "other.sqlite")
	db, err := sql.Open("sqlite3", foreign)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO accounts (name) VALUES ('x')"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := os.Chmod(foreign, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.db")
	if err := os.Symlink(text, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/dev/null", fifo, dir, text, foreign, link} {
		before, beforeBytes := snapshot(t, p)
		for name, open := range map[string]func(string) (*Store, error){
			"Open":         func(p string) (*Store, error) { return Open(p) },
			"OpenExisting": func(p string) (*Store, error) { return OpenExisting(p) },
			"OpenReadOnly": OpenReadOnly,
		} {
			cp, err := open(p)
			if err == nil {
				cp.Close()
				t.Errorf("%s(%s) opened it; want ErrNotCheckpoint", name, p)
				continue
			}
			if !errors.Is(err, ErrNotCheckpoint) {
				t.Errorf("%s(%s): %v, want ErrNotCheckpoint", name, p, err)
			}
		}
		after, afterBytes := snapshot(t, p)
		if before.Mode() != after.Mode() || !bytes.Equal(beforeBytes, afterBytes) {
			t.Errorf("%s changed: mode %v -> %v, %d -> %d bytes", p, before.Mode(), after.Mode(), len(beforeBytes), len(afterBytes))
		}
	}
	for _, p := range []string{foreign + "-wal", foreign + "-shm", text + "-wal"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s was created", p)
		}
	}
}

func snapshot(t *testing.T, p string) (os.FileInfo, []byte) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	if fi.Mode().IsRegular() {
		if b, err = os.ReadFile(p); err != nil {
			t.Fatal(err)
		}
	}
	return fi, b
}

// TestCheckpointModes: a checkpoint simbulk creates is owner-only; one
// that exists keeps the mode its owner gave it.
func TestCheckpointModes(t *testing.T) {
	dir := t.TempDir()
	fresh := filepath.Join(dir, "new.db")
	cp, err := Open(fresh)
	if err != nil {
		t.Fatal(err)
	}
	cp.Close()
	if fi, _ := os.Stat(fresh); fi.Mode().Perm() != 0o600 {
		t.Errorf("new checkpoint mode %v, want 0600", fi.Mode().Perm())
	}
	if err := os.Chmod(fresh, 0o640); err != nil {
		t.Fatal(err)
	}
	cp, err = Open(fresh)
	if err != nil {
		t.Fatal(err)
	}
	cp.Close()
	if fi, _ := os.Stat(fresh); fi.Mode().Perm() != 0o640 {
		t.Errorf("reopening changed the owner's mode 0640 to %v", fi.Mode().Perm())
	}
	// An empty file is what a checkpoint copied without its -wal looks
	// like early in a run: refused, not taken for a new checkpoint.
	empty := filepath.Join(dir, "touched.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if cp, err = Open(empty); !errors.Is(err, ErrNotCheckpoint) {
		if err == nil {
			cp.Close()
		}
		t.Fatalf("empty file: %v, want ErrNotCheckpoint", err)
	}
}

// TestCheckpointReadOnly: status and report open the checkpoint read-only:
// its runs and rows read as usual, any write is refused, and the file is
// left byte for byte as it was.
func TestCheckpointReadOnly(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.db")
	cp, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	run := seedRun(t, cp, 5)
	cp.Close()
	before, _ := os.ReadFile(p)

	ro, err := OpenReadOnly(p)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	c, err := ro.Counts(context.Background(), run.ID)
	if err != nil || c[pipeline.Pending] != 5 {
		t.Errorf("counts %v err %v, want 5 pending", c, err)
	}
	if err := ro.SetRunState(context.Background(), run.ID, pipeline.RunCompleted); !errors.Is(err, pipeline.ErrReadOnly) {
		t.Errorf("write to a read-only checkpoint: %v, want pipeline.ErrReadOnly", err)
	}
	after, _ := os.ReadFile(p)
	if !bytes.Equal(before, after) {
		t.Errorf("reading changed the checkpoint file")
	}
}

// TestBackupWhileLive: a backup taken while the checkpoint is open and
// its latest commits sit in the -wal file holds them (a copy of the main
// file alone may not: then the in-flight intents are lost, and a resume
// from it would send those rows again). The copy is owner-only, and an
// existing file is never overwritten.
func TestBackupWhileLive(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "live.db")
	cp, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	run := seedRun(t, cp, 100)
	inFlight := make([]int, 0, 49)
	for row := 2; row <= 50; row++ {
		inFlight = append(inFlight, row)
	}
	ctx := context.Background()
	w, err := cp.Join(ctx, run.ID, pipeline.NewWorker(), time.Minute, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cp.MarkInFlight(ctx, run.ID, w.ID, inFlight); err != nil {
		t.Fatal(err)
	}

	naive := filepath.Join(dir, "naive.db")
	if b, err := os.ReadFile(p); err == nil {
		_ = os.WriteFile(naive, b, 0o600)
		// Here every commit is still in the -wal file: the copy is an
		// empty database, which must not pass for a fresh checkpoint.
		if c, err := Open(naive); err == nil {
			n, _ := c.Counts(ctx, run.ID)
			c.Close()
			if n.Total() == 0 {
				t.Errorf("a copy of the main file alone opened as an empty checkpoint: a rerun would send every row again")
			}
			t.Logf("a copy of the main file alone holds %d of the 49 rows in flight", n[pipeline.InFlight])
		} else {
			t.Logf("a copy of the main file alone is refused: %v", err)
		}
	}

	ro, err := OpenReadOnly(p)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	dest := filepath.Join(dir, "backup.db")
	if err := ro.Backup(ctx, dest); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(dest); fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v, want 0600", fi.Mode().Perm())
	}
	b, err := Open(dest)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c, err := b.Counts(ctx, run.ID)
	if err != nil || c[pipeline.InFlight] != 49 || c.Total() != 100 {
		t.Errorf("backup counts %v err %v, want 49 in flight of 100", c, err)
	}
	if err := ro.Backup(ctx, dest); err == nil {
		t.Error("a second backup overwrote an existing file")
	}
}
