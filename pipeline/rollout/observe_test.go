package rollout_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/pipeline/rollout"
	"github.com/simbulk/simbulk/providers"
)

// TestObserveSeesEveryRequest checks that Options.Observe is told of each
// request the checkpoint records, and that the failures that put a row
// back, and only those, are retries.
func TestObserveSeesEveryRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		f.down, f.downFor = "asavie", 3
		svc, manifest := setup(t, f, "mixed.csv")
		var mu sync.Mutex
		var seen []pipeline.Request
		res, err := svc.Start(context.Background(), manifest, rollout.Options{Observe: func(r pipeline.Request) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, r)
		}})
		if err != nil || res.Counts[pipeline.Succeeded] != 30 {
			t.Fatalf("result %v %v", res.Counts, err)
		}

		observed := map[string]int{} // provider/kind
		retries := 0
		for _, r := range seen {
			observed[r.Provider+"/"+r.Attempt.Kind]++
			if r.Retry {
				retries++
				if r.Provider != "asavie" || r.Attempt.Kind != "submit" || r.Attempt.HTTPStatus != 503 {
					t.Errorf("retry of %s %s HTTP %d, want only asavie's 503s", r.Provider, r.Attempt.Kind, r.Attempt.HTTPStatus)
				}
			}
		}
		if retries != 3 {
			t.Errorf("%d retries, want the 3 503s", retries)
		}
		// The fake answers every check with a verdict, so the checkpoint
		// records every request this run made.
		recorded := map[string]int{}
		err = svc.Store.RowsIn(context.Background(), res.Run.ID, "", func(r pipeline.RowRecord) error {
			as, err := svc.Store.Attempts(context.Background(), res.Run.ID, r.Row)
			for _, a := range as {
				recorded[r.Provider+"/"+a.Kind]++
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(observed) != len(recorded) {
			t.Errorf("observed %v, recorded %v", observed, recorded)
		}
		for k, n := range recorded {
			if observed[k] != n {
				t.Errorf("%s: observed %d requests, the checkpoint recorded %d", k, observed[k], n)
			}
		}

		seen = nil
		rec, err := svc.Reconcile(context.Background(), res.Run.ID, rollout.ReconcileOptions{Observe: func(r pipeline.Request) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, r)
		}})
		if err != nil || rec.Checked != 30 {
			t.Fatalf("reconciled %d rows: %v", rec.Checked, err)
		}
		if len(seen) != 30 {
			t.Errorf("reconciliation observed %d requests, want a lookup for each of the 30 rows", len(seen))
		}
		for _, r := range seen {
			if r.Attempt.Kind != "lookup" || r.Retry || r.Attempt.Outcome != providers.Succeeded {
				t.Errorf("reconciliation observed %+v, want answered lookups", r)
			}
		}
	})
}
