package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/simbulk/simbulk/providers"
)

// Provider is what the pipeline needs of a provider client: exactly
// providers.Client, which every client in providers/* satisfies; the
// pipeline never sees their wire formats.
type Provider = providers.Client

// Batcher is implemented by a Provider whose requests carry several orders
// only when they agree on the request's own fields (ThingSpace: account,
// service plan, place of use). Orders with equal keys may share a Submit;
// the engine batches by key, so each Submit is one request, each request
// waits for the rate limiter, and a manifest of all-different rows still
// spreads over every worker. It is the part of providers.Batcher the
// engine consumes: how many orders go in one Submit is the Lane's
// BatchSize, which the caller sets from the client's.
type Batcher interface {
	BatchKey(order providers.Order) string
}

// Lane is one provider's share of a run: its client and its limits.
type Lane struct {
	Name        string
	Client      Provider
	Concurrency int     // workers sending at once
	Rate        float64 // requests per second shared by all workers (0 = unlimited)
	BatchSize   int     // orders per Submit (ThingSpace takes up to 100)
	MaxAttempts int     // sends before a retryable failure becomes final
	// PollInterval is when accepted work is checked: this long after its
	// acceptance, and again this long after each look that found it not
	// done.
	PollInterval time.Duration
	// CompletionTimeout is how long accepted work may take before the row
	// fails as not_completed (retryable: a retry-failed run looks it up).
	CompletionTimeout time.Duration
}

// defaults fills the settings left zero. Call it on a copy: the caller's
// Lane is theirs.
func (l *Lane) defaults() {
	if l.Concurrency <= 0 {
		l.Concurrency = 8
	}
	if l.BatchSize <= 0 {
		l.BatchSize = 1
	}
	if l.MaxAttempts <= 0 {
		l.MaxAttempts = 5
	}
	if l.PollInterval <= 0 {
		l.PollInterval = time.Second
	}
	if l.CompletionTimeout <= 0 {
		l.CompletionTimeout = 15 * time.Minute
	}
}

// Engine drives a run's rows to final states.
type Engine struct {
	// Checkpoint records the run's rows (pipeline/sqlite or
	// pipeline/postgres).
	Checkpoint EngineStore
	Lanes      map[string]*Lane
	// MaxFailures stops the run early (RunAborted) once this many rows have
	// failed; zero means no limit.
	MaxFailures Threshold
	// Grace is how long requests in flight may finish after the context
	// is cancelled (SIGINT/SIGTERM).
	Grace   time.Duration
	Logger  *slog.Logger
	Backoff func(attempt int) time.Duration
	// OutagePause is how long a lane stops sending when its provider fails
	// request after request (then probes; each failed probe doubles the
	// pause, up to 24 times this). Zero means 5 seconds.
	OutagePause time.Duration
	// MaxOutage is how long a provider may fail every request before the
	// run stops with ErrProviderDown (rows left pending, resumable): an
	// endpoint that is wrong or gone should not keep a cron job alive
	// forever. Zero means 30 minutes.
	MaxOutage time.Duration
	// Now is the engine's clock (nil: time.Now): request latencies, retry
	// times, completion timeouts, outage lengths. Waits (pauses, polls,
	// Grace) are real durations; tests fake both with testing/synctest.
	Now func() time.Time
	// Notify, when set, is told what the engine notices about a provider
	// while the run goes on (down, answering again, refusing credentials),
	// besides the log line it writes. It may be called from several lanes
	// at once and must not block.
	Notify func(Notice)
	// Worker is this process as the run's worker (zero: NewWorker()).
	Worker Worker
	// LeaseTTL is how long the rows this worker holds stay its own
	// without a renewal: how long another worker waits before taking over
	// the rows of one that died. It must be well above a request's
	// timeout, since a request leaves with one lease ahead of it. Zero
	// means DefaultLeaseTTL.
	LeaseTTL time.Duration
	// Sole says this process holds the checkpoint's exclusive lock (a
	// SQLite file): any other worker recorded on the run is gone, and its
	// rows are taken over at once rather than when its lease expires.
	Sole bool
	// Observe, when set, is told of every call the engine makes to a
	// provider client as its answer comes back, for metrics: also the
	// calls the checkpoint does not record because their answer changed
	// nothing. It is called from many lanes and workers at once and must
	// not block.
	Observe func(Request)
}

