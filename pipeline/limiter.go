package pipeline

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/simbulk/simbulk/providers"
)

// adaptiveLimiter is a provider's shared rate limit that backs off when the
// provider answers 429 and climbs back to the configured rate as requests
// succeed (additive increase, multiplicative decrease). A 429's
// Retry-After also pauses every worker of the lane, not just the one that
// was told: the provider is telling the client, not the request.
//
// It also notices an outage. A provider that fails request after request
// (5xx, timeouts, refused connections) is down, not busy, and every row
// sent to it spends one of its attempts: a ten-minute outage at 2 a.m.
// would fail a whole rollout. After outageFailures such failures in a row
// the lane stops sending (the circuit opens) for a pause, then lets a
// single request through as a probe. An answer closes the circuit; another
// failure doubles the pause, up to outageMaxPause. Rows wait meanwhile
// without spending attempts.
type adaptiveLimiter struct {
	rate float64 // the lane's configured rate, for the whole run; 0 = unlimited
	lim  *rate.Limiter
	now  func() time.Time // the clock of pauses and outages (nil: time.Now)

	outageFailures   int
	outageFirstPause time.Duration
	outageMaxPause   time.Duration

	// paceMu serialises requests leaving (see Depart); lastSent is when
	// the last one left.
	paceMu   sync.Mutex
	lastSent time.Time

	// workers and seat place this worker's departures on the run's
	// schedule (see Share and Depart): of every workers turns of the whole
	// rate, the seat-th is this worker's. Guarded by paceMu.
	workers, seat int

	mu          sync.Mutex
	target      float64 // this worker's share of rate (see Share)
	pausedUntil time.Time
	troubles    int           // server-side failures since the last answer
	outage      bool          // circuit open
	outageSince time.Time     // when it opened
	pause       time.Duration // the current outage pause
	probeSince  time.Time     // a probe is out since then (zero: none)
	probeDone   chan struct{} // closed when the probe's outcome is known
}

// Outage detection defaults; see adaptiveLimiter.
const (
	defaultOutageFailures = 5 // at most the default max_attempts, so even a lone row waits
	defaultOutagePause    = 5 * time.Second
	defaultOutageMaxPause = 2 * time.Minute
)

func newAdaptiveLimiter(perSecond float64) *adaptiveLimiter {
	a := &adaptiveLimiter{rate: perSecond, target: perSecond, outageFailures: defaultOutageFailures,
		outageFirstPause: defaultOutagePause, outageMaxPause: defaultOutageMaxPause, probeDone: make(chan struct{})}
	if perSecond > 0 {
		// Burst 1: the configured rate is a promise to the provider, and a
		// burst at start would spend it in one go.
		a.lim = rate.NewLimiter(rate.Limit(perSecond), 1)
	} else {
		a.lim = rate.NewLimiter(rate.Inf, 1)
	}
	return a
}

func (a *adaptiveLimiter) clock() time.Time {
	if a.now != nil {
		return a.now()
	}
	return time.Now()
}

// Wait blocks until the lane may send one request now: Turn, then
// Depart. A request that is recorded between the two (an intent) waits
// for them apart, Depart just before it leaves.
func (a *adaptiveLimiter) Wait(ctx context.Context) error {
	if err := a.Turn(ctx); err != nil {
		return err
	}
	return a.Depart(ctx)
}

