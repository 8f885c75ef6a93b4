package pipeline

import (
	"context"
	"time"
)

// ReportView is a consistent, read-only view of one run: what the per-run
// reports (package reports) read. Every read through one view describes
// the same moment of the checkpoint, even while a run is still writing to
// it. A view is valid only inside the function given to Store.ViewRun.
type ReportView interface {
	// Run is the run the view describes, as of the view.
	Run() Run
	// CountsByProvider returns the run's rows by provider and state. Rows
	// that name no provider (invalid rows, typically) are under "".
	CountsByProvider(ctx context.Context) (map[string]Counts, error)
	// TopErrors returns the most frequent error codes of failed and
	// invalid rows, most frequent first (ties by code), at most limit of
	// them, each with one of its messages.
	TopErrors(ctx context.Context, limit int) ([]ErrorCount, error)
	// Latencies returns, per provider, how many requests (of every kind)
	// took each latency, in ascending latency order.
	Latencies(ctx context.Context) (map[string][]LatencyCount, error)
	// FinishedPer returns, for every interval of the given length (whole
	// seconds, at least one) in which rows reached succeeded or failed,
	// how many did, in time order; intervals with none are left out.
	FinishedPer(ctx context.Context, interval time.Duration) ([]FinishedCount, error)
	// LastChange is when a row of the run last changed, zero when the
	// run has no rows.
	LastChange(ctx context.Context) (time.Time, error)
	// ResultKeys returns the distinct keys of what providers returned for
	// the run's rows in state, sorted.
	ResultKeys(ctx context.Context, state State) ([]string, error)
	// MaxCells returns the most original cells any row in state has (a
	// row can be wider than the header).
	MaxCells(ctx context.Context, state State) (int, error)
	// Rows streams the run's rows in state, in row order, to fn, never
	// holding more than one.
	Rows(ctx context.Context, state State, fn func(ReportRow) error) error
}

// ErrorCount is how many failed or invalid rows share one error code, with
// one of their messages as an example.
type ErrorCount struct {
	Code    string `json:"code"`
	Count   int    `json:"count"`
	Message string `json:"message"`
}

// LatencyCount is how many requests took exactly Millis milliseconds. A
// histogram of distinct millisecond values is exact for percentiles and
// stays small however many requests a run made.
type LatencyCount struct {
	Millis int64
	Count  int
}

// FinishedCount is how many rows reached succeeded or failed in one
// interval.
type FinishedCount struct {
	Start     time.Time // start of the interval, UTC
	Succeeded int
	Failed    int
}

// ReportRow is a row with the time it last changed state: for a
// succeeded or failed row, when it finished.
type ReportRow struct {
	RowRecord
	UpdatedAt time.Time
}
