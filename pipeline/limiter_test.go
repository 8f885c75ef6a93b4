package pipeline

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/simbulk/simbulk/providers"
)

// waitReturns reports whether Wait returns within d.
func waitReturns(a *adaptiveLimiter, d time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return a.Wait(ctx) == nil
}

// TestLimiterOutageCircuit runs in a synctest bubble: its pauses pass on
// the bubble's fake clock, at once and to the nanosecond.
func TestLimiterOutageCircuit(t *testing.T) { synctest.Test(t, testLimiterOutageCircuit) }

func testLimiterOutageCircuit(t *testing.T) {
	a := newAdaptiveLimiter(0)
	a.outageFailures, a.outageFirstPause, a.outageMaxPause = 3, 400*time.Millisecond, 1200*time.Millisecond

	// Failures below the threshold, then an answer: no outage.
	a.Trouble()
	a.Trouble()
	if a.OK() {
		t.Error("OK reported the end of an outage that never began")
	}
	if !waitReturns(a, 20*time.Millisecond) {
		t.Fatal("the lane is paused after two failures and an answer")
	}

	// Three failures in a row open the circuit for the first pause.
	a.Trouble()
	a.Trouble()
	if p := a.Trouble(); p != 400*time.Millisecond {
		t.Fatalf("third failure: pause %v, want 400ms", p)
	}
	if waitReturns(a, 100*time.Millisecond) {
		t.Fatal("Wait returned during the outage pause")
	}
	// After the pause exactly one caller goes: the probe.
	if !waitReturns(a, time.Second) {
		t.Fatal("no probe after the pause")
	}
	if waitReturns(a, 100*time.Millisecond) {
		t.Fatal("a second request went while the probe was out")
	}
	// The probe fails: the pause doubles.
	if !a.Down() {
		t.Error("Down is false during an outage")
	}
	if p := a.Trouble(); p != 800*time.Millisecond {
		t.Fatalf("failed probe: pause %v, want 800ms", p)
	}
	if waitReturns(a, 200*time.Millisecond) {
		t.Fatal("Wait returned during the doubled pause")
	}
	// The next probe is answered: every waiter goes again at once.
	if !waitReturns(a, 2*time.Second) {
		t.Fatal("no probe after the doubled pause")
	}
	var released atomic.Int32
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if waitReturns(a, time.Second) {
				released.Add(1)
			}
		}()
	}
	synctest.Wait() // every waiter is waiting for the probe
	if !a.OK() {
		t.Error("the probe's answer did not end the outage")
	}
	if a.Down() {
		t.Error("Down is true after the outage ended")
	}
	wg.Wait()
	if released.Load() != 5 {
		t.Errorf("%d of 5 waiters went on after the outage ended", released.Load())
	}

	// Pauses never exceed the maximum.
	for range 3 {
		a.Trouble()
	}
	for range 5 {
		if p := a.Trouble(); p > 1200*time.Millisecond {
			t.Fatalf("pause %v over the 1.2s maximum", p)
		}
	}
}

// outageFake refuses every request with 503 until recoverAt, then behaves
// like fakeProvider.
type outageFake struct {
	*fakeProvider
	recoverAt time.Time
	refused   atomic.Int64
}

func (o *outageFake) Submit(ctx context.Context, orders []providers.Order) []providers.Outcome {
	if time.Now().Before(o.recoverAt) {
		o.refused.Add(1)
		outs := make([]providers.Outcome, len(orders))
		for i := range outs {
			outs[i] = providers.Outcome{Status: providers.Failed, Err: &providers.Error{Code: providers.CodeServer, HTTPStatus: 503, Retryable: true}}
		}
		return outs
	}
	return o.fakeProvider.Submit(ctx, orders)
}

// TestOutageDoesNotSpendAttempts: the provider is down for longer than
// every row's attempts would last. The lane pauses instead of failing the
// rows, and every row succeeds once the provider is back.
//
// It runs in a synctest bubble (the checkpoint too): the outage, its
// pauses and the retries pass on the bubble's fake clock.
func TestOutageDoesNotSpendAttempts(t *testing.T) { synctest.Test(t, testOutageDoesNotSpendAttempts) }

