package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/simbulk/simbulk/providers/asavie"
	"github.com/simbulk/simbulk/providers/iotconnect"
	"github.com/simbulk/simbulk/providers/simkit"
	"github.com/simbulk/simbulk/providers/thingspace"
)

// simSet is the three provider simulators behind one address, as
// `simbulk sim serve` and `run --simulate` use them.
type simSet struct {
	IoTConnect *iotconnect.Simulator
	Asavie     *asavie.Simulator
	ThingSpace *thingspace.Simulator
}

// simFlags are the knobs of `sim serve`; a profile sets them all, a flag
// given explicitly overrides one.
type simFlags struct {
	profile    string
	latency    time.Duration
	asyncDelay time.Duration
	rate       float64
	faultRate  float64
	seed       uint64
}

func (f simFlags) faults(cmd *cobra.Command) (simkit.Faults, error) {
	faults, err := simkit.Profile(f.profile)
	if err != nil {
		return faults, err
	}
	changed := func(name string) bool { return cmd != nil && cmd.Flags().Changed(name) }
	if changed("latency") {
		faults.Latency = f.latency
	}
	if changed("rate") {
		faults.Rate = f.rate
	}
	if changed("fault-rate") {
		if f.faultRate < 0 || f.faultRate > 1 {
			return faults, fmt.Errorf("--fault-rate %v: must be between 0 and 1", f.faultRate)
		}
		faults.FaultRate = f.faultRate
	}
	faults.Seed = f.seed
	return faults, nil
}

func newSimSet(faults simkit.Faults, asyncDelay time.Duration) *simSet {
	ts := thingspace.SimOptions{Faults: faults, AsyncDelay: asyncDelay}
	if faults.FaultRate > 0 {
		// Callbacks misbehave in proportion: some arrive twice, some late
		// and out of order, a few never (the client's poll fallback must
		// notice).
		ts.CallbackDuplicate = faults.FaultRate
		ts.CallbackJitter = 2 * asyncDelay
		ts.CallbackLoss = faults.FaultRate / 2
	}
	return &simSet{
		IoTConnect: iotconnect.NewSimulator(iotconnect.SimOptions{Faults: faults, AsyncDelay: asyncDelay}),
		Asavie:     asavie.NewSimulator(asavie.SimOptions{Faults: faults, AsyncDelay: asyncDelay}),
		ThingSpace: thingspace.NewSimulator(ts),
	}
}

// ServeHTTP routes by path prefix: the three APIs' paths do not overlap.
func (s *simSet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/_sim/stats":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Stats())
	case p == "/_sim/drift" && r.Method == http.MethodPost:
		s.serveDrift(w, r)
	case p == "/oauth2/token" || strings.HasPrefix(p, "/iot-connect/"):
		s.IoTConnect.ServeHTTP(w, r)
	case strings.HasPrefix(p, "/v1/"):
		s.Asavie.ServeHTTP(w, r)
	case strings.HasPrefix(p, "/api/"):
		s.ThingSpace.ServeHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
}

// driftRequest is the body of POST /_sim/drift: make a provider's record
// differ from what was provisioned, as happens in the field, or put one
// back. id is the EID (iotconnect, thingspace) or CLI (asavie).
type driftRequest struct {
	Provider string            `json:"provider"`
	ID       string            `json:"id"`
	Action   string            `json:"action"` // delete | state | alter | create
	Field    string            `json:"field"`  // alter: iccid, imsi, msisdn, sim_number, ...
	Value    string            `json:"value"`  // state: the provider's state word; alter: the new value
	Fields   map[string]string `json:"fields"` // create: cmp, euicc_agreement_id, locale_id, account, account_name, iccid
}

func (s *simSet) serveDrift(w http.ResponseWriter, r *http.Request) {
	var d driftRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&d); err != nil {
		http.Error(w, "bad drift request: "+err.Error(), http.StatusBadRequest)
		return
	}
	ok, err := s.drift(d)
	switch {
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadRequest)
	case !ok:
		http.Error(w, fmt.Sprintf("%s has no record %q", d.Provider, d.ID), http.StatusNotFound)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// drift applies one drift request through the simulators' own hooks.