// Request is one call the engine or the reconciler made to a provider
// client for a row. A Submit carrying several rows (a ThingSpace batch)
// is one Request per row, each with the batch's latency.
type Request struct {
	Provider string
	// Attempt is the call as the checkpoint records it when its answer
	// changes the row. A check answered "not yet" and a lookup that finds
	// nothing (so the row is sent) are observed but not recorded.
	Attempt Attempt
	// Retry is set when the answer put the row back to be tried again
	// for a retryable cause: sent again after a backoff, sent afresh
	// because the provider lost accepted work, or looked up again.
	Retry bool
}

// observe tells fn (Engine.Observe, Reconciler.Observe) of a call.
func observe(fn func(Request), provider string, a *attempt, retry bool) {
	if fn != nil {
		fn(Request{Provider: provider, Attempt: *a.record(), Retry: retry})
	}
}

// DefaultLeaseTTL is Engine.LeaseTTL when left zero: twice the longest
// default request timeout (providers.DefaultTimeout).
const DefaultLeaseTTL = time.Minute

// Notice is something the engine noticed about one provider during a run.
type Notice struct {
	Provider string
	Kind     NoticeKind
	// Pause is how long the provider's rows wait (NoticeProviderDown).
	Pause time.Duration
	// Message is the provider's last error code (NoticeProviderDown) or
	// its refusal (NoticeCredentialsRefused).
	Message string
}

// NoticeKind says what a Notice is about.
type NoticeKind string

// The kinds of Notice.
const (
	NoticeProviderDown       NoticeKind = "provider_down"
	NoticeProviderUp         NoticeKind = "provider_up"
	NoticeCredentialsRefused NoticeKind = "credentials_refused"
)

func (e *Engine) notify(n Notice) {
	if e.Notify != nil {
		e.Notify(n)
	}
}

// ErrProviderDown ends a run whose provider failed every request for
// longer than Engine.MaxOutage.
var ErrProviderDown = errors.New("provider down")

func (e *Engine) maxOutage() time.Duration {
	if e.MaxOutage > 0 {
		return e.MaxOutage
	}
	return 30 * time.Minute
}

// limiterFor builds a lane's limiter with the engine's outage settings.
func (e *Engine) limiterFor(lane *Lane) *adaptiveLimiter {
	lim := newAdaptiveLimiter(lane.Rate)
	lim.now = e.Now
	if e.OutagePause > 0 {
		lim.outageFirstPause, lim.outageMaxPause = e.OutagePause, 24*e.OutagePause
	}
	return lim
}

// Threshold is --max-failures: a count, or a percentage of the run's rows.
type Threshold struct {
	Count   int
	Percent float64
}

// Limit returns the number of failures that stops a run of total rows.
func (t Threshold) Limit(total int) int {
	switch {
	case t.Count > 0:
		return t.Count
	case t.Percent > 0:
		return max(1, int(t.Percent*float64(total)/100+0.999999))
	}
	return 0
}

// ExpBackoff is exponential backoff with full jitter: 1s, 2s, 4s ... capped
// at 2 minutes, each drawn uniformly below its ceiling so that rows that
// failed together do not come back together.
func ExpBackoff(attempt int) time.Duration {
	ceil := time.Second << min(attempt, 7)
	if ceil > 2*time.Minute {
		ceil = 2 * time.Minute
	}
	return time.Duration(rand.Int64N(int64(ceil))) + 100*time.Millisecond
}

// ErrThreshold is returned when the run stopped at --max-failures.
var ErrThreshold = errors.New("stopped at the failure threshold")

// Run drives every row of run to a final state, or until ctx is cancelled
// (then requests in flight get Grace to finish and the run is left
// interrupted) or the failure threshold is reached (run left aborted). It
// returns the run's state when it stopped. It fills the settings left zero
// into its own copy of e and of each Lane: the caller's are left as given.
func (e *Engine) Run(ctx context.Context, run Run) (RunState, error) {
	return e.withDefaults().run(ctx, run)
}

