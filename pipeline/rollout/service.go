// Package rollout is the rollout as a service other code calls in
// process: find or create the run of a manifest, load it, drive it with
// the engine, re-drive its failures, reconcile it, and write its reports,
// telling the caller what happens as a stream of events. The simbulk
// command is one caller (it parses flags, builds lanes from its config and
// renders the events as a progress bar or log lines); a web console can
// be another.
//
// It is a package of its own, not part of pipeline, because it brings
// together what pipeline must not depend on: the manifest readers' file
// handling (FIFOs, standard input) and the reports package, which itself
// reads runs through pipeline.
//
// The service knows neither the config format nor how provider clients
// are built: the caller supplies lanes through a LaneFactory and the
// ingest settings through Validate.
package rollout

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/simbulk/simbulk/ingest"
	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/providers"
	"github.com/simbulk/simbulk/reports"
)

// LaneFactory builds a lane for each provider a run uses (the providers
// are sorted names). closeLanes stops what the clients run (a callback
// listener); the service calls it when the run stops.
type LaneFactory func(ctx context.Context, used []string) (lanes map[string]*pipeline.Lane, closeLanes func(), err error)

// Service runs rollouts against one checkpoint.
type Service struct {
	// Store is the open checkpoint.
	Store pipeline.Store
	// Lanes builds the provider lanes of a run.
	Lanes LaneFactory
	// Validate returns the ingest settings for rows read with this
	// provider override ("" for none). Nil means ingest's defaults.
	Validate func(provider string) ingest.ValidateOptions
	// Lock, when set, is taken before a rollout or reconciliation works on
	// the checkpoint, and released when it stops: one process at a time
	// may drive a checkpoint. With Shared, it is held only while a run is
	// found, created or loaded.
	Lock func(ctx context.Context) (unlock func(), err error)
	// Shared says other processes, on this host or others, may work on
	// the same run at once (a PostgreSQL checkpoint): each rollout is one
	// worker among them, sharing the rows through leases. Without it, the
	// Lock holder is the run's only worker.
	Shared bool
	// LeaseTTL is the engine's (pipeline.Engine.LeaseTTL).
	LeaseTTL time.Duration
	// Logger gets the service's and the engine's log lines (nil: none).
	Logger *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Planner says how Plan counts a provider's requests; nil: one row a
	// request, no rate, nothing missing.
	Planner Planner
}

// Options shape one rollout.
type Options struct {
	// Name is what the caller calls the manifest given to Start (recorded,
	// made absolute, as the run's manifest; "-" stays "-"). Empty: the
	// path given.
	Name string
	// Provider is the provider of every row, for manifests without a
	// provider column; Sheet the XLSX sheet to read. Resume and
	// RetryFailed take both from the run.
	Provider, Sheet string
	// MaxFailures stops the run early (RunAborted).
	MaxFailures pipeline.Threshold
	// MaxOutage and Grace are the engine's (see pipeline.Engine).
	MaxOutage, Grace time.Duration
	// WriteReports writes the run's reports into ReportsDir/<run-id>/
	// when it stops, however it stopped.
	WriteReports bool
	ReportsDir   string
	// Events, when set, receives what happens, one call at a time and in
	// order; it must not block for long.
	Events func(Event)
	// ProgressEvery is how often a Progress event reports the run's
	// counts while the engine runs; zero means no Progress events.
	ProgressEvery time.Duration
	// LogAttrs are added to the "rollout starting" log line.
	LogAttrs []any
	// Observe is the engine's (see pipeline.Engine): told of every
	// provider request, from many workers at once; it must not block.
	Observe func(pipeline.Request)
}

// Result is how a rollout ended.
type Result struct {
	Run pipeline.Run
	// State is where the run stands: completed, interrupted (stopped by
	// ctx, or by ErrProviderDown or a *pipeline.CredentialsError), or
	// aborted at the failure threshold.
	State pipeline.RunState
	// Counts are the run's rows by state at the end; nil when they could
	// not be read.
	Counts pipeline.Counts
	// AlreadyComplete is set when Start found this manifest's run already
	// complete: nothing was sent.
	AlreadyComplete bool
	// Redriven is how many failed rows RetryFailed put back to pending.
	Redriven int64
	// Interrupted is set when ctx was done by the time the run stopped.
	Interrupted bool
	// Reports are the files written (Options.WriteReports), ReportsErr why
	// they were not.
	Reports    reports.Files
	ReportsErr error
}

