package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/simbulk/simbulk/providers"
)

// send claims due pending rows and hands them to the lane's senders, a
// batch at a time, until the lane has nothing left to send or the run is
// stopped. The rows are leased to this worker (Claim), so other workers
// on the run send others; a batch is cut from one claim, so all its rows
// are this worker's.
//
// A batch goes through two stages of Concurrency goroutines each, which
// live as long as the lane: one commits its intent (prepare), the other
// sends it (deliver). A sender has the next batch's intent committed
// while its request is out, so the commit's wait is not added to every
// request; and each request still leaves only once its intent is durable.
// At most Concurrency requests are in flight, and the next claim is made
// while the last one's batches are being worked. A batch whose intent is
// committed but whose request has not left when the lane stops is
// withdrawn (see deliver): the stop sends nothing more.
func (l *laneRunner) send() error {
	ctx := l.stopCtx
	batches := make(chan []RowRecord, l.lane.Concurrency)
	ready := make(chan prepared)
	var preparers, senders errgroup.Group
	for range l.lane.Concurrency {
		preparers.Go(func() error {
			for batch := range batches {
				if ctx.Err() != nil {
					l.release(batch)
					continue
				}
				p, err := l.prepare(batch)
				if err != nil {
					l.stop(err)
					for batch := range batches {
						l.release(batch)
					}
					return err
				}
				if len(p.rows) > 0 {
					ready <- p
				}
			}
			return nil
		})
		senders.Go(func() error {
			for p := range ready {
				l.deliver(p)
			}
			return nil
		})
	}
	after := 0
	var fatal error
	for fatal == nil && ctx.Err() == nil {
		l.settle()
		var rows []RowRecord
		err := l.retry(ctx, "claim rows", func() (err error) {
			rows, err = l.e.Checkpoint.Claim(ctx, l.run.ID, l.lane.Name, l.worker, l.e.Now(), after, l.claimSize())
			return err
		})
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
			// Nothing due now: rows wait for a retry, or are being worked.
			// Look again shortly, or as soon as the last of them is done.
			select {
			case <-ctx.Done():
			case <-l.idle:
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		after = rows[len(rows)-1].Row
		for _, batch := range l.batches(rows) {
			select {
			case batches <- batch:
			case <-ctx.Done():
				l.release(batch)
			}
		}
	}
	close(batches)
	if err := preparers.Wait(); err != nil && fatal == nil {
		fatal = err
	}
	close(ready)
	_ = senders.Wait()
	if fatal != nil {
		l.stop(fatal)
	}
	return fatal
}

// claimSize is how many rows one Claim asks for: enough for every sender
// and a few batches more each, so a claim's own cost (a query, the leases,
// a look for rows left in flight by gone workers) is shared by many rows;
// but not so many that one claim holds the checkpoint's writer for long.
func (l *laneRunner) claimSize() int {
	n := l.lane.BatchSize * l.lane.Concurrency
	return max(n, min(4*n, 256))
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
	idle := len(l.busy) == len(l.released)
	l.mu.Unlock()
	if idle {
		// The lane may be done: the sender and the follower look now
		// rather than at their next poll.
		for _, c := range []chan struct{}{l.idle, l.follows.wake} {
			select {
			case c <- struct{}{}:
			default:
			}
		}
	}
}

// held counts the rows the lane works on: busy and not yet released.
// Released rows are committed, so a count of the checkpoint's open rows
// taken now sees their new state.
func (l *laneRunner) held() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.busy) - len(l.released)
}

// settle frees the released rows; called just before a Claim, whose
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
	if l.held() > 0 {
		return false, nil
	}
	var n int
	err := l.retry(ctx, "count open rows", func() (err error) {
		n, err = l.e.Checkpoint.CountOpen(ctx, l.run.ID, l.lane.Name)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("count open rows: %w", err)
	}
	return n == 0, nil
}

