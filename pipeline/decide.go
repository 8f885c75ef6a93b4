package pipeline

import (
	"fmt"
	"time"

	"github.com/simbulk/simbulk/providers"
)

// The engine's decisions, as pure functions: a row and an answer in, a
// named transition out, plus what the answer says of the provider (heard),
// which the lane tells its limiter before deciding. They know nothing of
// the database or the network; decide_test.go drives them over a table of
// every (state, outcome) pair.

// rowEnv is what a decision knows besides the row and the answer: the
// lane's settings, the time, and the lane's state once the answer was
// heard.
type rowEnv struct {
	now               time.Time
	maxAttempts       int
	completionTimeout time.Duration
	backoff           func(attempt int) time.Duration
	down              bool // the provider is in an outage (circuit open)
	stopping          bool // the run or the lane takes no new work
	cutOff            bool // requests in flight were cancelled by the shutdown
}

// retryAt is when a row that failed for pe after attempts tries again.
func (env rowEnv) retryAt(attempts int, pe *providers.Error) time.Time {
	return env.now.Add(max(pe.RetryAfter, env.backoff(attempts)))
}

// pastTimeout reports whether accepted work has run out of time.
func (env rowEnv) pastTimeout(r RowRecord) bool {
	return !r.AcceptedAt.IsZero() && env.now.Sub(r.AcceptedAt) > env.completionTimeout
}

// hearing is what an answer tells the lane about its provider.
type hearing int

const (
	heardNothing hearing = iota // nothing: tell the limiter nothing
	heardAnswer                 // it answered: up (laneRunner.ok)
	heardFailure                // a failed request: busy, down, or up and refusing (laneRunner.noteAnswer)
	heardRefusal                // it refused simbulk's credentials: the lane stops (laneRunner.refused)
)

type heard struct {
	kind hearing
	pe   *providers.Error
}

// failedWithoutReason stands in for a failure that came without an error.
func failedWithoutReason(retryable bool) *providers.Error {
	return &providers.Error{Code: providers.CodeMalformed, Message: "failed without a reason", Retryable: retryable}
}

// hearFailure is what a failed request says: a refusal of simbulk's
// credentials, or a failure for the limiter to weigh.
func hearFailure(pe *providers.Error) heard {
	if pe.Code == providers.CodeCredentials {
		return heard{heardRefusal, pe}
	}
	return heard{heardFailure, pe}
}

// hearSubmit is what the answer to a send says of the provider.
func hearSubmit(out providers.Outcome) heard {
	switch out.Status {
	case providers.Succeeded, providers.Accepted:
		return heard{kind: heardAnswer}
	}
	pe := out.Err
	if pe == nil {
		pe = failedWithoutReason(true)
	}
	return hearFailure(pe)
}

// decideSubmit maps the provider's answer to a send of r (r.Attempts
// counts that send) to the row's new state.
func decideSubmit(r RowRecord, out providers.Outcome, env rowEnv) transition {
	switch out.Status {
	case providers.Succeeded:
		return markSucceeded(r, out.Handle, out.Result)
	case providers.Accepted:
		return markAccepted(r, out.Handle, out.Result)
	}
	return decideFailure(r, out.Err, env)
}

// decideFailure decides between another try later and a final failure.
func decideFailure(r RowRecord, pe *providers.Error, env rowEnv) transition {
	if pe == nil {
		pe = failedWithoutReason(true)
	}
	switch {
	case pe.Code == providers.CodeCredentials:
		return waitForCredentials(r, pe)
	case pe.Retryable && (r.Attempts < env.maxAttempts || env.down):
		// Attempts left: try again later, also when the run is stopping
		// (the resume does): a stop is no reason to give up on a row. Nor
		// is an outage: while the provider is down, its rows wait, however
		// many of their attempts the outage has seen.
		return retryLater(r, pe, env.retryAt(r.Attempts, pe))
	case pe.Retryable && env.stopping && env.cutOff:
		// Cut off by shutdown, not by the provider: leave it for resume.
		return waitForResume(r, pe)
	}
	return failFinal(r, pe)
}

// hearLookup is what a lookup's answer says of the provider; pe is its
// error (nil: answered). A failed lookup while the lane was already
// stopping tells the limiter nothing.
func hearLookup(pe *providers.Error, stopping bool) heard {
	switch {
	case pe == nil:
		return heard{kind: heardAnswer}
	case pe.Code == providers.CodeCredentials:
		return heard{heardRefusal, pe}
	case stopping:
		return heard{kind: heardNothing}
	}
	return heard{heardFailure, pe}
}

