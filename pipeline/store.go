package pipeline

import (
	"context"
	"errors"
	"time"
)

// The checkpoint is reached through the interfaces below, in the domain's
// terms: runs, rows, transitions, reconciliations. Each consumer declares
// the part it uses (the engine EngineStore, the reconciler ReconcileStore,
// Load LoadStore); Store is all of them, what a checkpoint implementation
// provides and what pipeline/storetest checks. The SQLite implementation
// is pipeline/sqlite, the PostgreSQL one pipeline/postgres; no SQL lives
// in this package.

// Store is a checkpoint: every run and every row's state, durable at each
// write's return. Implementations must pass pipeline/storetest.
type Store interface {
	RunStore
	LoadStore
	EngineStore
	ReconcileStore
	// ViewRun calls fn with a consistent, read-only view of the run (a
	// unique id prefix is enough), valid only while fn runs.
	ViewRun(ctx context.Context, runID string, fn func(ReportView) error) error
	// Backup writes a consistent copy of the checkpoint to dest, a new
	// owner-only file, while runs may be writing to it.
	Backup(ctx context.Context, dest string) error
	// Close commits what is queued and releases the checkpoint.
	Close() error
}

// RunStore finds, creates, continues and lists runs: what the commands ask
// of the checkpoint besides running the engine.
type RunStore interface {
	// CreateRun records a new run in state running, with a fresh id.
	CreateRun(ctx context.Context, fingerprint, manifest string, header []string, opts ...RunOptions) (Run, error)
	// Run returns the run with the given id; a unique prefix is enough.
	// ErrNoRun if there is none.
	Run(ctx context.Context, id string) (Run, error)
	// Runs lists every run, newest first.
	Runs(ctx context.Context) ([]Run, error)
	// UnfinishedRun returns the newest run with this fingerprint that is
	// not completed, if any.
	UnfinishedRun(ctx context.Context, fingerprint string) (Run, bool, error)
	// LatestRun returns the newest run with this fingerprint, whatever its
	// state.
	LatestRun(ctx context.Context, fingerprint string) (Run, bool, error)
	// SetRunState records where a run stands; a completed run gets a
	// finish time.
	SetRunState(ctx context.Context, id string, s RunState) error
	// MarkLoaded records that every manifest row of a run is stored.
	MarkLoaded(ctx context.Context, id string) error
	// DiscardRows deletes the rows of a run that never finished loading
	// (refused for a loaded run: its rows are kept).
	DiscardRows(ctx context.Context, id string) error
	// AddRunCounters adds n to the run's named counters, zeros skipped.
	AddRunCounters(ctx context.Context, runID string, n map[string]int64) error
	// Counts returns the run's rows by state.
	Counts(ctx context.Context, runID string) (Counts, error)
	// OpenProviders lists, sorted, the providers with rows pending, in
	// flight or accepted.
	OpenProviders(ctx context.Context, runID string) ([]string, error)
	// Providers lists, sorted, the providers of the run's succeeded or
	// skipped rows: what a reconciliation looks up.
	Providers(ctx context.Context, runID string) ([]string, error)
	// Redrive makes failed rows pending again with fresh attempts (only
	// retryable ones unless all), keeping must_lookup, and takes a
	// completed run back to interrupted. It returns how many it re-queued.
	Redrive(ctx context.Context, runID string, all bool) (int64, error)
	// RowsIn streams a run's rows in one state (all when state is ""), in
	// row order.
	RowsIn(ctx context.Context, runID string, state State, fn func(RowRecord) error) error
	// Attempts returns the requests recorded for one row, in the order
	// they were made.
	Attempts(ctx context.Context, runID string, row int) ([]Attempt, error)
	// Workers lists the run's live workers (leases not expired), oldest
	// first.
	Workers(ctx context.Context, runID string) ([]Worker, error)
}

// LoadStore is what Load needs: rows stored in batches, with the
// identifiers other runs hold in doubt asked for once per manifest.
type LoadStore interface {
	// InDoubtElsewhere collects the identifiers that other unfinished runs
	// hold in doubt: rows in flight, accepted, or pending a lookup.
	InDoubtElsewhere(ctx context.Context, runID string) (Doubts, error)
	// AddRows stores new rows of a run in one write. A pending row whose
	// identifier another run already provisioned (succeeded) is stored
	// skipped, naming that run, with its result; a pending row whose
	// identifier another unfinished run holds in doubt is stored with
	// MustLookup.
	AddRows(ctx context.Context, rows []RowRecord) error
	// AddRowsWithDoubts is AddRows with the identifiers in doubt
	// elsewhere already known (from InDoubtElsewhere).
	AddRowsWithDoubts(ctx context.Context, rows []RowRecord, doubt Doubts) error
}

