package pipeline

// Fault-profile tests: real provider clients against the real simulators
// (over httptest), with the simulators' fault model switched on, driven by
// the Engine from a checkpoint loaded from a generated manifest. Each test
// asserts the rollout's invariants: every row ends final, no row is lost,
// no identifier reaches a provider twice, and the counts are right.

import (
	"bytes"
	"context"
	"encoding/csv"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/simbulk/simbulk/ingest"
	"github.com/simbulk/simbulk/providers"
	_ "github.com/simbulk/simbulk/providers/all" // every shipped provider's simulator and client
	"github.com/simbulk/simbulk/providers/asavie"
	"github.com/simbulk/simbulk/providers/iotconnect"
	"github.com/simbulk/simbulk/providers/simkit"
	"github.com/simbulk/simbulk/providers/thingspace"
	"github.com/simbulk/simbulk/samples"
)

// rollout is one fault test's world: a checkpoint with a loaded run, every
// registered provider's simulator, and a lane per provider with a real
// client.
type rollout struct {
	t    *testing.T
	cp   Store
	run  Run
	rows map[string]int // valid rows per provider
	// preloaded are records a simulator held before the run.
	preloaded map[string]int
	simByName map[string]providers.Simulator
	clients   map[string]providers.Client
	lanes     map[string]*Lane
}

// knobs are the client and lane settings of a test.
type knobs struct {
	timeout     time.Duration // per request
	concurrency int
	rate        float64
	maxAttempts int
	callback    bool          // completion by callback where a provider offers it
	grace       time.Duration // how long a row waits for its callback before it is polled
	// sims replace a provider's simulator (by provider name) where a test
	// needs options the registry's settings do not carry.
	sims       map[string]func(providers.SimSettings) providers.Simulator
	asyncDelay time.Duration
	forms      simkit.Forms // the simulators' wire forms
}

func (k *knobs) defaults() {
	if k.timeout == 0 {
		k.timeout = 2 * time.Second
	}
	if k.concurrency == 0 {
		k.concurrency = 8
	}
	if k.maxAttempts == 0 {
		k.maxAttempts = 12
	}
	if k.grace == 0 {
		k.grace = 150 * time.Millisecond
	}
}

const (
	pollEvery = 20 * time.Millisecond
	// batchSize is the most rows per request of a provider whose requests
	// carry several.
	batchSize = 10
)

