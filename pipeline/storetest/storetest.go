// Package storetest is the contract of pipeline.Store as tests: every
// checkpoint implementation runs Run from its own tests and must pass it
// (pipeline/sqlite and pipeline/postgres do, in store_test.go). It checks
// what the engine, the loader, the reconciler, the commands and the
// reports rely on, leases among workers included, in the store's own
// terms, without knowing how an implementation keeps it.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/providers"
)

// Stores opens the stores the suite needs.
type Stores struct {
	// New returns a new, empty store, closed when the test ends.
	New func(t *testing.T) pipeline.Store
	// ReadOnly closes s and opens what it holds again read-only, closed
	// when the test ends. Nil skips the read-only tests.
	ReadOnly func(t *testing.T, s pipeline.Store) pipeline.Store
}

// Run runs the contract's tests against stores opened by s.
func Run(t *testing.T, s Stores) {
	tests := []struct {
		name string
		fn   func(*testing.T, Stores)
	}{
		{"Runs", testRuns},
		{"RunStateAndLoad", testRunStateAndLoad},
		{"RunCountersAddUp", testRunCounters},
		{"AddRows", testAddRows},
		{"AddRowsAlreadyProvisioned", testAlreadyProvisioned},
		{"AddRowsInDoubtElsewhere", testInDoubtElsewhere},
		{"Claim", testClaim},
		{"InFlightAndReclaim", testInFlightAndReclaim},
		{"Apply", testApply},
		{"Leases", testLeases},
		{"FollowAndWithdraw", testFollowAndWithdraw},
		{"LeaseExpiry", testLeaseExpiry},
		{"ConcurrentClaims", testConcurrentClaims},
		{"ProviderPauses", testProviderPauses},
		{"Redrive", testRedrive},
		{"CountsAndProviders", testCountsAndProviders},
		{"Reconciliation", testReconciliation},
		{"ReportView", testReportView},
		{"ReadOnly", testReadOnly},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, s) })
	}
}

var ctx = context.Background()

// t0 is a whole second, so times survive any store's precision.
var t0 = time.Date(2026, 11, 24, 11, 0, 0, 0, time.UTC)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newRun creates a run of n pending rows: rows 2..n+1, provider "p1" for
// even rows and "p2" for odd ones, EIDs E<row>.
func newRun(t *testing.T, s pipeline.Store, fingerprint string, n int) pipeline.Run {
	t.Helper()
	run, err := s.CreateRun(ctx, fingerprint, "m.csv", []string{"provider", "eid"})
	must(t, err)
	rows := make([]pipeline.RowRecord, n)
	for i := range rows {
		row := i + 2
		p := "p1"
		if row%2 == 1 {
			p = "p2"
		}
		rows[i] = pipeline.RowRecord{RunID: run.ID, Row: row, Provider: p, EID: fmt.Sprintf("E%d", row),
			Cells: []string{p, fmt.Sprintf("E%d", row)}, State: pipeline.Pending}
	}
	must(t, s.AddRows(ctx, rows))
	return run
}

// rowsOf reads a run's rows by row number.
func rowsOf(t *testing.T, s pipeline.RunStore, runID string) map[int]pipeline.RowRecord {
	t.Helper()
	out := map[int]pipeline.RowRecord{}
	must(t, s.RowsIn(ctx, runID, "", func(r pipeline.RowRecord) error { out[r.Row] = r; return nil }))
	return out
}

func rowNumbers(rs []pipeline.RowRecord) []int {
	out := make([]int, len(rs))
	for i, r := range rs {
		out[i] = r.Row
	}
	return out
}

// worker is the suite's own worker: the one that marks rows in flight
// and applies transitions where a test is not about leases.
const worker = "storetest-worker"

// markInFlight marks rows in flight as worker, which joins the run for
// it, and checks that every one of them was marked.
func markInFlight(t *testing.T, s pipeline.EngineStore, runID string, rows []int) {
	t.Helper()
	_, err := s.Join(ctx, runID, pipeline.Worker{ID: worker}, time.Hour, false)
	must(t, err)
	marked, err := s.MarkInFlight(ctx, runID, worker, rows)
	must(t, err)
	if !slices.Equal(marked, rows) {
		t.Fatalf("MarkInFlight(%v) marked %v", rows, marked)
	}
}

func testRuns(t *testing.T, st Stores) {
	s := st.New(t)
	a, err := s.CreateRun(ctx, "fp-a", "a.csv", []string{"provider", "EID"}, pipeline.RunOptions{Provider: "asavie", Sheet: "S"})
	must(t, err)
	if a.ID == "" || a.State != pipeline.RunRunning || a.CreatedAt.IsZero() {
		t.Fatalf("created run %+v: want an id, running, a creation time", a)
	}
	time.Sleep(2 * time.Millisecond) // creation times apart: Runs is newest first
	b, err := s.CreateRun(ctx, "fp-b", "b.csv", nil)
	must(t, err)
	if a.ID == b.ID {
		t.Fatalf("two runs share id %s", a.ID)
	}

	got, err := s.Run(ctx, a.ID)
	must(t, err)
	if got.ID != a.ID || got.Fingerprint != "fp-a" || got.Manifest != "a.csv" || !slices.Equal(got.Header, []string{"provider", "EID"}) ||
		got.Options != (pipeline.RunOptions{Provider: "asavie", Sheet: "S"}) || got.State != pipeline.RunRunning || got.Loaded {
		t.Errorf("Run(%s) = %+v", a.ID, got)
	}
	// A unique prefix finds the run; the full id wins over a prefix.
	if got, err := s.Run(ctx, a.ID[:len(a.ID)-1]); err != nil || got.ID != a.ID {
		t.Errorf("unique prefix of %s: %s %v", a.ID, got.ID, err)
	}
	if _, err := s.Run(ctx, "no-such-run"); !errors.Is(err, pipeline.ErrNoRun) {
		t.Errorf("unknown run: %v, want ErrNoRun", err)
	}
	if _, err := s.Run(ctx, ""); err == nil || errors.Is(err, pipeline.ErrNoRun) {
		t.Errorf("prefix of both runs: %v, want an ambiguity error", err)
	}

	runs, err := s.Runs(ctx)
	must(t, err)
	if len(runs) != 2 || runs[0].ID != b.ID || runs[1].ID != a.ID {
		t.Errorf("Runs = %v, want b then a", runs)
	}

	if r, ok, err := s.UnfinishedRun(ctx, "fp-a"); err != nil || !ok || r.ID != a.ID {
		t.Errorf("UnfinishedRun(fp-a) = %v %v %v", r.ID, ok, err)
	}
	if _, ok, err := s.UnfinishedRun(ctx, "fp-none"); err != nil || ok {
		t.Errorf("UnfinishedRun(fp-none) = %v %v, want none", ok, err)
	}
	must(t, s.SetRunState(ctx, a.ID, pipeline.RunCompleted))
	if _, ok, err := s.UnfinishedRun(ctx, "fp-a"); err != nil || ok {
		t.Errorf("UnfinishedRun of a completed run = %v %v, want none", ok, err)
	}
	if r, ok, err := s.LatestRun(ctx, "fp-a"); err != nil || !ok || r.ID != a.ID || r.State != pipeline.RunCompleted {
		t.Errorf("LatestRun(fp-a) = %+v %v %v", r, ok, err)
	}
	if _, ok, err := s.LatestRun(ctx, "fp-none"); err != nil || ok {
		t.Errorf("LatestRun(fp-none) = %v %v, want none", ok, err)
	}
}

