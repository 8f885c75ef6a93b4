package reports

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/simbulk/simbulk/ingest"
)

// TestSummaryShowsRunCounters: counts recorded on the run (refused
// callback deliveries) reach summary.json, summary.html and the Summary
// sheet; a run without any has no counters key at all.
func TestSummaryShowsRunCounters(t *testing.T) {
	f := newFixture(t, mixedManifest(), ingest.ValidateOptions{}, mixedPlan(), true)
	files := f.write(t, "json")
	if b, _ := os.ReadFile(filepath.Join(files.Dir, "summary.json")); strings.Contains(string(b), `"counters"`) {
		t.Errorf("summary.json of a run without counters has a counters key")
	}
	if err := f.cp.AddRunCounters(context.Background(), f.run.ID, map[string]int64{"callback_rejected_bad_path": 28, "callback_rejected_too_large": 2}); err != nil {
		t.Fatal(err)
	}
	files = f.write(t, "json", "html")
	var s Summary
	b, err := os.ReadFile(filepath.Join(files.Dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if s.Counters["callback_rejected_bad_path"] != 28 || s.Counters["callback_rejected_too_large"] != 2 {
		t.Errorf("summary.json counters %v", s.Counters)
	}
	html, err := os.ReadFile(filepath.Join(files.Dir, "summary.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(html), `data-metric="callback_rejected_bad_path" data-value="28"`) {
		t.Errorf("summary.html does not show the counters")
	}
}
