package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/simbulk/simbulk/samples"
)

func TestDisplayValue(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"8944301234567890123", "8944301234567890123"},
		{"", `""`},
		{" 89443", `" 89443"`},
		{"07700 900315", "07700 900315"}, // inner spaces are visible as they are
		{"a\tb", `"a\tb"`},
		{"Caf\ufffd", `"Caf�"`},
		{"0123456789012345678901234567890123456789", "01234567890123456789012345678901234…"},
	} {
		if got := displayValue(tc.in); got != tc.want {
			t.Errorf("displayValue(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// FuzzValidateJSON feeds arbitrary manifests to `validate --json`: it must
// either fail as a whole (exit 1, nothing on stdout) or print one valid
// JSON document whose counts add up and agree with the exit status.
func FuzzValidateJSON(f *testing.F) {
	for _, name := range []string{"mixed.csv", "broken.csv", "asavie.csv", "broken-missing-column.csv"} {
		b, err := os.ReadFile(filepath.Join(samplesDir, name))
		if err != nil {
			f.Fatal(err)
		}
		// A few lines each: small seeds keep the fuzzer's minimising of
		// new inputs short, which matters in `make fuzz`'s brief runs.
		lines := bytes.SplitAfter(b, []byte("\n"))
		f.Add(bytes.Join(lines[:min(len(lines), 4)], nil))
	}
	f.Add([]byte("provider,eid\n\"unterminated,1\n"))
	f.Add([]byte(""))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, manifest []byte) {
		path := filepath.Join(dir, "m.csv")
		if err := os.WriteFile(path, manifest, 0o644); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{"validate", "--json", path}, nil, &stdout, &stderr)
		switch code {
		case exitFatal:
			if stdout.Len() != 0 || stderr.Len() == 0 {
				t.Fatalf("exit 1 with stdout %q, stderr %q", &stdout, &stderr)
			}
			return
		case exitOK, exitRowsFailed:
		default:
			t.Fatalf("exit %d; stderr %s", code, &stderr)
		}
		var rep validateReport
		if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
			t.Fatalf("output is not JSON: %v\n%s", err, &stdout)
		}
		if rep.Valid+rep.Invalid != rep.Rows {
			t.Fatalf("valid %d + invalid %d != rows %d", rep.Valid, rep.Invalid, rep.Rows)
		}
		errors := 0
		for _, p := range rep.Problems {
			if p.Severity != "warning" {
				errors++
			}
		}
		if (code == exitOK) != (errors == 0) {
			t.Fatalf("exit %d with %d error problems", code, errors)
		}
	})
}

// An interrupt (SIGINT/SIGTERM cancel the context in main) stops a long
// validation with exit 130 rather than a half-written report and exit 1.
func TestValidateInterrupted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.csv")
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write(samples.Columns)
	for n := range 3000 {
		w.Write(samples.NewDevice(samples.Providers[n%3], n).Record())
	}
	w.Flush()
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, []string{"validate", path}, nil, &stdout, &stderr); code != exitInterrupted {
		t.Errorf("exit %d, want %d; stderr: %s", code, exitInterrupted, &stderr)
	}
	if got := stderr.String(); got != "simbulk: interrupted\n" {
		t.Errorf("stderr %q", got)
	}
}

// Long passes log progress in the --log-format the user chose.
func TestProgressLogFormat(t *testing.T) {
	var stderr bytes.Buffer
	a := &app{stderr: &stderr, logFormat: "json"}
	p := progressLog{log: a.logger(), manifest: "devices.csv", every: 0}
	p.rows(4096)
	var line struct {
		Msg      string `json:"msg"`
		Manifest string `json:"manifest"`
		Rows     int    `json:"rows"`
	}
	if err := json.Unmarshal(stderr.Bytes(), &line); err != nil {
		t.Fatalf("log line is not JSON: %v: %s", err, &stderr)
	}
	if line.Msg != "validating" || line.Manifest != "devices.csv" || line.Rows != 4096 {
		t.Errorf("log line %s", &stderr)
	}
}
