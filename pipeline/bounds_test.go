package pipeline

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/simbulk/simbulk/providers"
)

// garbleFake takes every request (the provisioning happens) but answers
// nothing readable, to Submit and to Lookup alike, until fixed is set:
// then its lookups read fine and find what it holds.
type garbleFake struct {
	*fakeProvider
	fixed   atomic.Bool
	lookups atomic.Int64
}

func unreadable() *providers.Error {
	return &providers.Error{Code: providers.CodeMalformed, Message: `unreadable answer: "Meta": "" is not an object`,
		HTTPStatus: 200, Retryable: true, MaybeApplied: true}
}

func (g *garbleFake) Submit(_ context.Context, orders []providers.Order) []providers.Outcome {
	g.mu.Lock()
	defer g.mu.Unlock()
	outs := make([]providers.Outcome, len(orders))
	for i, o := range orders {
		g.sent[o.EID]++
		g.have[o.EID] = true
		outs[i] = providers.Outcome{Status: providers.Failed, Err: unreadable()}
	}
	return outs
}

func (g *garbleFake) Lookup(ctx context.Context, o providers.Order) (providers.Subscription, error) {
	g.lookups.Add(1)
	if !g.fixed.Load() {
		e := unreadable()
		e.MaybeApplied = false
		return providers.Subscription{}, e
	}
	return g.fakeProvider.Lookup(ctx, o)
}

// TestUnreadableAnswersEndTheRun: a provider that answers garbage forever
// (the request and every lookup after it) no longer keeps a row looping.
// Each row ends failed as unreadable_answer, marked for a lookup, after
// its attempts; the run ends by itself; nothing was sent twice. A
// retry-failed --all then looks every row up before sending anything, and
// finds them all done at the provider.
func TestUnreadableAnswersEndTheRun(t *testing.T) {
	synctest.Test(t, testUnreadableAnswersEndTheRun)
}