func testRunStateAndLoad(t *testing.T, st Stores) {
	s := st.New(t)
	run := newRun(t, s, "fp", 3)
	must(t, s.SetRunState(ctx, run.ID, pipeline.RunInterrupted))
	r, err := s.Run(ctx, run.ID)
	must(t, err)
	if r.State != pipeline.RunInterrupted || !r.FinishedAt.IsZero() {
		t.Errorf("interrupted run %+v: want no finish time", r)
	}
	// A load cut short is discarded and done again.
	must(t, s.DiscardRows(ctx, run.ID))
	if c, err := s.Counts(ctx, run.ID); err != nil || c.Total() != 0 {
		t.Errorf("after DiscardRows: %v %v, want no rows", c, err)
	}
	run2 := newRun(t, s, "fp2", 3)
	must(t, s.MarkLoaded(ctx, run2.ID))
	if r, _ := s.Run(ctx, run2.ID); !r.Loaded {
		t.Error("MarkLoaded: run not loaded")
	}
	if err := s.DiscardRows(ctx, run2.ID); err == nil {
		t.Error("DiscardRows of a loaded run succeeded; its rows must be kept")
	}
	if c, _ := s.Counts(ctx, run2.ID); c.Total() != 3 {
		t.Errorf("loaded run has %d rows, want 3", c.Total())
	}
	must(t, s.SetRunState(ctx, run2.ID, pipeline.RunCompleted))
	if r, _ := s.Run(ctx, run2.ID); r.State != pipeline.RunCompleted || r.FinishedAt.IsZero() {
		t.Errorf("completed run %+v: want a finish time", r)
	}
}

// testRunCounters: each process that works on a run adds what it saw; the
// run reports the sums, zeros left out.
func testRunCounters(t *testing.T, st Stores) {
	s := st.New(t)
	run := newRun(t, s, "fp", 1)
	for _, n := range []map[string]int64{{"callback_rejected_bad_path": 3, "callback_rejected_too_large": 0}, {"callback_rejected_bad_path": 4, "x": 1}} {
		must(t, s.AddRunCounters(ctx, run.ID, n))
	}
	got, err := s.Run(ctx, run.ID)
	must(t, err)
	if len(got.Counters) != 2 || got.Counters["callback_rejected_bad_path"] != 7 || got.Counters["x"] != 1 {
		t.Errorf("counters %v, want bad_path 7 and x 1 only", got.Counters)
	}
}

func testAddRows(t *testing.T, st Stores) {
	s := st.New(t)
	run, err := s.CreateRun(ctx, "fp", "m.csv", []string{"provider", "eid"})
	must(t, err)
	want := []pipeline.RowRecord{
		{RunID: run.ID, Row: 2, Provider: "p1", EID: "E2", ICCID: "I2", CLI: "C2", IMEI: "M2", Fields: map[string]string{"plan": "x"},
			Cells: []string{"p1", "E2", "extra"}, State: pipeline.Pending},
		{RunID: run.ID, Row: 3, Provider: "", Cells: []string{"", "bad"}, State: pipeline.Invalid, ErrorCode: "missing_provider", ErrorMessage: "provider: required"},
	}
	must(t, s.AddRows(ctx, want))
	must(t, s.AddRows(ctx, nil))
	var got []pipeline.RowRecord
	must(t, s.RowsIn(ctx, run.ID, "", func(r pipeline.RowRecord) error { got = append(got, r); return nil }))
	if len(got) != 2 {
		t.Fatalf("RowsIn: %d rows, want 2", len(got))
	}
	g := got[0]
	if g.RunID != run.ID || g.Row != 2 || g.Provider != "p1" || g.EID != "E2" || g.ICCID != "I2" || g.CLI != "C2" || g.IMEI != "M2" ||
		g.Fields["plan"] != "x" || !slices.Equal(g.Cells, want[0].Cells) || g.State != pipeline.Pending || g.Attempts != 0 ||
		g.MustLookup || !g.NextAttemptAt.IsZero() || !g.AcceptedAt.IsZero() || len(g.Result) != 0 {
		t.Errorf("row 2 read back as %+v", g)
	}
	if g := got[1]; g.State != pipeline.Invalid || g.ErrorCode != "missing_provider" || g.ErrorMessage != "provider: required" {
		t.Errorf("row 3 read back as %+v", g)
	}
	var invalid []int
	must(t, s.RowsIn(ctx, run.ID, pipeline.Invalid, func(r pipeline.RowRecord) error { invalid = append(invalid, r.Row); return nil }))
	if !slices.Equal(invalid, []int{3}) {
		t.Errorf("RowsIn(invalid) = %v, want [3]", invalid)
	}
	if err := s.AddRows(ctx, want[:1]); err == nil {
		t.Error("a row stored twice was accepted")
	}
}

// testAlreadyProvisioned: a pending row whose identifier another run
// already provisioned is stored skipped, naming that run, with its result.
func testAlreadyProvisioned(t *testing.T, st Stores) {
	s := st.New(t)
	first := newRun(t, s, "fp1", 2)
	must(t, s.Apply(ctx, first.ID, worker, t0, []pipeline.Transition{{Row: 2, State: pipeline.Succeeded, Result: map[string]string{"imsi": "1"}}}))
	second, err := s.CreateRun(ctx, "fp2", "m.csv", nil)
	must(t, err)
	must(t, s.AddRows(ctx, []pipeline.RowRecord{
		{RunID: second.ID, Row: 2, Provider: "p1", EID: "E2", State: pipeline.Pending}, // provisioned by first
		{RunID: second.ID, Row: 3, Provider: "p2", EID: "E2", State: pipeline.Pending}, // another provider's
		{RunID: second.ID, Row: 4, Provider: "p2", EID: "E3", State: pipeline.Pending}, // first's row 3, not provisioned
		{RunID: second.ID, Row: 5, Provider: "p1", EID: "E2", State: pipeline.Invalid}, // invalid rows stay invalid
	}))
	rows := rowsOf(t, s, second.ID)
	if r := rows[2]; r.State != pipeline.Skipped || r.ErrorCode != "already_provisioned" || r.Result["imsi"] != "1" {
		t.Errorf("row provisioned by an earlier run: %+v, want skipped with its result", r)
	}
	for _, n := range []int{3, 4} {
		if r := rows[n]; r.State != pipeline.Pending || r.MustLookup {
			t.Errorf("row %d: %s must_lookup=%v, want pending", n, r.State, r.MustLookup)
		}
	}
	if rows[5].State != pipeline.Invalid {
		t.Errorf("invalid row stored %s", rows[5].State)
	}
}