// prepared is a batch whose intent is committed, ready to be sent.
type prepared struct {
	rows []RowRecord
	// outages is the lane's count of outages when the batch got its turn
	// (laneRunner.outages): one begun since means it is withdrawn rather
	// than sent into it.
	outages int64
}

// prepare readies one batch to be sent: rows whose earlier request may
// have taken effect are looked up first, and the intent to send the rest
// is committed. It returns the rows to send, in flight now; the others'
// new states go to the recorder, or they are freed untouched.
func (l *laneRunner) prepare(batch []RowRecord) (prepared, error) {
	var send, looked []RowRecord
	var ts []transition
	for _, r := range batch {
		if !r.MustLookup {
			send = append(send, r)
			continue
		}
		if t, resend := l.recover(r); resend {
			send = append(send, r)
		} else {
			looked, ts = append(looked, r), append(ts, t)
		}
	}
	if len(ts) > 0 {
		l.recordLater(looked, ts)
	}
	if len(send) == 0 {
		return prepared{}, nil
	}
	if err := l.limiter.Turn(l.stopCtx); err != nil {
		l.release(send) // stopping: the rows stay pending, untouched
		return prepared{}, nil
	}
	outages := l.outages.Load() // after the turn: a probe's is in the outage
	rowNums := make([]int, len(send))
	for i, r := range send {
		rowNums[i] = r.Row
	}
	marked, err := l.e.Checkpoint.MarkInFlight(l.reqCtx, l.run.ID, l.worker, rowNums)
	if errors.Is(err, ErrLeaseLost) {
		l.release(send)
		return prepared{}, fmt.Errorf("record intent: %w", err)
	}
	if err != nil {
		// Whether the intent was committed is unknown (the connection
		// may have dropped with the commit on its way): nothing is sent,
		// and the rows wait for a lookup, which tells.
		l.e.Logger.Warn("could not record the intent to send; the rows wait for a lookup", "provider", l.lane.Name, "rows", len(send), "error", err.Error())
		held := make([]transition, len(send))
		for i, r := range send {
			held[i] = holdForLookup(r, nil)
		}
		l.recordLater(send, held)
		return prepared{}, nil
	}
	// Only the rows still this worker's are sent: another worker has the
	// rest (it took them over while this one's lease had lapsed).
	if len(marked) < len(send) {
		var gone []RowRecord
		send = slices.DeleteFunc(send, func(r RowRecord) bool {
			if !slices.Contains(marked, r.Row) {
				gone = append(gone, r)
				return true
			}
			return false
		})
		l.release(gone)
	}
	return prepared{rows: send, outages: outages}, nil
}

// deliver sends rows whose intent is committed in one request, and hands
// their outcomes to the recorder.
func (l *laneRunner) deliver(p prepared) {
	send := p.rows
	if l.stopCtx.Err() != nil || (l.limiter.Down() && l.outages.Load() != p.outages) {
		// Stopped, or the provider went down, before it left: nothing
		// is sent after a stop, nor into an outage, that was not already
		// on its way (the outage's probe got its turn in it).
		ts := make([]transition, len(send))
		for i, r := range send {
			ts[i] = withdraw(r)
		}
		l.recordLater(send, ts)
		return
	}
	orders := make([]providers.Order, len(send))
	for i, r := range send {
		orders[i] = orderOf(r)
	}
	// Spaced as it leaves, after the intent's commit, however long that
	// took. Stopped meanwhile, it still goes (or fails at once when its
	// requests are cut off): it was on its way.
	_ = l.limiter.Depart(l.reqCtx)
	started := l.e.Now()
	outs := l.lane.Client.Submit(l.limiter.Paced(l.reqCtx), orders)
	latency := l.e.Now().Sub(started)
	ts := make([]transition, 0, len(send))
	for i := range send {
		r := &send[i]
		out := providers.Outcome{Status: providers.Failed, Err: &providers.Error{Code: providers.CodeMalformed, Message: "provider client returned no outcome", Retryable: true, MaybeApplied: true}}
		if i < len(outs) {
			out = outs[i]
		}
		r.Attempts++
		t := l.afterSubmit(*r, out)
		t.attempt = &attempt{row: r.Row, kind: "submit", started: started, latency: latency, outcome: out}
		observe(l.e.Observe, l.lane.Name, t.attempt, t.retry)
		ts = append(ts, t)
	}
	l.recordLater(send, ts)
}

