package providers

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Order is one manifest row as a provider client needs it. The pipeline
// builds it from a validated ingest.Row.
type Order struct {
	// Key identifies the row to the pipeline (stable across resumes). The
	// client copies it into nothing on the wire; it only ties outcomes and
	// callbacks back to rows.
	Key   string
	EID   string
	ICCID string
	CLI   string
	IMEI  string
	// Fields are provider fields by canonical column name (cmp, domain_id,
	// euicc_agreement_id, locale_id, account, description, account_name,
	// service_plan, first_name, ...).
	Fields map[string]string
}

// Status is where a provisioning request stands.
type Status string

const (
	// Accepted: the provider took the request and will finish it later;
	// Outcome.Handle says how to learn the result.
	Accepted Status = "accepted"
	// Succeeded: the provider has done the work (or it already existed in
	// the same form).
	Succeeded Status = "succeeded"
	// Failed: the provider refused, or the request could not be delivered;
	// Outcome.Err says why and whether trying again may help.
	Failed Status = "failed"
)

// Outcome is the answer for one Order.
type Outcome struct {
	Status Status
	// Handle is what Check needs to learn completion of Accepted work: a
	// request id, a status URL, an EID. Opaque to the pipeline, which
	// stores it in the checkpoint so completion can be learned after a
	// restart.
	Handle string
	// Result holds what the provider returned that a person will want in
	// the report: imsi, iccid, msisdn, request_id, status_url, state, ...
	Result map[string]string
	// Err is set when Status is Failed.
	Err *Error
}

// Error is a provider's refusal or a delivery failure, classified.
type Error struct {
	// Code is the provider's own error code where it gave one (e.g.
	// asavie ErrorCode, iotconnect errorCode, thingspace errorCode),
	// otherwise one of the Code* values below.
	Code string
	// Message is the provider's own message, or a description of the
	// transport failure. It never contains a secret.
	Message string
	// HTTPStatus is the status of the answer, 0 when there was none.
	HTTPStatus int
	// Retryable is true for 429, 5xx other than 501, timeouts and
	// connection failures: the same request may succeed later.
	Retryable bool
	// RetryAfter is the provider's Retry-After, already capped; 0 if none.
	RetryAfter time.Duration
	// MaybeApplied is true when the request may have reached the provider
	// and taken effect although no clear answer came back (a timeout after
	// the request was written, a dropped connection, a 5xx, a garbled 2xx).
	// The same request must not simply be sent again: look the identifier
	// up first, or the provider may see it twice.
	MaybeApplied bool
}

// Codes for failures that are not the provider's own words.
const (
	CodeRateLimited = "rate_limited" // 429
	CodeServer      = "server_error" // 5xx
	CodeTimeout     = "timeout"      // no answer in time
	CodeConnection  = "connection"   // refused, reset, dropped
	CodeMalformed   = "malformed"    // an answer we could not parse
	CodeAuth        = "auth"         // this request refused as not allowed (403, or 401 on one resource)
	// CodeCredentials: the provider refused simbulk's own credentials (the
	// token endpoint refused the client, a session login was refused, or
	// a token fetched a moment ago was refused again). No row can succeed
	// until a person fixes the config, and trying again risks locking the
	// customer's account, so the pipeline stops the provider's lane.
	CodeCredentials = "credentials_refused"
	CodeConflict    = "conflict"      // exists at the provider with different details
	CodeRejected    = "rejected"      // a documented 4xx without a provider code
	CodeNotFound    = "not_found"     // lookup: the provider does not know it
	CodeIncomplete  = "not_completed" // completion never arrived within the wait budget
	// CodeUnreadable: the provider's answers about a row could not be read
	// (malformed bodies, unknown states) for as long as the row's bound of
	// attempts and time allowed. The request may have been applied.
	CodeUnreadable = "unreadable_answer"
)

func (e *Error) Error() string {
	if e.HTTPStatus != 0 {
		return fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.HTTPStatus, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// AsError returns err as an *Error, wrapping anything else as a retryable
// connection failure: an error the client did not classify is a delivery
// problem, not a provider's refusal.
func AsError(err error) *Error {
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	return &Error{Code: CodeConnection, Message: err.Error(), Retryable: true}
}

// FailedOutcome builds a Failed outcome from an error.
func FailedOutcome(err error) Outcome {
	return Outcome{Status: Failed, Err: AsError(err)}
}

// SubmitEach is Submit for a provider that takes one order per request: it
// calls submit for each order in turn and returns the outcomes in order.
// Once ctx is done the orders not yet sent fail without being sent, as a
// cancellation (TransportError of ctx's error) with MaybeApplied false:
// they are safe to send again without a lookup.
func SubmitEach(ctx context.Context, orders []Order, submit func(context.Context, Order) Outcome) []Outcome {
	outs := make([]Outcome, len(orders))
	for i, o := range orders {
		if err := ctx.Err(); err != nil {
			e := TransportError(err)
			e.MaybeApplied = false
			outs[i] = Outcome{Status: Failed, Err: e}
			continue
		}
		outs[i] = submit(ctx, o)
	}
	return outs
}

// Subscription is what a provider says it holds for an identifier: the
// answer to Lookup, used for crash recovery and reconciliation.
type Subscription struct {
	// Found is false when the provider does not know the identifier.
	Found bool
	// State is the provider's own word for the record's state (asavie
	// "live"/"suspend", thingspace "active", iotconnect subscription mode).
	State string
	// Active is the provider-neutral reading of State: the record is in the
	// state a completed provisioning leaves it in.
	Active bool
	// Pending is true when the provider has the request but has not
	// finished it (e.g. asavie ActorStatus pending).
	Pending bool
	// Identifiers the provider reports, by canonical name: eid, iccid,
	// imsi, msisdn, cli, imei.
	Identifiers map[string]string
	// Conflict, when set, says why the record found is not the order's
	// own (another eUICC agreement, another SIM on the CLI): the
	// identifier is taken, so the order can neither be resent nor be
	// counted as done.
	Conflict string
}