// testInDoubtElsewhere: a row whose identifier another unfinished run left
// in doubt (in flight, accepted, pending a lookup) is stored to be looked
// up first; a completed run's rows are in doubt no longer.
func testInDoubtElsewhere(t *testing.T, st Stores) {
	s := st.New(t)
	first := newRun(t, s, "fp1", 6) // rows 2..7, E2..E7
	markInFlight(t, s, first.ID, []int{2})
	must(t, s.Apply(ctx, first.ID, worker, t0, []pipeline.Transition{
		{Row: 3, State: pipeline.Accepted, Handle: "h3", Accepted: true},
		{Row: 4, State: pipeline.Pending, MustLookup: true},
		{Row: 5, State: pipeline.Failed},
	}))
	doubt, err := s.InDoubtElsewhere(ctx, "another-run")
	must(t, err)
	for _, c := range []struct {
		row  int
		want bool
	}{{2, true}, {3, true}, {4, true}, {5, false}, {6, false}} {
		p := "p1"
		if c.row%2 == 1 {
			p = "p2"
		}
		r := pipeline.RowRecord{Provider: p, EID: fmt.Sprintf("E%d", c.row)}
		if doubt.Has(r) != c.want {
			t.Errorf("E%d in doubt: %v, want %v", c.row, doubt.Has(r), c.want)
		}
		if r.Provider = "other"; doubt.Has(r) {
			t.Errorf("E%d of another provider in doubt", c.row)
		}
	}
	if own, err := s.InDoubtElsewhere(ctx, first.ID); err != nil || len(own) != 0 {
		t.Errorf("a run's own rows in doubt elsewhere: %v %v", own, err)
	}

	second, err := s.CreateRun(ctx, "fp2", "m.csv", nil)
	must(t, err)
	must(t, s.AddRows(ctx, []pipeline.RowRecord{
		{RunID: second.ID, Row: 2, Provider: "p1", EID: "E2", State: pipeline.Pending},
		{RunID: second.ID, Row: 3, Provider: "p2", EID: "E3", State: pipeline.Pending},
		{RunID: second.ID, Row: 4, Provider: "p1", EID: "E4", State: pipeline.Pending},
		{RunID: second.ID, Row: 5, Provider: "p2", EID: "E5", State: pipeline.Pending},
	}))
	// With the doubts known beforehand, as Load passes them: those given
	// are the ones that count.
	must(t, s.AddRowsWithDoubts(ctx, []pipeline.RowRecord{{RunID: second.ID, Row: 6, Provider: "p1", EID: "E2", State: pipeline.Pending}},
		pipeline.Doubts{}))
	d := pipeline.Doubts{}
	d.Add("p2", "eid", "E7")
	must(t, s.AddRowsWithDoubts(ctx, []pipeline.RowRecord{{RunID: second.ID, Row: 7, Provider: "p2", EID: "E7", State: pipeline.Pending}}, d))
	rows := rowsOf(t, s, second.ID)
	for n, want := range map[int]bool{2: true, 3: true, 4: true, 5: false, 6: false, 7: true} {
		if rows[n].MustLookup != want {
			t.Errorf("row %d must_lookup %v, want %v", n, rows[n].MustLookup, want)
		}
	}

	must(t, s.SetRunState(ctx, first.ID, pipeline.RunCompleted))
	if d, err := s.InDoubtElsewhere(ctx, second.ID); err != nil || d.Has(pipeline.RowRecord{Provider: "p1", EID: "E2"}) {
		t.Errorf("a completed run's rows still in doubt: %v", err)
	}
}

// join joins a worker of the given id to the run, with a lease of ttl.
func join(t *testing.T, s pipeline.EngineStore, runID, id string, ttl time.Duration, sole bool) pipeline.Worker {
	t.Helper()
	w, err := s.Join(ctx, runID, pipeline.Worker{ID: id, Host: "h-" + id, PID: 7}, ttl, sole)
	must(t, err)
	return w
}

// claim claims due rows of provider as worker w and returns their numbers.
func claim(t *testing.T, s pipeline.EngineStore, runID, provider, w string, now time.Time, limit int) []int {
	t.Helper()
	rows, err := s.Claim(ctx, runID, provider, w, now, 0, limit)
	must(t, err)
	return rowNumbers(rows)
}

// testClaim: Claim returns the due pending rows of one provider, in row
// order, and leases them: they are due to no one else.
func testClaim(t *testing.T, st Stores) {
	s := st.New(t)
	run := newRun(t, s, "fp", 8) // rows 2..9; p1: 2,4,6,8
	must(t, s.Apply(ctx, run.ID, worker, t0, []pipeline.Transition{
		{Row: 4, State: pipeline.Pending, NextAttemptAt: t0.Add(time.Minute)},
		{Row: 6, State: pipeline.Succeeded},
	}))
	join(t, s, run.ID, "a", time.Hour, false)
	join(t, s, run.ID, "b", time.Hour, false)
	if got := claim(t, s, run.ID, "p1", "a", t0, 1); !slices.Equal(got, []int{2}) {
		t.Errorf("a claims 1 due at t0: %v, want [2]", got)
	}
	if got := claim(t, s, run.ID, "p1", "b", t0.Add(time.Minute), 10); !slices.Equal(got, []int{4, 8}) {
		t.Errorf("b claims due a minute later: %v, want [4 8] (2 is a's)", got)
	}
	due, err := s.Claim(ctx, run.ID, "p2", "a", t0, 0, 10)
	must(t, err)
	if got := rowNumbers(due); !slices.Equal(got, []int{3, 5, 7, 9}) {
		t.Errorf("a claims p2: %v, want [3 5 7 9]", got)
	}
	if due[0].EID != "E3" || due[0].State != pipeline.Pending {
		t.Errorf("claimed row %+v", due[0])
	}
	if got := claim(t, s, run.ID, "p1", "a", t0.Add(time.Hour), 10); !slices.Equal(got, []int{2}) {
		t.Errorf("a claims again: %v, want [2], its own: every other due row is b's", got)
	}
	// Recorded rows are free again: a row due once more is anybody's.
	must(t, s.Apply(ctx, run.ID, "b", t0, []pipeline.Transition{{Row: 8, State: pipeline.Pending, NextAttemptAt: t0.Add(time.Second)}}))
	if got := claim(t, s, run.ID, "p1", "a", t0.Add(time.Second), 10); !slices.Equal(got, []int{2, 8}) {
		t.Errorf("a claims after b recorded row 8: %v, want [2 8] (2 its own)", got)
	}
}

func testInFlightAndReclaim(t *testing.T, st Stores) {
	s := st.New(t)
	run := newRun(t, s, "fp", 4)
	must(t, s.Apply(ctx, run.ID, worker, t0, []pipeline.Transition{{Row: 3, State: pipeline.Pending, NextAttemptAt: t0.Add(time.Hour)}}))
	markInFlight(t, s, run.ID, []int{2, 3})
	rows := rowsOf(t, s, run.ID)
	for _, n := range []int{2, 3} {
		if r := rows[n]; r.State != pipeline.InFlight || r.Attempts != 1 || !r.MustLookup {
			t.Errorf("row %d after MarkInFlight: %s attempts %d must_lookup %v", n, r.State, r.Attempts, r.MustLookup)
		}
	}
	join(t, s, run.ID, "other", time.Hour, false)
	if got := claim(t, s, run.ID, "p1", "other", t0.Add(2*time.Hour), 10); slices.Contains(got, 2) {
		t.Error("a row in flight with a live worker was claimed")
	}
	if n, err := s.CountState(ctx, run.ID, pipeline.InFlight); err != nil || n != 2 {
		t.Errorf("CountState(in_flight) = %d %v, want 2", n, err)
	}
	if n, err := s.ReclaimInFlight(ctx, run.ID); err != nil || n != 0 {
		t.Errorf("ReclaimInFlight while their worker lives = %d %v, want 0", n, err)
	}
	must(t, s.Leave(ctx, run.ID, worker))
	n, err := s.ReclaimInFlight(ctx, run.ID)
	must(t, err)
	if n != 2 {
		t.Errorf("ReclaimInFlight after their worker left = %d, want 2", n)
	}
	rows = rowsOf(t, s, run.ID)
	for _, n := range []int{2, 3} {
		if r := rows[n]; r.State != pipeline.Pending || r.Attempts != 1 || !r.MustLookup || !r.NextAttemptAt.IsZero() {
			t.Errorf("row %d reclaimed: %s attempts %d must_lookup %v next %v; want pending, looked up first, due now", n, r.State, r.Attempts, r.MustLookup, r.NextAttemptAt)
		}
	}
	if n, err := s.ReclaimInFlight(ctx, run.ID); err != nil || n != 0 {
		t.Errorf("second ReclaimInFlight = %d %v, want 0", n, err)
	}
}

