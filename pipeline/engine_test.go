package pipeline

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/simbulk/simbulk/providers"
)

// fakeProvider is an in-memory provider: it accepts every order, completes
// it on the next Check, and fails the orders the test names.
type fakeProvider struct {
	mu       sync.Mutex
	sent     map[string]int // requests per EID
	have     map[string]bool
	failOnce map[string]*providers.Error // first send of these EIDs fails so
	reject   map[string]bool
}

func newFake() *fakeProvider {
	return &fakeProvider{sent: map[string]int{}, have: map[string]bool{}, failOnce: map[string]*providers.Error{}, reject: map[string]bool{}}
}

func (f *fakeProvider) Submit(_ context.Context, orders []providers.Order) []providers.Outcome {
	f.mu.Lock()
	defer f.mu.Unlock()
	outs := make([]providers.Outcome, len(orders))
	for i, o := range orders {
		f.sent[o.EID]++
		if e, ok := f.failOnce[o.EID]; ok {
			delete(f.failOnce, o.EID)
			if e.MaybeApplied {
				f.have[o.EID] = true
			}
			outs[i] = providers.Outcome{Status: providers.Failed, Err: e}
			continue
		}
		if f.reject[o.EID] {
			outs[i] = providers.Outcome{Status: providers.Failed, Err: &providers.Error{Code: "400", Message: "bad eid"}}
			continue
		}
		f.have[o.EID] = true
		outs[i] = providers.Outcome{Status: providers.Accepted, Handle: "h-" + o.EID}
	}
	return outs
}

func (f *fakeProvider) Check(_ context.Context, o providers.Order, handle string) providers.Outcome {
	return providers.Outcome{Status: providers.Succeeded, Result: map[string]string{"handle": handle}}
}

func (f *fakeProvider) Lookup(_ context.Context, o providers.Order) (providers.Subscription, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return providers.Subscription{Found: f.have[o.EID], Active: true}, nil
}

func seedRun(t *testing.T, cp Store, n int) Run {
	t.Helper()
	ctx := context.Background()
	run, err := cp.CreateRun(ctx, "fp", "m.csv", []string{"provider", "eid"})
	if err != nil {
		t.Fatal(err)
	}
	rows := make([]RowRecord, n)
	for i := range rows {
		eid := fmt.Sprintf("E%03d", i)
		rows[i] = RowRecord{RunID: run.ID, Row: i + 2, Provider: "fake", EID: eid, Cells: []string{"fake", eid}, State: Pending}
	}
	if err := cp.AddRows(ctx, rows); err != nil {
		t.Fatal(err)
	}
	return run
}

func TestEngineDrivesEveryRowFinal(t *testing.T) {
	synctest.Test(t, testEngineDrivesEveryRowFinal)
}