// Turn blocks until the lane's rate gives the caller a request: after any
// pause, and during an outage until this caller is the probe or the probe
// answered.
func (a *adaptiveLimiter) Turn(ctx context.Context) error {
	for {
		a.mu.Lock()
		until := a.pausedUntil
		changed := a.probeDone // closed when the outage state changes
		now := a.clock()
		probeTime := a.outage && !now.Before(until)
		if probeTime && (a.probeSince.IsZero() || now.Sub(a.probeSince) > a.outageMaxPause) {
			// This caller is the probe. (A probe whose outcome never came,
			// because its worker stopped, must not hold the lane shut:
			// after the longest pause another caller probes.)
			a.probeSince = now
			a.mu.Unlock()
			return a.lim.Wait(ctx)
		}
		a.mu.Unlock()
		d := until.Sub(now)
		if !probeTime && d <= 0 {
			return a.lim.Wait(ctx)
		}
		var timer *time.Timer
		var wake <-chan time.Time // nil while waiting for the probe alone
		if d > 0 {
			timer = time.NewTimer(d)
			wake = timer.C
		}
		select {
		case <-ctx.Done():
		case <-wake:
		case <-changed:
		}
		if timer != nil {
			timer.Stop()
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// Paced returns ctx carrying a pacer for one provider call that Wait (or
// Turn and Depart) has already spaced: the call's first HTTP request goes
// at once, each further one (a lookup that reads twice, a token request,
// a resend after a 401) waits its own turn of the rate, so the rate counts
// requests, not calls. It honours a pause (a 429's Retry-After) but not
// the outage circuit: the call is the circuit's probe or passed it, and a
// probe must not wait for its own answer.
func (a *adaptiveLimiter) Paced(ctx context.Context) context.Context {
	if a.lim.Limit() == rate.Inf {
		return ctx
	}
	var requests atomic.Int32
	return providers.WithPacer(ctx, func(ctx context.Context) error {
		if requests.Add(1) == 1 {
			return nil
		}
		return a.paceFurther(ctx)
	})
}

// paceFurther waits out a pause, then for a turn of the rate.
func (a *adaptiveLimiter) paceFurther(ctx context.Context) error {
	a.mu.Lock()
	until, outage := a.pausedUntil, a.outage
	a.mu.Unlock()
	if d := until.Sub(a.clock()); d > 0 && !outage {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	if err := a.lim.Wait(ctx); err != nil {
		return err
	}
	return a.Depart(ctx)
}

// Depart spaces a request from the lane's previous one by the current
// interval, measured when it leaves. Turns alone are handed out by when
// they were reserved: a process stalled for a moment (a busy host, a
// collection, a slow commit of the intents) would then release every
// request whose turn came meanwhile at once, a burst the provider counts
// against its limit.
//
// With other workers on the run, the request also waits for this worker's
// next seat on the run's schedule (see seatAt), so that the workers'
// requests interleave as one stream instead of each worker's own spacing
// letting theirs bunch together.
func (a *adaptiveLimiter) Depart(ctx context.Context) error {
	limit := a.lim.Limit()
	if limit == rate.Inf || limit <= 0 {
		return nil
	}
	a.paceMu.Lock()
	defer a.paceMu.Unlock()
	now := a.clock()
	next := a.lastSent.Add(time.Duration(float64(time.Second) / float64(limit)))
	if a.workers > 1 {
		// Rounded up: a turn a nanosecond short fits one request more
		// in a second than the rate.
		turn := time.Duration(math.Ceil(float64(time.Second) / a.rate))
		// Half a turn early still rounds up to the seat the interval
		// meant, not the one after it.
		from := next.Add(-turn / 2)
		if from.Before(now) {
			from = now
		}
		next = seatAt(from, turn, a.workers, a.seat)
	}
	if !next.After(now) {
		a.lastSent = now
		return nil
	}
	t := time.NewTimer(next.Sub(now))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	// The turn as scheduled, not as the timer woke: a timer's lateness
	// must not pile up into a slower rate.
	a.lastSent = next
	return nil
}

// Trouble records a request that failed on the provider's side (5xx,
// timeout, connection refused or dropped). It returns the pause when this
// failure opened the circuit or failed the probe, else 0.
func (a *adaptiveLimiter) Trouble() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.troubles++
	switch {
	case a.outage && !a.probeSince.IsZero():
		// The probe (or a request from before the pause) failed.
		a.pause = min(2*a.pause, a.outageMaxPause)
	case !a.outage && a.troubles >= a.outageFailures:
		a.outage = true
		a.outageSince = a.clock()
		a.pause = a.outageFirstPause
	default:
		return 0
	}
	a.pausedUntil = a.clock().Add(a.pause)
	a.probeSince = time.Time{}
	a.wakeWaiters()
	return a.pause
}

// wakeWaiters lets goroutines waiting for a probe look again. Call with
// a.mu held.
func (a *adaptiveLimiter) wakeWaiters() {
	close(a.probeDone)
	a.probeDone = make(chan struct{})
}

// Down reports whether the lane is in an outage (circuit open).
func (a *adaptiveLimiter) Down() bool {
	return a.DownFor() > 0
}

// DownFor is how long the current outage has lasted, 0 when there is none.
func (a *adaptiveLimiter) DownFor() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.outage {
		return 0
	}
	return max(a.clock().Sub(a.outageSince), time.Nanosecond)
}

// answered records that the provider answered (success or a refusal of
// its own): it is up. It returns true when this closed an outage.
func (a *adaptiveLimiter) answered() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.troubles = 0
	if !a.outage {
		return false
	}
	a.outage = false
	a.pause = 0
	a.probeSince = time.Time{}
	a.pausedUntil = time.Time{}
	a.wakeWaiters()
	return true
}

// TooMany slows the lane down after a 429.
func (a *adaptiveLimiter) TooMany(retryAfter time.Duration) {
	a.answered() // busy, but up
	a.mu.Lock()
	defer a.mu.Unlock()
	if retryAfter > 0 {
		if until := a.clock().Add(retryAfter); until.After(a.pausedUntil) {
			a.pausedUntil = until
		}
	}
	if a.target > 0 {
		a.lim.SetLimit(max(rate.Limit(a.target/20), a.lim.Limit()/2))
	}
}

// Share makes this worker's rate its share of the lane's when workers
// work on the run at once: a provider's rate holds for the whole run,
// however many processes send to it. seat is this worker's place among
// them (0 to workers-1, the same order for every worker), which gives
// it its turns of the run's schedule (see Depart).
func (a *adaptiveLimiter) Share(workers, seat int) {
	if a.rate <= 0 || workers < 1 {
		return
	}
	a.paceMu.Lock()
	a.workers, a.seat = workers, seat%workers
	a.paceMu.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.target = a.rate / float64(workers)
	if float64(a.lim.Limit()) > a.target {
		a.lim.SetLimit(rate.Limit(a.target))
	}
}

// seatAt is the first of a seat's turns at or after t. The run's schedule
// divides time, counted from the Unix epoch on every host's clock, into
// turns of the whole rate's interval, dealt out to the workers in turn:
// seat s of n has turns s, s+n, s+2n, ... Workers that share a clock (one
// host, or hosts kept in step by NTP) then never send in the same turn, and
// the run's requests leave as one evenly spaced stream, without asking the
// checkpoint for each. While workers come and go the seats are dealt
// again; for a moment two may hold one turn, a burst of two, never more
// than the rate in total (a newcomer waits until the others have made
// room, see Engine.Run).
func seatAt(t time.Time, turn time.Duration, n, seat int) time.Time {
	if turn <= 0 || n < 1 {
		return t
	}
	ns := t.UnixNano()
	k := ns / int64(turn) // the turn t falls in
	if ns%int64(turn) != 0 {
		k++ // round up: never before t
	}
	// The first k' >= k with k' = seat (mod n).
	k += ((int64(seat)-k)%int64(n) + int64(n)) % int64(n)
	return time.Unix(0, k*int64(turn))
}

// PauseFor pauses the lane for d from now, unless it is paused longer
// already: a pause another worker was told of (a 429's Retry-After, an
// outage), which holds for every worker of the run.
func (a *adaptiveLimiter) PauseFor(d time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if until := a.clock().Add(d); until.After(a.pausedUntil) {
		a.pausedUntil = until
		a.wakeWaiters()
	}
}

// OK lets the lane speed up again after a request that was not refused.
// It returns true when the answer ended an outage.
func (a *adaptiveLimiter) OK() bool {
	recovered := a.answered()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.target <= 0 {
		return recovered
	}
	cur := a.lim.Limit()
	if float64(cur) < a.target {
		a.lim.SetLimit(min(rate.Limit(a.target), cur+rate.Limit(a.target/50)))
	}
	return recovered
}

// Limit is the current rate (requests per second); +Inf when unlimited.
func (a *adaptiveLimiter) Limit() float64 { return float64(a.lim.Limit()) }
