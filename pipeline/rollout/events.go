package rollout

import (
	"time"

	"github.com/simbulk/simbulk/pipeline"
)

// Event is something that happened during a rollout, in the order it
// happened: Opened (the run is known), Loaded (when the manifest went into
// the checkpoint), Started, then Progress every Options.ProgressEvery and
// ProviderNotice as they come, then Finished. A run already complete gets
// only Opened and Finished.
type Event interface{ runID() string }

// Opened names the run a rollout works on, before anything else happens
// (loading a large manifest takes a while): the run Start created for the
// manifest or found unfinished, or the one Resume or RetryFailed drives.
type Opened struct {
	Run pipeline.Run
}

// Loaded says the manifest's rows are in the checkpoint.
type Loaded struct {
	RunID                string
	Rows, Valid, Invalid int
	Took                 time.Duration
}

// Started says the engine starts driving the run's open rows.
type Started struct {
	Run pipeline.Run
	// Providers are those with rows still open, sorted.
	Providers []string
}

// Progress is a snapshot of the run's counts while the engine runs.
type Progress struct {
	RunID  string
	Counts pipeline.Counts
	// Total is the rows to provision (invalid and skipped rows are not);
	// Done those that reached succeeded or failed.
	Total, Done int
	// Elapsed is the time since the engine started; RowsPerSecond is
	// Done over it, to one decimal.
	Elapsed       time.Duration
	RowsPerSecond float64
}

// ProviderNotice is what the engine noticed about a provider: down (its
// rows pause), answering again, or refusing simbulk's credentials (its
// lane stopped).
type ProviderNotice struct {
	RunID string
	pipeline.Notice
}

// Finished says the run stopped, in State, with these final counts.
type Finished struct {
	RunID  string
	State  pipeline.RunState
	Counts pipeline.Counts
}

func (e Opened) runID() string         { return e.Run.ID }
func (e Loaded) runID() string         { return e.RunID }
func (e Started) runID() string        { return e.Run.ID }
func (e Progress) runID() string       { return e.RunID }
func (e ProviderNotice) runID() string { return e.RunID }
func (e Finished) runID() string       { return e.RunID }

func newProgress(runID string, c pipeline.Counts, elapsed time.Duration) Progress {
	total := c.Total() - c[pipeline.Invalid] - c[pipeline.Skipped]
	done := c[pipeline.Succeeded] + c[pipeline.Failed]
	return Progress{RunID: runID, Counts: c, Total: total, Done: done, Elapsed: elapsed,
		RowsPerSecond: float64(int(float64(done)/elapsed.Seconds()*10)) / 10}
}