func (s *simSet) drift(d driftRequest) (bool, error) {
	type hooks struct {
		forget func(string) bool
		state  func(string, string) bool
		alter  func(string, string, string) bool
	}
	var h hooks
	switch d.Provider {
	case "iotconnect":
		h = hooks{s.IoTConnect.Forget, s.IoTConnect.SetState, s.IoTConnect.Alter}
	case "asavie":
		h = hooks{s.Asavie.Forget, s.Asavie.SetState, s.Asavie.Alter}
	case "thingspace":
		h = hooks{s.ThingSpace.Forget, s.ThingSpace.SetState, s.ThingSpace.Alter}
	default:
		return false, fmt.Errorf("unknown provider %q", d.Provider)
	}
	switch d.Action {
	case "delete":
		return h.forget(d.ID), nil
	case "state":
		return h.state(d.ID, d.Value), nil
	case "alter":
		return h.alter(d.ID, d.Field, d.Value), nil
	case "create":
		f := d.Fields
		switch d.Provider {
		case "iotconnect":
			_, err := s.IoTConnect.Preload(iotconnect.Registration{EID: d.ID, CMP: f["cmp"], EUICCAgreementID: f["euicc_agreement_id"], LocaleID: f["locale_id"], DomainID: f["domain_id"]})
			return err == nil, err
		case "asavie":
			s.Asavie.Seed(f["account"], asavie.SIMCard{CLI: d.ID, SIMNumber: f["iccid"], State: asavie.StateReady})
		case "thingspace":
			s.ThingSpace.Preload(f["account_name"], d.ID, f["iccid"])
		}
		return true, nil
	}
	return false, fmt.Errorf("unknown drift action %q (delete, state, alter, create)", d.Action)
}

// Stats is the body of GET /_sim/stats.
func (s *simSet) Stats() map[string]simkit.Stats {
	return map[string]simkit.Stats{
		"iotconnect": s.IoTConnect.Kit().Stats(),
		"asavie":     s.Asavie.Kit().Stats(),
		"thingspace": s.ThingSpace.Kit().Stats(),
	}
}

func (a *app) simCommand() *cobra.Command {
	sim := &cobra.Command{
		Use:   "sim",
		Short: "Run the built-in provider simulators",
		Args:  unknownCommand,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usageError(errors.New("sim needs a command: serve"))
		},
	}
	var f simFlags
	var addr string
	serve := &cobra.Command{
		Use:   "serve",
		Short: "Serve the IoT Connect, Asavie and ThingSpace simulators on one address",
		Long: `Serve simulators of all three provider APIs on one address. They follow the
providers' documents (paths, authentication, bodies, asynchronous completion,
ThingSpace callbacks) and can misbehave on purpose. GET /_sim/stats returns
per-provider counters, including provisioning requests per identifier, so a
duplicate request is visible.

Profiles: ok (no faults), flaky (10% of requests fail in assorted ways;
ThingSpace callbacks are duplicated, delayed or lost at a like rate),
slow (400ms per answer), ratelimited (20 requests/s enforced). Flags
override single knobs of the profile.

The simulators accept these demo credentials:
  iotconnect  client_id demo-iotconnect, client_secret demo-iotconnect-secret (token: POST /oauth2/token)
  asavie      client_id demo-asavie, client_secret demo-asavie-secret
  thingspace  key demo-thingspace-key, secret demo-thingspace-secret, user demo-user / demo-password`,
		Example: `  simbulk sim serve --profile flaky
  simbulk sim serve --addr 127.0.0.1:9000 --latency 20ms --rate 100
  curl -s localhost:8080/_sim/stats`,
		Args: argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			faults, err := f.faults(cmd)
			if err != nil {
				return usageError(err)
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", addr, err)
			}
			set := newSimSet(faults, f.asyncDelay)
			srv := &http.Server{Handler: set, ReadHeaderTimeout: 10 * time.Second}
			fmt.Fprintf(a.stdout, "simbulk simulators listening on http://%s (profile %s)\n", ln.Addr(), profileName(f.profile))
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			select {
			case err := <-errc:
				return fmt.Errorf("serve: %w", err)
			case <-cmd.Context().Done():
			}
			shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("shut down simulators: %w", err)
			}
			return nil
		},
	}
	serve.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on")
	serve.Flags().StringVar(&f.profile, "profile", "ok", "fault profile: ok, flaky, slow, ratelimited")
	serve.Flags().DurationVar(&f.latency, "latency", 0, "latency added to every answer (overrides the profile)")
	serve.Flags().DurationVar(&f.asyncDelay, "async-delay", 500*time.Millisecond, "how long accepted work takes to complete")
	serve.Flags().Float64Var(&f.rate, "rate", 0, "enforced requests per second per provider, 0 = unlimited (overrides the profile)")
	serve.Flags().Float64Var(&f.faultRate, "fault-rate", 0, "probability in [0,1] that a request meets a random fault (overrides the profile)")
	serve.Flags().Uint64Var(&f.seed, "seed", 1, "seed of the fault model's random choices, for repeatable runs")
	sim.AddCommand(serve)
	return sim
}

func profileName(p string) string {
	if p == "" {
		return "ok"
	}
	return p
}
