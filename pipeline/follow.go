package pipeline

import (
	"context"

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

func (l *laneRunner) accepted(ctx context.Context, after, limit int) (rows []RowRecord, err error) {
	err = l.retry(ctx, "claim accepted rows", func() (err error) {
		rows, err = l.e.Checkpoint.ClaimAccepted(ctx, l.run.ID, l.lane.Name, l.worker, after, limit)
		return err
	})
	return rows, err
}

// check takes one look at an accepted row. A zero transition means no
// change. Rows without a handle (found pending on recovery) are followed
// by lookups.
func (l *laneRunner) check(r RowRecord) transition {
	if err := l.limiter.Wait(l.stopCtx); err != nil {
		return unchanged()
	}
	started := l.e.Now()
	var out providers.Outcome
	if r.Handle == "" {
		sub, err := l.lane.Client.Lookup(l.limiter.Paced(l.reqCtx), orderOf(r))
		var lost bool
		if out, lost = lookupOutcome(sub, err); lost {
			// Accepted once, gone now: let the sender try it afresh.
			t := requeueLost(r)
			observe(l.e.Observe, l.lane.Name, &attempt{row: r.Row, kind: "check", started: started,
				latency: l.e.Now().Sub(started), outcome: providers.Outcome{Status: providers.Failed, Err: t.err}}, t.retry)
			return t
		}
	} else {
		out = l.lane.Client.Check(l.limiter.Paced(l.reqCtx), orderOf(r), r.Handle)
	}
	a := &attempt{row: r.Row, kind: "check", started: started, latency: l.e.Now().Sub(started), outcome: out}
	l.hear(hearCheck(r, out, l.env()))
	t := l.decided(decideCheck(r, out, l.env()))
	if t.state != "" {
		t.attempt = a
	}
	observe(l.e.Observe, l.lane.Name, a, t.retry)
	return t
}
