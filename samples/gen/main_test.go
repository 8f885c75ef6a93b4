package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestSamplesUpToDate fails when the files in samples/ differ from what
// the generator writes now: run `make samples` and commit the result.
func TestSamplesUpToDate(t *testing.T) {
	dir := t.TempDir()
	if err := generate(dir); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		want, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("..", e.Name()))
		if err != nil {
			t.Errorf("samples/%s: %v (run make samples)", e.Name(), err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("samples/%s is not what the generator writes (run make samples)", e.Name())
		}
	}
}
