// Package simset puts the three provider simulators behind one address.
// The API paths of IoT Connect, Asavie and ThingSpace do not overlap, so
// one handler routes by prefix, and adds GET /_sim/stats (every
// simulator's counters, including provisioning requests per identifier)
// and POST /_sim/drift (change a provider's records, as the field does,
// for reconciliation tests). `simbulk sim serve`, `simbulk run --simulate`
// and the rollout benchmarks all serve this set.
package simset

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/simbulk/simbulk/providers/asavie"
	"github.com/simbulk/simbulk/providers/iotconnect"
	"github.com/simbulk/simbulk/providers/simkit"
	"github.com/simbulk/simbulk/providers/thingspace"
)

// Set is the three simulators.
type Set struct {
	IoTConnect *iotconnect.Simulator
	Asavie     *asavie.Simulator
	ThingSpace *thingspace.Simulator
}

// New builds the simulators with one fault model; asyncDelay is how long
// accepted work takes to complete, and forms which public wire form of
// each disputed shape they answer in.
func New(faults simkit.Faults, asyncDelay time.Duration, forms simkit.Forms) *Set {
	ts := thingspace.SimOptions{Faults: faults, AsyncDelay: asyncDelay, Forms: forms}
	if faults.FaultRate > 0 {
		// Callbacks misbehave in proportion: some arrive twice, some late
		// and out of order, a few never (the client's poll fallback must
		// notice).
		ts.CallbackDuplicate = faults.FaultRate
		ts.CallbackJitter = 2 * asyncDelay
		ts.CallbackLoss = faults.FaultRate / 2
	}
	return &Set{
		IoTConnect: iotconnect.NewSimulator(iotconnect.SimOptions{Faults: faults, AsyncDelay: asyncDelay, Forms: forms}),
		Asavie:     asavie.NewSimulator(asavie.SimOptions{Faults: faults, AsyncDelay: asyncDelay, Forms: forms}),
		ThingSpace: thingspace.NewSimulator(ts),
	}
}

// Close stops what runs in the background (ThingSpace callback delivery).
func (s *Set) Close() { s.ThingSpace.Close() }

// ServeHTTP routes by path prefix.
func (s *Set) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/_sim/stats":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Stats())
	case p == "/_sim/drift" && r.Method == http.MethodPost:
		s.serveDrift(w, r)
	case p == iotconnect.SimTokenPath || strings.HasPrefix(p, "/iot-connect/"):
		s.IoTConnect.ServeHTTP(w, r)
	case strings.HasPrefix(p, "/v1/"):
		s.Asavie.ServeHTTP(w, r)
	case strings.HasPrefix(p, "/api/"):
		s.ThingSpace.ServeHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
}

// Stats is the body of GET /_sim/stats, by provider name.
func (s *Set) Stats() map[string]simkit.Stats {
	return map[string]simkit.Stats{
		"iotconnect": s.IoTConnect.Kit().Stats(),
		"asavie":     s.Asavie.Kit().Stats(),
		"thingspace": s.ThingSpace.Kit().Stats(),
	}
}

// Drift is the body of POST /_sim/drift: make a provider's record differ
// from what was provisioned, or put one back. ID is the EID (iotconnect,
// thingspace) or the CLI as Asavie holds it, "(+44)7700900123".
type Drift struct {
	Provider string            `json:"provider"`
	ID       string            `json:"id"`
	Action   string            `json:"action"` // delete | state | alter | create
	Field    string            `json:"field"`  // alter: iccid, imsi, msisdn, sim_number, ...
	Value    string            `json:"value"`  // state: the provider's state word; alter: the new value
	Fields   map[string]string `json:"fields"` // create: cmp, euicc_agreement_id, locale_id, account, account_name, iccid
}

func (s *Set) serveDrift(w http.ResponseWriter, r *http.Request) {
	var d Drift
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&d); err != nil {
		http.Error(w, "bad drift request: "+err.Error(), http.StatusBadRequest)
		return
	}
	ok, err := s.Apply(d)
	switch {
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadRequest)
	case !ok:
		http.Error(w, fmt.Sprintf("%s has no record %q", d.Provider, d.ID), http.StatusNotFound)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// Apply makes one drift through the simulators' own hooks; false when the
// provider has no such record.
func (s *Set) Apply(d Drift) (bool, error) {
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

// ServeLoopback serves h on a free loopback port and returns its base URL
// and a stop that shuts the server down (waiting up to grace for requests
// in flight).
func ServeLoopback(h http.Handler, grace time.Duration) (base string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("start simulators: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	stop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
	return "http://" + ln.Addr().String(), stop, nil
}