func testApply(t *testing.T, st Stores) {
	s := st.New(t)
	run := newRun(t, s, "fp", 4) // p1: 2, 4; p2: 3, 5
	markInFlight(t, s, run.ID, []int{2, 3, 4})
	started := t0.Add(-time.Second)
	must(t, s.Apply(ctx, run.ID, worker, t0, []pipeline.Transition{
		{Row: 2, State: pipeline.Accepted, Handle: "h2", Result: map[string]string{"request": "r2"}, Accepted: true,
			Attempt: &pipeline.Attempt{Row: 2, Kind: "submit", Started: started, Latency: 250 * time.Millisecond, HTTPStatus: 0, Outcome: providers.Accepted}},
		{Row: 3, State: pipeline.Pending, ErrorCode: "timeout", ErrorMessage: "no answer", Retryable: true, MustLookup: true,
			NextAttemptAt: t0.Add(time.Minute), AddAttempt: true,
			Attempt: &pipeline.Attempt{Row: 3, Kind: "lookup", Started: started, Latency: time.Second, HTTPStatus: 503, Outcome: providers.Failed, ErrorCode: "timeout"}},
		{Row: 4, State: pipeline.Failed, ErrorCode: "rejected", ErrorMessage: "no", Retryable: false},
	}))
	rows := rowsOf(t, s, run.ID)
	if r := rows[2]; r.State != pipeline.Accepted || r.Handle != "h2" || r.Result["request"] != "r2" || !r.AcceptedAt.Equal(t0) ||
		r.MustLookup || r.Attempts != 1 || r.ErrorCode != "" {
		t.Errorf("row 2 accepted: %+v", r)
	}
	if r := rows[3]; r.State != pipeline.Pending || r.ErrorCode != "timeout" || r.ErrorMessage != "no answer" || !r.Retryable ||
		!r.MustLookup || !r.NextAttemptAt.Equal(t0.Add(time.Minute)) || r.Attempts != 2 {
		t.Errorf("row 3 awaiting a lookup: %+v (want attempts 2: the send and the failed lookup)", r)
	}
	if r := rows[4]; r.State != pipeline.Failed || r.ErrorCode != "rejected" || r.Retryable || r.Attempts != 1 {
		t.Errorf("row 4 failed: %+v", r)
	}
	// An empty handle or result keeps the row's; errors are replaced.
	must(t, s.Apply(ctx, run.ID, worker, t0.Add(time.Second), []pipeline.Transition{{Row: 2, State: pipeline.Succeeded,
		Attempt: &pipeline.Attempt{Row: 2, Kind: "check", Started: t0, Latency: 10 * time.Millisecond, Outcome: providers.Succeeded}}}))
	if r := rowsOf(t, s, run.ID)[2]; r.State != pipeline.Succeeded || r.Handle != "h2" || r.Result["request"] != "r2" || !r.AcceptedAt.Equal(t0) {
		t.Errorf("row 2 succeeded: %+v, want handle, result and acceptance kept", r)
	}

	as, err := s.Attempts(ctx, run.ID, 2)
	must(t, err)
	if len(as) != 2 || as[0].Kind != "submit" || !as[0].Started.Equal(started) || as[0].Latency != 250*time.Millisecond ||
		as[0].Outcome != providers.Accepted || as[1].Kind != "check" || as[1].Outcome != providers.Succeeded {
		t.Errorf("row 2 attempts %+v", as)
	}
	as, err = s.Attempts(ctx, run.ID, 3)
	must(t, err)
	if len(as) != 1 || as[0].HTTPStatus != 503 || as[0].ErrorCode != "timeout" || as[0].Outcome != providers.Failed {
		t.Errorf("row 3 attempts %+v", as)
	}
	if as, err := s.Attempts(ctx, run.ID, 4); err != nil || len(as) != 0 {
		t.Errorf("row 4 attempts %+v %v, want none", as, err)
	}

	// Accepted rows, a page at a time, of one provider.
	must(t, s.Apply(ctx, run.ID, worker, t0, []pipeline.Transition{
		{Row: 4, State: pipeline.Accepted, Accepted: true}, {Row: 5, State: pipeline.Accepted, Accepted: true}}))
	acc, err := s.ClaimAccepted(ctx, run.ID, "p1", worker, 0, 10)
	must(t, err)
	if got := rowNumbers(acc); !slices.Equal(got, []int{4}) {
		t.Errorf("accepted rows of p1: %v, want [4]", got)
	}
	acc, err = s.ClaimAccepted(ctx, run.ID, "p2", worker, 0, 10)
	must(t, err)
	if got := rowNumbers(acc); !slices.Equal(got, []int{5}) {
		t.Errorf("accepted rows of p2: %v, want [5]", got)
	}
	if acc, _ := s.ClaimAccepted(ctx, run.ID, "p2", worker, 5, 10); len(acc) != 0 {
		t.Errorf("accepted rows of p2 after row 5: %v", rowNumbers(acc))
	}
}

func testRedrive(t *testing.T, st Stores) {
	s := st.New(t)
	run := newRun(t, s, "fp", 4) // rows 2..5
	markInFlight(t, s, run.ID, []int{2, 3, 4, 5})
	must(t, s.Apply(ctx, run.ID, worker, t0, []pipeline.Transition{
		{Row: 2, State: pipeline.Failed, ErrorCode: "timeout", Retryable: true, MustLookup: true, NextAttemptAt: t0},
		{Row: 3, State: pipeline.Failed, ErrorCode: "rejected"},
		{Row: 4, State: pipeline.Succeeded},
		{Row: 5, State: pipeline.Failed, ErrorCode: "rate", Retryable: true},
	}))
	must(t, s.SetRunState(ctx, run.ID, pipeline.RunCompleted))
	n, err := s.Redrive(ctx, run.ID, false)
	must(t, err)
	if n != 2 {
		t.Errorf("Redrive = %d, want the 2 retryable rows", n)
	}
	rows := rowsOf(t, s, run.ID)
	if r := rows[2]; r.State != pipeline.Pending || r.Attempts != 0 || !r.MustLookup || !r.NextAttemptAt.IsZero() || r.ErrorCode != "" || r.Retryable {
		t.Errorf("row 2 redriven: %+v, want pending, fresh attempts, still looked up first", r)
	}
	if r := rows[5]; r.State != pipeline.Pending || r.MustLookup {
		t.Errorf("row 5 redriven: %+v", r)
	}
	if rows[3].State != pipeline.Failed || rows[4].State != pipeline.Succeeded {
		t.Errorf("rows 3, 4: %s %s, want failed (not retryable) and succeeded", rows[3].State, rows[4].State)
	}
	if r, _ := s.Run(ctx, run.ID); r.State != pipeline.RunInterrupted || !r.FinishedAt.IsZero() {
		t.Errorf("run after redrive: %s finished %v, want interrupted, unfinished", r.State, r.FinishedAt)
	}

	must(t, s.SetRunState(ctx, run.ID, pipeline.RunCompleted))
	if n, err := s.Redrive(ctx, run.ID, false); err != nil || n != 0 {
		t.Errorf("Redrive with nothing retryable = %d %v", n, err)
	}
	if r, _ := s.Run(ctx, run.ID); r.State != pipeline.RunCompleted {
		t.Errorf("a redrive of nothing changed the run to %s", r.State)
	}
	if n, err := s.Redrive(ctx, run.ID, true); err != nil || n != 1 {
		t.Errorf("Redrive --all = %d %v, want 1", n, err)
	}
	if r := rowsOf(t, s, run.ID)[3]; r.State != pipeline.Pending || r.Attempts != 0 {
		t.Errorf("row 3 after --all: %+v", r)
	}
}

