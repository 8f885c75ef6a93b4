package pipeline

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/simbulk/simbulk/providers"
)

// DriftKind says how a provider's record differs from what the rollout
// left.
type DriftKind string

const (
	DriftMissing  DriftKind = "missing"  // the provider does not know the identifier
	DriftMismatch DriftKind = "mismatch" // a different ICCID, IMSI, MSISDN or SIM number
	DriftState    DriftKind = "state"    // present, but not in the state provisioning left it in
)

// Finding is one difference in one row.
type Finding struct {
	Row      int       `json:"row"`
	Provider string    `json:"provider"`
	ID       string    `json:"id"`
	Kind     DriftKind `json:"kind"`
	Expected string    `json:"expected"`
	Actual   string    `json:"actual"`
}

// Reconciliation is the outcome of comparing a run with its providers.
type Reconciliation struct {
	ID      string
	RunID   string
	State   RunState // running, interrupted or completed
	Checked int      // rows looked up
	InSync  int
	// NotProvisioned counts rows the rollout never provisioned (failed,
	// invalid, still open): reported as such, not as drift.
	NotProvisioned int
	// Unchecked counts rows whose lookup kept failing.
	Unchecked int
	Drift     []Finding
	// StartedAt is when it started; FinishedAt when it completed (zero
	// while it has not).
	StartedAt, FinishedAt time.Time
}

// Count adds n rows of the given status to the totals: what a store
// reads back from the rows a reconciliation recorded.
func (r *Reconciliation) Count(status ReconcileStatus, n int) {
	switch status {
	case ReconcileInSync:
		r.InSync += n
		r.Checked += n
	case ReconcileDrift:
		r.Checked += n
	case ReconcileNotProvisioned:
		r.NotProvisioned += n
	case ReconcileError, ReconcilePending:
		r.Unchecked += n
	}
}

// Reconciler compares a run's provisioned rows with what the providers
// hold, through the same lanes (clients, concurrency, rate limits) a
// rollout uses.
type Reconciler struct {
	// Checkpoint records the reconciliation row by row.
	Checkpoint ReconcileStore
	Lanes      map[string]*Lane
	Logger     *slog.Logger
	// MaxTries bounds lookups of one row that fail for a retryable cause.
	MaxTries int
	// Now is the clock of its rate limiters' pauses and of its lookups'
	// latencies (nil: time.Now).
	Now func() time.Time
	// Observe is Engine.Observe for the reconciliation's lookups. A lookup
	// that failed for a retryable cause is a Retry, though the checkpoint
	// ends the row as an error once it has had MaxTries of them.
	Observe func(Request)
}

