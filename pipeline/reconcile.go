package pipeline

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
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
}

// Reconciler compares a run's provisioned rows with what the providers
// hold, through the same lanes (clients, concurrency, rate limits) a
// rollout uses.
type Reconciler struct {
	Checkpoint *Checkpoint
	Lanes      map[string]*Lane
	Logger     *slog.Logger
	// MaxTries bounds lookups of one row that fail for a retryable cause.
	MaxTries int
	// Now is the clock of its rate limiters' pauses (nil: time.Now).
	Now func() time.Time
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
	id, resumed, err := cp.openReconciliation(ctx, run.ID)
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
	if serr := cp.Write(bg, func(tx *sql.Tx) error {
		now := cp.now().UnixMilli()
		var fin any
		if state == RunCompleted {
			fin = now
		}
		_, err := tx.Exec("UPDATE reconciliations SET state = ?, updated_at = ?, finished_at = ? WHERE id = ?", state, now, fin, id)
		return err
	}); serr != nil && err == nil {
		err = serr
	}
	res, rerr := cp.reconciliation(bg, id)
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
			rows, err := cp.queryRows(ctx, "read rows to reconcile",
				"SELECT "+prefixed("r.", rowColumns)+" FROM reconcile_rows k JOIN rows r ON r.run_id = ? AND r.row = k.row"+
					" WHERE k.reconcile_id = ? AND k.provider = ? AND k.status = "+sqlLit(rcPending)+" AND k.row > ? ORDER BY k.row LIMIT ?",
				run.ID, id, lane.Name, after, page)
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
			for _, v := range verdicts {
				if v.refused != nil {
					// Every lookup would be refused the same way: stop the
					// lane rather than record each row as an error; the
					// reconciliation resumes once the config is fixed.
					return &CredentialsError{Provider: lane.Name, Cause: v.refused}
				}
			}
			if err := cp.recordVerdicts(context.WithoutCancel(ctx), id, verdicts, r.MaxTries); err != nil {
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

// reconcileStatus is where a row stands in a reconciliation
// (reconcile_rows.status).
type reconcileStatus string

const (
	rcPending        reconcileStatus = "pending" // not looked up yet, or to be tried again
	rcInSync         reconcileStatus = "in_sync"
	rcDrift          reconcileStatus = "drift"
	rcNotProvisioned reconcileStatus = "not_provisioned" // the rollout never provisioned it
	rcError          reconcileStatus = "error"           // its lookups kept failing
)

// verdict is one row's reconciliation result; a zero status means "try
// again later".
type verdict struct {
	row      int
	status   reconcileStatus
	findings []Finding
	note     string
	// refused is set when the provider refused simbulk's credentials.
	refused *providers.Error
}

func (r *Reconciler) check(ctx context.Context, lane *Lane, lim *adaptiveLimiter, row RowRecord) verdict {
	if err := lim.Wait(ctx); err != nil {
		return verdict{row: row.Row}
	}
	sub, err := lane.Client.Lookup(ctx, orderOf(row))
	if err != nil {
		pe := providers.AsError(err)
		switch {
		case pe.Code == providers.CodeCredentials:
			return verdict{row: row.Row, refused: pe}
		case pe.HTTPStatus == 429:
			lim.TooMany(pe.RetryAfter)
		case pe.Retryable && (pe.HTTPStatus == 0 || pe.HTTPStatus >= 500):
			if pause := lim.Trouble(); pause > 0 {
				r.Logger.Warn("provider failing every lookup; pausing its lookups", "provider", lane.Name, "pause", pause.String())
			}
		}
		if pe.Retryable {
			return verdict{row: row.Row, note: pe.Error()}
		}
		return verdict{row: row.Row, status: rcError, note: pe.Error()}
	}
	lim.OK()
	f := Compare(row, sub)
	if len(f) == 0 {
		return verdict{row: row.Row, status: rcInSync}
	}
	return verdict{row: row.Row, status: rcDrift, findings: f}
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

func prefixed(p, columns string) string {
	parts := strings.Split(columns, ", ")
	for i := range parts {
		parts[i] = p + parts[i]
	}
	return strings.Join(parts, ", ")
}

// openReconciliation resumes the run's unfinished reconciliation or starts
// one, listing every row: provisioned rows (succeeded, skipped) to check,
// the rest as not provisioned.
func (c *Checkpoint) openReconciliation(ctx context.Context, runID string) (id string, resumed bool, err error) {
	err = c.read.QueryRowContext(ctx, "SELECT id FROM reconciliations WHERE run_id = ? AND state != ? ORDER BY created_at DESC LIMIT 1", runID, RunCompleted).Scan(&id)
	if err == nil {
		return id, true, c.Write(ctx, func(tx *sql.Tx) error {
			_, err := tx.Exec("UPDATE reconciliations SET state = ?, updated_at = ? WHERE id = ?", RunRunning, c.now().UnixMilli(), id)
			return err
		})
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", false, fmt.Errorf("find reconciliation: %w", err)
	}
	now := c.now()
	id = "rc-" + newRunID(now)
	err = c.Write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.Exec("INSERT INTO reconciliations (id, run_id, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
			id, runID, RunRunning, now.UnixMilli(), now.UnixMilli()); err != nil {
			return err
		}
		_, err := tx.Exec(`INSERT INTO reconcile_rows (reconcile_id, row, provider, status, note)
			SELECT ?, row, provider, CASE WHEN state `+sqlProvisioned+` THEN `+sqlLit(rcPending)+` ELSE `+sqlLit(rcNotProvisioned)+` END,
			       CASE WHEN state `+sqlProvisioned+` THEN '' ELSE state END
			FROM rows WHERE run_id = ?`, id, runID)
		return err
	})
	if err != nil {
		return "", false, fmt.Errorf("start reconciliation: %w", err)
	}
	return id, false, nil
}

// recordVerdicts commits a page of results. A row whose lookup failed for
// a retryable cause stays pending until it has been tried maxTries times.
func (c *Checkpoint) recordVerdicts(ctx context.Context, id string, vs []verdict, maxTries int) error {
	return c.Write(ctx, func(tx *sql.Tx) error {
		st, err := tx.Prepare(`UPDATE reconcile_rows SET tries = tries + 1, note = ?,
			status = CASE WHEN ? != '' THEN ? WHEN tries + 1 >= ? THEN ` + sqlLit(rcError) + ` ELSE status END,
			findings = ? WHERE reconcile_id = ? AND row = ?`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, v := range vs {
			if v.status == "" && v.note == "" {
				continue // not looked up (stopping): leave it as it was
			}
			fb, err := json.Marshal(v.findings)
			if err != nil {
				return err
			}
			if v.findings == nil {
				fb = []byte("[]")
			}
			if _, err := st.Exec(v.note, v.status, v.status, maxTries, string(fb), id, v.row); err != nil {
				return err
			}
		}
		return nil
	})
}

// reconciliation reads a reconciliation's totals and findings.
func (c *Checkpoint) reconciliation(ctx context.Context, id string) (Reconciliation, error) {
	res := Reconciliation{ID: id}
	if err := c.read.QueryRowContext(ctx, "SELECT run_id, state FROM reconciliations WHERE id = ?", id).Scan(&res.RunID, &res.State); err != nil {
		return res, fmt.Errorf("read reconciliation: %w", err)
	}
	rows, err := c.read.QueryContext(ctx, "SELECT status, count(*) FROM reconcile_rows WHERE reconcile_id = ? GROUP BY status", id)
	if err != nil {
		return res, fmt.Errorf("read reconciliation: %w", err)
	}
	for rows.Next() {
		var status string
		var n int
		if err := rows.Scan(&status, &n); err != nil {
			rows.Close()
			return res, err
		}
		switch reconcileStatus(status) {
		case rcInSync:
			res.InSync += n
			res.Checked += n
		case rcDrift:
			res.Checked += n
		case rcNotProvisioned:
			res.NotProvisioned += n
		case rcError, rcPending:
			res.Unchecked += n
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return res, err
	}
	drift, err := c.read.QueryContext(ctx, "SELECT findings FROM reconcile_rows WHERE reconcile_id = ? AND status = "+sqlLit(rcDrift)+" ORDER BY row", id)
	if err != nil {
		return res, fmt.Errorf("read drift: %w", err)
	}
	defer drift.Close()
	for drift.Next() {
		var fb string
		if err := drift.Scan(&fb); err != nil {
			return res, err
		}
		var fs []Finding
		if err := json.Unmarshal([]byte(fb), &fs); err != nil {
			return res, fmt.Errorf("read drift: %w", err)
		}
		res.Drift = append(res.Drift, fs...)
	}
	return res, drift.Err()
}