// newRollout writes a manifest of perProvider rows for each provider
// (mutate may change a device first), loads it into a fresh checkpoint,
// and starts simulators with faults and clients with k. Faults start only
// after the setup, so a callback registration is not hit.
func newRollout(t *testing.T, perProvider int, faults simkit.Faults, k knobs, mutate func(n int, d *samples.Device)) *rollout {
	t.Helper()
	k.defaults()
	ctx := context.Background()
	dir := t.TempDir()

	// The manifest: providers interleaved, as a mixed file would be.
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(samples.Columns)
	for i := range perProvider * len(samples.Providers) {
		n := i/len(samples.Providers) + 1
		d := samples.NewDevice(samples.Providers[i%len(samples.Providers)], n)
		if mutate != nil {
			mutate(n, &d)
		}
		_ = w.Write(d.Record())
	}
	w.Flush()
	manifest := filepath.Join(dir, "devices.csv")
	if err := os.WriteFile(manifest, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	cp, err := openStore(filepath.Join(dir, "simbulk.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cp.Close() })
	r, err := ingest.Open(manifest, ingest.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	run, err := cp.CreateRun(ctx, "fp-"+t.Name(), manifest, r.Header().Names)
	if err != nil {
		t.Fatal(err)
	}
	sum, hp, err := Load(ctx, cp, run, r, ingest.ValidateOptions{})
	if err != nil || len(hp) > 0 || sum.Invalid != 0 || sum.Rows != perProvider*len(samples.Providers) {
		t.Fatalf("load: %+v header problems %v err %v", sum, hp, err)
	}
	if err := cp.MarkLoaded(ctx, run.ID); err != nil {
		t.Fatal(err)
	}

	ro := &rollout{t: t, cp: cp, run: run, rows: map[string]int{}, preloaded: map[string]int{},
		simByName: map[string]providers.Simulator{}, clients: map[string]providers.Client{}, lanes: map[string]*Lane{}}
	for _, p := range samples.Providers {
		ro.rows[p] = perProvider
	}
	urls := map[string]string{}
	for _, d := range providers.Registered() {
		newSim := d.NewSimulator
		if f := k.sims[d.Name]; f != nil {
			newSim = f
		}
		sim := newSim(providers.SimSettings{AsyncDelay: k.asyncDelay, Forms: k.forms})
		if c, ok := sim.(interface{ Close() }); ok {
			t.Cleanup(c.Close) // stop callback deliveries before the listener goes
		}
		ro.simByName[d.Name] = sim
		urls[d.Name] = serve(t, sim)
	}

	for _, d := range providers.Registered() {
		lane := providers.LaneConfig{Concurrency: k.concurrency, Rate: k.rate, MaxAttempts: k.maxAttempts,
			Timeout: k.timeout, MaxRetryAfter: 50 * time.Millisecond, PollInterval: pollEvery,
			// The account every sample device of the provider carries.
			Defaults: map[string]string{ingest.ColAccountName: samples.NewDevice(d.Name, 1).AccountName}}
		block := d.SimConfig(urls[d.Name], lane, providers.SimClient{BatchSize: batchSize, PollOnly: !k.callback, CallbackGrace: k.grace})
		c, err := block.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if cl, ok := c.(providers.Closer); ok {
			t.Cleanup(func() { cl.Close() })
		}
		if st, ok := c.(providers.Starter); ok {
			if err := st.Start(ctx); err != nil {
				t.Fatal(err)
			}
		}
		batch := 1
		if bt, ok := c.(providers.Batcher); ok {
			batch = bt.BatchSize()
		}
		ro.clients[d.Name] = c
		ro.lanes[d.Name] = &Lane{Name: d.Name, Client: c, Concurrency: lane.Concurrency, Rate: lane.Rate, BatchSize: batch,
			MaxAttempts: lane.MaxAttempts, PollInterval: lane.PollInterval}
	}

	for _, s := range ro.sims() {
		s.Kit().SetFaults(faults)
		s.Kit().ResetStats()
	}
	return ro
}

func serve(t *testing.T, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func (ro *rollout) sims() map[string]providers.Simulator {
	return ro.simByName
}

// The simulators and client of a test that needs one provider's own
// behaviour.
func (ro *rollout) iot() *iotconnect.Simulator {
	return ro.simByName[iotconnect.Name].(*iotconnect.Simulator)
}
func (ro *rollout) asv() *asavie.Simulator { return ro.simByName[asavie.Name].(*asavie.Simulator) }
func (ro *rollout) ts() *thingspace.Simulator {
	return ro.simByName[thingspace.Name].(*thingspace.Simulator)
}
func (ro *rollout) tsc() *thingspace.Client { return ro.clients[thingspace.Name].(*thingspace.Client) }

// tsSim is a ThingSpace simulator with callback options of a test's own.
func tsSim(opts thingspace.SimOptions) map[string]func(providers.SimSettings) providers.Simulator {
	return map[string]func(providers.SimSettings) providers.Simulator{thingspace.Name: func(s providers.SimSettings) providers.Simulator {
		opts.AsyncDelay, opts.Forms = s.AsyncDelay, s.Forms
		return thingspace.NewSimulator(opts)
	}}
}

func (ro *rollout) engine() *Engine {
	// Random faults can fail a few requests in a row; the outage pause
	// that follows is kept short so the tests stay quick.
	return &Engine{Checkpoint: ro.cp, Lanes: ro.lanes, Grace: 5 * time.Second, OutagePause: 50 * time.Millisecond,
		Backoff: func(int) time.Duration { return 10 * time.Millisecond }}
}

// runToEnd runs the engine with a deadline and returns the final state.
func (ro *rollout) runToEnd(e *Engine) RunState {
	ro.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	state, err := e.Run(ctx, ro.run)
	if err != nil {
		ro.t.Fatalf("engine: state %s: %v", state, err)
	}
	return state
}

// counts returns the run's rows by state, per provider.
func (ro *rollout) counts() map[string]Counts {
	ro.t.Helper()
	out := map[string]Counts{}
	err := ro.cp.RowsIn(context.Background(), ro.run.ID, "", func(r RowRecord) error {
		if out[r.Provider] == nil {
			out[r.Provider] = Counts{}
		}
		out[r.Provider][r.State]++
		return nil
	})
	if err != nil {
		ro.t.Fatal(err)
	}
	return out
}

// check asserts the invariants: every row final and accounted for, each
// identifier provisioned exactly once per row sent, and the succeeded
// count per provider. failed lists the rows per provider expected to fail.
func (ro *rollout) check(failed map[string]int) {
	t := ro.t
	t.Helper()
	byProvider := ro.counts()
	total := 0
	for p, c := range byProvider {
		total += c.Total()
		for _, s := range []State{Pending, InFlight, Accepted} {
			if c[s] != 0 {
				t.Errorf("%s: %d rows left %s: %v", p, c[s], s, c)
			}
		}
		if want := ro.rows[p] - failed[p]; c[Succeeded] != want || c[Failed] != failed[p] {
			t.Errorf("%s: %d succeeded %d failed, want %d and %d (%v)", p, c[Succeeded], c[Failed], want, failed[p], c)
		}
	}
	want := 0
	for _, n := range ro.rows {
		want += n
	}
	if total != want {
		t.Errorf("checkpoint holds %d rows, want %d", total, want)
	}
	for p, s := range ro.sims() {
		st := s.Kit().Stats()
		if len(st.Duplicates) > 0 {
			for id := range st.Duplicates {
				ro.logAttempts(id)
			}
			t.Errorf("%s: identifiers provisioned more than once: %v", p, st.Duplicates)
		}
		// A row refused for good may never be sent: recovery can find its
		// identifier held by somebody else and fail it without a request.
		if st.ProvisionRequests != st.Provisioned || st.Provisioned > ro.rows[p] || st.Provisioned < ro.rows[p]-failed[p] {
			t.Errorf("%s: simulator processed %d provisioning requests for %d identifiers, want one each for %d to %d identifiers",
				p, st.ProvisionRequests, st.Provisioned, ro.rows[p]-failed[p], ro.rows[p])
		}
		t.Logf("%s: requests %v, faults %v, 429s %d, status %v, counters %v", p, st.Requests, st.Faults, st.TooManyRequests, st.Status, st.Counters)
	}
	// What the providers hold: one record per succeeded row.
	for p, n := range map[string]int{asavie.Name: ro.asv().Count(), iotconnect.Name: ro.iot().Count()} {
		if want := ro.rows[p] - failed[p] + ro.preloaded[p]; n != want {
			t.Errorf("%s simulator holds %d records, want %d", p, n, want)
		}
	}
}

func TestFaults429Storm(t *testing.T) {
	// The simulators enforce 50 requests/s each; the lanes are configured
	// for four times that, and the first 30 provisioning requests of each
	// provider are refused outright. The adaptive limiter must slow down
	// to the provider's pace, and no row may fail for being refused.
	const limit, injected = 50, 30
	ro := newRollout(t, 30, simkit.Faults{Rate: limit, Burst: 5, RetryAfter: time.Second},
		knobs{rate: 4 * limit, maxAttempts: 50}, nil)
	for _, s := range ro.sims() {
		s.Kit().Inject(simkit.OpProvision, simkit.TooMany, injected)
	}
	if state := ro.runToEnd(ro.engine()); state != RunCompleted {
		t.Fatalf("run %s, want completed", state)
	}
	ro.check(nil)
	for p, s := range ro.sims() {
		st := s.Kit().Stats()
		sent := 0
		for _, n := range st.Requests {
			sent += n
		}
		// Without slowing down, three requests in four would be refused
		// (plus the injected ones). The limiter halves on each 429 and
		// climbs back slowly: most requests must get through.
		over := st.TooManyRequests - st.Faults[string(simkit.TooMany)]
		if over*3 > sent {
			t.Errorf("%s: %d of %d requests refused by the enforced rate: the lane did not slow down", p, over, sent)
		}
		if st.Faults[string(simkit.TooMany)] != injected {
			t.Errorf("%s: %d injected 429s answered, want %d", p, st.Faults[string(simkit.TooMany)], injected)
		}
		t.Logf("%s: %d requests, %d refused by the enforced rate, %d injected 429s", p, sent, over, injected)
	}
}

func TestFaultsServerErrors(t *testing.T) {
	// 503 refuses a request before the provider sees it; 500 answers after
	// the provider did the work. Either may be resent only after a lookup.
	ro := newRollout(t, 60, simkit.Faults{FaultRate: 0.25, Kinds: []simkit.Fault{simkit.Unavailable, simkit.ServerError}, Seed: 2},
		knobs{}, nil)
	ro.asv().FailNext(10) // Asavie's HTTP 200 with envelope Code 500: not created
	if state := ro.runToEnd(ro.engine()); state != RunCompleted {
		t.Fatalf("run %s, want completed", state)
	}
	ro.check(nil)
	for p, s := range ro.sims() {
		st := s.Kit().Stats()
		if st.Faults[string(simkit.ServerError)] == 0 || st.Faults[string(simkit.Unavailable)] == 0 {
			t.Errorf("%s: faults %v: want both 500s and 503s", p, st.Faults)
		}
	}
}

func TestFaultsTimeouts(t *testing.T) {
	// A hang before the handler (request never processed) and after it
	// (processed, answer never comes) look alike to the client: a timeout.
	ro := newRollout(t, 40, simkit.Faults{FaultRate: 0.15, Kinds: []simkit.Fault{simkit.Hang, simkit.HangAfter}, HangFor: 5 * time.Second, Seed: 3},
		knobs{timeout: 300 * time.Millisecond, concurrency: 16}, nil)
	if state := ro.runToEnd(ro.engine()); state != RunCompleted {
		t.Fatalf("run %s, want completed", state)
	}
	ro.check(nil)
	for p, s := range ro.sims() {
		st := s.Kit().Stats()
		if st.Faults[string(simkit.Hang)] == 0 || st.Faults[string(simkit.HangAfter)] == 0 {
			t.Errorf("%s: faults %v: want both kinds of hang", p, st.Faults)
		}
	}
}

func TestFaultsLostCallbacks(t *testing.T) {
	t.Run("all lost", func(t *testing.T) {
		// Every ThingSpace callback is lost: rows complete by polling once
		// CallbackGrace has passed.
		ro := newRollout(t, 40, simkit.Faults{}, knobs{callback: true, asyncDelay: 20 * time.Millisecond,
			sims: tsSim(thingspace.SimOptions{CallbackLoss: 1})}, nil)
		if state := ro.runToEnd(ro.engine()); state != RunCompleted {
			t.Fatalf("run %s, want completed", state)
		}
		ro.check(nil)
		st := ro.ts().Kit().Stats()
		if st.Counters["callbacks_lost"] != 40 || st.Counters["callbacks_sent"] != 0 {
			t.Errorf("callbacks %v, want 40 lost and none sent", st.Counters)
		}
		if st.Requests[simkit.OpStatus] == 0 {
			t.Error("no request status polls: rows cannot have completed by polling")
		}
		if cs := ro.tsc().CallbackStats(); cs.Received != 0 {
			t.Errorf("listener received %d callbacks, want none", cs.Received)
		}
	})
	t.Run("lost late and duplicated", func(t *testing.T) {
		ro := newRollout(t, 40, simkit.Faults{Seed: 4}, knobs{callback: true, asyncDelay: 20 * time.Millisecond,
			sims: tsSim(thingspace.SimOptions{CallbackLoss: 0.3, CallbackDuplicate: 0.5, CallbackJitter: 100 * time.Millisecond})}, nil)
		if state := ro.runToEnd(ro.engine()); state != RunCompleted {
			t.Fatalf("run %s, want completed", state)
		}
		ro.check(nil)
		st := ro.ts().Kit().Stats()
		if st.Counters["callbacks_lost"] == 0 || st.Counters["callbacks_duplicated"] == 0 {
			t.Errorf("callbacks %v, want some lost and some duplicated", st.Counters)
		}
	})
}

func TestFaultsDroppedAndGarbled(t *testing.T) {
	ro := newRollout(t, 60, simkit.Faults{FaultRate: 0.25, Kinds: []simkit.Fault{simkit.Refuse, simkit.Drop, simkit.Garble}, Seed: 5},
		knobs{}, nil)
	if state := ro.runToEnd(ro.engine()); state != RunCompleted {
		t.Fatalf("run %s, want completed", state)
	}
	ro.check(nil)
	for p, s := range ro.sims() {
		st := s.Kit().Stats()
		for _, f := range []simkit.Fault{simkit.Refuse, simkit.Drop, simkit.Garble} {
			if st.Faults[string(f)] == 0 {
				t.Errorf("%s: faults %v: want some %s", p, st.Faults, f)
			}
		}
	}
}

// rejectAsavie makes the first rejected Asavie devices name an account
// that does not exist: a permanent 404 for those rows alone.
func rejectAsavie(rejected int) func(n int, d *samples.Device) {
	return func(n int, d *samples.Device) {
		if d.Provider == asavie.Name && n <= rejected {
			d.Account = "unknown-account"
		}
	}
}

func TestFaultsMaxFailures(t *testing.T) {
	// Five Asavie rows are refused for good; --max-failures 5 stops the
	// run when the fifth fails. Transient faults meanwhile must not fail
	// any row: a row cut short by the stop stays pending for the resume.
	// (Only 503s: a 500 hides the refusal, and the row is then rightly
	// sent again after a lookup, which the simulator counts twice.)
	// Accepted work takes a second to complete, far longer than reaching
	// the fifth refusal, so the stop always finds rows still open.
	const rejected = 5
	ro := newRollout(t, 80, simkit.Faults{Latency: 20 * time.Millisecond, FaultRate: 0.2, Kinds: []simkit.Fault{simkit.Unavailable}, Seed: 6},
		knobs{asyncDelay: time.Second}, rejectAsavie(rejected))
	e := ro.engine()
	e.MaxFailures = Threshold{Count: rejected}
	if state := ro.runToEnd(e); state != RunAborted {
		t.Fatalf("first run %s, want aborted", state)
	}
	if r, err := ro.cp.Run(context.Background(), ro.run.ID); err != nil || r.State != RunAborted {
		t.Fatalf("checkpoint says run %s (%v), want aborted", r.State, err)
	}
	c := ro.counts()
	open := 0
	for p, pc := range c {
		open += pc[Pending] + pc[Accepted]
		if pc[InFlight] != 0 {
			t.Errorf("%s: %d rows left in flight after a clean stop", p, pc[InFlight])
		}
		if want := map[string]int{asavie.Name: rejected}[p]; pc[Failed] != want {
			t.Errorf("%s: %d rows failed at the stop, want %d (%v)", p, pc[Failed], want, pc)
		}
	}
	if open == 0 {
		t.Fatal("nothing left to resume: the threshold did not stop the run early")
	}
	t.Logf("stopped with %d rows open: %v", open, c)

	// Resume: the cause is gone (the refused rows are final), so the run
	// completes under the same threshold.
	if state := ro.runToEnd(ro.engine()); state != RunCompleted {
		t.Fatalf("resumed run %s, want completed", state)
	}
	ro.check(map[string]int{asavie.Name: rejected})
}

func TestFaultsRejection(t *testing.T) {
	// Permanent refusals: unknown Asavie accounts (404), EIDs IoT Connect
	// holds under another eUICC agreement (400 already registered, a
	// conflict), and ThingSpace activations the provider fails after
	// accepting them. Each ends its row failed and not retryable; every
	// other row succeeds, under transient faults too (503s and dropped
	// connections, which leave the refusals visible). The documented
	// eUICC resource has no agreement id, so an EID held under another
	// agreement shows only in the alternate form, which carries one.
	const perProvider, rejected = 50, 5
	faults := simkit.Faults{FaultRate: 0.1, Kinds: []simkit.Fault{simkit.Unavailable, simkit.Refuse}, Seed: 7}
	ro := newRollout(t, perProvider, faults, knobs{asyncDelay: 10 * time.Millisecond, forms: simkit.Alternate}, func(n int, d *samples.Device) {
		if d.Provider == asavie.Name && n%10 == 7 {
			d.Account = "unknown-account"
		}
	})
	for n := 4; n <= perProvider; n += 10 {
		d := samples.NewDevice(iotconnect.Name, n)
		if _, err := ro.iot().Preload(iotconnect.Registration{EID: d.EID, CMP: d.CMP, EUICCAgreementID: "AGR-SOMEONE-ELSE", LocaleID: d.LocaleID}); err != nil {
			t.Fatal(err)
		}
		ro.preloaded[iotconnect.Name]++
		ro.ts().FailActivation(samples.NewDevice(thingspace.Name, n-1).EID)
	}
	if state := ro.runToEnd(ro.engine()); state != RunCompleted {
		t.Fatalf("run %s, want completed", state)
	}
	ro.check(map[string]int{asavie.Name: rejected, iotconnect.Name: rejected, thingspace.Name: rejected})
	err := ro.cp.RowsIn(context.Background(), ro.run.ID, Failed, func(r RowRecord) error {
		if r.Retryable || r.ErrorCode == "" || r.ErrorMessage == "" {
			t.Errorf("row %d (%s) failed with code %q message %q retryable=%v: want a provider's permanent refusal",
				r.Row, r.Provider, r.ErrorCode, r.ErrorMessage, r.Retryable)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// logAttempts logs the requests recorded for the row with this identifier,
// to show how a duplicate came about.
func (ro *rollout) logAttempts(id string) {
	ctx := context.Background()
	err := ro.cp.RowsIn(ctx, ro.run.ID, "", func(r RowRecord) error {
		if r.EID != id && r.CLI != id {
			return nil
		}
		as, err := ro.cp.Attempts(ctx, ro.run.ID, r.Row)
		for _, a := range as {
			ro.t.Logf("  %s row %d: %s HTTP %d %s %s (row now %s)", id, a.Row, a.Kind, a.HTTPStatus, a.Outcome, a.ErrorCode, r.State)
		}
		return err
	})
	if err != nil {
		ro.t.Log(err)
	}
}
