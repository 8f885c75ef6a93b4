package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/simbulk/simbulk/providers"
)

// send hands due pending rows to workers, a batch at a time, until the
// lane has nothing left to send or the run is stopped.
func (l *laneRunner) send() error {
	g := new(errgroup.Group)
	g.SetLimit(l.lane.Concurrency)
	ctx := l.stopCtx
	after := 0
	var fatal error
	for fatal == nil && ctx.Err() == nil {
		l.settle()
		rows, err := l.e.Checkpoint.Due(ctx, l.run.ID, l.lane.Name, after, l.lane.BatchSize*l.lane.Concurrency)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			fatal = err
			break
		}
		rows = l.claim(rows)
		if len(rows) == 0 {
			if after != 0 {
				after = 0 // wrap around: retries due again sit behind the cursor
				continue
			}
			done, err := l.quiet(ctx)
			if err != nil {
				if ctx.Err() != nil {
					break
				}
				fatal = err
				break
			}
			if done {
				break
			}
			sleep(ctx, 50*time.Millisecond)
			continue
		}
		after = rows[len(rows)-1].Row
		for _, batch := range l.batches(rows) {
			if ctx.Err() != nil {
				l.release(batch)
				continue
			}
			g.Go(func() error {
				defer l.release(batch)
				return l.work(batch)
			})
		}
	}
	if err := g.Wait(); err != nil && fatal == nil {
		fatal = err
	}
	if fatal != nil {
		l.stop(fatal)
	}
	return fatal
}

// batches cuts rows into Submits of at most BatchSize rows, keeping
// together only rows the client says can share a request (see Batcher).
// Rows keep their order within a batch; batches come in the order of
// their first row.
func (l *laneRunner) batches(rows []RowRecord) [][]RowRecord {
	size := l.lane.BatchSize
	keyer, ok := l.lane.Client.(Batcher)
	if !ok || size == 1 {
		var out [][]RowRecord
		for start := 0; start < len(rows); start += size {
			out = append(out, rows[start:min(start+size, len(rows))])
		}
		return out
	}
	var out [][]RowRecord
	open := map[string]int{} // key -> index in out of its batch still filling
	for _, r := range rows {
		key := keyer.BatchKey(orderOf(r))
		i, ok := open[key]
		if !ok || len(out[i]) == size {
			i = len(out)
			open[key] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], r)
	}
	return out
}

// claim drops rows another worker already has and marks the rest busy.
func (l *laneRunner) claim(rows []RowRecord) []RowRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := rows[:0]
	for _, r := range rows {
		if !l.busy[r.Row] {
			l.busy[r.Row] = true
			out = append(out, r)
		}
	}
	return out
}

// release hands rows back once their new state is committed. They stay
// busy until settle: see laneRunner.released.
func (l *laneRunner) release(rows []RowRecord) {
	l.mu.Lock()
	for _, r := range rows {
		l.released = append(l.released, r.Row)
	}
	l.mu.Unlock()
}

// settle frees the released rows; called just before a Due query, whose
// snapshot then includes their committed state.
func (l *laneRunner) settle() {
	l.mu.Lock()
	for _, row := range l.released {
		delete(l.busy, row)
	}
	l.released = l.released[:0]
	l.mu.Unlock()
}

// quiet reports whether the lane has no work left at all: nothing pending,
// in flight or accepted in the checkpoint, and nothing held by a worker.
func (l *laneRunner) quiet(ctx context.Context) (bool, error) {
	l.mu.Lock()
	busy := len(l.busy)
	l.mu.Unlock()
	if busy > 0 {
		return false, nil
	}
	var n int
	err := l.e.Checkpoint.DB().QueryRowContext(ctx,
		"SELECT count(*) FROM rows WHERE run_id = ? AND provider = ? AND state "+sqlOpen,
		l.run.ID, l.lane.Name).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("count open rows: %w", err)
	}
	return n == 0, nil
}

