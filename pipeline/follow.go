package pipeline

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/simbulk/simbulk/providers"
)

// follow learns the completion of accepted rows: it sweeps them, one look
// each (a poll, or a look at the callback inbox), every PollInterval, until
// the lane is quiet. It runs beside send, so completion is learned while
// rows are still being sent.
func (l *laneRunner) follow() error {
	ctx := l.stopCtx
	for ctx.Err() == nil {
		swept, err := l.sweep(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			l.stop(err)
			return err
		}
		if swept == 0 {
			done, err := l.quiet(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				l.stop(err)
				return err
			}
			if done {
				return nil
			}
		}
		sleep(ctx, l.lane.PollInterval)
	}
	return nil
}

// sweep checks every accepted row once, in pages, with the lane's
// concurrency and rate limit. It returns how many rows it checked.
func (l *laneRunner) sweep(ctx context.Context) (int, error) {
	const page = 512
	checked, after := 0, 0
	for ctx.Err() == nil {
		rows, err := l.accepted(ctx, after, page)
		if err != nil || len(rows) == 0 {
			return checked, err
		}
		after = rows[len(rows)-1].Row
		g := new(errgroup.Group)
		g.SetLimit(l.lane.Concurrency)
		var ts = make([]transition, len(rows))
		for i, r := range rows {
			g.Go(func() error {
				ts[i] = l.check(r)
				return nil
			})
		}
		_ = g.Wait()
		changed := ts[:0]
		for _, t := range ts {
			if t.state != "" {
				changed = append(changed, t)
			}
		}
		if len(changed) > 0 {
			if err := l.record(changed); err != nil {
				return checked, err
			}
		}
		checked += len(rows)
	}
	return checked, nil
}

func (l *laneRunner) accepted(ctx context.Context, after, limit int) ([]RowRecord, error) {
	return l.e.Checkpoint.queryRows(ctx, "read accepted rows",
		"SELECT "+rowColumns+" FROM rows INDEXED BY rows_open WHERE run_id = ? AND provider = ? AND state = "+sqlLit(Accepted)+" AND row > ? ORDER BY row LIMIT ?",
		l.run.ID, l.lane.Name, after, limit)
}

// check takes one look at an accepted row. A zero transition means no
// change. Rows without a handle (found pending on recovery) are followed
// by lookups.
func (l *laneRunner) check(r RowRecord) transition {
	if err := l.limiter.Wait(l.stopCtx); err != nil {
		return transition{}
	}
	started := time.Now()
	var out providers.Outcome
	if r.Handle == "" {
		sub, err := l.lane.Client.Lookup(l.reqCtx, orderOf(r))
		switch {
		case err != nil:
			out = providers.FailedOutcome(err)
		case !sub.Found:
			// Accepted once, gone now: let the sender try it afresh.
			return transition{row: r.Row, state: Pending, mustLookup: true,
				err: &providers.Error{Code: providers.CodeNotFound, Message: "accepted request no longer known to the provider", Retryable: true}}
		case sub.Pending:
			out = providers.Outcome{Status: providers.Accepted}
		case !sub.Active:
			out = providers.Outcome{Status: providers.Failed, Err: notActive(sub), Result: sub.Identifiers}
		default:
			out = providers.Outcome{Status: providers.Succeeded, Result: sub.Identifiers}
		}
	} else {
		out = l.lane.Client.Check(l.reqCtx, orderOf(r), r.Handle)
	}
	a := &attempt{row: r.Row, kind: "check", started: started, latency: time.Since(started), outcome: out}
	switch out.Status {
	case providers.Succeeded:
		l.ok()
		return transition{row: r.Row, state: Succeeded, handle: r.Handle, result: merge(r.Result, out.Result), attempt: a}
	case providers.Accepted:
		if out.Err != nil {
			if l.refused(out.Err) {
				return transition{}
			}
			l.noteAnswer(out.Err) // the look failed; the work is not in doubt
		} else {
			l.ok()
		}
		if !r.AcceptedAt.IsZero() && time.Since(r.AcceptedAt) > l.lane.CompletionTimeout {
			l.failed(1)
			return transition{row: r.Row, state: Failed, mustLookup: true, attempt: a,
				err: &providers.Error{Code: providers.CodeIncomplete, Retryable: true,
					Message: fmt.Sprintf("accepted but not completed within %s", l.lane.CompletionTimeout)}}
		}
		return transition{}
	}
	pe := out.Err
	if pe == nil {
		pe = &providers.Error{Code: providers.CodeMalformed, Message: "failed without a reason"}
	}
	if l.refused(pe) {
		return transition{}
	}
	withinTime := r.AcceptedAt.IsZero() || time.Since(r.AcceptedAt) <= l.lane.CompletionTimeout
	if pe.Retryable && withinTime {
		// A failed poll is not a failed provisioning: look again next sweep.
		l.noteAnswer(pe)
		return transition{}
	}
	if pe.Code == providers.CodeMalformed {
		// Unreadable for the whole completion timeout: the row's bound in
		// time is spent.
		l.failed(1)
		return transition{row: r.Row, state: Failed, mustLookup: true, err: finalError(pe, r.Attempts), attempt: a}
	}
	// The provider finished the work and says it failed: a final answer
	// for this request. The row may be sent again only if the cause is
	// retryable and attempts remain, and only after a lookup: the request
	// was accepted once, whatever the provider says of it now.
	t := l.afterFailure(r, pe)
	t.mustLookup, t.attempt = true, a
	return t
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
