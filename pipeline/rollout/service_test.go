package rollout_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/pipeline/rollout"
	"github.com/simbulk/simbulk/pipeline/sqlite"
	"github.com/simbulk/simbulk/providers"
	_ "github.com/simbulk/simbulk/providers/all" // the providers the sample manifests name
)

// fake is an in-memory provider for every lane: it accepts each order,
// completes it on the first Check, and counts the requests per device.
type fake struct {
	mu   sync.Mutex
	sent map[string]int
	have map[string]bool
	// rejectOnce refuses the first send of these devices for good (a
	// non-retryable failure); refuse refuses simbulk's credentials for
	// this provider; afterSubmit is called after each Submit.
	rejectOnce  map[string]bool
	refuse      string
	down        string // this provider answers 503 ...
	downFor     int    // ... to this many requests (-1: all)
	afterSubmit func(n int)
	submits     int
}

func newFake() *fake {
	return &fake{sent: map[string]int{}, have: map[string]bool{}, rejectOnce: map[string]bool{}}
}

func device(o providers.Order) string { return o.EID + "/" + o.ICCID }

// client is the fake as one provider's client.
type client struct {
	*fake
	provider string
}

func (c client) Submit(_ context.Context, orders []providers.Order) []providers.Outcome {
	c.mu.Lock()
	outs := make([]providers.Outcome, len(orders))
	for i, o := range orders {
		if c.refuse == c.provider {
			outs[i] = providers.Outcome{Status: providers.Failed, Err: &providers.Error{Code: providers.CodeCredentials, Message: "invalid_client"}}
			continue
		}
		if c.down == c.provider && c.downFor != 0 {
			c.downFor--
			outs[i] = providers.Outcome{Status: providers.Failed, Err: &providers.Error{Code: providers.CodeServer, HTTPStatus: 503, Retryable: true}}
			continue
		}
		d := device(o)
		c.sent[d]++
		if c.rejectOnce[d] {
			delete(c.rejectOnce, d)
			outs[i] = providers.Outcome{Status: providers.Failed, Err: &providers.Error{Code: "400", Message: "refused"}}
			continue
		}
		c.have[d] = true
		outs[i] = providers.Outcome{Status: providers.Accepted, Handle: "h-" + d}
	}
	c.submits++
	n, after := c.submits, c.afterSubmit
	c.mu.Unlock()
	if after != nil {
		after(n)
	}
	return outs
}

func (c client) Check(context.Context, providers.Order, string) providers.Outcome {
	return providers.Outcome{Status: providers.Succeeded}
}

func (c client) Lookup(_ context.Context, o providers.Order) (providers.Subscription, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return providers.Subscription{Found: c.have[device(o)], Active: true}, nil
}