// Failed reports whether some rows failed or are invalid.
func (r Result) Failed() bool { return r.Counts[pipeline.Failed]+r.Counts[pipeline.Invalid] > 0 }

// ErrInterrupted is returned when ctx ended a rollout before its rows
// were loaded (nothing was sent, and the same call loads them afresh), or
// ended a reconciliation (what it checked is recorded, and the same call
// resumes it).
var ErrInterrupted = errors.New("interrupted")

func (s *Service) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// lock takes the Lock; the unlock it returns may be called more than
// once (drive releases a shared run's lock early, the caller's defer
// again).
func (s *Service) lock(ctx context.Context) (func(), error) {
	if s.Lock == nil {
		return func() {}, nil
	}
	unlock, err := s.Lock(ctx)
	if err != nil {
		return nil, err
	}
	return sync.OnceFunc(unlock), nil
}

// emitter serialises a rollout's events.
type emitter struct {
	mu sync.Mutex
	fn func(Event)
}

func (e *emitter) emit(ev Event) {
	if e == nil || e.fn == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fn(ev)
}

// Start finds the run of the manifest at path (a regular file: see
// LocalManifest) for its content and options, or creates it, loads it if
// it is not loaded, and drives it. A run of the same content already
// complete is not run again (Result.AlreadyComplete).
func (s *Service) Start(ctx context.Context, path string, opts Options) (Result, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	name := opts.Name
	if name == "" {
		name = path
	}
	run, err := s.findOrCreateRun(ctx, path, name, opts)
	if err != nil {
		return Result{}, err
	}
	res, err := s.drive(ctx, run, path, opts, unlock)
	if run.State == pipeline.RunCompleted {
		res.AlreadyComplete = true
	}
	return res, err
}

// Resume continues the run runID (a unique prefix is enough) where it
// stopped.
func (s *Service) Resume(ctx context.Context, runID string, opts Options) (Result, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	run, err := s.Store.Run(ctx, runID)
	if err != nil {
		return Result{}, err
	}
	return s.resume(ctx, run, opts, unlock)
}

// RetryFailed puts the failed rows of run runID back to pending (only
// those that failed for a retryable cause unless all) and drives the run.
func (s *Service) RetryFailed(ctx context.Context, runID string, all bool, opts Options) (Result, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	run, err := s.Store.Run(ctx, runID)
	if err != nil {
		return Result{}, err
	}
	n, err := s.Store.Redrive(ctx, run.ID, all)
	if err != nil {
		return Result{}, err
	}
	s.logger().Info("re-queued failed rows", "run", run.ID, "rows", n, "all", all)
	if run, err = s.Store.Run(ctx, run.ID); err != nil {
		return Result{}, err
	}
	res, err := s.resume(ctx, run, opts, unlock)
	res.Redriven = n
	return res, err
}

func (s *Service) resume(ctx context.Context, run pipeline.Run, opts Options, unlock func()) (Result, error) {
	opts.Provider, opts.Sheet = run.Options.Provider, run.Options.Sheet
	return s.drive(ctx, run, run.Manifest, opts, unlock)
}

// findOrCreateRun resumes the unfinished run of this manifest's content,
// or starts a new one. path is a regular file with the manifest's
// content; name is what the caller called it, recorded as the run's
// manifest.
func (s *Service) findOrCreateRun(ctx context.Context, path, name string, o Options) (pipeline.Run, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return pipeline.Run{}, err
	}
	if name != "-" {
		if name, err = filepath.Abs(name); err != nil {
			return pipeline.Run{}, err
		}
	}
	fp, err := pipeline.Fingerprint(abs, "provider="+o.Provider, "sheet="+o.Sheet)
	if err != nil {
		return pipeline.Run{}, err
	}
	if run, ok, err := s.Store.UnfinishedRun(ctx, fp); err != nil || ok {
		if ok {
			s.logger().Info("resuming the unfinished run of this manifest", "run", run.ID, "state", run.State)
		}
		return run, err
	}
	if run, ok, err := s.Store.LatestRun(ctx, fp); err != nil || ok {
		return run, err
	}
	r, err := ingest.OpenContext(ctx, abs, ingest.OpenOptions{Sheet: o.Sheet})
	if err != nil {
		return pipeline.Run{}, err
	}
	header := r.Header().Names
	r.Close()
	return s.Store.CreateRun(ctx, fp, name, header, pipeline.RunOptions{Provider: o.Provider, Sheet: o.Sheet})
}

