package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/providers/simkit"
	"github.com/simbulk/simbulk/samples"
)

// writeManifest writes n mixed-provider rows with valid identifiers.
func writeManifest(t *testing.T, dir string, n int) string {
	t.Helper()
	path := filepath.Join(dir, "devices.csv")
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(samples.Columns)
	for i := range n {
		_ = w.Write(samples.NewDevice(samples.Providers[i%len(samples.Providers)], i+1).Record())
	}
	w.Flush()
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeConfig points every provider at a simulator with its demo
// credentials, passed through the environment as a real config would.
func writeConfig(t *testing.T, dir, base string) string {
	t.Helper()
	t.Setenv("TEST_IOT_SECRET", "demo-iotconnect-secret")
	t.Setenv("TEST_ASAVIE_SECRET", "demo-asavie-secret")
	t.Setenv("TEST_TS_SECRET", "demo-thingspace-secret")
	t.Setenv("TEST_TS_PASSWORD", "demo-password")
	t.Setenv("TEST_CB_PASSWORD", "callback-password")
	cfg := fmt.Sprintf(`providers:
  iotconnect:
    base_url: %[1]s
    token_url: %[1]s/oauth2/token
    client_id: demo-iotconnect
    client_secret: ${TEST_IOT_SECRET}
    concurrency: 8
    max_attempts: 12
    timeout: 2s
    max_retry_after: 1s
    poll_interval: 100ms
  asavie:
    base_url: %[1]s
    client_id: demo-asavie
    client_secret: ${TEST_ASAVIE_SECRET}
    concurrency: 8
    max_attempts: 12
    timeout: 2s
    max_retry_after: 1s
    poll_interval: 100ms
  thingspace:
    base_url: %[1]s
    key: demo-thingspace-key
    secret: ${TEST_TS_SECRET}
    username: demo-user
    password: ${TEST_TS_PASSWORD}
    batch_size: 25
    concurrency: 4
    max_attempts: 12
    timeout: 2s
    max_retry_after: 1s
    poll_interval: 100ms
    callback:
      listen: 127.0.0.1:0
      poll_after: 2s
      username: simbulk-callback
      password: ${TEST_CB_PASSWORD}
`, base)
	path := filepath.Join(dir, "simbulk.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func simStats(t *testing.T, base string) map[string]simkit.Stats {
	t.Helper()
	resp, err := http.Get(base + "/_sim/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var stats map[string]simkit.Stats
	if err := json.NewDecoder(resp.Body).Decode(&stats); err != nil {
		t.Fatal(err)
	}
	return stats
}

func runStatus(t *testing.T, db string) []statusJSON {
	t.Helper()
	out, err := exec.Command("simbulk", "status", "--json", "--db", db).Output()
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	var runs []statusJSON
	if err := json.Unmarshal(out, &runs); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	return runs
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// runManifest runs `simbulk run` to the end and returns its exit code and output.
func runManifest(t *testing.T, dir, manifest, cfg, db string) (int, string) {
	t.Helper()
	cmd := exec.Command("simbulk", "run", manifest, "--config", cfg, "--db", db, "--log-format", "json")
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return exitCode(err), out.String()
	case <-time.After(3 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("run did not finish in 3 minutes:\n%s", out.String())
	}
	return -1, ""
}

// TestKillAndResume is the crash-safety test: `simbulk sim serve --profile
// flaky` and `simbulk run` as separate processes; the run is killed with
// SIGKILL at random moments, then let finish. Every row must end final, no
// identifier may have been provisioned twice, and the outcome must equal
// an uninterrupted run's.
//
// It runs against both public wire forms of the providers' answers (see
// `sim serve --forms`): the clients must read either without a duplicate.
func TestKillAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("process kill test")
	}
	for _, forms := range []string{"documented", "alternate"} {
		t.Run(forms, func(t *testing.T) { testKillAndResume(t, forms) })
	}
}

func testKillAndResume(t *testing.T, forms string) {
	const rows = 450
	dir := t.TempDir()
	manifest := writeManifest(t, dir, rows)
	base, _ := startSimServe(t, "--profile", "flaky", "--async-delay", "100ms", "--seed", "11", "--forms", forms)
	cfg := writeConfig(t, dir, base)
	db := filepath.Join(dir, "simbulk.db")

	rng := rand.New(rand.NewPCG(42, 7))
	kills := 0
	for i := range 5 {
		cmd := exec.Command("simbulk", "run", manifest, "--config", cfg, "--db", db)
		cmd.Dir = dir
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wait := time.Duration(200+rng.IntN(1300)) * time.Millisecond
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			t.Logf("attempt %d finished before the kill (exit %d)", i, exitCode(err))
		case <-time.After(wait):
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-done
			kills++
			t.Logf("attempt %d killed after %v", i, wait)
		}
	}
	if kills == 0 {
		t.Fatal("no run was killed; the test proves nothing")
	}
	code, out := runManifest(t, dir, manifest, cfg, db)
	if code != 0 {
		t.Fatalf("final run exit %d, want 0:\n%s", code, out)
	}
	runs := runStatus(t, db)
	if len(runs) != 1 {
		t.Fatalf("%d runs in the checkpoint, want 1 (re-running the manifest resumes it)", len(runs))
	}
	got := runs[0]
	if got.State != pipeline.RunCompleted || got.Counts[pipeline.Succeeded] != rows || got.Counts.Total() != rows {
		t.Errorf("after kills: state %s counts %v; want completed with %d succeeded", got.State, got.Counts, rows)
	}
	stats := provisionedOnce(t, base, rows)
	if stats["asavie"].Faults[string(simkit.Drop)]+stats["iotconnect"].Faults[string(simkit.Drop)] == 0 {
		t.Logf("note: no dropped connections were drawn this run")
	}

	// The same manifest, uninterrupted, against fresh simulators.
	base2, _ := startSimServe(t, "--profile", "flaky", "--async-delay", "100ms", "--seed", "11", "--forms", forms)
	cfg2 := writeConfig(t, t.TempDir(), base2)
	db2 := filepath.Join(t.TempDir(), "simbulk.db")
	if code, out := runManifest(t, dir, manifest, cfg2, db2); code != 0 {
		t.Fatalf("uninterrupted run exit %d:\n%s", code, out)
	}
	want := runStatus(t, db2)[0].Counts
	for _, s := range pipeline.States {
		if got.Counts[s] != want[s] {
			t.Errorf("%s: %d after kills, %d uninterrupted", s, got.Counts[s], want[s])
		}
	}
}

// TestInterruptIsResumable sends SIGINT mid-run: the run stops taking rows,
// records everything, exits 130, and the same command then completes it.
func TestInterruptIsResumable(t *testing.T) {
	if testing.Short() {
		t.Skip("process signal test")
	}
	const rows = 300
	dir, manifest, base, cfg, db := slowRollout(t, rows)
	cmd, out := startRun(t, dir, manifest, cfg, db)
	time.Sleep(700 * time.Millisecond)
	_ = cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	if code := exitCode(err); code != exitInterrupted {
		t.Fatalf("exit %d after SIGINT, want 130:\n%s", code, out.String())
	}
	st := runStatus(t, db)[0]
	if st.State != pipeline.RunInterrupted {
		t.Errorf("state after SIGINT: %s, want interrupted", st.State)
	}
	if st.Counts[pipeline.InFlight] != 0 {
		t.Errorf("%d rows left in flight after a graceful stop", st.Counts[pipeline.InFlight])
	}
	if st.Counts[pipeline.Succeeded] == rows {
		t.Errorf("every row finished before the interrupt; the test proves nothing")
	}
	if code, out := runManifest(t, dir, manifest, cfg, db); code != 0 {
		t.Fatalf("resume exit %d:\n%s", code, out)
	}
	st = runStatus(t, db)[0]
	if st.State != pipeline.RunCompleted || st.Counts[pipeline.Succeeded] != rows {
		t.Errorf("after resume: %s %v", st.State, st.Counts)
	}
	for name, s := range simStats(t, base) {
		if len(s.Duplicates) > 0 {
			t.Errorf("%s: duplicates %v", name, s.Duplicates)
		}
	}
}

// TestSecondRunRefusedWhileFirstWorks: an operator starts the same rollout
// again in another terminal while the first still works. The second must
// not touch the checkpoint (it would claim the same rows and send them
// again); it says why and exits 1, and the first completes with no
// duplicates.
func TestSecondRunRefusedWhileFirstWorks(t *testing.T) {
	if testing.Short() {
		t.Skip("two processes")
	}
	const rows = 300
	dir, manifest, base, cfg, db := slowRollout(t, rows)
	first, out := startRun(t, dir, manifest, cfg, db)
	// Wait until the first holds the checkpoint and has sent something.
	deadline := time.Now().Add(20 * time.Second)
	for sent := 0; sent == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("the first run sent nothing in 20s:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
		for _, st := range simStats(t, base) {
			sent += st.ProvisionRequests
		}
	}
	second := exec.Command("simbulk", "run", manifest, "--config", cfg, "--db", db)
	second.Dir = dir
	var stderr bytes.Buffer
	second.Stderr = &stderr
	code := exitCode(second.Run())
	if code != exitFatal || !strings.Contains(stderr.String(), "another simbulk is working on") {
		t.Errorf("second run: exit %d, stderr %q; want 1 and a message about the first", code, stderr.String())
	}
	if err := first.Wait(); err != nil {
		t.Fatalf("first run: %v\n%s", err, out.String())
	}
	if st := runStatus(t, db)[0]; st.State != pipeline.RunCompleted || st.Counts[pipeline.Succeeded] != rows {
		t.Errorf("first run: state %s counts %v, want completed with %d succeeded", st.State, st.Counts, rows)
	}
	for name, st := range simStats(t, base) {
		if len(st.Duplicates) > 0 {
			t.Errorf("%s received duplicate provisioning requests: %v", name, st.Duplicates)
		}
	}
}

// slowRollout sets up a rollout of rows devices against `sim serve` with
// 20ms latency, slow enough to catch mid-way: the directory, manifest,
// simulators' base URL, config and checkpoint paths.
func slowRollout(t *testing.T, rows int) (dir, manifest, base, cfg, db string) {
	t.Helper()
	dir = t.TempDir()
	manifest = writeManifest(t, dir, rows)
	base, _ = startSimServe(t, "--latency", "20ms", "--async-delay", "200ms")
	cfg = writeConfig(t, dir, base)
	return dir, manifest, base, cfg, filepath.Join(dir, "simbulk.db")
}

// startRun starts `simbulk run` in its own process; out collects its
// stdout and stderr.
func startRun(t *testing.T, dir, manifest, cfg, db string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command("simbulk", "run", manifest, "--config", cfg, "--db", db)
	cmd.Dir = dir
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out
}