// setup is a service on a fresh SQLite checkpoint whose lanes all use f,
// and a copy of a sample manifest.
func setup(t *testing.T, f *fake, sample string) (*rollout.Service, string) {
	t.Helper()
	dir := t.TempDir()
	cp, err := sqlite.Open(filepath.Join(dir, "simbulk.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cp.Close() })
	data, err := os.ReadFile(filepath.Join("..", "..", "samples", sample))
	if err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(dir, sample)
	if err := os.WriteFile(manifest, data, 0o600); err != nil {
		t.Fatal(err)
	}
	svc := &rollout.Service{
		Store: cp,
		Lanes: func(_ context.Context, used []string) (map[string]*pipeline.Lane, func(), error) {
			lanes := map[string]*pipeline.Lane{}
			for _, p := range used {
				lanes[p] = &pipeline.Lane{Name: p, Client: client{f, p}, Concurrency: 4, PollInterval: 10 * time.Millisecond}
			}
			return lanes, func() {}, nil
		},
	}
	return svc, manifest
}

// recorder collects a rollout's events; Opened, which comes first, apart.
type recorder struct {
	opened []rollout.Opened
	events []rollout.Event
}

func (r *recorder) record(e rollout.Event) {
	if o, ok := e.(rollout.Opened); ok && len(r.events) == 0 {
		r.opened = append(r.opened, o)
		return
	}
	r.events = append(r.events, e)
}

func (r *recorder) opts(dir string) rollout.Options {
	return rollout.Options{Events: r.record, ProgressEvery: 20 * time.Millisecond,
		Grace: time.Second, WriteReports: dir != "", ReportsDir: dir}
}

// check asserts the stream's order (Opened once and first, naming the
// run; Loaded at most once and next, Started before any Progress,
// Finished last, with the result's counts) and that progress never goes
// back.
func (r *recorder) check(t *testing.T, res rollout.Result, wantLoaded bool) {
	t.Helper()
	if len(r.opened) != 1 || r.opened[0].Run.ID != res.Run.ID {
		t.Errorf("opened %+v, want once, run %s", r.opened, res.Run.ID)
	}
	if len(r.events) == 0 {
		t.Fatal("no events")
	}
	if _, ok := r.events[0].(rollout.Loaded); ok != wantLoaded {
		t.Errorf("first event %T, loaded wanted %v", r.events[0], wantLoaded)
	}
	fin, ok := r.events[len(r.events)-1].(rollout.Finished)
	if !ok {
		t.Fatalf("last event %T, want Finished", r.events[len(r.events)-1])
	}
	if fin.State != res.State || fin.RunID != res.Run.ID || !equalCounts(fin.Counts, res.Counts) {
		t.Errorf("Finished %+v, result %s %v", fin, res.State, res.Counts)
	}
	started, lastDone := false, 0
	for i, e := range r.events {
		switch e := e.(type) {
		case rollout.Loaded:
			if i != 0 {
				t.Errorf("Loaded at %d", i)
			}
		case rollout.Started:
			started = true
		case rollout.Progress:
			if !started || e.Done < lastDone || e.Done > e.Total {
				t.Errorf("progress %d/%d after %d (started %v)", e.Done, e.Total, lastDone, started)
			}
			lastDone = e.Done
		case rollout.Opened:
			t.Errorf("Opened again at %d", i)
		case rollout.Finished:
			if i != len(r.events)-1 {
				t.Errorf("Finished at %d of %d", i, len(r.events))
			}
		}
	}
}

func equalCounts(a, b pipeline.Counts) bool {
	for _, s := range pipeline.States {
		if a[s] != b[s] {
			return false
		}
	}
	return true
}

// noDuplicates fails for a device sent more than want[device] times
// (default once).
func noDuplicates(t *testing.T, f *fake, want map[string]int) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for d, n := range f.sent {
		w, ok := want[d]
		if !ok {
			w = 1
		}
		if n != w {
			t.Errorf("%s sent %d times, want %d", d, n, w)
		}
	}
}

func TestStartDrivesEveryRowOnceAndStreamsEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		svc, manifest := setup(t, f, "mixed.csv")
		var rec recorder
		out := t.TempDir()
		res, err := svc.Start(context.Background(), manifest, rec.opts(out))
		if err != nil {
			t.Fatal(err)
		}
		if res.State != pipeline.RunCompleted || res.Counts[pipeline.Succeeded] != 30 || res.Failed() || res.AlreadyComplete {
			t.Fatalf("result %s %v already %v", res.State, res.Counts, res.AlreadyComplete)
		}
		rec.check(t, res, true)
		if l := rec.events[0].(rollout.Loaded); l.Rows != 30 || l.Valid != 30 || l.Invalid != 0 {
			t.Errorf("loaded %+v", l)
		}
		st := rec.events[1].(rollout.Started)
		if len(st.Providers) != 3 || st.Run.ID != res.Run.ID {
			t.Errorf("started %+v", st)
		}
		if len(f.sent) != 30 {
			t.Errorf("%d devices sent, want 30", len(f.sent))
		}
		noDuplicates(t, f, nil)
		if res.ReportsErr != nil || res.Reports.Dir != filepath.Join(out, res.Run.ID) {
			t.Errorf("reports %+v, %v", res.Reports, res.ReportsErr)
		}
		if _, err := os.Stat(filepath.Join(res.Reports.Dir, "summary.json")); err != nil {
			t.Error(err)
		}

		// The same manifest again: its run is complete, nothing is sent.
		var again recorder
		res2, err := svc.Start(context.Background(), manifest, again.opts(""))
		if err != nil {
			t.Fatal(err)
		}
		if !res2.AlreadyComplete || res2.Run.ID != res.Run.ID || res2.State != pipeline.RunCompleted {
			t.Errorf("second start %+v", res2)
		}
		if len(again.events) != 1 {
			t.Errorf("second start events %#v, want only Finished", again.events)
		}
		again.check(t, res2, false)
		noDuplicates(t, f, nil)

		run, counts, err := svc.Status(context.Background(), res.Run.ID[:10])
		if err != nil || run.ID != res.Run.ID || !equalCounts(counts, res.Counts) {
			t.Errorf("status %s %v %v", run.ID, counts, err)
		}
	})
}

func TestInvalidRowsAreCountedNotSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		svc, manifest := setup(t, f, "broken.csv")
		var rec recorder
		res, err := svc.Start(context.Background(), manifest, rec.opts(""))
		if err != nil {
			t.Fatal(err)
		}
		l := rec.events[0].(rollout.Loaded)
		if l.Invalid == 0 || l.Valid+l.Invalid != l.Rows {
			t.Fatalf("loaded %+v", l)
		}
		if res.Counts[pipeline.Invalid] != l.Invalid || res.Counts[pipeline.Succeeded] != l.Valid || !res.Failed() {
			t.Errorf("counts %v, loaded %+v", res.Counts, l)
		}
		if len(f.sent) != l.Valid {
			t.Errorf("%d devices sent, want the %d valid", len(f.sent), l.Valid)
		}
		rec.check(t, res, true)
	})
}

func TestInterruptedStartResumesWithoutResending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		svc, manifest := setup(t, f, "mixed.csv")
		ctx, cancel := context.WithCancel(context.Background())
		f.afterSubmit = func(n int) {
			if n == 5 {
				cancel()
			}
		}
		var rec recorder
		res, err := svc.Start(ctx, manifest, rec.opts(""))
		if err != nil {
			t.Fatal(err)
		}
		if res.State != pipeline.RunInterrupted || !res.Interrupted || res.Counts[pipeline.Succeeded] == 30 {
			t.Fatalf("result %s interrupted %v %v", res.State, res.Interrupted, res.Counts)
		}
		rec.check(t, res, true)
		f.afterSubmit = nil

		var resumed recorder
		res2, err := svc.Resume(context.Background(), res.Run.ID, resumed.opts(""))
		if err != nil {
			t.Fatal(err)
		}
		if res2.State != pipeline.RunCompleted || res2.Counts[pipeline.Succeeded] != 30 || res2.Run.ID != res.Run.ID {
			t.Fatalf("resumed %s %v", res2.State, res2.Counts)
		}
		resumed.check(t, res2, false)
		if len(f.sent) != 30 {
			t.Errorf("%d devices sent, want 30", len(f.sent))
		}
		noDuplicates(t, f, nil)
	})
}

func TestRetryFailedRedrivesOnlyTheFailedRows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		svc, manifest := setup(t, f, "asavie.csv")
		f.rejectOnce["/8944306091635171524"] = true
		f.rejectOnce["/8944303723225765454"] = true
		var rec recorder
		opts := rec.opts("")
		opts.Provider = "asavie" // the manifest has no provider column
		res, err := svc.Start(context.Background(), manifest, opts)
		if err != nil {
			t.Fatal(err)
		}
		if res.State != pipeline.RunCompleted || res.Counts[pipeline.Failed] != 2 || !res.Failed() {
			t.Fatalf("result %s %v", res.State, res.Counts)
		}
		// Not retryable: only --all takes them.
		res2, err := svc.RetryFailed(context.Background(), res.Run.ID, false, rollout.Options{})
		if err != nil || res2.Redriven != 0 || res2.Counts[pipeline.Failed] != 2 {
			t.Fatalf("retry-failed: redriven %d %v %v", res2.Redriven, res2.Counts, err)
		}
		var retry recorder
		res3, err := svc.RetryFailed(context.Background(), res.Run.ID, true, retry.opts(""))
		if err != nil {
			t.Fatal(err)
		}
		if res3.Redriven != 2 || res3.State != pipeline.RunCompleted || res3.Counts[pipeline.Failed] != 0 || res3.Failed() {
			t.Fatalf("retry-failed --all: redriven %d %s %v", res3.Redriven, res3.State, res3.Counts)
		}
		retry.check(t, res3, false)
		noDuplicates(t, f, map[string]int{"/8944306091635171524": 2, "/8944303723225765454": 2})
	})
}