func (s *Service) validate(provider string) ingest.ValidateOptions {
	if s.Validate == nil {
		return ingest.ValidateOptions{Provider: provider}
	}
	return s.Validate(provider)
}

// drive loads run (from path) if it is not loaded, runs it unless it is
// complete, and finishes it. With Shared, unlock is called once the run is
// loaded: from then on the rows are shared through leases, and other
// processes may join.
func (s *Service) drive(ctx context.Context, run pipeline.Run, path string, opts Options, unlock func()) (Result, error) {
	ev := &emitter{fn: opts.Events}
	ev.emit(Opened{Run: run})
	if !run.Loaded {
		// A resumed run whose load was cut short reads its manifest
		// again, which may be a FIFO: spool it as Start's caller does.
		local, cleanup, err := LocalManifest(ctx, path)
		if err != nil {
			return Result{}, err
		}
		defer cleanup()
		if err := s.load(ctx, run, local, opts, ev); err != nil {
			return Result{}, err
		}
		run.Loaded = true
	}
	if s.Shared {
		unlock()
	}
	if run.State == pipeline.RunCompleted {
		return s.finish(ctx, run, run.State, opts, ev)
	}

	used, err := s.Store.OpenProviders(ctx, run.ID)
	if err != nil {
		return Result{}, err
	}
	lanes, closeLanes, err := s.Lanes(ctx, used)
	if err != nil {
		return Result{}, err
	}
	defer closeLanes()

	engine := &pipeline.Engine{Checkpoint: s.Store, Lanes: lanes, MaxFailures: opts.MaxFailures, Logger: s.logger(),
		Grace: opts.Grace, MaxOutage: opts.MaxOutage, Now: s.Now, Observe: opts.Observe, Sole: !s.Shared, LeaseTTL: s.LeaseTTL,
		Notify: func(n pipeline.Notice) { ev.emit(ProviderNotice{RunID: run.ID, Notice: n}) }}
	attrs := append([]any{"run", run.ID, "manifest", run.Manifest, "providers", strings.Join(used, ",")}, opts.LogAttrs...)
	s.logger().Info("rollout starting", attrs...)
	ev.emit(Started{Run: run, Providers: used})
	stopProgress := s.progress(ctx, run.ID, opts.ProgressEvery, ev)
	state, err := engine.Run(ctx, run)
	stopProgress()
	s.recordRefusedCallbacks(ctx, run.ID, lanes)
	var refused *pipeline.CredentialsError
	if errors.Is(err, pipeline.ErrProviderDown) || errors.As(err, &refused) {
		// The reports of the state so far, then the reason: the rows
		// wait for the provider (or for a person to fix the credentials),
		// and the same call resumes them.
		res, _ := s.finish(ctx, run, state, opts, ev)
		return res, err
	}
	if err != nil {
		return Result{Run: run, State: state}, err
	}
	return s.finish(ctx, run, state, opts, ev)
}

// load puts the manifest's rows into the checkpoint. A load cut short is
// started again from scratch: nothing of it was sent.
func (s *Service) load(ctx context.Context, run pipeline.Run, path string, o Options, ev *emitter) error {
	if err := s.Store.DiscardRows(ctx, run.ID); err != nil {
		return err
	}
	r, err := ingest.OpenContext(ctx, path, ingest.OpenOptions{Sheet: o.Sheet})
	if err != nil {
		return err
	}
	defer r.Close()
	started := s.now()
	sum, headerProblems, err := pipeline.Load(ctx, s.Store, run, r, s.validate(o.Provider))
	if err != nil {
		if ctx.Err() != nil {
			_ = s.Store.SetRunState(context.WithoutCancel(ctx), run.ID, pipeline.RunInterrupted)
			s.logger().Warn("interrupted while loading the manifest; nothing was sent, and the same command loads it afresh",
				"run", run.ID, "took", s.now().Sub(started).Round(time.Millisecond).String())
			return ErrInterrupted
		}
		return err
	}
	for _, p := range headerProblems {
		s.logger().Warn("manifest problem", "row", p.Row, "column", p.Column, "code", p.Code, "message", p.Message)
	}
	took := s.now().Sub(started)
	s.logger().Info("manifest loaded", "run", run.ID, "rows", sum.Rows, "valid", sum.Valid, "invalid", sum.Invalid, "took", took.Round(time.Millisecond).String())
	if err := s.Store.MarkLoaded(ctx, run.ID); err != nil {
		return err
	}
	ev.emit(Loaded{RunID: run.ID, Rows: sum.Rows, Valid: sum.Valid, Invalid: sum.Invalid, Took: took})
	return nil
}