func testCountsAndProviders(t *testing.T, st Stores) {
	s := st.New(t)
	run := newRun(t, s, "fp", 6) // p1: 2,4,6; p2: 3,5,7
	markInFlight(t, s, run.ID, []int{2})
	must(t, s.Apply(ctx, run.ID, worker, t0, []pipeline.Transition{
		{Row: 3, State: pipeline.Succeeded}, {Row: 4, State: pipeline.Failed}, {Row: 5, State: pipeline.Accepted},
		{Row: 6, State: pipeline.Succeeded}, {Row: 7, State: pipeline.Succeeded},
	}))
	c, err := s.Counts(ctx, run.ID)
	must(t, err)
	want := pipeline.Counts{pipeline.InFlight: 1, pipeline.Succeeded: 3, pipeline.Failed: 1, pipeline.Accepted: 1}
	for _, st := range pipeline.States {
		if c[st] != want[st] {
			t.Errorf("Counts[%s] = %d, want %d", st, c[st], want[st])
		}
	}
	if n, err := s.CountState(ctx, run.ID, pipeline.Succeeded); err != nil || n != 3 {
		t.Errorf("CountState(succeeded) = %d %v", n, err)
	}
	if n, err := s.CountOpen(ctx, run.ID, "p1"); err != nil || n != 1 {
		t.Errorf("CountOpen(p1) = %d %v, want 1 (in flight)", n, err)
	}
	if n, err := s.CountOpen(ctx, run.ID, "p2"); err != nil || n != 1 {
		t.Errorf("CountOpen(p2) = %d %v, want 1 (accepted)", n, err)
	}
	if p, err := s.OpenProviders(ctx, run.ID); err != nil || !slices.Equal(p, []string{"p1", "p2"}) {
		t.Errorf("OpenProviders = %v %v", p, err)
	}
	must(t, s.Apply(ctx, run.ID, worker, t0, []pipeline.Transition{{Row: 2, State: pipeline.Failed}}))
	if p, err := s.OpenProviders(ctx, run.ID); err != nil || !slices.Equal(p, []string{"p2"}) {
		t.Errorf("OpenProviders = %v %v, want [p2]", p, err)
	}
	if p, err := s.Providers(ctx, run.ID); err != nil || !slices.Equal(p, []string{"p1", "p2"}) {
		t.Errorf("Providers = %v %v", p, err)
	}
	if c, err := s.Counts(ctx, "no-such-run"); err != nil || c.Total() != 0 {
		t.Errorf("Counts of no run: %v %v", c, err)
	}
}

func testReconciliation(t *testing.T, st Stores) {
	s := st.New(t)
	run := newRun(t, s, "fp", 6) // p1: 2,4,6; p2: 3,5,7
	must(t, s.Apply(ctx, run.ID, worker, t0, []pipeline.Transition{
		{Row: 2, State: pipeline.Succeeded}, {Row: 3, State: pipeline.Succeeded}, {Row: 4, State: pipeline.Succeeded},
		{Row: 5, State: pipeline.Skipped}, {Row: 6, State: pipeline.Failed},
	}))
	id, resumed, err := s.OpenReconciliation(ctx, run.ID)
	must(t, err)
	if id == "" || resumed {
		t.Fatalf("OpenReconciliation = %q resumed %v, want a new one", id, resumed)
	}
	p1, err := s.ReconcilePending(ctx, run.ID, id, "p1", 0, 10)
	must(t, err)
	if got := rowNumbers(p1); !slices.Equal(got, []int{2, 4}) {
		t.Errorf("p1 rows to reconcile: %v, want [2 4] (6 failed, not provisioned)", got)
	}
	if p1[0].RunID != run.ID || p1[0].EID != "E2" {
		t.Errorf("row to reconcile %+v", p1[0])
	}
	if p, _ := s.ReconcilePending(ctx, run.ID, id, "p1", 2, 10); !slices.Equal(rowNumbers(p), []int{4}) {
		t.Errorf("p1 rows after 2: %v", rowNumbers(p))
	}
	drift := []pipeline.Finding{{Row: 4, Provider: "p1", ID: "E4", Kind: pipeline.DriftMissing, Expected: "present", Actual: "not found"}}
	must(t, s.RecordVerdicts(ctx, id, []pipeline.Verdict{
		{Row: 2, Status: pipeline.ReconcileInSync},
		{Row: 4, Status: pipeline.ReconcileDrift, Findings: drift},
		{Row: 3, Note: "timeout"}, // a failed try: stays pending
		{Row: 5},                  // not looked up: left alone
	}, 2))
	if p, _ := s.ReconcilePending(ctx, run.ID, id, "p1", 0, 10); len(p) != 0 {
		t.Errorf("p1 rows still to reconcile: %v", rowNumbers(p))
	}
	if p, _ := s.ReconcilePending(ctx, run.ID, id, "p2", 0, 10); !slices.Equal(rowNumbers(p), []int{3, 5}) {
		t.Errorf("p2 rows to reconcile: %v, want [3 5]", rowNumbers(p))
	}
	must(t, s.FinishReconciliation(ctx, id, pipeline.RunInterrupted))
	res, err := s.Reconciliation(ctx, id)
	must(t, err)
	if res.ID != id || res.RunID != run.ID || res.State != pipeline.RunInterrupted || res.Checked != 2 || res.InSync != 1 ||
		res.NotProvisioned != 2 || res.Unchecked != 2 || len(res.Drift) != 1 || res.Drift[0] != drift[0] {
		t.Errorf("interrupted reconciliation %+v", res)
	}

	// Resumed: the same reconciliation, where it stopped.
	again, resumed, err := s.OpenReconciliation(ctx, run.ID)
	must(t, err)
	if again != id || !resumed {
		t.Fatalf("reopened %q resumed %v, want %q resumed", again, resumed, id)
	}
	must(t, s.RecordVerdicts(ctx, id, []pipeline.Verdict{{Row: 3, Note: "timeout again"}, {Row: 5, Status: pipeline.ReconcileInSync}}, 2))
	if p, _ := s.ReconcilePending(ctx, run.ID, id, "p2", 0, 10); len(p) != 0 {
		t.Errorf("row 3 pending after maxTries failed tries: %v", rowNumbers(p))
	}
	must(t, s.FinishReconciliation(ctx, id, pipeline.RunCompleted))
	res, err = s.Reconciliation(ctx, id)
	must(t, err)
	if res.State != pipeline.RunCompleted || res.Checked != 3 || res.InSync != 2 || res.Unchecked != 1 || res.NotProvisioned != 2 {
		t.Errorf("completed reconciliation %+v", res)
	}
	if res.StartedAt.IsZero() || res.FinishedAt.Before(res.StartedAt) {
		t.Errorf("completed reconciliation started %v, finished %v", res.StartedAt, res.FinishedAt)
	}
	next, resumed, err := s.OpenReconciliation(ctx, run.ID)
	must(t, err)
	if next == id || resumed {
		t.Errorf("after a completed reconciliation: %q resumed %v, want a new one", next, resumed)
	}
	if open, _ := s.Reconciliation(ctx, next); !open.FinishedAt.IsZero() {
		t.Errorf("an open reconciliation has a finish time %v", open.FinishedAt)
	}
	history, err := s.Reconciliations(ctx, run.ID)
	must(t, err)
	if !slices.Equal(history, []string{next, id}) {
		t.Errorf("history %v, want newest first [%s %s]", history, next, id)
	}
	if none, err := s.Reconciliations(ctx, "no-such-run"); err != nil || len(none) != 0 {
		t.Errorf("history of an unknown run: %v, %v", none, err)
	}
}

