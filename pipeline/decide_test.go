package pipeline

import (
	"testing"
	"time"

	"github.com/simbulk/simbulk/providers"
)

// TestDecisions drives the engine's decisions over every (state, outcome)
// pair: a send's answer, a lookup of a row in doubt, a check of accepted
// work. Each case names the row's new state, must_lookup, whether a failed
// lookup spends an attempt, the error recorded, whether the failure counts
// against --max-failures, when the row is tried next, and what the answer
// tells the lane about its provider.
func TestDecisions(t *testing.T) {
	now := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	const backoff = time.Second
	base := rowEnv{now: now, maxAttempts: 3, completionTimeout: 10 * time.Minute,
		backoff: func(int) time.Duration { return backoff }}
	outage := base
	outage.down = true
	shutdown := base
	shutdown.stopping, shutdown.cutOff = true, true
	stopping := base
	stopping.stopping = true

	kept := now.Add(-time.Hour) // a row's earlier next_attempt_at
	row := func(attempts int, mustLookup bool) RowRecord {
		return RowRecord{Row: 7, Attempts: attempts, MustLookup: mustLookup, NextAttemptAt: kept}
	}
	accepted := func(attempts int, age time.Duration, handle string) RowRecord {
		return RowRecord{Row: 7, State: Accepted, Attempts: attempts, Handle: handle, AcceptedAt: now.Add(-age),
			Result: map[string]string{"sim": "1"}}
	}
	failed := func(pe *providers.Error) providers.Outcome {
		return providers.Outcome{Status: providers.Failed, Err: pe}
	}
	server := func() *providers.Error {
		return &providers.Error{Code: providers.CodeServer, HTTPStatus: 503, Retryable: true}
	}
	timeout := func() *providers.Error {
		return &providers.Error{Code: providers.CodeTimeout, Retryable: true, MaybeApplied: true}
	}
	permanent := func() *providers.Error { return &providers.Error{Code: "400", HTTPStatus: 400, Message: "bad eid"} }
	garbled := func() *providers.Error {
		return &providers.Error{Code: providers.CodeMalformed, HTTPStatus: 200, Retryable: true, MaybeApplied: true}
	}
	refused := func() *providers.Error {
		return &providers.Error{Code: providers.CodeCredentials, HTTPStatus: 401}
	}
	retry := now.Add(backoff)
	active := providers.Subscription{Found: true, Active: true, State: "active", Identifiers: map[string]string{"msisdn": "447700900123"}}

	type want struct {
		state      State // "": unchanged
		mustLookup bool
		addAttempt bool
		code       string
		failure    bool // counted against --max-failures
		next       time.Time
		accepted   bool // accepted_at set
		heard      hearing
		resend     bool
	}
	cases := []struct {
		name string
		kind string // submit | lookup | check
		row  RowRecord
		env  rowEnv
		out  providers.Outcome      // submit, check
		sub  providers.Subscription // lookup; check of a row without a handle
		pe   *providers.Error       // lookup's error; check of a row without a handle
		want want
	}{
		// A send's answer (row.Attempts counts the send).
		{name: "succeeded", kind: "submit", row: row(1, false), env: base,
			out:  providers.Outcome{Status: providers.Succeeded, Handle: "h"},
			want: want{state: Succeeded, heard: heardAnswer}},
		{name: "accepted", kind: "submit", row: row(1, false), env: base,
			out:  providers.Outcome{Status: providers.Accepted, Handle: "h"},
			want: want{state: Accepted, accepted: true, heard: heardAnswer}},
		{name: "failed retryable, attempts left", kind: "submit", row: row(2, false), env: base, out: failed(server()),
			want: want{state: Pending, code: providers.CodeServer, next: retry, heard: heardFailure}},
		{name: "failed retryable, maybe applied", kind: "submit", row: row(1, false), env: base, out: failed(timeout()),
			want: want{state: Pending, mustLookup: true, code: providers.CodeTimeout, next: retry, heard: heardFailure}},
		{name: "failed retryable, exhausted", kind: "submit", row: row(3, false), env: base, out: failed(server()),
			want: want{state: Failed, code: providers.CodeServer, failure: true, heard: heardFailure}},
		{name: "failed retryable, exhausted while stopping, not cut off", kind: "submit", row: row(3, false), env: stopping, out: failed(server()),
			want: want{state: Failed, code: providers.CodeServer, failure: true, heard: heardFailure}},
		{name: "failed permanent", kind: "submit", row: row(1, false), env: base, out: failed(permanent()),
			want: want{state: Failed, code: "400", failure: true, heard: heardFailure}},
		{name: "failed without a reason", kind: "submit", row: row(1, false), env: base, out: providers.Outcome{Status: providers.Failed},
			want: want{state: Pending, code: providers.CodeMalformed, next: retry, heard: heardFailure}},
		{name: "malformed, exhausted", kind: "submit", row: row(3, false), env: base, out: failed(garbled()),
			want: want{state: Failed, mustLookup: true, code: providers.CodeUnreadable, failure: true, heard: heardFailure}},
		{name: "credentials refused", kind: "submit", row: row(1, false), env: base, out: failed(refused()),
			want: want{state: Pending, code: providers.CodeCredentials, heard: heardRefusal}},
		{name: "credentials refused, row was in doubt", kind: "submit", row: row(1, true), env: base, out: failed(refused()),
			want: want{state: Pending, mustLookup: true, code: providers.CodeCredentials, heard: heardRefusal}},
		{name: "during outage, exhausted", kind: "submit", row: row(5, false), env: outage, out: failed(server()),
			want: want{state: Pending, code: providers.CodeServer, next: retry, heard: heardFailure}},
		{name: "after shutdown, exhausted", kind: "submit", row: row(3, false), env: shutdown, out: failed(timeout()),
			want: want{state: Pending, mustLookup: true, code: providers.CodeTimeout, heard: heardFailure}},

		// A lookup of a row in doubt (row.Attempts: sends and lookups so far).
		{name: "found active", kind: "lookup", row: row(1, true), env: base, sub: active,
			want: want{state: Succeeded, heard: heardAnswer}},
		{name: "found pending", kind: "lookup", row: row(1, true), env: base,
			sub:  providers.Subscription{Found: true, Pending: true, State: "Pre-active"},
			want: want{state: Accepted, accepted: true, heard: heardAnswer}},
		{name: "found inactive", kind: "lookup", row: row(1, true), env: base,
			sub:  providers.Subscription{Found: true, State: "suspend"},
			want: want{state: Failed, code: providers.CodeConflict, failure: true, heard: heardAnswer}},
		{name: "not found", kind: "lookup", row: row(1, true), env: base, sub: providers.Subscription{},
			want: want{heard: heardAnswer, resend: true}},
		{name: "conflict", kind: "lookup", row: row(1, true), env: base,
			sub:  providers.Subscription{Found: true, Active: true, Conflict: "under another agreement"},
			want: want{state: Failed, code: providers.CodeConflict, failure: true, heard: heardAnswer}},
		{name: "lookup error retryable", kind: "lookup", row: row(1, true), env: base, pe: server(),
			want: want{state: Pending, mustLookup: true, addAttempt: true, code: providers.CodeServer, next: retry, heard: heardFailure}},
		{name: "lookup error exhausted", kind: "lookup", row: row(2, true), env: base, pe: garbled(),
			want: want{state: Failed, mustLookup: true, addAttempt: true, code: providers.CodeUnreadable, failure: true, heard: heardFailure}},
		{name: "lookup error exhausted during outage", kind: "lookup", row: row(2, true), env: outage, pe: server(),
			want: want{state: Pending, mustLookup: true, addAttempt: true, code: providers.CodeServer, next: retry, heard: heardFailure}},
		{name: "lookup error permanent", kind: "lookup", row: row(1, true), env: base, pe: permanent(),
			want: want{state: Failed, mustLookup: true, addAttempt: true, code: "400", failure: true, heard: heardFailure}},
		{name: "lookup credentials refused", kind: "lookup", row: row(1, true), env: base, pe: refused(),
			want: want{state: Pending, mustLookup: true, code: providers.CodeCredentials, next: kept, heard: heardRefusal}},
		{name: "lookup error while stopping", kind: "lookup", row: row(2, true), env: stopping, pe: server(),
			want: want{state: Pending, mustLookup: true, code: providers.CodeServer, next: kept, heard: heardNothing}},

		// A check of accepted work.
		{name: "check succeeded", kind: "check", row: accepted(1, time.Minute, "h"), env: base,
			out:  providers.Outcome{Status: providers.Succeeded, Result: map[string]string{"msisdn": "1"}},
			want: want{state: Succeeded, heard: heardAnswer}},
		{name: "accepted within timeout", kind: "check", row: accepted(1, time.Minute, "h"), env: base,
			out:  providers.Outcome{Status: providers.Accepted},
			want: want{heard: heardAnswer}},
		{name: "accepted past timeout", kind: "check", row: accepted(1, time.Hour, "h"), env: base,
			out:  providers.Outcome{Status: providers.Accepted},
			want: want{state: Failed, mustLookup: true, code: providers.CodeIncomplete, failure: true, heard: heardAnswer}},
		{name: "accepted, the look failed", kind: "check", row: accepted(1, time.Minute, "h"), env: base,
			out:  providers.Outcome{Status: providers.Accepted, Err: server()},
			want: want{heard: heardFailure}},
		{name: "accepted past timeout, credentials refused", kind: "check", row: accepted(1, time.Hour, "h"), env: base,
			out:  providers.Outcome{Status: providers.Accepted, Err: refused()},
			want: want{heard: heardRefusal}},
		{name: "failed within timeout", kind: "check", row: accepted(1, time.Minute, "h"), env: base, out: failed(server()),
			want: want{heard: heardFailure}},
		{name: "failed retryable past timeout, attempts left", kind: "check", row: accepted(1, time.Hour, "h"), env: base, out: failed(server()),
			want: want{state: Pending, mustLookup: true, code: providers.CodeServer, next: retry, heard: heardFailure}},
		{name: "malformed past timeout", kind: "check", row: accepted(1, time.Hour, "h"), env: base, out: failed(garbled()),
			want: want{state: Failed, mustLookup: true, code: providers.CodeUnreadable, failure: true, heard: heardNothing}},
		{name: "failed without a reason", kind: "check", row: accepted(1, time.Minute, "h"), env: base, out: providers.Outcome{Status: providers.Failed},
			want: want{state: Failed, mustLookup: true, code: providers.CodeUnreadable, failure: true, heard: heardNothing}},
		{name: "check failed permanent", kind: "check", row: accepted(1, time.Minute, "h"), env: base, out: failed(permanent()),
			want: want{state: Failed, mustLookup: true, code: "400", failure: true, heard: heardFailure}},
		{name: "check credentials refused", kind: "check", row: accepted(1, time.Hour, "h"), env: base, out: failed(refused()),
			want: want{heard: heardRefusal}},
		{name: "no handle, found active", kind: "check", row: accepted(1, time.Minute, ""), env: base, sub: active,
			want: want{state: Succeeded, heard: heardAnswer}},
		{name: "no handle, found inactive", kind: "check", row: accepted(1, time.Minute, ""), env: base,
			sub:  providers.Subscription{Found: true, State: "Deactive"},
			want: want{state: Failed, mustLookup: true, code: providers.CodeConflict, failure: true, heard: heardFailure}},
		{name: "no handle, lost", kind: "check", row: accepted(1, time.Minute, ""), env: base, sub: providers.Subscription{},
			want: want{state: Pending, mustLookup: true, code: providers.CodeNotFound, heard: heardNothing}},
	}
	for _, tc := range cases {
		t.Run(tc.kind+"/"+tc.name, func(t *testing.T) {
			var got want
			var tr transition
			var h heard
			switch tc.kind {
			case "submit":
				h = hearSubmit(tc.out)
				tr = decideSubmit(tc.row, tc.out, tc.env)
			case "lookup":
				h = hearLookup(tc.pe, tc.env.stopping)
				tr, got.resend = decideLookup(tc.row, tc.sub, tc.pe, tc.env)
			case "check":
				out, lost := tc.out, false
				if tc.row.Handle == "" {
					var err error // not a nil *providers.Error in an interface
					if tc.pe != nil {
						err = tc.pe
					}
					out, lost = lookupOutcome(tc.sub, err)
				}
				if lost {
					tr = requeueLost(tc.row)
					break
				}
				h = hearCheck(tc.row, out, tc.env)
				tr = decideCheck(tc.row, out, tc.env)
			}
			got.heard = h.kind
			got.state, got.mustLookup, got.addAttempt, got.failure, got.next, got.accepted =
				tr.state, tr.mustLookup, tr.addAttempt, tr.failure, tr.nextTry, tr.accepted
			if tr.err != nil {
				got.code = tr.err.Code
			}
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			if tr.state != "" && tr.row != tc.row.Row {
				t.Errorf("transition of row %d, want %d", tr.row, tc.row.Row)
			}
			if tr.failure != (tr.state == Failed) {
				t.Errorf("state %s counted as a failure: %v", tr.state, tr.failure)
			}
		})
	}
	t.Logf("%d cases", len(cases))
}