func testOutageDoesNotSpendAttempts(t *testing.T) {
	cp, err := openStore(t.TempDir() + "/c.db")
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	run := seedRun(t, cp, 50)
	fake := &outageFake{fakeProvider: newFake(), recoverAt: time.Now().Add(700 * time.Millisecond)}
	e := &Engine{Checkpoint: cp, OutagePause: 50 * time.Millisecond,
		Lanes:   map[string]*Lane{"fake": {Name: "fake", Client: fake, Concurrency: 4, MaxAttempts: 3, PollInterval: 5 * time.Millisecond}},
		Backoff: func(int) time.Duration { return 10 * time.Millisecond }}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if state, err := e.Run(ctx, run); err != nil || state != RunCompleted {
		t.Fatalf("state %s err %v", state, err)
	}
	c, _ := cp.Counts(ctx, run.ID)
	if c[Succeeded] != 50 || c[Failed] != 0 {
		t.Errorf("counts %v: want all 50 succeeded; the outage spent the rows' attempts", c)
	}
	// Three attempts per row over 700ms of outage would be 150 refused
	// requests without the pause; with it, a handful of probes.
	if n := fake.refused.Load(); n >= 50 {
		t.Errorf("%d requests refused during the outage: the lane kept sending", n)
	}
	t.Logf("%d requests refused during the outage", fake.refused.Load())
}

// TestProviderDownStopsTheRun: a provider that never comes back (a wrong
// endpoint) ends the run after MaxOutage with ErrProviderDown, its rows
// still pending for a resume, none failed.
// It runs in a synctest bubble, on its fake clock.
func TestProviderDownStopsTheRun(t *testing.T) { synctest.Test(t, testProviderDownStopsTheRun) }

func testProviderDownStopsTheRun(t *testing.T) {
	cp, err := openStore(t.TempDir() + "/c.db")
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	run := seedRun(t, cp, 30)
	fake := &outageFake{fakeProvider: newFake(), recoverAt: time.Now().Add(time.Hour)}
	e := &Engine{Checkpoint: cp, OutagePause: 20 * time.Millisecond, MaxOutage: 200 * time.Millisecond,
		Lanes:   map[string]*Lane{"fake": {Name: "fake", Client: fake, Concurrency: 4, MaxAttempts: 2, PollInterval: 5 * time.Millisecond}},
		Backoff: func(int) time.Duration { return 5 * time.Millisecond }}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	state, err := e.Run(ctx, run)
	if !errors.Is(err, ErrProviderDown) || state != RunInterrupted {
		t.Fatalf("state %s err %v, want interrupted with ErrProviderDown", state, err)
	}
	if ctx.Err() != nil {
		t.Fatal("the run did not stop by itself")
	}
	c, _ := cp.Counts(context.Background(), run.ID)
	if c[Failed] != 0 || c[Pending] != 30 {
		t.Errorf("counts %v, want all 30 rows pending for the resume", c)
	}
	t.Logf("%v", err)
}

// TestLimiterShare: with other workers on the run, a lane sends at its
// share of the rate, and climbs back after a 429 to that share only; a
// pause another worker recorded holds here.
func TestLimiterShare(t *testing.T) { synctest.Test(t, testLimiterShare) }

func testLimiterShare(t *testing.T) {
	a := newAdaptiveLimiter(90)
	a.Share(3, 0)
	if got := a.Limit(); got != 30 {
		t.Fatalf("a third of 90/s: %v", got)
	}
	a.TooMany(0)
	for range 200 {
		a.OK()
	}
	if got := a.Limit(); got != 30 {
		t.Errorf("climbed back to %v/s, want the share, 30", got)
	}
	a.Share(1, 0) // the others left: climb back towards the whole rate
	for range 200 {
		a.OK()
	}
	if got := a.Limit(); got != 90 {
		t.Errorf("alone again: %v/s, want 90", got)
	}
	a.PauseFor(time.Second)
	if waitReturns(a, 900*time.Millisecond) {
		t.Error("sent during another worker's pause")
	}
	if !waitReturns(a, 200*time.Millisecond) {
		t.Error("still paused after the pause")
	}
}

// TestSeatsInterleave: three workers sharing a run's rate each send at
// their share, and their requests leave as one stream: no two of any
// worker closer than the whole rate's interval, however the workers'
// own turns fall.
func TestSeatsInterleave(t *testing.T) { synctest.Test(t, testSeatsInterleave) }