func testReportView(t *testing.T, st Stores) {
	s := st.New(t)
	run, err := s.CreateRun(ctx, "fp", "m.csv", []string{"provider", "eid"})
	must(t, err)
	must(t, s.AddRows(ctx, []pipeline.RowRecord{
		{RunID: run.ID, Row: 2, Provider: "p1", EID: "E2", Cells: []string{"p1", "E2"}, State: pipeline.Pending},
		{RunID: run.ID, Row: 3, Provider: "p1", EID: "E3", Cells: []string{"p1", "E3", "stray"}, State: pipeline.Pending},
		{RunID: run.ID, Row: 4, Provider: "p2", EID: "E4", Cells: []string{"p2", "E4"}, State: pipeline.Pending},
		{RunID: run.ID, Row: 5, Provider: "p2", EID: "E5", Cells: []string{"p2", "E5"}, State: pipeline.Pending},
		{RunID: run.ID, Row: 6, Cells: []string{"", "x"}, State: pipeline.Invalid, ErrorCode: "missing_provider", ErrorMessage: "provider: required"},
	}))
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	att := func(row, lat int) *pipeline.Attempt {
		return &pipeline.Attempt{Row: row, Kind: "submit", Started: t0, Latency: ms(lat), Outcome: providers.Succeeded}
	}
	must(t, s.Apply(ctx, run.ID, worker, t0.Add(500*time.Millisecond), []pipeline.Transition{
		{Row: 2, State: pipeline.Succeeded, Result: map[string]string{"imsi": "1", "msisdn": "m"}, Attempt: att(2, 100)},
		{Row: 3, State: pipeline.Succeeded, Result: map[string]string{"imsi": "2"}, Attempt: att(3, 100)},
	}))
	must(t, s.Apply(ctx, run.ID, worker, t0.Add(2500*time.Millisecond), []pipeline.Transition{
		{Row: 4, State: pipeline.Failed, ErrorCode: "rejected", ErrorMessage: "no", Attempt: att(4, 300)},
	}))
	err = s.ViewRun(ctx, run.ID[:len(run.ID)-2], func(v pipeline.ReportView) error {
		if v.Run().ID != run.ID {
			t.Errorf("view of run %s", v.Run().ID)
		}
		c, err := v.CountsByProvider(ctx)
		must(t, err)
		if c["p1"][pipeline.Succeeded] != 2 || c["p2"][pipeline.Failed] != 1 || c["p2"][pipeline.Pending] != 1 || c[""][pipeline.Invalid] != 1 {
			t.Errorf("CountsByProvider = %v", c)
		}
		top, err := v.TopErrors(ctx, 10)
		must(t, err)
		if len(top) != 2 || top[0].Count != 1 || top[0].Code != "missing_provider" || top[1].Code != "rejected" || top[1].Message != "no" {
			t.Errorf("TopErrors = %+v", top)
		}
		if top, _ := v.TopErrors(ctx, 1); len(top) != 1 {
			t.Errorf("TopErrors(1) = %+v", top)
		}
		lat, err := v.Latencies(ctx)
		must(t, err)
		if !slices.Equal(lat["p1"], []pipeline.LatencyCount{{Millis: 100, Count: 2}}) || !slices.Equal(lat["p2"], []pipeline.LatencyCount{{Millis: 300, Count: 1}}) {
			t.Errorf("Latencies = %v", lat)
		}
		fin, err := v.FinishedPer(ctx, time.Second)
		must(t, err)
		if len(fin) != 2 || !fin[0].Start.Equal(t0) || fin[0].Succeeded != 2 || fin[0].Failed != 0 ||
			!fin[1].Start.Equal(t0.Add(2*time.Second)) || fin[1].Failed != 1 {
			t.Errorf("FinishedPer(1s) = %+v", fin)
		}
		if fin, _ := v.FinishedPer(ctx, time.Minute); len(fin) != 1 || fin[0].Succeeded != 2 || fin[0].Failed != 1 {
			t.Errorf("FinishedPer(1m) = %+v", fin)
		}
		last, err := v.LastChange(ctx)
		must(t, err)
		if last.Before(t0.Add(2500 * time.Millisecond)) {
			t.Errorf("LastChange = %v, want at least the last applied change", last)
		}
		keys, err := v.ResultKeys(ctx, pipeline.Succeeded)
		must(t, err)
		if !slices.Equal(keys, []string{"imsi", "msisdn"}) {
			t.Errorf("ResultKeys = %v", keys)
		}
		if n, err := v.MaxCells(ctx, pipeline.Succeeded); err != nil || n != 3 {
			t.Errorf("MaxCells(succeeded) = %d %v, want 3", n, err)
		}
		var got []pipeline.ReportRow
		must(t, v.Rows(ctx, pipeline.Succeeded, func(r pipeline.ReportRow) error { got = append(got, r); return nil }))
		if len(got) != 2 || got[0].Row != 2 || got[1].Row != 3 || got[0].Result["msisdn"] != "m" || !got[0].UpdatedAt.Equal(t0.Add(500*time.Millisecond)) {
			t.Errorf("Rows(succeeded) = %+v", got)
		}
		// A snapshot: a change committed meanwhile is not seen.
		must(t, s.Apply(ctx, run.ID, worker, t0.Add(time.Hour), []pipeline.Transition{{Row: 5, State: pipeline.Succeeded}}))
		if c, _ := v.CountsByProvider(ctx); c["p2"][pipeline.Succeeded] != 0 {
			t.Errorf("the view saw a change made after it began: %v", c)
		}
		return nil
	})
	must(t, err)
	if err := s.ViewRun(ctx, "no-such-run", func(pipeline.ReportView) error { return nil }); !errors.Is(err, pipeline.ErrNoRun) {
		t.Errorf("ViewRun of no run: %v, want ErrNoRun", err)
	}
	sentinel := errors.New("stop")
	if err := s.ViewRun(ctx, run.ID, func(pipeline.ReportView) error { return sentinel }); !errors.Is(err, sentinel) {
		t.Errorf("ViewRun returned %v, want fn's error", err)
	}
	empty, err := s.CreateRun(ctx, "fp-empty", "e.csv", nil)
	must(t, err)
	must(t, s.ViewRun(ctx, empty.ID, func(v pipeline.ReportView) error {
		if last, err := v.LastChange(ctx); err != nil || !last.IsZero() {
			t.Errorf("LastChange of a run without rows = %v %v, want zero", last, err)
		}
		return nil
	}))
}