// TestDecisionResults: what a decision records besides the state.
func TestDecisionResults(t *testing.T) {
	env := rowEnv{now: time.Now(), maxAttempts: 3, completionTimeout: time.Minute, backoff: func(int) time.Duration { return 0 }}
	r := RowRecord{Row: 3, Attempts: 1, Handle: "h", Result: map[string]string{"a": "1", "b": "1"}}

	tr := decideCheck(r, providers.Outcome{Status: providers.Succeeded, Result: map[string]string{"b": "2"}}, env)
	if tr.handle != "h" || tr.result["a"] != "1" || tr.result["b"] != "2" {
		t.Errorf("check succeeded: handle %q result %v, want the handle kept and the results merged", tr.handle, tr.result)
	}
	tr, _ = decideLookup(r, providers.Subscription{Found: true, Active: true, State: "live", Identifiers: map[string]string{"imsi": "9"}}, nil, env)
	if tr.result["note"] == "" || tr.result["imsi"] != "9" || tr.result["state"] != "live" {
		t.Errorf("found on recovery: result %v, want the note, the identifiers and the state", tr.result)
	}
	tr, _ = decideLookup(r, providers.Subscription{Found: true, Pending: true, Identifiers: map[string]string{"imsi": "9"}}, nil, env)
	if tr.handle != "h" || tr.result["imsi"] != "9" {
		t.Errorf("found pending: handle %q result %v", tr.handle, tr.result)
	}
	tr = decideSubmit(r, providers.Outcome{Status: providers.Failed, Err: &providers.Error{Code: providers.CodeMalformed, Message: "garbage", Retryable: true}},
		rowEnv{now: env.now, maxAttempts: 1, backoff: env.backoff})
	if tr.err.Code != providers.CodeUnreadable || !tr.err.Retryable || !tr.err.MaybeApplied || tr.err.Message == "garbage" {
		t.Errorf("unreadable at the end: %+v", tr.err)
	}
	ra := &providers.Error{Code: providers.CodeRateLimited, HTTPStatus: 429, Retryable: true, RetryAfter: time.Hour}
	if tr = decideSubmit(r, providers.Outcome{Status: providers.Failed, Err: ra}, env); !tr.nextTry.Equal(env.now.Add(time.Hour)) {
		t.Errorf("Retry-After of an hour: next try %v, want %v", tr.nextTry, env.now.Add(time.Hour))
	}
}
