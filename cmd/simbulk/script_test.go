package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets the test binary stand in for the simbulk command (on PATH
// during the tests), running main itself, signal handling included.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"simbulk": main})
}

// TestScript runs the command-line scripts in testdata/script. $SAMPLES
// points at the repository's samples/, so the scripts check the shipped
// files (including the binary XLSX ones, which a txtar cannot hold).
func TestScript(t *testing.T) {
	samplesDir, err := filepath.Abs(filepath.Join("..", "..", "samples"))
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("testdata", "script"),
		Setup: func(env *testscript.Env) error {
			env.Setenv("SAMPLES", samplesDir)
			return nil
		},
		Cmds:          map[string]func(*testscript.TestScript, bool, []string){"exits": cmdExits},
		UpdateScripts: os.Getenv("UPDATE_SCRIPTS") == "1",
	})
}

// cmdExits runs a command and checks its exact exit status, which the
// built-in "! exec" cannot: simbulk's exit codes are part of its contract.
//
//	exits 3 simbulk validate broken.csv
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! exits")
	}
	if len(args) < 2 {
		ts.Fatalf("usage: exits STATUS command [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: status %q is not a number", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exits: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}
