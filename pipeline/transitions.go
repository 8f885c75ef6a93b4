package pipeline

import (
	"fmt"
	"time"

	"github.com/simbulk/simbulk/providers"
)

// attempt is one request's record for the attempts table.
type attempt struct {
	row     int
	kind    string // submit | check | lookup
	started time.Time
	latency time.Duration
	outcome providers.Outcome
}

// transition is a row's new state after an answer. Build one only with the
// named constructors below: each says why a row moves, and together they
// are every state change the engine makes after MarkInFlight.
type transition struct {
	row        int
	state      State // "": no change
	handle     string
	result     map[string]string
	err        *providers.Error
	nextTry    time.Time
	mustLookup bool
	accepted   bool // set accepted_at now
	// addAttempt counts a failed lookup against the row's attempts, as
	// MarkInFlight counts a send: a row whose answers cannot be read is
	// bounded whether it is being sent or looked up.
	addAttempt bool
	// withdrawn: the intent is taken back, and its attempt with it.
	withdrawn bool
	// failure: the row failed for good and counts against --max-failures.
	failure bool
	// retry: the row is back to be tried again for a retryable cause
	// (Request.Retry).
	retry bool
	// follow: the lane checks the accepted row itself (Transition.Follow).
	follow  bool
	attempt *attempt
}

// unchanged: nothing to record (a look that learned nothing new, or the
// lane is stopping before asking).
func unchanged() transition { return transition{} }

// markSucceeded: the provider did the work (answered done, or holds the
// row's record active).
func markSucceeded(r RowRecord, handle string, result map[string]string) transition {
	return transition{row: r.Row, state: Succeeded, handle: handle, result: result}
}

// markAccepted: the provider took the work and finishes it later; the row
// is followed (checked) from now, and its completion timeout starts.
func markAccepted(r RowRecord, handle string, result map[string]string) transition {
	return transition{row: r.Row, state: Accepted, handle: handle, result: result, accepted: true}
}

// retryLater: a retryable failure with attempts left, or during an outage
// (which spends none): send again at next, after a lookup if the request
// may have taken effect.
func retryLater(r RowRecord, pe *providers.Error, next time.Time) transition {
	return transition{row: r.Row, state: Pending, err: pe, mustLookup: pe.MaybeApplied, nextTry: next, retry: true}
}

// waitForCredentials: the provider refused simbulk's credentials, not the
// row: it waits, pending, for a person to fix them and resume, still to be
// looked up if it was.
func waitForCredentials(r RowRecord, pe *providers.Error) transition {
	return transition{row: r.Row, state: Pending, err: pe, mustLookup: pe.MaybeApplied || r.MustLookup}
}

// waitForResume: the request was cut off by the shutdown, not refused by
// the provider: the row waits, pending, for the resume (which looks it up
// first if the request may have taken effect).
func waitForResume(r RowRecord, pe *providers.Error) transition {
	return transition{row: r.Row, state: Pending, err: pe, mustLookup: pe.MaybeApplied}
}

// failFinal: the provider refused the row for good, or a retryable cause
// outlasted its attempts. Unreadable answers end as unreadable_answer,
// marked to be looked up before anything is sent again (finalError).
func failFinal(r RowRecord, pe *providers.Error) transition {
	pe = finalError(pe, r.Attempts)
	return transition{row: r.Row, state: Failed, err: pe, mustLookup: pe.MaybeApplied, failure: true}
}

// holdForLookup: the lane stopped (or its credentials were refused) before
// a row in doubt could be looked up: it waits, unchanged and still to be
// looked up, for the resume. pe is the lookup's error, nil if none was made.
func holdForLookup(r RowRecord, pe *providers.Error) transition {
	return transition{row: r.Row, state: Pending, mustLookup: true, err: pe, nextTry: r.NextAttemptAt}
}

// awaitLookup: the lookup of a row in doubt failed, so whether the provider
// has it is unknown: look again at next. The failed lookup spends an
// attempt, so a provider whose answers cannot be read cannot keep a row
// looping.
func awaitLookup(r RowRecord, pe *providers.Error, next time.Time) transition {
	return transition{row: r.Row, state: Pending, mustLookup: true, err: pe, nextTry: next, addAttempt: true, retry: true}
}

// failLookup: the lookup of a row in doubt failed for good, or for all its
// attempts (counting this one): the row fails, still to be looked up
// before anything is sent again.
func failLookup(r RowRecord, pe *providers.Error, attempts int) transition {
	return transition{row: r.Row, state: Failed, mustLookup: true, err: finalError(pe, attempts), addAttempt: true, failure: true}
}

// failConflict: the provider holds the row's identifier in a record that
// is somebody else's, or not active: neither ours to count as done nor to
// send again; a person decides.
func failConflict(r RowRecord, pe *providers.Error, result map[string]string) transition {
	return transition{row: r.Row, state: Failed, err: pe, result: result, failure: true}
}

// failIncomplete: accepted work the provider did not complete within the
// completion timeout. Retryable, but only after a lookup: it was accepted.
func failIncomplete(r RowRecord, timeout time.Duration) transition {
	return transition{row: r.Row, state: Failed, mustLookup: true, failure: true,
		err: &providers.Error{Code: providers.CodeIncomplete, Retryable: true,
			Message: fmt.Sprintf("accepted but not completed within %s", timeout)}}
}