// recover looks up a row whose earlier request may have reached the
// provider, and settles it (decideLookup); resend means the provider does
// not have it, so sending is safe.
func (l *laneRunner) recover(r RowRecord) (t transition, resend bool) {
	if err := l.limiter.Wait(l.stopCtx); err != nil {
		return holdForLookup(r, nil), false
	}
	started := l.e.Now()
	sub, lerr := l.lane.Client.Lookup(l.limiter.Paced(l.reqCtx), orderOf(r))
	out := providers.Outcome{Status: providers.Succeeded}
	var pe *providers.Error
	if lerr != nil {
		out, pe = providers.FailedOutcome(lerr), providers.AsError(lerr)
	}
	a := &attempt{row: r.Row, kind: "lookup", started: started, latency: l.e.Now().Sub(started), outcome: out}
	stopping := l.stopCtx.Err() != nil
	l.hear(hearLookup(pe, stopping))
	env := l.env()
	env.stopping = stopping
	t, resend = decideLookup(r, sub, pe, env)
	if resend {
		observe(l.e.Observe, l.lane.Name, a, false)
		return t, true
	}
	if pe == nil && t.state == Failed {
		// Answered, and what it holds fails the row: the attempt says why.
		a.outcome = providers.Outcome{Status: providers.Failed, Err: t.err}
	}
	t.attempt = a
	observe(l.e.Observe, l.lane.Name, a, t.retry)
	return l.decided(t), false
}

// afterSubmit maps a provider's answer for one row to the row's new state.
func (l *laneRunner) afterSubmit(r RowRecord, out providers.Outcome) transition {
	l.hear(hearSubmit(out))
	return l.decided(decideSubmit(r, out, l.env()))
}

// env is what the lane's decisions know of it now.
func (l *laneRunner) env() rowEnv {
	return rowEnv{now: l.e.Now(), maxAttempts: l.lane.MaxAttempts, completionTimeout: l.lane.CompletionTimeout,
		backoff: l.e.Backoff, down: l.limiter.Down(), stopping: l.stopCtx.Err() != nil,
		cutOff: errors.Is(l.reqCtx.Err(), context.Canceled)}
}

// hear tells the limiter (or, for a refusal of simbulk's credentials, the
// lane) what an answer says of the provider.
func (l *laneRunner) hear(h heard) {
	switch h.kind {
	case heardAnswer:
		l.ok()
	case heardFailure:
		l.noteAnswer(h.pe)
	case heardRefusal:
		l.refused(h.pe)
	}
}

// decided counts a transition's final failure against the threshold.
func (l *laneRunner) decided(t transition) transition {
	if t.failure {
		l.failed(1)
	}
	return t
}

// noteAnswer tells the lane's limiter what a failed request says about the
// provider: busy (429), perhaps down (5xx, no answer), or up and refusing.
func (l *laneRunner) noteAnswer(pe *providers.Error) {
	switch {
	case pe.HTTPStatus == 429 || pe.Code == providers.CodeRateLimited:
		l.limiter.TooMany(pe.RetryAfter)
		l.sharePause(pe.RetryAfter)
	case pe.Retryable && (pe.HTTPStatus == 0 || pe.HTTPStatus >= 500):
		if pause := l.limiter.Trouble(); pause > 0 {
			l.outages.Add(1)
			l.sharePause(pause)
			l.e.Logger.Warn("provider failing every request; pausing its rows rather than spend their attempts",
				"provider", l.lane.Name, "pause", pause.String(), "last_error", pe.Code, "http_status", pe.HTTPStatus)
			l.e.notify(Notice{Provider: l.lane.Name, Kind: NoticeProviderDown, Pause: pause, Message: string(pe.Code)})
		}
		if down := l.limiter.DownFor(); down > l.e.maxOutage() {
			l.stop(fmt.Errorf("%w: %s has failed every request for %s (last: %s); its rows wait, and the same command resumes the run",
				ErrProviderDown, l.lane.Name, down.Round(time.Millisecond), pe.Error()))
		}
	default:
		l.ok()
	}
}