func testUnreadableAnswersEndTheRun(t *testing.T) {
	cp, err := openStore(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	run := seedRun(t, cp, 20)
	fake := &garbleFake{fakeProvider: newFake()}
	e := &Engine{Checkpoint: cp, Lanes: map[string]*Lane{"fake": {Name: "fake", Client: fake, Concurrency: 4, MaxAttempts: 3, PollInterval: 5 * time.Millisecond}},
		Backoff: func(int) time.Duration { return time.Millisecond }}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	state, err := e.Run(ctx, run)
	if err != nil || state != RunCompleted {
		t.Fatalf("state %s err %v, want the run to end by itself", state, err)
	}
	if ctx.Err() != nil {
		t.Fatal("the run did not end within 30s")
	}
	c, _ := cp.Counts(ctx, run.ID)
	if c[Failed] != 20 {
		t.Fatalf("counts %v, want all 20 failed", c)
	}
	err = cp.RowsIn(ctx, run.ID, Failed, func(r RowRecord) error {
		if r.ErrorCode != providers.CodeUnreadable || !r.Retryable || !r.MustLookup {
			t.Errorf("row %d: code %q retryable %v must_lookup %v, want unreadable_answer, retryable, must_lookup",
				r.Row, r.ErrorCode, r.Retryable, r.MustLookup)
		}
		if r.Attempts != 3 {
			t.Errorf("row %d: %d attempts, want 3 (one send, two lookups)", r.Row, r.Attempts)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for eid, n := range fake.sent {
		if n != 1 {
			t.Errorf("%s sent %d times, want once", eid, n)
		}
	}
	if n := fake.lookups.Load(); n != 40 {
		t.Errorf("%d lookups, want 40 (two per row)", n)
	}

	// The provider's answers become readable; retry-failed --all.
	fake.fixed.Store(true)
	if n, err := cp.Redrive(ctx, run.ID, true); err != nil || n != 20 {
		t.Fatalf("redrive: %d rows, %v", n, err)
	}
	if state, err := e.Run(ctx, run); err != nil || state != RunCompleted {
		t.Fatalf("after redrive: state %s err %v", state, err)
	}
	c, _ = cp.Counts(ctx, run.ID)
	if c[Succeeded] != 20 {
		t.Errorf("after redrive: counts %v, want all 20 found done at the provider", c)
	}
	for eid, n := range fake.sent {
		if n != 1 {
			t.Errorf("after redrive: %s sent %d times; a row that may have been applied was sent without a lookup", eid, n)
		}
	}
}

// refusingFake refuses simbulk's credentials on every call.
type refusingFake struct {
	mu      sync.Mutex
	submits int
}

func credentialsRefused() *providers.Error {
	return &providers.Error{Code: providers.CodeCredentials, Message: "client credentials refused by the token endpoint", HTTPStatus: 401}
}

func (f *refusingFake) Submit(_ context.Context, orders []providers.Order) []providers.Outcome {
	f.mu.Lock()
	f.submits++
	f.mu.Unlock()
	outs := make([]providers.Outcome, len(orders))
	for i := range outs {
		outs[i] = providers.Outcome{Status: providers.Failed, Err: credentialsRefused()}
	}
	return outs
}

func (f *refusingFake) Check(context.Context, providers.Order, string) providers.Outcome {
	return providers.Outcome{Status: providers.Failed, Err: credentialsRefused()}
}

func (f *refusingFake) Lookup(context.Context, providers.Order) (providers.Subscription, error) {
	return providers.Subscription{}, credentialsRefused()
}

// TestCredentialsRefusedStopsTheLane: a provider that refuses simbulk's
// credentials stops its own lane at once (no row failed, none spent, at
// most the requests already handed to workers), the other provider's
// lane finishes, and the run ends with a CredentialsError naming the
// provider.
func TestCredentialsRefusedStopsTheLane(t *testing.T) {
	synctest.Test(t, testCredentialsRefusedStopsTheLane)
}

func testCredentialsRefusedStopsTheLane(t *testing.T) {
	cp, err := openStore(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	ctx := context.Background()
	run, err := cp.CreateRun(ctx, "fp", "m.csv", []string{"provider", "eid"})
	if err != nil {
		t.Fatal(err)
	}
	var rows []RowRecord
	for i := range 100 {
		p, eid := "good", "G"+string(rune('A'+i%26))+string(rune('a'+i/26))
		if i%2 == 1 {
			p, eid = "bad", "B"+string(rune('A'+i%26))+string(rune('a'+i/26))
		}
		rows = append(rows, RowRecord{RunID: run.ID, Row: i + 2, Provider: p, EID: eid, Cells: []string{p, eid}, State: Pending})
	}
	if err := cp.AddRows(ctx, rows); err != nil {
		t.Fatal(err)
	}
	bad, good := &refusingFake{}, newFake()
	e := &Engine{Checkpoint: cp, Backoff: func(int) time.Duration { return time.Millisecond },
		Lanes: map[string]*Lane{
			"bad":  {Name: "bad", Client: bad, Concurrency: 4, PollInterval: 5 * time.Millisecond},
			"good": {Name: "good", Client: good, Concurrency: 4, PollInterval: 5 * time.Millisecond},
		}}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	state, err := e.Run(rctx, run)
	var ce *CredentialsError
	if !errors.As(err, &ce) || ce.Provider != "bad" || state != RunInterrupted {
		t.Fatalf("state %s err %v, want interrupted with the bad provider's CredentialsError", state, err)
	}
	if bad.submits > 4 {
		t.Errorf("%d submits to the refusing provider, want at most the 4 its workers held", bad.submits)
	}
	var pending, succeeded int
	err = cp.RowsIn(ctx, run.ID, Pending, func(r RowRecord) error {
		if r.Provider != "bad" {
			t.Errorf("row %d of %s left pending", r.Row, r.Provider)
		}
		pending++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = cp.RowsIn(ctx, run.ID, Succeeded, func(r RowRecord) error { succeeded++; return nil })
	c, _ := cp.Counts(ctx, run.ID)
	if pending != 50 || succeeded != 50 || c[Failed] != 0 {
		t.Errorf("counts %v, want the 50 refused rows pending (none failed) and the other 50 succeeded", c)
	}
	t.Logf("%v", ce)
}

// stateFake times out every first send after taking it, so every row is
// recovered by a lookup, and answers lookups with a state per EID.
type stateFake struct {
	*fakeProvider
	states map[string]providers.Subscription
}

func (s *stateFake) Submit(_ context.Context, orders []providers.Order) []providers.Outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	outs := make([]providers.Outcome, len(orders))
	for i, o := range orders {
		s.sent[o.EID]++
		outs[i] = providers.Outcome{Status: providers.Failed, Err: &providers.Error{Code: providers.CodeTimeout, Retryable: true, MaybeApplied: true}}
	}
	return outs
}

type stateLookup struct{ *stateFake }

func (s stateLookup) Lookup(_ context.Context, o providers.Order) (providers.Subscription, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.states[o.EID]
	if sub.Pending {
		// Pending once, then active: the row is followed to the end.
		s.states[o.EID] = providers.Subscription{Found: true, Active: true, State: "active"}
	}
	return sub, nil
}

// TestRecoveryJudgesFoundRecordsByState: a row in doubt that the lookup
// finds active succeeds; found deactivated or suspended it fails as a
// conflict naming the state (it is neither ours to count nor to resend);
// found pending it is followed until done. Nothing is sent twice.
func TestRecoveryJudgesFoundRecordsByState(t *testing.T) {
	synctest.Test(t, testRecoveryJudgesFoundRecordsByState)
}

func testRecoveryJudgesFoundRecordsByState(t *testing.T) {
	cp, err := openStore(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	run := seedRun(t, cp, 4)
	sf := &stateFake{fakeProvider: newFake(), states: map[string]providers.Subscription{
		"E000": {Found: true, Active: true, State: "Activate"},
		"E001": {Found: true, State: "Deactive"},
		"E002": {Found: true, State: "suspend"},
		"E003": {Found: true, Pending: true, State: "Pre-active"},
	}}
	e := &Engine{Checkpoint: cp, Lanes: map[string]*Lane{"fake": {Name: "fake", Client: stateLookup{sf}, Concurrency: 2, PollInterval: 5 * time.Millisecond}},
		Backoff: func(int) time.Duration { return time.Millisecond }}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if state, err := e.Run(ctx, run); err != nil || state != RunCompleted {
		t.Fatalf("state %s err %v", state, err)
	}
	// want: the row's final state and, for failures, the state named.
	want := map[string][2]string{"E000": {"succeeded"}, "E001": {"failed", `"Deactive"`}, "E002": {"failed", `"suspend"`}, "E003": {"succeeded"}}
	for _, st := range []State{Succeeded, Failed} {
		_ = cp.RowsIn(ctx, run.ID, st, func(r RowRecord) error {
			w := want[r.EID]
			if string(st) != w[0] {
				t.Errorf("%s: %s (%s), want %s", r.EID, st, r.ErrorMessage, w[0])
			}
			if st == Failed && (r.ErrorCode != providers.CodeConflict || !strings.Contains(r.ErrorMessage, w[1])) {
				t.Errorf("%s: %s %q, want conflict naming %s", r.EID, r.ErrorCode, r.ErrorMessage, w[1])
			}
			return nil
		})
	}
	for eid, n := range sf.sent {
		if n != 1 {
			t.Errorf("%s sent %d times", eid, n)
		}
	}
}