// EngineStore is what the engine asks of the checkpoint while it drives a
// run. Several workers (processes, on one host or many) may drive one run
// at once: each claims rows, which are then leased to it (see Worker),
// and no two live workers ever hold the same row.
type EngineStore interface {
	SetRunState(ctx context.Context, id string, s RunState) error
	Counts(ctx context.Context, runID string) (Counts, error)
	// CountState counts a run's rows in one state.
	CountState(ctx context.Context, runID string, s State) (int, error)
	// Join records w as working on the run, with a lease of ttl by the
	// store's clock, and returns w as recorded (Joined, Expires). sole
	// says the caller holds the checkpoint's exclusive lock, so every
	// other worker of the run is gone: their leases end at once.
	Join(ctx context.Context, runID string, w Worker, ttl time.Duration, sole bool) (Worker, error)
	// Renew extends the worker's lease by its ttl from now. ErrLeaseLost
	// if it had expired.
	Renew(ctx context.Context, runID, worker string) (Worker, error)
	// Leave ends the worker's lease and frees the rows it holds.
	Leave(ctx context.Context, runID, worker string) error
	// Workers lists the run's live workers, oldest first.
	Workers(ctx context.Context, runID string) ([]Worker, error)
	// ReclaimInFlight puts rows left in flight by workers that are gone
	// back to pending, marked MustLookup and due at once, and returns
	// how many.
	ReclaimInFlight(ctx context.Context, runID string) (int64, error)
	// Claim leases to worker up to limit pending rows of provider whose
	// next attempt time is not after now, with row numbers above after,
	// that no other live worker holds, in row order. (Rows the worker
	// holds already come again: it tells the ones it is working on
	// apart.) Rows of provider that gone workers left in flight are
	// reclaimed first (as ReclaimInFlight does), so they come back
	// pending, to be looked up before anything is sent. Claimed rows may
	// come without their Cells, which sending does not need.
	Claim(ctx context.Context, runID, provider, worker string, now time.Time, after, limit int) ([]RowRecord, error)
	// ClaimAccepted leases to worker up to limit accepted rows of provider
	// held by no other live worker, with row numbers above after, in row
	// order: the rows it follows.
	ClaimAccepted(ctx context.Context, runID, provider, worker string, after, limit int) ([]RowRecord, error)
	// CountOpen counts provider's rows pending, in flight or accepted.
	CountOpen(ctx context.Context, runID, provider string) (int, error)
	// PauseProvider records that the run's requests to provider wait d
	// from now (a 429's Retry-After, an outage), unless a longer pause is
	// recorded: every worker of the run honours it.
	PauseProvider(ctx context.Context, runID, provider string, d time.Duration) error
	// ProviderPauses returns, by provider, how much longer the run's
	// recorded pauses last: those still in force only.
	ProviderPauses(ctx context.Context, runID string) (map[string]time.Duration, error)
	// MarkInFlight commits the worker's intent to send these rows: in
	// flight, one more attempt, MustLookup. Only pending rows the worker
	// holds (or nobody does) are marked; it returns those, once the
	// intent is durable, and renews the worker's lease with it, so a
	// request always leaves with a whole lease ahead of it. ErrLeaseLost
	// if the worker's lease had expired: it must send nothing.
	MarkInFlight(ctx context.Context, runID, worker string, rows []int) ([]int, error)
	// Apply records transitions and their attempts in one durable write,
	// and frees the rows, but those whose Transition.Follow is set: they
	// stay leased to worker. at stamps the change (and AcceptedAt of rows
	// newly accepted). Transitions of rows another worker holds are
	// dropped: that worker took them over after this one's lease expired,
	// and looks them up itself.
	Apply(ctx context.Context, runID, worker string, at time.Time, ts []Transition) error
}

// ReconcileStore is what a reconciliation records, row by row, so an
// interrupted one resumes where it stopped.
type ReconcileStore interface {
	// OpenReconciliation resumes the run's unfinished reconciliation, or
	// starts one listing every row: provisioned rows (succeeded, skipped)
	// pending, the rest not provisioned.
	OpenReconciliation(ctx context.Context, runID string) (id string, resumed bool, err error)
	// ReconcilePending returns up to limit of provider's rows the
	// reconciliation has still to look up, with row numbers above after,
	// in row order.
	ReconcilePending(ctx context.Context, runID, id, provider string, after, limit int) ([]RowRecord, error)
	// RecordVerdicts records a page of results. A verdict with no status
	// but a note counts a failed try; the row stays pending until it has
	// been tried maxTries times, then ends as an error. A verdict with
	// neither is left alone.
	RecordVerdicts(ctx context.Context, id string, vs []Verdict, maxTries int) error
	// FinishReconciliation records where the reconciliation stands; a
	// completed one gets a finish time.
	FinishReconciliation(ctx context.Context, id string, state RunState) error
	// Reconciliation reads a reconciliation's totals and findings.
	Reconciliation(ctx context.Context, id string) (Reconciliation, error)
	// Reconciliations lists the ids of the run's reconciliations, newest
	// first: its reconciliation history.
	Reconciliations(ctx context.Context, runID string) ([]string, error)
}

// ErrReadOnly is returned by writes to a checkpoint opened read-only.
var ErrReadOnly = errors.New("checkpoint is open read-only")
