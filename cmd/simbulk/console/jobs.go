package console

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// job is a rollout or reconciliation the console drives.
type job struct {
	Kind    string // rollout | reconcile
	RunID   string
	User    string
	Started time.Time
	cancel  context.CancelFunc
	done    chan struct{}
	// set when done:
	err     error
	outcome string
}

// jobs runs one job at a time. The checkpoint lock allows one driver per
// checkpoint across processes; inside this process the console says so
// itself, naming what runs, instead of the lock's "another simbulk".
type jobs struct {
	mu      sync.Mutex
	current *job
	last    map[string]*job // the last finished job of each run, for its outcome
	wg      sync.WaitGroup
	base    context.Context
	stop    context.CancelFunc
}

func newJobs() *jobs {
	base, stop := context.WithCancel(context.Background())
	return &jobs{last: map[string]*job{}, base: base, stop: stop}
}

// ErrBusy is returned when the console already drives a job.
var ErrBusy = errors.New("busy")

// start runs fn as a job in the background. fn reports the run it works
// on through opened (as soon as it is known) and returns an outcome line
// and error. start waits until the run is known or fn has ended, so the
// caller can show the run's page; it returns the run id.
func (js *jobs) start(kind, runID, user string, fn func(ctx context.Context, opened func(runID string)) (string, error)) (string, error) {
	js.mu.Lock()
	if c := js.current; c != nil {
		js.mu.Unlock()
		return "", fmt.Errorf("%w: the console is already running a %s of run %s (started by %s); stop it or wait for it to finish", ErrBusy, c.Kind, c.RunID, c.User)
	}
	ctx, cancel := context.WithCancel(js.base)
	j := &job{Kind: kind, RunID: runID, User: user, Started: time.Now(), cancel: cancel, done: make(chan struct{})}
	js.current = j
	js.mu.Unlock()

	known := make(chan string, 1)
	opened := func(id string) {
		js.mu.Lock()
		j.RunID = id
		js.mu.Unlock()
		select {
		case known <- id:
		default:
		}
	}
	js.wg.Add(1)
	go func() {
		defer js.wg.Done()
		defer cancel()
		outcome, err := fn(ctx, opened)
		js.mu.Lock()
		j.outcome, j.err = outcome, err
		js.current = nil
		if j.RunID != "" {
			js.last[j.RunID] = j
		}
		js.mu.Unlock()
		close(j.done)
	}()
	select {
	case id := <-known:
		return id, nil
	case <-j.done:
		if j.err != nil {
			return j.RunID, j.err
		}
		return j.RunID, nil
	}
}

// running returns the job working on run id, if any.
func (js *jobs) running(id string) *job {
	js.mu.Lock()
	defer js.mu.Unlock()
	if js.current != nil && js.current.RunID == id {
		return js.current
	}
	return nil
}

// finished returns the outcome of the last job of run id to end: its
// summary line and error, ok false when the console ran none.
func (js *jobs) finished(id string) (kind, outcome string, err error, ok bool) {
	js.mu.Lock()
	defer js.mu.Unlock()
	j := js.last[id]
	if j == nil {
		return "", "", nil, false
	}
	return j.Kind, j.outcome, j.err, true
}

// stopRun stops the job of run id gracefully (as Ctrl-C does) and waits
// until ctx ends for it to record its state.
func (js *jobs) stopRun(ctx context.Context, id string) bool {
	j := js.running(id)
	if j == nil {
		return false
	}
	j.cancel()
	select {
	case <-j.done:
	case <-ctx.Done():
	}
	return true
}

// stopAll stops every job (server shutdown) and waits for them until ctx
// ends.
func (js *jobs) stopAll(ctx context.Context) error {
	js.stop()
	done := make(chan struct{})
	go func() {
		js.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("rollout still stopping: %w", ctx.Err())
	}
}
