package main

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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
		sigtermEndsWithin2s(t, args...)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "simbulk-manifest-*")); len(left) > 0 {
		t.Errorf("temp files left behind: %v", left)
	}
}

// TestSignalWhileOpeningWorkbook: a workbook whose sheet held 1.5 GB of
// whitespace kept simbulk busy for 52 s, ignoring SIGTERM. This one holds
// 600 MB, in 64 KiB runs each within the reader's token limit, so reading
// it takes seconds; a SIGTERM 300 ms in ends validate within 2 s, exit 130.
func TestSignalWhileOpeningWorkbook(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "spaces.xlsx")
	size := 600 << 20
	if raceBuild {
		size = 100 << 20 // reading is slower too: still seconds
	}
	writeWhitespaceWorkbook(t, path, size)
	sigtermEndsWithin2s(t, "validate", path)
}

// sigtermEndsWithin2s starts simbulk with args, sends SIGTERM 300 ms later
// and requires exit 130 within 2 s.
func sigtermEndsWithin2s(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("simbulk", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A signal before the handler is installed kills the process (exit
	// -1) instead of testing it; on a loaded machine start-up alone can
	// take longer than any fixed wait.
	waitForSigtermHandler(t, cmd.Process.Pid)
	time.Sleep(300 * time.Millisecond)
	signalled := time.Now()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if code := exitCode(err); code != exitInterrupted {
			t.Errorf("%s: exit %d, want %d:\n%s", args[0], code, exitInterrupted, out.String())
		}
		t.Logf("%s: ended %v after SIGTERM", args[0], time.Since(signalled).Round(time.Millisecond))
	case <-time.After(2 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("%s: still running 2 s after SIGTERM", args[0])
	}
}

// writeWhitespaceWorkbook writes a minimal XLSX whose sheet has a header
// row and then size bytes of whitespace, in 64 KiB runs between empty
// comments; deflate keeps the file a few MB.
func writeWhitespaceWorkbook(t *testing.T, path string, size int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z := zip.NewWriter(f)
	part := func(name, body string) {
		w, err := z.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, body); err != nil {
			t.Fatal(err)
		}
	}
	part("[Content_Types].xml", `<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>`)
	part("_rels/.rels", `<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>`)
	part("xl/workbook.xml", `<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Devices" sheetId="1" r:id="rId1"/></sheets></workbook>`)
	part("xl/_rels/workbook.xml.rels", `<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>`)
	w, err := z.Create("xl/worksheets/sheet1.xml")
	if err != nil {
		t.Fatal(err)
	}
	head := `<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>` +
		`<row r="1"><c r="A1" t="inlineStr"><is><t>provider</t></is></c><c r="B1" t="inlineStr"><is><t>eid</t></is></c></row>`
	if _, err := io.WriteString(w, head); err != nil {
		t.Fatal(err)
	}
	run := []byte(strings.Repeat(" ", 64<<10) + "<!---->")
	for written := 0; written < size; written += len(run) {
		if _, err := w.Write(run); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := io.WriteString(w, `</sheetData></worksheet>`); err != nil {
		t.Fatal(err)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestStatusOnReadOnlyCheckpoint: status, report and checkpoint backup
// work on a checkpoint the user may read but not write, such as one handed
// over by another team. Run as root, the test drops to nobody, for whom
// the file and its directory are read-only.
func TestStatusOnReadOnlyCheckpoint(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run simbulk as another user")
	}
	dir, err := os.MkdirTemp("", "simbulk-ro-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	db := filepath.Join(dir, "c.db")
	if out, err := exec.Command("simbulk", "run", "../../samples/mixed.csv", "--simulate", "--db", db, "--out", filepath.Join(dir, "runs")).CombinedOutput(); err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	before, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	// The test binary stands in for simbulk; nobody must be able to run it.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "simbulk")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, db} {
		if err := os.Chmod(p, map[bool]os.FileMode{true: 0o755, false: 0o644}[p == dir]); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(os.TempDir(), filepath.Base(dir)+"-out")
	t.Cleanup(func() { os.RemoveAll(out) })
	as := func(args ...string) (int, string) {
		cmd := exec.Command(bin, args...)
		cmd.Dir = os.TempDir()
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		o, err := cmd.CombinedOutput()
		return exitCode(err), string(o)
	}
	if code, o := as("status", "--db", db, "--json"); code != 0 || !strings.Contains(o, `"succeeded": 30`) {
		t.Errorf("status as nobody: exit %d\n%s", code, o)
	}
	if code, o := as("report", runStatus(t, db)[0].RunID, "--db", db, "--out", out); code != 0 {
		t.Errorf("report as nobody: exit %d\n%s", code, o)
	}
	if code, o := as("checkpoint", "backup", out+".db", "--db", db); code != 0 {
		t.Errorf("backup as nobody: exit %d\n%s", code, o)
	}
	os.Remove(out + ".db")
	if after, _ := os.ReadFile(db); !bytes.Equal(before, after) {
		t.Errorf("reading the checkpoint changed it")
	}
}

// waitForSigtermHandler waits until process pid catches SIGTERM, as its
// /proc status says (SigCgt, a hex mask with bit 15-1 for SIGTERM).
func waitForSigtermHandler(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Skipf("cannot read the process status: %v", err)
		}
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "SigCgt:"); ok {
				if mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64); err == nil && mask&(1<<(syscall.SIGTERM-1)) != 0 {
					return
				}
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("simbulk never installed its SIGTERM handler")
}