// decideLookup settles a row whose earlier request may have reached the
// provider (a crash while in flight, a timeout, a dropped connection):
// found at the provider means no resend; not found means sending is safe
// (resend, and no transition). pe is the lookup's error, nil when it was
// answered with sub; env.stopping is as it was when the answer came.
func decideLookup(r RowRecord, sub providers.Subscription, pe *providers.Error, env rowEnv) (t transition, resend bool) {
	if pe != nil {
		if pe.Code == providers.CodeCredentials || env.stopping {
			// Not the row's doing: it waits, unchanged, for the resume.
			return holdForLookup(r, pe), false
		}
		attempts := r.Attempts + 1
		if !pe.Retryable || (attempts >= env.maxAttempts && !env.down) {
			return failLookup(r, pe, attempts), false
		}
		return awaitLookup(r, pe, env.retryAt(attempts, pe)), false
	}
	switch {
	case !sub.Found:
		return unchanged(), true
	case sub.Conflict != "":
		// Somebody else's record holds the identifier: resending would be
		// refused and counting it as ours would be a lie.
		return failConflict(r, &providers.Error{Code: providers.CodeConflict, Message: sub.Conflict}, nil), false
	case sub.Pending:
		return markAccepted(r, r.Handle, sub.Identifiers), false
	case !sub.Active:
		// Found, finished, but not in the state provisioning leaves it
		// in (deactivated, suspended, terminated): not a success, and
		// sending again would not change it.
		return failConflict(r, notActive(sub), sub.Identifiers), false
	}
	res := map[string]string{"note": "found at the provider on recovery"}
	for k, v := range sub.Identifiers {
		res[k] = v
	}
	if sub.State != "" {
		res["state"] = sub.State
	}
	return markSucceeded(r, "", res), false
}

// notActive is the failure of a row whose record the provider holds in a
// state other than the one provisioning leaves it in.
func notActive(sub providers.Subscription) *providers.Error {
	state := sub.State
	if state == "" {
		state = "unknown"
	}
	return &providers.Error{Code: providers.CodeConflict,
		Message: fmt.Sprintf("found at the provider in state %q, not active; a person must decide (reactivate it there, or retry-failed --all once it is)", state)}
}

// lookupOutcome reads a lookup of an accepted row without a handle (found
// pending on recovery) as the answer to a check; lost means the provider
// no longer knows the row.
func lookupOutcome(sub providers.Subscription, err error) (out providers.Outcome, lost bool) {
	switch {
	case err != nil:
		return providers.FailedOutcome(err), false
	case !sub.Found:
		return providers.Outcome{}, true
	case sub.Pending:
		return providers.Outcome{Status: providers.Accepted}, false
	case !sub.Active:
		return providers.Outcome{Status: providers.Failed, Err: notActive(sub), Result: sub.Identifiers}, false
	}
	return providers.Outcome{Status: providers.Succeeded, Result: sub.Identifiers}, false
}

// checkError is the error of a check that failed; one without a reason
// is unreadable, and not retryable.
func checkError(out providers.Outcome) *providers.Error {
	if out.Err == nil {
		return failedWithoutReason(false)
	}
	return out.Err
}

// hearCheck is what the answer to a check of accepted work says of the
// provider.
func hearCheck(r RowRecord, out providers.Outcome, env rowEnv) heard {
	switch out.Status {
	case providers.Succeeded:
		return heard{kind: heardAnswer}
	case providers.Accepted:
		if out.Err == nil {
			return heard{kind: heardAnswer}
		}
		return hearFailure(out.Err) // the look failed; the work is not in doubt
	}
	pe := checkError(out)
	if pe.Code == providers.CodeMalformed && !(pe.Retryable && !env.pastTimeout(r)) {
		return heard{kind: heardNothing} // unreadable past its time: the row fails, the provider is not judged
	}
	return hearFailure(pe)
}

// decideCheck maps one look at an accepted row to its new state (or
// unchanged: not yet).
func decideCheck(r RowRecord, out providers.Outcome, env rowEnv) transition {
	switch out.Status {
	case providers.Succeeded:
		return markSucceeded(r, r.Handle, merge(r.Result, out.Result))
	case providers.Accepted:
		if out.Err != nil && out.Err.Code == providers.CodeCredentials {
			return unchanged()
		}
		if env.pastTimeout(r) {
			return failIncomplete(r, env.completionTimeout)
		}
		return unchanged()
	}
	pe := checkError(out)
	switch {
	case pe.Code == providers.CodeCredentials:
		return unchanged()
	case pe.Retryable && !env.pastTimeout(r):
		// A failed poll is not a failed provisioning: look again next time.
		return unchanged()
	case pe.Code == providers.CodeMalformed:
		// Unreadable for the whole completion timeout: the row's bound in
		// time is spent.
		return failUnreadable(r, pe)
	}
	// The provider finished the work and says it failed: a final answer
	// for this request. The row may be sent again only if the cause is
	// retryable and attempts remain, and only after a lookup: the request
	// was accepted once, whatever the provider says of it now.
	return decideFailure(r, pe, env).lookupFirst()
}

// finalError is the error a row ends with. Answers that could not be read
// become CodeUnreadable, marked retryable (a later look may read them) and
// possibly applied (so nothing is sent again before a lookup), with the
// provider's own words kept in the message.
func finalError(pe *providers.Error, attempts int) *providers.Error {
	if pe.Code != providers.CodeMalformed && pe.Code != providers.CodeUnreadable {
		return pe
	}
	return &providers.Error{
		Code:         providers.CodeUnreadable,
		Message:      fmt.Sprintf("no readable answer after %d attempts (last: %s); it is looked up at the provider before anything is sent again", attempts, pe.Message),
		HTTPStatus:   pe.HTTPStatus,
		Retryable:    true,
		MaybeApplied: true,
	}
}

func merge(a, b map[string]string) map[string]string {
	out := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