// progress emits a Progress event every interval until the returned stop
// is called.
func (s *Service) progress(ctx context.Context, runID string, every time.Duration, ev *emitter) (stop func()) {
	if every <= 0 || ev.fn == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	started := s.now()
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			c, err := s.Store.Counts(ctx, runID)
			if err != nil {
				continue
			}
			ev.emit(newProgress(runID, c, s.now().Sub(started)))
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// finish reads the run's final counts and writes its reports. The reports
// are written however the run ended (an interrupted run's reports show the
// state so far), so they use a context the interrupt does not cancel.
func (s *Service) finish(ctx context.Context, run pipeline.Run, state pipeline.RunState, o Options, ev *emitter) (Result, error) {
	interrupted := ctx.Err() != nil
	signalled := ctx // a signal during report writing still ends the reports
	ctx = context.WithoutCancel(ctx)
	if r, err := s.Store.Run(ctx, run.ID); err == nil {
		run.Counters = r.Counters
	}
	res := Result{Run: run, State: state, Interrupted: interrupted}
	counts, err := s.Store.Counts(ctx, run.ID)
	if err != nil {
		return res, err
	}
	if counts == nil {
		counts = pipeline.Counts{}
	}
	res.Counts = counts
	ev.emit(Finished{RunID: run.ID, State: state, Counts: counts})
	if !o.WriteReports {
		return res, nil
	}
	reportCtx := signalled
	if interrupted {
		// A signal ends the command within 2 s: the reports of a large
		// run take longer, and `simbulk report` writes them any time.
		var cancel context.CancelFunc
		reportCtx, cancel = context.WithTimeout(ctx, 700*time.Millisecond)
		defer cancel()
	}
	res.Reports, res.ReportsErr = reports.Write(reportCtx, s.Store, run.ID, o.ReportsDir, nil)
	return res, nil
}

// CallbackRejectedPrefix names the run counters of refused callback
// deliveries: callback_rejected_<reason>.
const CallbackRejectedPrefix = "callback_rejected_"

// recordRefusedCallbacks adds the deliveries each lane's listener refused
// in this process to the run's counters and says so in the log: a flood of
// refusals is somebody probing the listener, or a proxy that mangles the
// registered URL.
func (s *Service) recordRefusedCallbacks(ctx context.Context, runID string, lanes map[string]*pipeline.Lane) {
	for name, l := range lanes {
		g, ok := l.Client.(providers.CallbackGuard)
		if !ok {
			continue
		}
		counts := map[string]int64{}
		attrs := []any{"provider", name, "run", runID}
		var total int64
		for reason, n := range g.CallbackRejections() {
			if n > 0 {
				counts[CallbackRejectedPrefix+reason] = n
				attrs = append(attrs, reason, n)
				total += n
			}
		}
		if total == 0 {
			continue
		}
		s.logger().Warn("callback deliveries refused", append(attrs, "total", total)...)
		if err := s.Store.AddRunCounters(context.WithoutCancel(ctx), runID, counts); err != nil {
			s.logger().Warn("could not record refused callbacks", "error", err.Error())
		}
	}
}

// Status returns a run (a unique id prefix is enough) and its rows by
// state.
func (s *Service) Status(ctx context.Context, runID string) (pipeline.Run, pipeline.Counts, error) {
	run, err := s.Store.Run(ctx, runID)
	if err != nil {
		return pipeline.Run{}, nil, err
	}
	counts, err := s.Store.Counts(ctx, run.ID)
	if err != nil {
		return pipeline.Run{}, nil, err
	}
	return run, counts, nil
}