// testReadOnly: a store opened read-only reads as usual and refuses every
// write with pipeline.ErrReadOnly.
func testReadOnly(t *testing.T, st Stores) {
	if st.ReadOnly == nil {
		t.Skip("no read-only store")
	}
	s := st.New(t)
	run := newRun(t, s, "fp", 5)
	ro := st.ReadOnly(t, s)
	c, err := ro.Counts(ctx, run.ID)
	if err != nil || c[pipeline.Pending] != 5 {
		t.Errorf("counts %v err %v, want 5 pending", c, err)
	}
	if r, err := ro.Run(ctx, run.ID); err != nil || r.ID != run.ID {
		t.Errorf("Run: %v %v", r.ID, err)
	}
	must(t, ro.ViewRun(ctx, run.ID, func(v pipeline.ReportView) error { _, err := v.CountsByProvider(ctx); return err }))
	writes := map[string]func() error{
		"SetRunState": func() error { return ro.SetRunState(ctx, run.ID, pipeline.RunCompleted) },
		"CreateRun":   func() error { _, err := ro.CreateRun(ctx, "fp2", "m.csv", nil); return err },
		"AddRows": func() error {
			return ro.AddRows(ctx, []pipeline.RowRecord{{RunID: run.ID, Row: 99, State: pipeline.Pending}})
		},
		"MarkInFlight": func() error { _, err := ro.MarkInFlight(ctx, run.ID, worker, []int{2}); return err },
		"Join": func() error {
			_, err := ro.Join(ctx, run.ID, pipeline.Worker{ID: "w"}, time.Minute, false)
			return err
		},
		"Apply": func() error {
			return ro.Apply(ctx, run.ID, worker, t0, []pipeline.Transition{{Row: 2, State: pipeline.Failed}})
		},
		"Redrive":        func() error { _, err := ro.Redrive(ctx, run.ID, true); return err },
		"AddRunCounters": func() error { return ro.AddRunCounters(ctx, run.ID, map[string]int64{"x": 1}) },
	}
	for name, w := range writes {
		if err := w(); !errors.Is(err, pipeline.ErrReadOnly) {
			t.Errorf("%s on a read-only store: %v, want ErrReadOnly", name, err)
		}
	}
	if c, _ := ro.Counts(ctx, run.ID); c[pipeline.Pending] != 5 {
		t.Errorf("after refused writes: %v", c)
	}
}

// testLeases: a row is held by one live worker at a time. Intents are
// recorded only for rows the worker holds, and another worker's
// transitions of them are dropped; accepted rows are followed by one
// worker; a worker that leaves frees its rows, and one that joins as the
// sole worker ends the others' leases.
func testLeases(t *testing.T, st Stores) {
	s := st.New(t)
	run := newRun(t, s, "fp", 8) // p1: 2,4,6,8; p2: 3,5,7,9
	a := join(t, s, run.ID, "a", time.Hour, false)
	if a.ID != "a" || a.Host != "h-a" || a.PID != 7 || a.Joined.IsZero() || !a.Expires.After(a.Joined) {
		t.Errorf("joined worker %+v", a)
	}
	join(t, s, run.ID, "b", time.Hour, false)
	ws, err := s.Workers(ctx, run.ID)
	must(t, err)
	if len(ws) != 2 || ws[0].ID != "a" || ws[1].ID != "b" {
		t.Errorf("Workers = %+v, want a then b", ws)
	}
	if got := claim(t, s, run.ID, "p1", "a", t0, 2); !slices.Equal(got, []int{2, 4}) {
		t.Fatalf("a claims %v, want [2 4]", got)
	}
	if got := claim(t, s, run.ID, "p1", "b", t0, 10); !slices.Equal(got, []int{6, 8}) {
		t.Fatalf("b claims %v, want [6 8]", got)
	}
	marked, err := s.MarkInFlight(ctx, run.ID, "a", []int{2, 4, 6})
	must(t, err)
	if !slices.Equal(marked, []int{2, 4}) {
		t.Errorf("a marks %v in flight, want [2 4]: 6 is b's", marked)
	}
	if r := rowsOf(t, s, run.ID)[6]; r.State != pipeline.Pending || r.Attempts != 0 {
		t.Errorf("b's row 6 after a's intent: %s attempts %d", r.State, r.Attempts)
	}
	// b's transition of a's row is dropped; a's own is recorded.
	must(t, s.Apply(ctx, run.ID, "b", t0, []pipeline.Transition{{Row: 2, State: pipeline.Failed}}))
	must(t, s.Apply(ctx, run.ID, "a", t0, []pipeline.Transition{{Row: 4, State: pipeline.Accepted, Handle: "h4", Accepted: true}}))
	rows := rowsOf(t, s, run.ID)
	if rows[2].State != pipeline.InFlight || rows[4].State != pipeline.Accepted {
		t.Errorf("rows 2, 4: %s %s, want in_flight (b's change dropped) and accepted", rows[2].State, rows[4].State)
	}
	// Accepted rows: the first to claim follows them, and keeps them.
	acc, err := s.ClaimAccepted(ctx, run.ID, "p1", "b", 0, 10)
	must(t, err)
	if got := rowNumbers(acc); !slices.Equal(got, []int{4}) || acc[0].Handle != "h4" {
		t.Errorf("b claims accepted %v, want [4] with its handle", got)
	}
	if acc, _ := s.ClaimAccepted(ctx, run.ID, "p1", "a", 0, 10); len(acc) != 0 {
		t.Errorf("a claims accepted %v, want none: b follows them", rowNumbers(acc))
	}
	if acc, _ := s.ClaimAccepted(ctx, run.ID, "p1", "b", 0, 10); !slices.Equal(rowNumbers(acc), []int{4}) {
		t.Errorf("b claims its accepted rows again: %v, want [4]", rowNumbers(acc))
	}
	// b leaves: its rows are free, and its accepted row goes on being
	// followed by another.
	must(t, s.Leave(ctx, run.ID, "b"))
	if got := claim(t, s, run.ID, "p1", "a", t0, 10); !slices.Equal(got, []int{6, 8}) {
		t.Errorf("a claims after b left: %v, want [6 8] (2 is in flight, 4 accepted)", got)
	}
	if acc, _ := s.ClaimAccepted(ctx, run.ID, "p1", "a", 0, 10); !slices.Equal(rowNumbers(acc), []int{4}) {
		t.Errorf("a claims accepted after b left: %v, want [4]", rowNumbers(acc))
	}
	// A sole worker (the checkpoint's lock holder) ends a's lease at once:
	// a's rows in flight come back to be looked up.
	join(t, s, run.ID, "c", time.Hour, true)
	if ws, _ := s.Workers(ctx, run.ID); len(ws) != 1 || ws[0].ID != "c" {
		t.Errorf("Workers after a sole join = %+v, want c alone", ws)
	}
	if _, err := s.MarkInFlight(ctx, run.ID, "a", []int{6}); !errors.Is(err, pipeline.ErrLeaseLost) {
		t.Errorf("MarkInFlight by a worker whose lease ended: %v, want ErrLeaseLost", err)
	}
	due, err := s.Claim(ctx, run.ID, "p1", "c", t0, 0, 10)
	must(t, err)
	if got := rowNumbers(due); !slices.Equal(got, []int{2, 6, 8}) || !due[0].MustLookup || due[1].MustLookup {
		t.Errorf("c claims %v (must_lookup %v), want [2 6 8], row 2 to be looked up", got, due)
	}
}