// work takes one batch: rows whose earlier request may have taken effect
// are looked up first; the rest are sent in one request.
func (l *laneRunner) work(batch []RowRecord) error {
	var send []RowRecord
	var ts []transition
	for _, r := range batch {
		if !r.MustLookup {
			send = append(send, r)
			continue
		}
		t, resend, err := l.recover(r)
		if err != nil {
			return err
		}
		if resend {
			send = append(send, r)
		} else {
			ts = append(ts, t)
		}
	}
	if len(ts) > 0 {
		if err := l.record(ts); err != nil {
			return err
		}
	}
	if len(send) == 0 {
		return nil
	}
	if err := l.limiter.Wait(l.stopCtx); err != nil {
		return nil // stopping: the rows stay pending, untouched
	}
	rowNums := make([]int, len(send))
	orders := make([]providers.Order, len(send))
	for i, r := range send {
		rowNums[i] = r.Row
		orders[i] = orderOf(r)
	}
	if err := l.e.Checkpoint.markInFlight(l.reqCtx, l.run.ID, rowNums); err != nil {
		return fmt.Errorf("record intent: %w", err)
	}
	started := time.Now()
	outs := l.lane.Client.Submit(l.reqCtx, orders)
	latency := time.Since(started)
	ts = ts[:0]
	for i, r := range send {
		out := providers.Outcome{Status: providers.Failed, Err: &providers.Error{Code: providers.CodeMalformed, Message: "provider client returned no outcome", Retryable: true, MaybeApplied: true}}
		if i < len(outs) {
			out = outs[i]
		}
		r.Attempts++
		t := l.afterSubmit(r, out)
		t.attempt = &attempt{row: r.Row, kind: "submit", started: started, latency: latency, outcome: out}
		ts = append(ts, t)
	}
	return l.record(ts)
}