func testEngineDrivesEveryRowFinal(t *testing.T) {
	cp, err := openStore(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	run := seedRun(t, cp, 200)
	fake := newFake()
	fake.failOnce["E010"] = &providers.Error{Code: providers.CodeServer, HTTPStatus: 503, Retryable: true}
	fake.failOnce["E011"] = &providers.Error{Code: providers.CodeTimeout, Retryable: true, MaybeApplied: true}
	fake.reject["E012"] = true
	e := &Engine{Checkpoint: cp, Lanes: map[string]*Lane{"fake": {Name: "fake", Client: fake, Concurrency: 8, PollInterval: 5 * time.Millisecond}},
		Backoff: func(int) time.Duration { return time.Millisecond }}
	state, err := e.Run(context.Background(), run)
	if err != nil || state != RunCompleted {
		t.Fatalf("state %s err %v", state, err)
	}
	counts, _ := cp.Counts(context.Background(), run.ID)
	if counts[Succeeded] != 199 || counts[Failed] != 1 {
		t.Errorf("counts %v, want 199 succeeded 1 failed", counts)
	}
	// E010 was refused before taking effect: sent twice. E011 timed out
	// after taking effect: found by lookup, never sent again.
	if fake.sent["E010"] != 2 || fake.sent["E011"] != 1 {
		t.Errorf("sends E010=%d E011=%d, want 2 and 1", fake.sent["E010"], fake.sent["E011"])
	}
	for eid, n := range fake.sent {
		if n > 1 && eid != "E010" {
			t.Errorf("%s sent %d times", eid, n)
		}
	}
}

// keyedFake is a fakeProvider whose requests carry several orders only
// when they share a key (the EID's last digit, odd or even), and which
// records the orders of every Submit.
type keyedFake struct {
	*fakeProvider
	submits [][]string
}

func (k *keyedFake) BatchKey(o providers.Order) string {
	return fmt.Sprint((o.EID[len(o.EID)-1] - '0') % 2)
}

func (k *keyedFake) Submit(ctx context.Context, orders []providers.Order) []providers.Outcome {
	k.mu.Lock()
	eids := make([]string, len(orders))
	for i, o := range orders {
		eids[i] = o.EID
	}
	k.submits = append(k.submits, eids)
	k.mu.Unlock()
	return k.fakeProvider.Submit(ctx, orders)
}

func TestEngineBatchesByKey(t *testing.T) {
	synctest.Test(t, testEngineBatchesByKey)
}

func testEngineBatchesByKey(t *testing.T) {
	cp, err := openStore(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	run := seedRun(t, cp, 45)
	fake := &keyedFake{fakeProvider: newFake()}
	e := &Engine{Checkpoint: cp, Lanes: map[string]*Lane{"fake": {Name: "fake", Client: fake, Concurrency: 4, BatchSize: 10, PollInterval: 5 * time.Millisecond}}}
	if state, err := e.Run(context.Background(), run); err != nil || state != RunCompleted {
		t.Fatalf("state %s err %v", state, err)
	}
	sent := 0
	for _, eids := range fake.submits {
		if len(eids) > 10 {
			t.Errorf("a Submit of %d orders, over the batch size: %v", len(eids), eids)
		}
		for _, eid := range eids {
			if fake.BatchKey(providers.Order{EID: eid}) != fake.BatchKey(providers.Order{EID: eids[0]}) {
				t.Errorf("one Submit mixes keys: %v", eids)
				break
			}
		}
		sent += len(eids)
	}
	// 23 even and 22 odd EIDs in batches of 10: 3 + 3 Submits, no more.
	if sent != 45 || len(fake.submits) != 6 {
		t.Errorf("%d orders in %d Submits (%v), want 45 in 6", sent, len(fake.submits), fake.submits)
	}
}

// TestEditedManifestLooksUpRowsInDoubt: a run is killed with a row in
// flight; the operator edits the manifest and runs it again, which makes a
// new run. The repeated row may already be at the provider, so the new run
// looks it up instead of sending it.
func TestEditedManifestLooksUpRowsInDoubt(t *testing.T) {
	synctest.Test(t, testEditedManifestLooksUpRowsInDoubt)
}

func testEditedManifestLooksUpRowsInDoubt(t *testing.T) {
	ctx := context.Background()
	cp, err := openStore(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	first := seedRun(t, cp, 3) // E000 E001 E002 at rows 2-4
	w, err := cp.Join(ctx, first.ID, NewWorker(), time.Minute, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cp.MarkInFlight(ctx, first.ID, w.ID, []int{2}); err != nil {
		t.Fatal(err)
	}
	second, err := cp.CreateRun(ctx, "fp-edited", "m.csv", []string{"provider", "eid"})
	if err != nil {
		t.Fatal(err)
	}
	var rows []RowRecord
	for i, eid := range []string{"E000", "E001"} {
		rows = append(rows, RowRecord{RunID: second.ID, Row: i + 2, Provider: "fake", EID: eid, Cells: []string{"fake", eid}, State: Pending})
	}
	if err := cp.AddRows(ctx, rows); err != nil {
		t.Fatal(err)
	}
	mustLookup := map[string]bool{}
	if err := cp.RowsIn(ctx, second.ID, "", func(r RowRecord) error { mustLookup[r.EID] = r.MustLookup; return nil }); err != nil {
		t.Fatal(err)
	}
	if !mustLookup["E000"] || mustLookup["E001"] {
		t.Fatalf("must_lookup %v: want E000 (in flight in the first run) only", mustLookup)
	}

	fake := newFake()
	fake.have["E000"] = true // the killed run's request had reached the provider
	e := &Engine{Checkpoint: cp, Lanes: map[string]*Lane{"fake": {Name: "fake", Client: fake, PollInterval: 5 * time.Millisecond}}}
	if state, err := e.Run(ctx, second); err != nil || state != RunCompleted {
		t.Fatalf("state %s err %v", state, err)
	}
	if fake.sent["E000"] != 0 || fake.sent["E001"] != 1 {
		t.Errorf("sent E000 %d times and E001 %d times, want 0 and 1", fake.sent["E000"], fake.sent["E001"])
	}
	if c, _ := cp.Counts(ctx, second.ID); c[Succeeded] != 2 {
		t.Errorf("counts %v, want both rows succeeded", c)
	}
}

// TestRunLeavesCallersStructsAlone: Run and Reconcile fill their defaults
// (logger, backoff, clock, tries, every lane's concurrency, batch size,
// attempts, poll interval, completion timeout) into copies; the caller's
// Engine, Reconciler and Lanes are as they were given. (In a synctest
// bubble: the default one-second poll passes on its fake clock.)
func TestRunLeavesCallersStructsAlone(t *testing.T) {
	synctest.Test(t, testRunLeavesCallersStructsAlone)
}

func testRunLeavesCallersStructsAlone(t *testing.T) {
	ctx := context.Background()
	cp, err := openStore(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	run := seedRun(t, cp, 5)
	lane := &Lane{Name: "fake", Client: newFake()}
	lanes := map[string]*Lane{"fake": lane}
	e := &Engine{Checkpoint: cp, Lanes: lanes}
	engineBefore, laneBefore := *e, *lane
	if state, err := e.Run(ctx, run); err != nil || state != RunCompleted {
		t.Fatalf("state %s err %v", state, err)
	}
	if !reflect.DeepEqual(*e, engineBefore) {
		t.Errorf("Run changed its Engine:\n%+v\nwas\n%+v", *e, engineBefore)
	}
	if *lane != laneBefore || len(lanes) != 1 || lanes["fake"] != lane {
		t.Errorf("Run changed its Lane: %+v, was %+v", *lane, laneBefore)
	}

	rec := &Reconciler{Checkpoint: cp, Lanes: lanes}
	recBefore := *rec
	if _, err := rec.Reconcile(ctx, run); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*rec, recBefore) {
		t.Errorf("Reconcile changed its Reconciler:\n%+v\nwas\n%+v", *rec, recBefore)
	}
	if *lane != laneBefore {
		t.Errorf("Reconcile changed its Lane: %+v, was %+v", *lane, laneBefore)
	}
}

// dueFake accepts every order, answers its first check "not yet" and its
// second "done", and notes when each was accepted and checked.
type dueFake struct {
	*fakeProvider
	accepted map[string]time.Time
	checked  map[string][]time.Time
}

func (d *dueFake) Submit(ctx context.Context, orders []providers.Order) []providers.Outcome {
	outs := d.fakeProvider.Submit(ctx, orders)
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, o := range orders {
		if outs[i].Status == providers.Accepted {
			d.accepted[o.EID] = time.Now()
		}
	}
	return outs
}

func (d *dueFake) Check(_ context.Context, o providers.Order, handle string) providers.Outcome {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.checked[o.EID] = append(d.checked[o.EID], time.Now())
	if len(d.checked[o.EID]) == 1 {
		return providers.Outcome{Status: providers.Accepted, Handle: handle}
	}
	return providers.Outcome{Status: providers.Succeeded}
}

// Accepted rows are checked when their completion is due, one
// PollInterval after their own acceptance and again one after each "not
// yet", whenever they were accepted: not at the next sweep of them all.
// (Virtual time: synctest.)
func TestAcceptedRowsCheckedWhenDue(t *testing.T) {
	synctest.Test(t, testAcceptedRowsCheckedWhenDue)
}

func testAcceptedRowsCheckedWhenDue(t *testing.T) {
	cp, err := openStore(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	run := seedRun(t, cp, 40)
	fake := &dueFake{fakeProvider: newFake(), accepted: map[string]time.Time{}, checked: map[string][]time.Time{}}
	// A few rows are accepted later, after a retry.
	for _, eid := range []string{"E003", "E017", "E030"} {
		fake.failOnce[eid] = &providers.Error{Code: providers.CodeServer, HTTPStatus: 503, Retryable: true}
	}
	const poll = time.Minute
	e := &Engine{Checkpoint: cp, Lanes: map[string]*Lane{"fake": {Name: "fake", Client: fake, Concurrency: 4, PollInterval: poll}},
		Backoff: func(int) time.Duration { return 7 * time.Second }}
	state, err := e.Run(context.Background(), run)
	if err != nil || state != RunCompleted {
		t.Fatalf("state %s err %v", state, err)
	}
	// Each look comes a PollInterval after the last answer, give or take
	// the time its outcome took to be committed.
	within := func(from, at time.Time) bool { d := at.Sub(from); return d >= poll && d < poll+time.Second }
	for eid, at := range fake.accepted {
		looks := fake.checked[eid]
		if len(looks) != 2 || !within(at, looks[0]) || !within(looks[0], looks[1]) {
			var when []string
			for _, l := range looks {
				when = append(when, l.Format(time.TimeOnly))
			}
			t.Errorf("%s accepted at %s, checked at %v: want a look %s after acceptance and another %[4]s after it",
				eid, at.Format(time.TimeOnly), when, poll)
		}
	}
	if len(fake.accepted) != 40 {
		t.Errorf("%d rows accepted, want 40", len(fake.accepted))
	}
}
