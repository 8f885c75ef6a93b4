package pipeline

import (
	"container/heap"
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/simbulk/simbulk/providers"
)

// follow learns the completion of accepted rows. A row the lane accepted
// itself is checked when its completion is due: one PollInterval after its
// acceptance, and again every PollInterval while the provider says not
// yet. The lane keeps such a row, leased and in memory, from its send to
// its final state (followQueue), so its checks cost no read of the
// checkpoint and wait for no sweep.
//
// A sweep of the checkpoint is the fallback that finds the accepted rows
// the lane does not hold: those found there when the run starts (a
// resume), those of workers that left or died, and those the lane could
// not keep in memory (maxFollowed). It runs at the start, then every
// PollInterval while the run has other workers or rows the lane let go,
// and whenever the lane has nothing of its own left but is not done.
//
// Due rows go to Concurrency checkers beside the senders, so a lane of
// concurrency N may have 2N requests in flight. follow returns when the
// lane is quiet.
func (l *laneRunner) follow() error {
	ctx := l.stopCtx
	due := make(chan RowRecord)
	var checkers sync.WaitGroup
	for range l.lane.Concurrency {
		checkers.Go(func() {
			for r := range due {
				l.followUp(r)
			}
		})
	}
	err := l.dispatch(ctx, due)
	if err != nil {
		l.stop(err)
	}
	close(due)
	checkers.Wait()
	return err
}

// followUp checks one due row: recorded (and let go) once the check
// changed it, due again a PollInterval later if not.
func (l *laneRunner) followUp(r RowRecord) {
	t := l.check(r)
	switch {
	case t.state != "":
		l.recordLater([]RowRecord{r}, []transition{t})
	case l.stopCtx.Err() == nil:
		l.follows.add(l.e.Now().Add(l.lane.PollInterval), r)
	default:
		l.release([]RowRecord{r}) // stopping: it stays accepted for the resume
	}
}

// maxFollowed bounds the rows a lane keeps in memory to follow: the rest
// are left to the sweep, which reads them a page at a time.
const maxFollowed = 4096

// dispatch hands due rows to the checkers and runs the sweeps, until the
// lane is quiet or stopped.
func (l *laneRunner) dispatch(ctx context.Context, due chan<- RowRecord) error {
	now := l.e.Now()
	sweepAt := now  // the first sweep at once: rows accepted before this run
	sweepAfter := 0 // where the sweep under way goes on from
	timer := time.NewTimer(l.lane.PollInterval)
	defer timer.Stop()
	for ctx.Err() == nil {
		if now := l.e.Now(); !sweepAt.IsZero() && !now.Before(sweepAt) {
			l.follows.overflowed.Store(false)
			after, err := l.sweep(ctx, sweepAfter)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			sweepAfter, sweepAt = after, time.Time{}
			if after != 0 || l.seenOthers.Load() || l.follows.overflowed.Load() {
				// Not through yet (the lane holds all it may), or other
				// workers' rows may come free: look again.
				sweepAt = now.Add(l.lane.PollInterval)
			}
		}
		for {
			r, ok := l.follows.popDue(l.e.Now())
			if !ok {
				break
			}
			select {
			case due <- r:
			case <-ctx.Done():
				return nil
			}
		}
		if sweepAt.IsZero() && l.follows.overflowed.Load() {
			// Accepted rows were left to the sweep meanwhile.
			sweepAt = l.e.Now().Add(l.lane.PollInterval)
		}
		wait := l.lane.PollInterval
		next, any := l.follows.next()
		if any {
			wait = min(wait, next.Sub(l.e.Now()))
		} else if l.held() == 0 {
			// Nothing of its own to follow or send: done, unless the
			// checkpoint has open rows (due later, or not this
			// worker's), which the sweep looks for.
			done, err := l.quiet(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			if done {
				return nil
			}
			if sweepAt.IsZero() {
				sweepAt = l.e.Now().Add(l.lane.PollInterval)
			}
		}
		if !sweepAt.IsZero() {
			wait = min(wait, sweepAt.Sub(l.e.Now()))
		}
		if wait <= 0 {
			continue
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
		case <-l.follows.wake:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
	return nil
}

// sweep claims the accepted rows of the checkpoint that the lane does not
// hold yet, a page at a time from row after, and follows them at once,
// until the lane holds maxFollowed. It returns where to go on from (0:
// through).
func (l *laneRunner) sweep(ctx context.Context, after int) (int, error) {
	const page = 512
	for ctx.Err() == nil && l.follows.len() < maxFollowed {
		rows, err := l.accepted(ctx, after, page)
		if err != nil {
			return after, err
		}
		if len(rows) == 0 {
			return 0, nil
		}
		after = rows[len(rows)-1].Row
		now := l.e.Now()
		for _, r := range l.claim(rows) {
			r.Cells = nil // not needed to check it
			l.follows.add(now, r)
		}
	}
	return after, nil
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

// followQueue holds the accepted rows a lane follows itself, soonest due
// first.
type followQueue struct {
	mu   sync.Mutex
	rows dueRows
	// wake hears of a row added that is due before all others, so that
	// the dispatcher waiting for a later one looks again.
	wake chan struct{}
	// overflowed: an accepted row was left to the sweep since the last
	// one began, the queue being full.
	overflowed atomic.Bool
}

func newFollowQueue() *followQueue { return &followQueue{wake: make(chan struct{}, 1)} }

// add follows r from at.
func (q *followQueue) add(at time.Time, r RowRecord) {
	q.mu.Lock()
	sooner := len(q.rows) == 0 || at.Before(q.rows[0].at)
	heap.Push(&q.rows, dueRow{at: at, r: r})
	q.mu.Unlock()
	if sooner { // else the dispatcher wakes for an earlier row anyway
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// popDue takes the row due soonest if it is due by now.
func (q *followQueue) popDue(now time.Time) (RowRecord, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.rows) == 0 || q.rows[0].at.After(now) {
		return RowRecord{}, false
	}
	return heap.Pop(&q.rows).(dueRow).r, true
}

// next is when the row due soonest is due.
func (q *followQueue) next() (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.rows) == 0 {
		return time.Time{}, false
	}
	return q.rows[0].at, true
}

func (q *followQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.rows)
}

// dueRow is a followed row and when it is next checked.
type dueRow struct {
	at time.Time
	r  RowRecord
}

// dueRows is a min-heap of dueRow by time (container/heap).
type dueRows []dueRow

func (h dueRows) Len() int           { return len(h) }
func (h dueRows) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h dueRows) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueRows) Push(x any)        { *h = append(*h, x.(dueRow)) }
func (h *dueRows) Pop() any {
	old := *h
	n := len(old)
	x := old[n-1]
	old[n-1] = dueRow{}
	*h = old[:n-1]
	return x
}