// sharePause records a pause of the lane's provider so that the run's
// other workers honour it too (they look every keepUpEvery). A pause this
// worker could not record still holds here.
func (l *laneRunner) sharePause(d time.Duration) {
	if d <= 0 {
		return
	}
	if err := l.e.Checkpoint.PauseProvider(context.WithoutCancel(l.reqCtx), l.run.ID, l.lane.Name, d); err != nil {
		l.e.Logger.Warn("could not share a pause of the provider with the other workers", "provider", l.lane.Name, "error", err.Error())
	}
}

// ok tells the limiter a request was answered.
func (l *laneRunner) ok() {
	if l.limiter.OK() {
		l.e.Logger.Info("provider answering again; sending resumes", "provider", l.lane.Name)
		l.e.notify(Notice{Provider: l.lane.Name, Kind: NoticeProviderUp})
	}
}

// recording is rows' new states on their way to the checkpoint.
type recording struct {
	rows []RowRecord
	ts   []transition // ts[i] is rows[i]'s
}

// recordLater hands the transitions ts of rows to the recorder, which
// commits them and then frees the rows, or follows those they leave
// accepted. Only outcomes go this way: an intent is committed before its
// request leaves (MarkInFlight), and the sender waits for that.
func (l *laneRunner) recordLater(rows []RowRecord, ts []transition) {
	l.outcomes <- recording{rows: rows, ts: ts}
}

// maxRecorded bounds the transitions the recorder commits in one write.
const maxRecorded = 512

// recorder commits the lane's outcomes as they come, in groups: all that
// came while the last group was being written go in one Apply. Rows are
// freed, or followed, only once their state is committed. It returns when
// outcomes is closed, with the first error (after which the lane is
// stopped and nothing more is written).
func (l *laneRunner) recorder() error {
	var failed error
	var group []recording
	var ts []transition
	var done []RowRecord
	for first := range l.outcomes {
		if failed != nil {
			continue
		}
		group, ts = append(group[:0], first), append(ts[:0], first.ts...)
	drain:
		for len(ts) < maxRecorded {
			select {
			case more, ok := <-l.outcomes:
				if !ok {
					break drain
				}
				group, ts = append(group, more), append(ts, more.ts...)
			default:
				break drain
			}
		}
		full := l.follows.len() >= maxFollowed
		for i := range ts {
			if ts[i].state == Accepted {
				ts[i].follow = !full
				if full {
					l.follows.overflowed.Store(true)
				}
			}
		}
		at, err := l.record(ts)
		if err != nil {
			failed = err
			l.stop(err)
			continue
		}
		i := 0
		done = done[:0]
		for _, g := range group {
			for j, r := range g.rows {
				if t := ts[i+j]; t.follow {
					r = t.applyTo(r, at)
					r.Cells = nil // not needed to check it
					l.follows.add(at.Add(l.lane.PollInterval), r)
				} else {
					done = append(done, r)
				}
			}
			i += len(g.rows)
		}
		l.release(done)
		clear(group)
	}
	return failed
}

// record applies ts to the checkpoint and returns the time that stamped
// them.
func (l *laneRunner) record(ts []transition) (at time.Time, err error) {
	ctx := context.WithoutCancel(l.reqCtx)
	recs := records(ts)
	err = l.retry(ctx, "record outcomes", func() error {
		at = l.e.Now()
		return l.e.Checkpoint.Apply(ctx, l.run.ID, l.worker, at, recs)
	})
	if err != nil {
		return at, fmt.Errorf("record outcomes: %w", err)
	}
	return at, nil
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