// recover settles a row whose earlier request may have reached the
// provider (a crash while in flight, a timeout, a dropped connection):
// found at the provider means no resend; not found means sending is safe.
func (l *laneRunner) recover(r RowRecord) (t transition, resend bool, err error) {
	if err := l.limiter.Wait(l.stopCtx); err != nil {
		return transition{row: r.Row, state: Pending, mustLookup: true, nextTry: r.NextAttemptAt}, false, nil
	}
	started := time.Now()
	sub, lerr := l.lane.Client.Lookup(l.reqCtx, orderOf(r))
	out := providers.Outcome{Status: providers.Succeeded}
	if lerr != nil {
		out = providers.FailedOutcome(lerr)
	}
	a := &attempt{row: r.Row, kind: "lookup", started: started, latency: time.Since(started), outcome: out}
	switch {
	case lerr != nil:
		pe := providers.AsError(lerr)
		if l.refused(pe) || l.stopCtx.Err() != nil {
			// Not the row's doing: it waits, unchanged, for the resume.
			return transition{row: r.Row, state: Pending, mustLookup: true, err: pe, nextTry: r.NextAttemptAt, attempt: a}, false, nil
		}
		l.noteAnswer(pe)
		// A failed lookup spends an attempt, as a failed send does, so a
		// provider whose answers cannot be read cannot keep a row looping.
		r.Attempts++
		if !pe.Retryable || (r.Attempts >= l.lane.MaxAttempts && !l.limiter.Down()) {
			l.failed(1)
			return transition{row: r.Row, state: Failed, mustLookup: true, err: finalError(pe, r.Attempts), addAttempt: true, attempt: a}, false, nil
		}
		// Cannot tell whether the provider has it: try the lookup again later.
		return transition{row: r.Row, state: Pending, mustLookup: true, err: pe, nextTry: time.Now().Add(l.retryDelay(r.Attempts, pe)), addAttempt: true, attempt: a}, false, nil
	case !sub.Found:
		l.ok()
		return transition{}, true, nil
	case sub.Conflict != "":
		// Somebody else's record holds the identifier: resending would be
		// refused and counting it as ours would be a lie.
		l.ok()
		pe := &providers.Error{Code: providers.CodeConflict, Message: sub.Conflict}
		a.outcome = providers.Outcome{Status: providers.Failed, Err: pe}
		l.failed(1)
		return transition{row: r.Row, state: Failed, err: pe, attempt: a}, false, nil
	case sub.Pending:
		l.ok()
		return transition{row: r.Row, state: Accepted, handle: r.Handle, result: sub.Identifiers, accepted: true, attempt: a}, false, nil
	case !sub.Active:
		// Found, finished, but not in the state provisioning leaves it
		// in (deactivated, suspended, terminated): not a success, and
		// sending again would not change it.
		l.ok()
		pe := notActive(sub)
		a.outcome = providers.Outcome{Status: providers.Failed, Err: pe}
		l.failed(1)
		return transition{row: r.Row, state: Failed, err: pe, result: sub.Identifiers, attempt: a}, false, nil
	}
	l.ok()
	res := map[string]string{"note": "found at the provider on recovery"}
	for k, v := range sub.Identifiers {
		res[k] = v
	}
	if sub.State != "" {
		res["state"] = sub.State
	}
	return transition{row: r.Row, state: Succeeded, result: res, attempt: a}, false, nil
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

// afterSubmit maps a provider's answer for one row to the row's new state.
func (l *laneRunner) afterSubmit(r RowRecord, out providers.Outcome) transition {
	switch out.Status {
	case providers.Succeeded:
		l.ok()
		return transition{row: r.Row, state: Succeeded, handle: out.Handle, result: out.Result}
	case providers.Accepted:
		l.ok()
		return transition{row: r.Row, state: Accepted, handle: out.Handle, result: out.Result, accepted: true}
	}
	return l.afterFailure(r, out.Err)
}

// afterFailure decides between another try later and a final failure.
func (l *laneRunner) afterFailure(r RowRecord, pe *providers.Error) transition {
	if pe == nil {
		pe = &providers.Error{Code: providers.CodeMalformed, Message: "failed without a reason", Retryable: true}
	}
	if l.refused(pe) {
		// The provider refused simbulk, not the row: it waits, pending,
		// for a person to fix the credentials and resume.
		return transition{row: r.Row, state: Pending, err: pe, mustLookup: pe.MaybeApplied || r.MustLookup}
	}
	l.noteAnswer(pe)
	// Attempts left: try again later, also when the run is stopping (the
	// resume does): a stop is no reason to give up on a row. Nor is an
	// outage: while the provider is down, its rows wait, however many of
	// their attempts the outage has seen.
	if pe.Retryable && (r.Attempts < l.lane.MaxAttempts || l.limiter.Down()) {
		return transition{row: r.Row, state: Pending, err: pe, mustLookup: pe.MaybeApplied, nextTry: time.Now().Add(l.retryDelay(r.Attempts, pe))}
	}
	if pe.Retryable && l.stopCtx.Err() != nil && errors.Is(l.reqCtx.Err(), context.Canceled) {
		// Cut off by shutdown, not by the provider: leave it for resume.
		return transition{row: r.Row, state: Pending, err: pe, mustLookup: pe.MaybeApplied}
	}
	l.failed(1)
	pe = finalError(pe, r.Attempts)
	return transition{row: r.Row, state: Failed, err: pe, mustLookup: pe.MaybeApplied}
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

// noteAnswer tells the lane's limiter what a failed request says about the
// provider: busy (429), perhaps down (5xx, no answer), or up and refusing.
func (l *laneRunner) noteAnswer(pe *providers.Error) {
	switch {
	case pe.HTTPStatus == 429 || pe.Code == providers.CodeRateLimited:
		l.limiter.TooMany(pe.RetryAfter)
	case pe.Retryable && (pe.HTTPStatus == 0 || pe.HTTPStatus >= 500):
		if pause := l.limiter.Trouble(); pause > 0 {
			l.e.Logger.Warn("provider failing every request; pausing its rows rather than spend their attempts",
				"provider", l.lane.Name, "pause", pause.String(), "last_error", pe.Code, "http_status", pe.HTTPStatus)
		}
		if down := l.limiter.DownFor(); down > l.e.maxOutage() {
			l.stop(fmt.Errorf("%w: %s has failed every request for %s (last: %s); its rows wait, and the same command resumes the run",
				ErrProviderDown, l.lane.Name, down.Round(time.Millisecond), pe.Error()))
		}
	default:
		l.ok()
	}
}

// ok tells the limiter a request was answered.
func (l *laneRunner) ok() {
	if l.limiter.OK() {
		l.e.Logger.Info("provider answering again; sending resumes", "provider", l.lane.Name)
	}
}

func (l *laneRunner) retryDelay(attempts int, pe *providers.Error) time.Duration {
	return max(pe.RetryAfter, l.e.Backoff(attempts))
}

func (l *laneRunner) record(ts []transition) error {
	if err := l.e.Checkpoint.apply(context.WithoutCancel(l.reqCtx), l.run.ID, ts); err != nil {
		return fmt.Errorf("record outcomes: %w", err)
	}
	return nil
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