// failUnreadable: the checks of accepted work could not be read for the
// whole completion timeout: the row's bound in time is spent.
func failUnreadable(r RowRecord, pe *providers.Error) transition {
	return transition{row: r.Row, state: Failed, mustLookup: true, err: finalError(pe, r.Attempts), failure: true}
}

// requeueLost: accepted once, unknown to the provider now: the sender
// tries it afresh, after a lookup.
func requeueLost(r RowRecord) transition {
	return transition{row: r.Row, state: Pending, mustLookup: true, retry: true,
		err: &providers.Error{Code: providers.CodeNotFound, Message: "accepted request no longer known to the provider", Retryable: true}}
}

// withdraw: the lane stopped after the row's intent was committed but
// before its request left, so nothing reached the provider: the row is
// pending again as it was, and the attempt its intent counted is not
// spent.
func withdraw(r RowRecord) transition {
	t := transition{row: r.Row, state: Pending, mustLookup: r.MustLookup, nextTry: r.NextAttemptAt, withdrawn: true}
	if r.ErrorCode != "" || r.ErrorMessage != "" {
		t.err = &providers.Error{Code: r.ErrorCode, Message: r.ErrorMessage, Retryable: r.Retryable}
	}
	return t
}

// lookupFirst marks a transition of a row whose request the provider
// accepted once: whatever it says of it now, the row is looked up before
// anything is sent again.
func (t transition) lookupFirst() transition {
	t.mustLookup = true
	return t
}

// Transition is a row's recorded change of state, as the engine hands it
// to the checkpoint (EngineStore.Apply).
type Transition struct {
	Row   int
	State State // the row's new state
	// Handle and Result replace the row's when not empty.
	Handle string
	Result map[string]string
	// ErrorCode, ErrorMessage and Retryable replace the row's (empty: none).
	ErrorCode    string
	ErrorMessage string
	Retryable    bool
	// NextAttemptAt is when a pending row is due again (zero: at once).
	NextAttemptAt time.Time
	MustLookup    bool
	// Accepted sets the row's AcceptedAt to the time of the change.
	Accepted bool
	// AddAttempt counts one more attempt (a failed lookup).
	AddAttempt bool
	// Withdrawn takes back the attempt MarkInFlight counted: the request
	// never left.
	Withdrawn bool
	// Follow says the worker follows the accepted row itself (it checks
	// the row when its completion is due): the row stays leased to it
	// instead of being freed, so no other worker checks it meanwhile.
	Follow bool
	// Attempt, if set, is the request that led to the change.
	Attempt *Attempt
}

// Attempt is the record of one request made for a row.
type Attempt struct {
	Row        int
	Kind       string // submit | check | lookup
	Started    time.Time
	Latency    time.Duration
	HTTPStatus int
	Outcome    providers.Status
	ErrorCode  string
}

// AttemptsAdded is what t changes the row's attempts by: one more for a
// failed lookup, one fewer for an intent withdrawn.
func (t Transition) AttemptsAdded() int {
	n := 0
	if t.AddAttempt {
		n++
	}
	if t.Withdrawn {
		n--
	}
	return n
}

// record is the transition as the checkpoint stores it.
func (t transition) record() Transition {
	out := Transition{Row: t.row, State: t.state, Handle: t.handle, Result: t.result, NextAttemptAt: t.nextTry,
		MustLookup: t.mustLookup, Accepted: t.accepted, AddAttempt: t.addAttempt, Withdrawn: t.withdrawn, Follow: t.follow}
	if t.err != nil {
		out.ErrorCode, out.ErrorMessage, out.Retryable = t.err.Code, t.err.Message, t.err.Retryable
	}
	if t.attempt != nil {
		out.Attempt = t.attempt.record()
	}
	return out
}

// record is the attempt as the checkpoint stores it.
func (a *attempt) record() *Attempt {
	out := &Attempt{Row: a.row, Kind: a.kind, Started: a.started, Latency: a.latency, Outcome: a.outcome.Status}
	if a.outcome.Err != nil {
		out.HTTPStatus, out.ErrorCode = a.outcome.Err.HTTPStatus, a.outcome.Err.Code
	}
	return out
}

// applyTo is r as the checkpoint holds it once t is applied at at, as
// EngineStore.Apply records it: the row a lane follows is checked from
// memory, without reading it back.
func (t transition) applyTo(r RowRecord, at time.Time) RowRecord {
	r.State = t.state
	if t.handle != "" {
		r.Handle = t.handle
	}
	if len(t.result) > 0 {
		r.Result = t.result
	}
	r.ErrorCode, r.ErrorMessage, r.Retryable = "", "", false
	if t.err != nil {
		r.ErrorCode, r.ErrorMessage, r.Retryable = t.err.Code, t.err.Message, t.err.Retryable
	}
	r.NextAttemptAt, r.MustLookup = t.nextTry, t.mustLookup
	if t.accepted {
		r.AcceptedAt = at
	}
	r.Attempts += Transition{AddAttempt: t.addAttempt, Withdrawn: t.withdrawn}.AttemptsAdded()
	return r
}

// records converts transitions for EngineStore.Apply.
func records(ts []transition) []Transition {
	out := make([]Transition, len(ts))
	for i, t := range ts {
		out[i] = t.record()
	}
	return out
}