func TestCredentialsRefusedStopsThatProvider(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		f.refuse = "asavie"
		svc, manifest := setup(t, f, "mixed.csv")
		var rec recorder
		res, err := svc.Start(context.Background(), manifest, rec.opts(""))
		var refused *pipeline.CredentialsError
		if !errors.As(err, &refused) || refused.Provider != "asavie" {
			t.Fatalf("err %v, want asavie's credentials refused", err)
		}
		if res.State != pipeline.RunInterrupted || res.Counts[pipeline.Pending] == 0 || res.Counts[pipeline.Succeeded] == 0 {
			t.Errorf("result %s %v: asavie's rows pending, the others done", res.State, res.Counts)
		}
		rec.check(t, res, true)
		notices := 0
		for _, e := range rec.events {
			if n, ok := e.(rollout.ProviderNotice); ok && n.Kind == pipeline.NoticeCredentialsRefused && n.Provider == "asavie" {
				notices++
			}
		}
		if notices != 1 {
			t.Errorf("%d credentials notices, want 1", notices)
		}

		// Fixed: the same run resumes, and nothing is sent twice.
		f.refuse = ""
		res2, err := svc.Start(context.Background(), manifest, rollout.Options{})
		if err != nil || res2.Run.ID != res.Run.ID || res2.State != pipeline.RunCompleted || res2.Counts[pipeline.Succeeded] != 30 {
			t.Fatalf("after the fix: %s %s %v %v", res2.Run.ID, res2.State, res2.Counts, err)
		}
		noDuplicates(t, f, nil)
	})
}

func TestPlanCountsWithoutSending(t *testing.T) {
	f := newFake()
	svc, manifest := setup(t, f, "mixed.csv")
	svc.Planner = func(p string) (int, func(providers.Order) string, float64, error) {
		if p == "thingspace" {
			return 100, nil, 2, errors.New("missing key")
		}
		return 1, nil, 0, nil
	}
	pl, err := svc.Plan(context.Background(), manifest, rollout.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pl.Rows != 30 || pl.Valid != 30 || len(pl.Providers) != 3 {
		t.Fatalf("plan %+v", pl)
	}
	total := 0
	for _, p := range pl.Providers {
		total += p.Rows
		if p.Provider == "thingspace" && (p.Requests != 1 || p.Rate != 2 || p.NotConfigured == nil || p.MinDuration != 500*time.Millisecond) {
			t.Errorf("thingspace %+v", p)
		}
		if p.Provider != "thingspace" && p.Requests != p.Rows {
			t.Errorf("%s %+v", p.Provider, p)
		}
	}
	if total != 30 || len(f.sent) != 0 {
		t.Errorf("%d rows planned, %d sent", total, len(f.sent))
	}
	runs, _ := svc.Store.Runs(context.Background())
	if len(runs) != 0 {
		t.Errorf("a dry run recorded %d runs", len(runs))
	}
}

func TestReconcileFindsDrift(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		svc, manifest := setup(t, f, "asavie.csv")
		res, err := svc.Start(context.Background(), manifest, rollout.Options{Provider: "asavie"})
		if err != nil || res.Counts[pipeline.Succeeded] != 10 {
			t.Fatalf("start %v %v", res.Counts, err)
		}
		run, err := svc.RunOfManifest(context.Background(), manifest)
		if err != nil || run.ID != res.Run.ID {
			t.Fatalf("run of manifest %s %v", run.ID, err)
		}
		f.mu.Lock()
		delete(f.have, "/8944306091635171524") // gone at the provider
		f.mu.Unlock()
		out := t.TempDir()
		rec, err := svc.Reconcile(context.Background(), run.ID, rollout.ReconcileOptions{WriteReports: true, ReportsDir: out})
		if err != nil {
			t.Fatal(err)
		}
		if rec.Checked != 10 || rec.InSync != 9 || len(rec.Drift) != 1 || rec.Drift[0].Kind != pipeline.DriftMissing {
			t.Errorf("reconciliation %+v", rec.Reconciliation)
		}
		if _, err := os.Stat(filepath.Join(out, run.ID, "drift.csv")); err != nil {
			t.Error(err)
		}
		noDuplicates(t, f, nil)
	})
}

