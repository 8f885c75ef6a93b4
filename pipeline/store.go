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
// is pipeline/sqlite; no SQL lives in this package.

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
// run.
type EngineStore interface {
	SetRunState(ctx context.Context, id string, s RunState) error
	Counts(ctx context.Context, runID string) (Counts, error)
	// CountState counts a run's rows in one state.
	CountState(ctx context.Context, runID string, s State) (int, error)
	// ReclaimInFlight puts rows left in flight back to pending, marked
	// MustLookup and due at once, and returns how many.
	ReclaimInFlight(ctx context.Context, runID string) (int64, error)
	// Due returns up to limit pending rows of provider whose next attempt
	// time is not after now, with row numbers above after, in row order.
	Due(ctx context.Context, runID, provider string, now time.Time, after, limit int) ([]RowRecord, error)
	// AcceptedRows returns up to limit accepted rows of provider with row
	// numbers above after, in row order.
	AcceptedRows(ctx context.Context, runID, provider string, after, limit int) ([]RowRecord, error)
	// CountOpen counts provider's rows pending, in flight or accepted.
	CountOpen(ctx context.Context, runID, provider string) (int, error)
	// MarkInFlight commits the intent to send these rows: in flight, one
	// more attempt, MustLookup. It returns once the intent is durable.
	MarkInFlight(ctx context.Context, runID string, rows []int) error
	// Apply records transitions and their attempts in one durable write;
	// at stamps the change (and AcceptedAt of rows newly accepted).
	Apply(ctx context.Context, runID string, at time.Time, ts []Transition) error
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