// testLeaseExpiry: a worker that stops renewing loses its lease when its
// ttl has passed: its rows in flight are taken over (to be looked up
// first), it may no longer record intents, and it is no longer listed.
// testFollowAndWithdraw: an accepted row the worker follows itself stays
// its own, and a withdrawn intent leaves the row as it was before it.
func testFollowAndWithdraw(t *testing.T, st Stores) {
	s := st.New(t)
	run := newRun(t, s, "fp", 4) // p1: 2, 4; p2: 3, 5
	join(t, s, run.ID, "a", time.Hour, false)
	join(t, s, run.ID, "b", time.Hour, false)
	if got := claim(t, s, run.ID, "p1", "a", t0, 10); !slices.Equal(got, []int{2, 4}) {
		t.Fatalf("a claims %v, want [2 4]", got)
	}
	marked, err := s.MarkInFlight(ctx, run.ID, "a", []int{2, 4})
	must(t, err)
	if !slices.Equal(marked, []int{2, 4}) {
		t.Fatalf("a marks %v, want [2 4]", marked)
	}
	must(t, s.Apply(ctx, run.ID, "a", t0, []pipeline.Transition{
		{Row: 2, State: pipeline.Accepted, Handle: "h2", Accepted: true, Follow: true},
		{Row: 4, State: pipeline.Accepted, Handle: "h4", Accepted: true}}))
	// Row 2 is a's still; row 4 was freed for any worker to follow.
	if acc, _ := s.ClaimAccepted(ctx, run.ID, "p1", "b", 0, 10); !slices.Equal(rowNumbers(acc), []int{4}) {
		t.Errorf("b claims accepted %v, want [4]: a follows 2 itself", rowNumbers(acc))
	}
	if acc, _ := s.ClaimAccepted(ctx, run.ID, "p1", "a", 0, 10); !slices.Equal(rowNumbers(acc), []int{2}) {
		t.Errorf("a claims accepted %v, want [2]", rowNumbers(acc))
	}
	// a's change of the row it follows is recorded, and frees it.
	must(t, s.Apply(ctx, run.ID, "a", t0, []pipeline.Transition{{Row: 2, State: pipeline.Succeeded}}))
	if r := rowsOf(t, s, run.ID)[2]; r.State != pipeline.Succeeded || r.Handle != "h2" {
		t.Errorf("row 2 after a's check: %s handle %q, want succeeded with h2", r.State, r.Handle)
	}

	// A withdrawn intent: pending again as before, its attempt not spent.
	must(t, s.Apply(ctx, run.ID, "b", t0, []pipeline.Transition{{Row: 3, State: pipeline.Failed, ErrorCode: "timeout",
		Retryable: true, MustLookup: true, NextAttemptAt: t0}}))
	_, err = s.Redrive(ctx, run.ID, false)
	must(t, err)
	before := rowsOf(t, s, run.ID)[3]
	if got := claim(t, s, run.ID, "p2", "b", t0, 1); !slices.Equal(got, []int{3}) {
		t.Fatalf("b claims %v, want [3]", got)
	}
	if marked, err := s.MarkInFlight(ctx, run.ID, "b", []int{3}); err != nil || !slices.Equal(marked, []int{3}) {
		t.Fatalf("b marks %v %v, want [3]", marked, err)
	}
	if r := rowsOf(t, s, run.ID)[3]; r.State != pipeline.InFlight || r.Attempts != before.Attempts+1 {
		t.Fatalf("row 3 marked: %s attempts %d", r.State, r.Attempts)
	}
	must(t, s.Apply(ctx, run.ID, "b", t0, []pipeline.Transition{{Row: 3, State: pipeline.Pending, MustLookup: before.MustLookup,
		NextAttemptAt: before.NextAttemptAt, Withdrawn: true}}))
	if r := rowsOf(t, s, run.ID)[3]; r.State != pipeline.Pending || r.Attempts != before.Attempts || r.MustLookup != before.MustLookup {
		t.Errorf("row 3 withdrawn: %s attempts %d must_lookup %v, want pending, %d, %v as before",
			r.State, r.Attempts, r.MustLookup, before.Attempts, before.MustLookup)
	}
	if got := claim(t, s, run.ID, "p2", "a", t0, 10); !slices.Equal(got, []int{3, 5}) {
		t.Errorf("a claims %v after b's withdrawal, want [3 5]: a withdrawn row is free", got)
	}
}

func testLeaseExpiry(t *testing.T, st Stores) {
	s := st.New(t)
	run := newRun(t, s, "fp", 4) // p1: 2,4
	const ttl = 300 * time.Millisecond
	join(t, s, run.ID, "brief", ttl, false)
	join(t, s, run.ID, "long", time.Hour, false)
	if got := claim(t, s, run.ID, "p1", "brief", t0, 10); !slices.Equal(got, []int{2, 4}) {
		t.Fatalf("brief claims %v", got)
	}
	if _, err := s.MarkInFlight(ctx, run.ID, "brief", []int{2}); err != nil {
		t.Fatal(err)
	}
	if w, err := s.Renew(ctx, run.ID, "brief"); err != nil || w.ID != "brief" {
		t.Fatalf("Renew of a live lease: %+v %v", w, err)
	}
	if got := claim(t, s, run.ID, "p1", "long", t0, 10); len(got) != 0 {
		t.Errorf("long claims %v while brief's lease lives", got)
	}
	time.Sleep(2 * ttl)
	if _, err := s.Renew(ctx, run.ID, "brief"); !errors.Is(err, pipeline.ErrLeaseLost) {
		t.Errorf("Renew of an expired lease: %v, want ErrLeaseLost", err)
	}
	if _, err := s.MarkInFlight(ctx, run.ID, "brief", []int{4}); !errors.Is(err, pipeline.ErrLeaseLost) {
		t.Errorf("MarkInFlight with an expired lease: %v, want ErrLeaseLost", err)
	}
	if ws, _ := s.Workers(ctx, run.ID); len(ws) != 1 || ws[0].ID != "long" {
		t.Errorf("Workers = %+v, want long alone", ws)
	}
	due, err := s.Claim(ctx, run.ID, "p1", "long", t0, 0, 10)
	must(t, err)
	if got := rowNumbers(due); !slices.Equal(got, []int{2, 4}) || !due[0].MustLookup || due[0].Attempts != 1 || due[1].MustLookup {
		t.Errorf("long takes over %+v, want rows 2 (in flight: looked up first) and 4", due)
	}
}

// testConcurrentClaims: workers claiming at the same moment never get the
// same row, and between them get every row.
func testConcurrentClaims(t *testing.T, st Stores) {
	s := st.New(t)
	run := newRun(t, s, "fp", 200) // 100 rows of p1
	const workers = 4
	got := make([][]int, workers)
	errs := make(chan error, workers)
	for i := range workers {
		id := fmt.Sprintf("w%d", i)
		join(t, s, run.ID, id, time.Hour, false)
		go func() {
			after := 0
			for {
				rows, err := s.Claim(ctx, run.ID, "p1", id, t0, after, 3)
				if err != nil || len(rows) == 0 {
					errs <- err
					return
				}
				got[i] = append(got[i], rowNumbers(rows)...)
				after = rows[len(rows)-1].Row
			}
		}()
	}
	for range workers {
		must(t, <-errs)
	}
	seen := map[int]string{}
	for i, rows := range got {
		for _, r := range rows {
			if prev, ok := seen[r]; ok {
				t.Errorf("row %d claimed by %s and w%d", r, prev, i)
			}
			seen[r] = fmt.Sprintf("w%d", i)
		}
	}
	if len(seen) != 100 {
		t.Errorf("%d rows claimed, want 100", len(seen))
	}
}

// testProviderPauses: a pause recorded by one worker is seen by all, the
// longest one holds, and a pause that has passed is gone.
func testProviderPauses(t *testing.T, st Stores) {
	s := st.New(t)
	run := newRun(t, s, "fp", 2)
	must(t, s.PauseProvider(ctx, run.ID, "p1", time.Minute))
	must(t, s.PauseProvider(ctx, run.ID, "p1", time.Second)) // shorter: the minute holds
	must(t, s.PauseProvider(ctx, run.ID, "p2", 200*time.Millisecond))
	p, err := s.ProviderPauses(ctx, run.ID)
	must(t, err)
	if p["p1"] < 50*time.Second || p["p1"] > time.Minute || p["p2"] <= 0 || p["p2"] > 200*time.Millisecond {
		t.Errorf("ProviderPauses = %v, want p1 about a minute, p2 under 200ms", p)
	}
	if other, _ := s.ProviderPauses(ctx, "another-run"); len(other) != 0 {
		t.Errorf("pauses of another run: %v", other)
	}
	time.Sleep(300 * time.Millisecond)
	if p, _ := s.ProviderPauses(ctx, run.ID); len(p) != 1 || p["p1"] == 0 {
		t.Errorf("ProviderPauses after p2's passed = %v, want p1 only", p)
	}
}