// Reconcile checks every provisioned row of run, resuming an unfinished
// reconciliation of the same run if there is one. If ctx is cancelled it
// records what it has and returns ctx's error; the next call resumes. It
// fills the settings left zero into its own copy of r and of each Lane:
// the caller's are left as given.
func (r *Reconciler) Reconcile(ctx context.Context, run Run) (Reconciliation, error) {
	c := *r
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MaxTries <= 0 {
		c.MaxTries = 3
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c.reconcile(ctx, run)
}

func (r *Reconciler) reconcile(ctx context.Context, run Run) (Reconciliation, error) {
	cp := r.Checkpoint
	id, resumed, err := cp.OpenReconciliation(ctx, run.ID)
	if err != nil {
		return Reconciliation{}, err
	}
	if resumed {
		r.Logger.Info("resuming the unfinished reconciliation of this run", "reconciliation", id, "run", run.ID)
	}
	var g errgroup.Group
	for _, given := range r.Lanes {
		lane := *given
		lane.defaults()
		lim := newAdaptiveLimiter(lane.Rate)
		lim.now = r.Now
		g.Go(func() error { return r.lane(ctx, id, run, &lane, lim) })
	}
	err = g.Wait()
	state := RunCompleted
	if err != nil || ctx.Err() != nil {
		state = RunInterrupted
	}
	bg := context.WithoutCancel(ctx)
	if serr := cp.FinishReconciliation(bg, id, state); serr != nil && err == nil {
		err = serr
	}
	res, rerr := cp.Reconciliation(bg, id)
	if err == nil {
		err = rerr
	}
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return res, err
}

// lane looks up one provider's pending rows, a page at a time, until none
// is left or ctx ends.
func (r *Reconciler) lane(ctx context.Context, id string, run Run, lane *Lane, lim *adaptiveLimiter) error {
	const page = 512
	cp := r.Checkpoint
	for pass := 0; ctx.Err() == nil; pass++ {
		after, seen := 0, 0
		for ctx.Err() == nil {
			rows, err := cp.ReconcilePending(ctx, run.ID, id, lane.Name, after, page)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			if len(rows) == 0 {
				break
			}
			seen += len(rows)
			after = rows[len(rows)-1].Row
			verdicts := make([]verdict, len(rows))
			g := new(errgroup.Group)
			g.SetLimit(lane.Concurrency)
			for i, row := range rows {
				g.Go(func() error {
					verdicts[i] = r.check(ctx, lane, lim, row)
					return nil
				})
			}
			_ = g.Wait()
			records := make([]Verdict, len(verdicts))
			for i, v := range verdicts {
				if v.refused != nil {
					// Every lookup would be refused the same way: stop the
					// lane rather than record each row as an error; the
					// reconciliation resumes once the config is fixed.
					return &CredentialsError{Provider: lane.Name, Cause: v.refused}
				}
				records[i] = v.Verdict
			}
			if err := cp.RecordVerdicts(context.WithoutCancel(ctx), id, records, r.MaxTries); err != nil {
				return err
			}
		}
		if seen == 0 {
			return nil
		}
		sleep(ctx, time.Duration(pass+1)*200*time.Millisecond) // let retryable lookups breathe
	}
	return nil
}

// ReconcileStatus is where a row stands in a reconciliation.
type ReconcileStatus string

const (
	ReconcilePending        ReconcileStatus = "pending" // not looked up yet, or to be tried again
	ReconcileInSync         ReconcileStatus = "in_sync"
	ReconcileDrift          ReconcileStatus = "drift"
	ReconcileNotProvisioned ReconcileStatus = "not_provisioned" // the rollout never provisioned it
	ReconcileError          ReconcileStatus = "error"           // its lookups kept failing
)

// Verdict is one row's reconciliation result, as the checkpoint records
// it (ReconcileStore.RecordVerdicts). An empty Status with a Note is a
// failed try, to be tried again later; neither means not looked up.
type Verdict struct {
	Row      int
	Status   ReconcileStatus
	Findings []Finding
	Note     string
}

// verdict is a Verdict as a lookup ends: refused is set when the provider
// refused simbulk's credentials.
type verdict struct {
	Verdict
	refused *providers.Error
}

func (r *Reconciler) check(ctx context.Context, lane *Lane, lim *adaptiveLimiter, row RowRecord) verdict {
	if err := lim.Wait(ctx); err != nil {
		return verdict{Verdict: Verdict{Row: row.Row}}
	}
	started := r.Now()
	sub, err := lane.Client.Lookup(lim.Paced(ctx), orderOf(row))
	a := &attempt{row: row.Row, kind: "lookup", started: started, latency: r.Now().Sub(started), outcome: providers.Outcome{Status: providers.Succeeded}}
	if err != nil {
		pe := providers.AsError(err)
		a.outcome = providers.Outcome{Status: providers.Failed, Err: pe}
		observe(r.Observe, lane.Name, a, pe.Retryable && pe.Code != providers.CodeCredentials)
		switch {
		case pe.Code == providers.CodeCredentials:
			return verdict{Verdict: Verdict{Row: row.Row}, refused: pe}
		case pe.HTTPStatus == 429:
			lim.TooMany(pe.RetryAfter)
		case pe.Retryable && (pe.HTTPStatus == 0 || pe.HTTPStatus >= 500):
			if pause := lim.Trouble(); pause > 0 {
				r.Logger.Warn("provider failing every lookup; pausing its lookups", "provider", lane.Name, "pause", pause.String())
			}
		}
		if pe.Retryable {
			return verdict{Verdict: Verdict{Row: row.Row, Note: pe.Error()}}
		}
		return verdict{Verdict: Verdict{Row: row.Row, Status: ReconcileError, Note: pe.Error()}}
	}
	observe(r.Observe, lane.Name, a, false)
	lim.OK()
	f := Compare(row, sub)
	if len(f) == 0 {
		return verdict{Verdict: Verdict{Row: row.Row, Status: ReconcileInSync}}
	}
	return verdict{Verdict: Verdict{Row: row.Row, Status: ReconcileDrift, Findings: f}}
}

// Compare lists how a provider's record differs from what the manifest and
// the rollout recorded for row: nothing at all, one missing finding, or any
// identifier mismatches and a state finding.
func Compare(row RowRecord, sub providers.Subscription) []Finding {
	id := primaryID(row)
	f := func(kind DriftKind, expected, actual string) Finding {
		return Finding{Row: row.Row, Provider: row.Provider, ID: id, Kind: kind, Expected: expected, Actual: actual}
	}
	if !sub.Found {
		return []Finding{f(DriftMissing, "present", "not found")}
	}
	var out []Finding
	for _, k := range []string{"eid", "iccid", "imsi", "msisdn", "cli", "imei"} {
		want := expectedID(row, k)
		got := sub.Identifiers[k]
		if want == "" || got == "" || sameID(k, want, got) {
			continue
		}
		out = append(out, f(DriftMismatch, k+"="+want, k+"="+got))
	}
	if sub.Conflict != "" && len(out) == 0 {
		// Same identifiers, somebody else's record (another agreement).
		out = append(out, f(DriftMismatch, "this row's record", sub.Conflict))
	}
	if sub.Pending || !sub.Active {
		actual := sub.State
		if sub.Pending {
			actual = "pending (" + sub.State + ")"
		}
		if actual == "" {
			actual = "inactive"
		}
		out = append(out, f(DriftState, "active", actual))
	}
	return out
}

// primaryID is the identifier a provider keys a row by.
func primaryID(r RowRecord) string {
	switch {
	case r.EID != "":
		return r.EID
	case r.CLI != "":
		return r.CLI
	}
	return r.ICCID
}

// expectedID is what the manifest or the rollout's result says an
// identifier should be.
func expectedID(r RowRecord, kind string) string {
	switch kind {
	case "eid":
		return r.EID
	case "iccid":
		if r.ICCID != "" {
			return r.ICCID
		}
		if v := r.Result["sim_number"]; v != "" {
			return v
		}
	case "cli":
		return r.CLI
	case "imei":
		return r.IMEI
	}
	return r.Result[kind]
}

// sameID compares identifiers as a provider may write them: phone numbers
// by their digits, ICCIDs with or without the check digit.
func sameID(kind, a, b string) bool {
	if a == b {
		return true
	}
	switch kind {
	case "msisdn", "cli", "imsi":
		return digits(a) == digits(b)
	case "iccid":
		if len(a) > len(b) {
			a, b = b, a
		}
		return len(b) == len(a)+1 && strings.HasPrefix(b, a)
	}
	return false
}

func digits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}
