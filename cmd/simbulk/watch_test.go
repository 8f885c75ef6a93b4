package main

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/pipeline/rollout"
)

// Away from a terminal, the rollout's Progress events become the
// "progress" log line with the keys cron logs and collectors read, every
// 5 s; the other events add nothing to the log the service writes.
func TestProgressEventsRenderAsLogLines(t *testing.T) {
	var stderr bytes.Buffer
	a := &app{stderr: &stderr, logFormat: "json"}
	r := a.progressRenderer()
	if r.interactive || r.every != 5*time.Second {
		t.Fatalf("renderer interactive %v every %s", r.interactive, r.every)
	}
	counts := pipeline.Counts{pipeline.Succeeded: 40, pipeline.Failed: 2, pipeline.Accepted: 3, pipeline.InFlight: 4,
		pipeline.Pending: 51, pipeline.Invalid: 7, pipeline.Skipped: 1}
	r.event(rollout.Started{Run: pipeline.Run{ID: "r1"}})
	r.event(rollout.ProviderNotice{RunID: "r1", Notice: pipeline.Notice{Provider: "asavie", Kind: pipeline.NoticeProviderDown}})
	r.event(rollout.Progress{RunID: "r1", Counts: counts, Total: 100, Done: 42, Elapsed: 10 * time.Second, RowsPerSecond: 4.2})
	r.event(rollout.Finished{RunID: "r1", State: pipeline.RunCompleted, Counts: counts})
	r.stop()
	var line map[string]any
	if err := json.Unmarshal(stderr.Bytes(), &line); err != nil {
		t.Fatalf("want one JSON log line: %v: %s", err, &stderr)
	}
	want := map[string]any{"msg": "progress", "run": "r1", "done": 42.0, "total": 100.0, "succeeded": 40.0, "failed": 2.0,
		"accepted": 3.0, "in_flight": 4.0, "pending": 51.0, "rows_per_second": 4.2}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %v, want %v in %s", k, line[k], v, &stderr)
		}
	}
}
