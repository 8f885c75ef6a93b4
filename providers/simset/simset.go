// Package simset puts the registered providers' simulators behind one
// address. Their API paths do not overlap (each descriptor names its
// routes), so one handler routes by path, and adds GET /_sim/stats (every
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

	"github.com/simbulk/simbulk/providers"
	"github.com/simbulk/simbulk/providers/simkit"
)

// Set is one simulator per registered provider.
type Set struct {
	names  []string
	sims   map[string]providers.Simulator
	routes []route
}

type route struct {
	path string // ends in /: a prefix
	sim  providers.Simulator
}

// New builds a simulator for every registered provider with one fault
// model; asyncDelay is how long accepted work takes to complete, and
// forms which public wire form of each disputed shape they answer in.
func New(faults simkit.Faults, asyncDelay time.Duration, forms simkit.Forms) *Set {
	s := &Set{sims: map[string]providers.Simulator{}}
	settings := providers.SimSettings{Faults: faults, AsyncDelay: asyncDelay, Forms: forms}
	for _, d := range providers.Registered() {
		if d.NewSimulator == nil {
			continue
		}
		sim := d.NewSimulator(settings)
		s.names = append(s.names, d.Name)
		s.sims[d.Name] = sim
		for _, r := range d.Routes {
			s.routes = append(s.routes, route{r, sim})
		}
	}
	return s
}

// Sim returns provider name's simulator, nil when it has none.
func (s *Set) Sim(name string) providers.Simulator { return s.sims[name] }

// Close stops what runs in the background (ThingSpace callback delivery).
func (s *Set) Close() {
	for _, name := range s.names {
		if c, ok := s.sims[name].(interface{ Close() }); ok {
			c.Close()
		}
	}
}

// ServeHTTP routes by path.
func (s *Set) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/_sim/stats":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Stats())
		return
	case p == "/_sim/drift" && r.Method == http.MethodPost:
		s.serveDrift(w, r)
		return
	}
	for _, rt := range s.routes {
		if p == rt.path || (strings.HasSuffix(rt.path, "/") && strings.HasPrefix(p, rt.path)) {
			rt.sim.ServeHTTP(w, r)
			return
		}
	}
	http.NotFound(w, r)
}

// Stats is the body of GET /_sim/stats, by provider name.
func (s *Set) Stats() map[string]simkit.Stats {
	out := make(map[string]simkit.Stats, len(s.sims))
	for name, sim := range s.sims {
		out[name] = sim.Kit().Stats()
	}
	return out
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
	h, ok := s.sims[d.Provider].(providers.Drifter)
	if !ok {
		return false, fmt.Errorf("unknown provider %q", d.Provider)
	}
	switch d.Action {
	case "delete":
		return h.Forget(d.ID), nil
	case "state":
		return h.SetState(d.ID, d.Value), nil
	case "alter":
		return h.Alter(d.ID, d.Field, d.Value), nil
	case "create":
		return h.Create(d.ID, d.Fields)
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