// withDefaults is a copy of e with the settings left zero filled in.
func (e *Engine) withDefaults() *Engine {
	c := *e
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Backoff == nil {
		c.Backoff = ExpBackoff
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Worker.ID == "" {
		c.Worker = NewWorker()
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	return &c
}

func (e *Engine) run(ctx context.Context, run Run) (RunState, error) {
	if err := e.Checkpoint.SetRunState(context.WithoutCancel(ctx), run.ID, RunRunning); err != nil {
		return RunInterrupted, err
	}
	w, err := e.Checkpoint.Join(ctx, run.ID, e.Worker, e.LeaseTTL, e.Sole)
	if err != nil {
		return RunInterrupted, err
	}
	if others, err := e.Checkpoint.Workers(ctx, run.ID); err == nil && len(others) > 1 {
		e.Logger.Info("joining the workers already on this run", "worker", w.ID, "workers", len(others))
	}
	if n, err := e.Checkpoint.ReclaimInFlight(ctx, run.ID); err != nil {
		return RunInterrupted, err
	} else if n > 0 {
		e.Logger.Info("rows were in flight when the run stopped; looking them up before sending anything again", "rows", n)
	}
	limit, failed, err := e.failureBudget(ctx, run.ID)
	if err != nil {
		return RunInterrupted, err
	}

	// stop ends the taking of new work; requests keep reqCtx until Grace
	// after the stop.
	stopCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	reqCtx, cancelReqs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelReqs()
	go func() {
		<-stopCtx.Done()
		grace := e.Grace
		if grace <= 0 {
			grace = 10 * time.Second
		}
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancelReqs()
		case <-reqCtx.Done():
		}
	}()

	r := &runner{e: e, run: run, worker: w.ID, stopCtx: stopCtx, reqCtx: reqCtx, failLimit: limit, stop: stop}
	r.failures.Store(int64(failed))
	r.leaseEnds.Store(e.Now().Add(e.LeaseTTL).UnixNano())
	var lanes []*laneRunner
	for _, given := range e.Lanes {
		lane := *given
		lane.defaults()
		laneCtx, stopLane := context.WithCancelCause(stopCtx)
		defer stopLane(nil)
		lanes = append(lanes, &laneRunner{runner: r, lane: &lane, limiter: e.limiterFor(&lane), stopCtx: laneCtx, stopLane: stopLane})
	}
	joining := r.keepUp(ctx, lanes) > 1
	// Looking from now on, the wait below included: workers that start
	// together each see only those that joined before them at first.
	stopKeepingUp := r.keepingUp(w.Expires, lanes)
	if joining {
		// Joining others: give them time for a look at the new count of
		// workers, and so their smaller shares of each rate, before
		// sending (two periods: a look may come late).
		sleep(stopCtx, 2*keepUpEvery)
	}
	var g errgroup.Group
	for _, ln := range lanes {
		g.Go(ln.drive)
	}
	err = g.Wait()
	cancelReqs()
	stopKeepingUp()
	if lerr := e.Checkpoint.Leave(context.WithoutCancel(ctx), run.ID, w.ID); lerr != nil && err == nil {
		err = lerr
	}

	state := RunCompleted
	switch {
	case err != nil:
		state = RunInterrupted
	case errors.Is(context.Cause(stopCtx), ErrLeaseLost):
		state, err = RunInterrupted, context.Cause(stopCtx)
	case errors.Is(context.Cause(stopCtx), ErrProviderDown):
		state, err = RunInterrupted, context.Cause(stopCtx)
	case errors.Is(context.Cause(stopCtx), ErrThreshold):
		state = RunAborted
	case ctx.Err() != nil:
		state = RunInterrupted
	default:
		c, cerr := e.Checkpoint.Counts(context.WithoutCancel(ctx), run.ID)
		if cerr != nil {
			err = cerr
			state = RunInterrupted
		} else if c[Pending]+c[InFlight]+c[Accepted] > 0 {
			state = RunInterrupted
		}
	}
	if state == RunInterrupted && e.othersAtWork(context.WithoutCancel(ctx), run.ID) {
		// The run goes on without this worker: it is not interrupted.
		return state, err
	}
	if serr := e.Checkpoint.SetRunState(context.WithoutCancel(ctx), run.ID, state); serr != nil && err == nil {
		err = serr
	}
	return state, err
}

// othersAtWork reports whether other workers are still working on the
// run (this one has left it).
func (e *Engine) othersAtWork(ctx context.Context, runID string) bool {
	ws, err := e.Checkpoint.Workers(ctx, runID)
	return err == nil && len(ws) > 0
}

// failureBudget returns the run's failure threshold (0: none) and how many
// of its rows have failed already. Counting every row of a run reads an
// index entry per row, a wait before a million-row run can resume, so it
// is done only for a percentage threshold.
func (e *Engine) failureBudget(ctx context.Context, runID string) (limit, failed int, err error) {
	switch {
	case e.MaxFailures.Count > 0:
		failed, err = e.Checkpoint.CountState(ctx, runID, Failed)
		return e.MaxFailures.Count, failed, err
	case e.MaxFailures.Percent > 0:
		counts, err := e.Checkpoint.Counts(ctx, runID)
		if err != nil {
			return 0, 0, err
		}
		return e.MaxFailures.Limit(counts.Total() - counts[Invalid] - counts[Skipped]), counts[Failed], nil
	}
	return 0, 0, nil
}

// runner is the state of one Engine.Run shared by its lanes.
type runner struct {
	e      *Engine
	run    Run
	worker string // this worker's id
	// leaseEnds is when this worker's lease ends (unix nanoseconds, the
	// engine's clock) unless renewed: how long it may keep results the
	// checkpoint cannot take.
	leaseEnds atomic.Int64
	stopCtx   context.Context // done: take no new work
	reqCtx    context.Context // done: abandon requests in flight
	stop      context.CancelCauseFunc
	failLimit int
	failures  atomic.Int64
	// seenOthers: other workers have been seen on the run, whose accepted
	// rows may come free for this one to follow (see follow).
	seenOthers atomic.Bool
}

func (r *runner) failed(n int) {
	if n == 0 || r.failLimit == 0 {
		return
	}
	if r.failures.Add(int64(n)) >= int64(r.failLimit) {
		r.stop(ErrThreshold)
	}
}

// laneRunner sends one provider's rows and learns their completion.
type laneRunner struct {
	*runner
	lane    *Lane // the run's copy, defaults filled in
	limiter *adaptiveLimiter
	// stopCtx is done when the run stops or this lane alone does (its
	// provider refused simbulk's credentials); it shadows the run's.
	stopCtx  context.Context
	stopLane context.CancelCauseFunc

	// follows are the accepted rows the lane checks itself (follow).
	follows *followQueue
	// outcomes go to the recorder (recordLater).
	outcomes chan recording
	// idle hears when the lane holds no row any more (release).
	idle chan struct{}
	// outages counts the pauses the lane's failures started (noteAnswer):
	// batches prepared before one are not sent into it (deliver).
	outages atomic.Int64
	// credentialsTold is set by the first refusal of the credentials:
	// senders and the follower may meet it at once, and the operator is
	// told once.
	credentialsTold atomic.Bool

	mu   sync.Mutex
	busy map[int]bool // rows handed to a sender or followed, and not yet recorded
	// released are rows whose worker has recorded them but that stay busy
	// until the next Claim starts: a query already running reads a
	// snapshot from before that commit and may still return them pending.
	released []int
}

func (l *laneRunner) drive() error {
	l.busy = map[int]bool{}
	l.follows = newFollowQueue()
	l.idle = make(chan struct{}, 1)
	l.outcomes = make(chan recording, 2*l.lane.Concurrency)
	recorded := make(chan error, 1)
	go func() { recorded <- l.recorder() }()
	var g errgroup.Group
	g.Go(l.send)
	g.Go(l.follow)
	err := g.Wait()
	// Both are done, and so are their workers: nothing more is recorded.
	close(l.outcomes)
	if rerr := <-recorded; err == nil {
		err = rerr
	}
	var ce *CredentialsError
	if err == nil && errors.As(context.Cause(l.stopCtx), &ce) {
		err = ce
	}
	return err
}

// CredentialsError ends a run whose provider refused simbulk's own
// credentials (its token endpoint or session login). That provider's lane
// stopped at once, its rows untouched and pending; the other lanes went on.
// Asking again with the same credentials cannot help and may lock the
// customer's account, so the run ends for a person to fix the config.
type CredentialsError struct {
	Provider string
	Cause    *providers.Error
}

func (e *CredentialsError) Error() string {
	return fmt.Sprintf("%s refused simbulk's credentials (%s); nothing more was sent to it and its rows wait",
		e.Provider, e.Cause.Message)
}

// refused stops the lane when pe says the provider refused simbulk's
// credentials, and reports whether it did.
func (l *laneRunner) refused(pe *providers.Error) bool {
	if pe == nil || pe.Code != providers.CodeCredentials {
		return false
	}
	if l.stopCtx.Err() == nil && l.credentialsTold.CompareAndSwap(false, true) {
		l.e.Logger.Error("provider refused simbulk's credentials; stopping its lane", "provider", l.lane.Name, "error", pe.Message)
		l.e.notify(Notice{Provider: l.lane.Name, Kind: NoticeCredentialsRefused, Message: pe.Message})
	}
	l.stopLane(&CredentialsError{Provider: l.lane.Name, Cause: pe})
	return true
}

// orderOf builds the provider's view of a row.
func orderOf(r RowRecord) providers.Order {
	return providers.Order{Key: r.RunID + "/" + strconv.Itoa(r.Row), EID: r.EID, ICCID: r.ICCID, CLI: r.CLI, IMEI: r.IMEI, Fields: r.Fields}
}

// keepUpEvery is how often a worker looks at the other workers of its run
// (to take its share of each provider's rate) and at the pauses they
// recorded.
const keepUpEvery = time.Second

// keepUp takes one look at the run's other workers: each lane's rate is
// shared among the live workers, and pauses recorded by any of them hold
// here too. It returns how many workers there are (0 when it could not
// look; the next look will).
func (r *runner) keepUp(ctx context.Context, lanes []*laneRunner) int {
	ws, err := r.e.Checkpoint.Workers(ctx, r.run.ID)
	if err != nil {
		return 0
	}
	pauses, err := r.e.Checkpoint.ProviderPauses(ctx, r.run.ID)
	if err != nil {
		return 0
	}
	seat := slices.IndexFunc(ws, func(w Worker) bool { return w.ID == r.worker })
	if len(ws) > 1 {
		r.seenOthers.Store(true)
	}
	for _, ln := range lanes {
		ln.limiter.Share(len(ws), max(seat, 0))
		if d := pauses[ln.lane.Name]; d > 0 {
			ln.limiter.PauseFor(d)
		}
	}
	return len(ws)
}

// keepingUp renews the worker's lease every third of LeaseTTL, and looks
// at the others (keepUp) every keepUpEvery, until the returned stop is
// called. A renewal that finds the lease expired, or no renewal for as
// long as the lease lasts (the checkpoint unreachable), stops the run
// with ErrLeaseLost: other workers may hold its rows by now, so it must
// send none of them.
func (r *runner) keepingUp(expires time.Time, lanes []*laneRunner) (stop func()) {
	ctx, cancel := context.WithCancel(r.stopCtx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(min(keepUpEvery, r.e.LeaseTTL/3))
		defer t.Stop()
		renewed := r.e.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			r.keepUp(ctx, lanes)
			if r.e.Now().Sub(renewed) < r.e.LeaseTTL/3 {
				continue
			}
			asked := r.e.Now()
			w, err := r.e.Checkpoint.Renew(ctx, r.run.ID, r.worker)
			switch {
			case err == nil:
				// Counted from before asking: the checkpoint's clock
				// started the new lease no earlier.
				expires, renewed = w.Expires, asked
				r.leaseEnds.Store(asked.Add(r.e.LeaseTTL).UnixNano())
			case errors.Is(err, ErrLeaseLost):
				r.stop(fmt.Errorf("%w: this worker's rows may be another's now; it stops and the others carry on", ErrLeaseLost))
				return
			case ctx.Err() == nil:
				r.e.Logger.Warn("could not renew this worker's lease; retrying", "error", err.Error(), "expires", expires)
				if !r.e.Now().Before(expires) {
					r.stop(fmt.Errorf("%w: not renewed before it expired (%v)", ErrLeaseLost, err))
					return
				}
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// retry runs a checkpoint operation until it succeeds, ctx ends, or this
// worker's lease ends: a checkpoint out of reach for a moment (a
// PostgreSQL restart, a dropped connection) delays the rollout instead of
// ending it, and the worker keeps what it has to record meanwhile. Once
// the lease has ended, other workers may hold its rows and learn their
// outcome themselves (rows in flight are looked up), so it gives up.
func (r *runner) retry(ctx context.Context, what string, op func() error) error {
	wait := 100 * time.Millisecond
	for {
		err := op()
		if err == nil || errors.Is(err, ErrLeaseLost) || ctx.Err() != nil {
			return err
		}
		if !r.e.Now().Add(wait).Before(time.Unix(0, r.leaseEnds.Load())) {
			return fmt.Errorf("%w (gave up: this worker's lease has ended)", err)
		}
		r.e.Logger.Warn("checkpoint out of reach; retrying while this worker's lease lasts", "doing", what, "error", err.Error())
		sleep(ctx, wait)
		wait = min(2*wait, 2*time.Second)
	}
}