func testSeatsInterleave(t *testing.T) {
	const perSecond, workers, each = 90, 3, 45
	turn := time.Duration(math.Ceil(float64(time.Second) / perSecond))
	var mu sync.Mutex
	var left []time.Time
	var wg sync.WaitGroup
	for seat := range workers {
		a := newAdaptiveLimiter(perSecond)
		a.Share(workers, seat)
		// Each worker starts at its own moment, as processes do.
		time.Sleep(time.Duration(seat) * 7 * time.Millisecond)
		for range 4 { // a lane's concurrent senders
			wg.Go(func() {
				for range each / 4 {
					if err := a.Wait(t.Context()); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					left = append(left, time.Now())
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	slices.SortFunc(left, func(a, b time.Time) int { return a.Compare(b) })
	for i := 1; i < len(left); i++ {
		if gap := left[i].Sub(left[i-1]); gap < turn {
			t.Fatalf("requests %d and %d of the run left %v apart, want at least %v", i-1, i, gap, turn)
		}
	}
	second := 0
	for i := range left {
		j, _ := slices.BinarySearchFunc(left, left[i].Add(time.Second), func(a, b time.Time) int { return a.Compare(b) })
		second = max(second, j-i)
	}
	if second > perSecond {
		t.Errorf("%d requests in one second, over the run's %d", second, perSecond)
	}
	t.Logf("%d requests, at most %d in a second", len(left), second)
}

// TestSeatAt: a seat's turns are every n-th turn of the whole rate, the
// first at or after the time asked.
func TestSeatAt(t *testing.T) {
	turn := 10 * time.Millisecond
	at := func(ms int64) time.Time { return time.UnixMilli(ms) }
	for _, c := range []struct {
		from       int64
		n, seat    int
		wantMillis int64
	}{
		{1000, 3, 0, 1020}, // turn 100 is seat 1's (100 mod 3); seat 0 has 102
		{1000, 3, 1, 1000},
		{1000, 3, 2, 1010},
		{1001, 3, 1, 1030}, // just after a turn: the next of the seat's
		{1000, 1, 0, 1000},
		{1005, 1, 0, 1010},
	} {
		if got := seatAt(at(c.from), turn, c.n, c.seat); !got.Equal(at(c.wantMillis)) {
			t.Errorf("seatAt(%d ms, seat %d of %d) = %d ms, want %d", c.from, c.seat, c.n, got.UnixMilli(), c.wantMillis)
		}
	}
}

// TestPacedCountsRequests: a call the limiter spaced sends its first HTTP
// request at once, and each further request of the same call waits its
// own turn, so a lookup that reads twice costs two turns of the rate.
func TestPacedCountsRequests(t *testing.T) { synctest.Test(t, testPacedCountsRequests) }

func testPacedCountsRequests(t *testing.T) {
	a := newAdaptiveLimiter(10) // a turn every 100 ms
	ctx := context.Background()
	if err := a.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	paced := a.Paced(ctx)
	pace := providers.PacerFrom(paced)
	if pace == nil {
		t.Fatal("Paced set no pacer on the context")
	}
	var at []time.Duration
	for range 3 {
		if err := pace(paced); err != nil {
			t.Fatal(err)
		}
		at = append(at, time.Since(start))
	}
	if at[0] != 0 || at[1] != 100*time.Millisecond || at[2] != 200*time.Millisecond {
		t.Errorf("a call's requests left at %v; want 0, 100ms, 200ms", at)
	}
	if unlimited := newAdaptiveLimiter(0); unlimited.Paced(ctx) != ctx {
		t.Error("an unlimited lane paces requests")
	}

	// The probe of an open circuit makes its further requests at the
	// rate; it must not wait for its own answer.
	a.outageFailures, a.outageFirstPause = 1, 300*time.Millisecond
	if a.Trouble() == 0 {
		t.Fatal("one failure did not open the circuit")
	}
	if err := a.Wait(ctx); err != nil { // the probe's turn, after the pause
		t.Fatal(err)
	}
	probe := a.Paced(ctx)
	pace = providers.PacerFrom(probe)
	started := time.Now()
	for range 3 {
		if err := pace(probe); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(started); took != 200*time.Millisecond {
		t.Errorf("the probe's three requests took %v; want two turns, 200ms", took)
	}
}
