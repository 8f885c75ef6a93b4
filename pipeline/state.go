package pipeline

// State is where a row stands in a run (checkpoint, status JSON, reports).
type State string

const (
	Pending   State = "pending"   // not sent yet, or waiting to be tried again
	InFlight  State = "in_flight" // intent committed; the request may be on its way
	Accepted  State = "accepted"  // the provider took it; waiting for completion
	Succeeded State = "succeeded"
	Failed    State = "failed"
	Invalid   State = "invalid" // failed validation; never sent
	Skipped   State = "skipped" // already provisioned by an earlier run of this checkpoint
)

// States lists every row state in lifecycle order.
var States = []State{Pending, InFlight, Accepted, Succeeded, Failed, Invalid, Skipped}

// Final reports whether a row in state s needs no more work.
func (s State) Final() bool {
	return s == Succeeded || s == Failed || s == Invalid || s == Skipped
}

// RunState is where a run stands.
type RunState string

const (
	RunRunning     RunState = "running"
	RunInterrupted RunState = "interrupted" // stopped by a signal or a crash; resumable
	RunCompleted   RunState = "completed"   // every row final
	RunAborted     RunState = "aborted"     // stopped at the failure threshold; resumable
)