func TestLockHeldWhileWorking(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		svc, manifest := setup(t, f, "asavie.csv")
		held := false
		svc.Lock = func(context.Context) (func(), error) {
			if held {
				t.Error("lock taken twice")
			}
			held = true
			return func() { held = false }, nil
		}
		f.afterSubmit = func(int) {
			if !held {
				t.Error("sent without the lock")
			}
		}
		if _, err := svc.Start(context.Background(), manifest, rollout.Options{Provider: "asavie"}); err != nil {
			t.Fatal(err)
		}
		if held {
			t.Error("lock still held")
		}
		busy := errors.New("busy")
		svc.Lock = func(context.Context) (func(), error) { return nil, busy }
		if _, err := svc.Resume(context.Background(), "x", rollout.Options{}); !errors.Is(err, busy) {
			t.Errorf("resume without the lock: %v", err)
		}
	})
}

func TestProviderDownAndUpAreEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		f.down, f.downFor = "iotconnect", 8
		svc, manifest := setup(t, f, "mixed.csv")
		var rec recorder
		res, err := svc.Start(context.Background(), manifest, rec.opts(""))
		if err != nil {
			t.Fatal(err)
		}
		if res.State != pipeline.RunCompleted || res.Counts[pipeline.Succeeded] != 30 {
			t.Fatalf("result %s %v", res.State, res.Counts)
		}
		rec.check(t, res, true)
		var kinds []pipeline.NoticeKind
		for _, e := range rec.events {
			if n, ok := e.(rollout.ProviderNotice); ok {
				if n.Provider != "iotconnect" {
					t.Errorf("notice about %s", n.Provider)
				}
				kinds = append(kinds, n.Kind)
			}
		}
		if len(kinds) < 2 || kinds[0] != pipeline.NoticeProviderDown || kinds[len(kinds)-1] != pipeline.NoticeProviderUp {
			t.Errorf("notices %v, want down ... up", kinds)
		}
		noDuplicates(t, f, nil)
	})
}

func TestProviderDownTooLongStopsTheRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		f.down, f.downFor = "iotconnect", -1
		svc, manifest := setup(t, f, "mixed.csv")
		var rec recorder
		opts := rec.opts(t.TempDir())
		opts.MaxOutage = 2 * time.Minute
		res, err := svc.Start(context.Background(), manifest, opts)
		if !errors.Is(err, pipeline.ErrProviderDown) {
			t.Fatalf("err %v, want ErrProviderDown", err)
		}
		if res.State != pipeline.RunInterrupted || res.Counts[pipeline.Pending] == 0 || res.ReportsErr != nil || res.Reports.Dir == "" {
			t.Errorf("result %s %v reports %v", res.State, res.Counts, res.ReportsErr)
		}
		rec.check(t, res, true)

		f.downFor = 0 // back
		res2, err := svc.Start(context.Background(), manifest, rollout.Options{})
		if err != nil || res2.Run.ID != res.Run.ID || res2.Counts[pipeline.Succeeded] != 30 {
			t.Fatalf("resumed %s %v %v", res2.Run.ID, res2.Counts, err)
		}
		noDuplicates(t, f, nil)
	})
}
