package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestManifestFromFIFO: a manifest arriving through a FIFO (or standard
// input) is read once into an owner-only temp file, validated and run like
// any file, and the temp file is gone afterwards.
func TestManifestFromFIFO(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	manifest := writeManifest(t, dir, 30)
	content, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.csv")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	feed := func() {
		go func() {
			f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
			if err != nil {
				return
			}
			defer f.Close()
			_, _ = f.Write(content)
		}()
	}
	feed()
	out, err := exec.Command("simbulk", "validate", fifo, "--json").CombinedOutput()
	if code := exitCode(err); code != 0 || !bytes.Contains(out, []byte(`"rows":30,"valid":30`)) {
		t.Fatalf("validate from a FIFO: exit %d\n%s", code, out)
	}
	feed()
	db := filepath.Join(dir, "c.db")
	out, err = exec.Command("simbulk", "run", fifo, "--simulate", "--db", db, "--out", filepath.Join(dir, "runs")).CombinedOutput()
	if code := exitCode(err); code != 0 || !bytes.Contains(out, []byte("succeeded  30")) {
		t.Fatalf("run from a FIFO: exit %d\n%s", code, out)
	}
	cmd := exec.Command("simbulk", "validate", "-")
	cmd.Stdin = bytes.NewReader(content)
	if out, err := cmd.CombinedOutput(); exitCode(err) != 0 {
		t.Fatalf("validate -: exit %d\n%s", exitCode(err), out)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "simbulk-manifest-*")); len(left) > 0 {
		t.Errorf("temp files left behind: %v", left)
	}
}

// TestSignalWhileWaitingOnFIFO: a FIFO nobody writes to used to hang
// simbulk past the first SIGTERM. It must end within 2 s with exit 130,
// leaving no temp file.
func TestSignalWhileWaitingOnFIFO(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	fifo := filepath.Join(dir, "never.csv")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"validate", fifo}, {"run", fifo, "--simulate", "--db", filepath.Join(dir, "c.db")}} {
		cmd := exec.Command("simbulk", args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		signalled := time.Now()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			took := time.Since(signalled)
			if code := exitCode(err); code != exitInterrupted {
				t.Errorf("%s: exit %d, want %d", args[0], code, exitInterrupted)
			}
			t.Logf("%s: ended %v after SIGTERM", args[0], took.Round(time.Millisecond))
		case <-time.After(2 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("%s: still running 2 s after SIGTERM", args[0])
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "simbulk-manifest-*")); len(left) > 0 {
		t.Errorf("temp files left behind: %v", left)
	}
}
