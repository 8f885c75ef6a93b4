package asavie

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/simbulk/simbulk/providers/simkit"
)

// Credentials the simulator accepts when SimOptions leaves them empty; the
// offline demo and the sample config rely on them.
const (
	SimClientID     = "demo-asavie"
	SimClientSecret = "demo-asavie-secret"
)

// SimOptions configures a Simulator.
type SimOptions struct {
	Faults simkit.Faults
	// Forms is the public wire form the simulator answers in (see the
	// package doc): simkit.Documented, the default, is the form captured
	// from the live API; simkit.Alternate is the reference page's sample.
	Forms simkit.Forms
	// AsyncDelay is how long an accepted SIM takes to be created.
	AsyncDelay   time.Duration
	ClientID     string        // default SimClientID
	ClientSecret string        // default SimClientSecret
	TokenTTL     time.Duration // expires_in of issued tokens; default 1h
	Now          func() time.Time
}

// Simulator is a stateful stand-in for the Asavie PassBridge API: token
// endpoint, SIM creation answered 202 with a StatusUrl, status polling,
// SIM lookup, the envelope on every answer, and simkit's fault model in
// front. It answers in the public form SimOptions.Forms names (see
// sim_forms.go and the package doc). Its departures from a plain HTTP API,
// which the client must cope with:
//
//   - A duplicate CLI is "a failure result with a 409 error code" (the
//     reference page): HTTP 200 with {"Success":false,"Code":409} in the
//     documented form, HTTP 400 with Code 400 and ErrorCode 409 in the
//     alternate form.
//   - A StatusUrl is .../status?cmdid=<opaque, percent-encoded> in the
//     documented form and .../status/{id} in the alternate form; both are
//     served in either form.
//   - FailNext, and under a random fault rate a quarter as many requests
//     again, answer a provisioning request HTTP 200 with
//     {"Success":false,"Code":500}: not created, try again.
//   - A SIM whose SIMNumber fails the Luhn check is accepted (202) and then
//     fails asynchronously: its status answers HTTP 200 with Success:false,
//     Code 422, ErrorCode 2105 and Data.Status "failed", and the SIM is
//     removed.
//   - Account keys beginning with "unknown" do not exist (404, ErrorCode
//     1404); any other key is auto-created on first use, as though the
//     request had carried Hints.
//   - Field validation (CLI regex, SIMNumber digits, field lengths) answers
//     HTTP 400 with the envelope, ErrorCode 1001 (format) or 1002 (length).
//
// A created SIM is State ready (1), ActorStatus stable (0); while being
// created it is notactivated (0) and pending (1), visible to lookups.
type Simulator struct {
	opts    SimOptions
	kit     *simkit.Kit
	handler http.Handler

	tokens *simkit.Tokens

	mu       sync.Mutex
	sims     map[string]*simEntry     // by CLI: a CLI is unique across accounts
	requests map[string]*requestEntry // create requests by id
	failNext int                      // provisioning requests to answer Code 500
}

type simEntry struct {
	account string
	card    SIMCard
	create  *requestEntry // the create request while it is pending
}

type requestEntry struct {
	id, account, cli string
	created, due     time.Time
	status           string
	sim              *simEntry
	card             SIMCard   // the SIM as the request left it
	failure          *envelope // non-nil: completion fails with this
}

// NewSimulator returns a Simulator with opts' defaults filled in.
func NewSimulator(opts SimOptions) *Simulator {
	if opts.ClientID == "" {
		opts.ClientID = SimClientID
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = SimClientSecret
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Simulator{
		opts:     opts,
		sims:     map[string]*simEntry{},
		requests: map[string]*requestEntry{},
	}
	// Like the OWIN token endpoint it answers OAuth errors (400
	// invalid_client), not the envelope; the credentials come in the form
	// (or Basic, when the form has none).
	s.tokens = &simkit.Tokens{
		ClientID: opts.ClientID, Secret: opts.ClientSecret, Auth: simkit.FormOrBasic,
		TTL: opts.TokenTTL, Now: opts.Now,
		Refuse: func(w http.ResponseWriter, why simkit.Refusal) {
			desc := ""
			if why == simkit.RefusedClient {
				desc = "The client credentials are invalid"
			}
			simkit.WriteOAuthError(w, http.StatusBadRequest, why.Code(), desc)
		},
	}
	s.kit = simkit.New(opts.Faults, classify)
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+tokenPath, s.tokens.ServeToken)
	mux.HandleFunc("POST /v1/accounts/{key}/hardware/sims", s.api(s.create))
	mux.HandleFunc("GET /v1/accounts/{key}/hardware/sims/{cli}", s.api(s.lookup))
	// Both StatusUrl forms are served whatever form the simulator answers
	// in, so a handle issued before a switch of forms still resolves.
	mux.HandleFunc("GET /v1/accounts/{key}/hardware/sims/{cli}/status/{id}", s.api(s.status))
	mux.HandleFunc("GET /v1/accounts/{key}/hardware/sims/{cli}/status", s.api(s.status))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.reply(w, http.StatusNotFound, failure(http.StatusNotFound, 1400, 0,
			"No HTTP resource was found that matches the request URI."))
	})
	s.handler = s.kit.Wrap(mux)
	return s
}

// ServeHTTP serves the API through the fault model.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Kit returns the fault model and counters.
func (s *Simulator) Kit() *simkit.Kit { return s.kit }

// ExpireTokens makes every token issued so far invalid (answered 401).
func (s *Simulator) ExpireTokens() {
	s.tokens.ExpireAll()
}

// FailNext makes the next n provisioning requests answer HTTP 200 with
// {"Success":false,"Code":500} without creating anything.
func (s *Simulator) FailNext(n int) {
	s.mu.Lock()
	s.failNext += n
	s.mu.Unlock()
}

func classify(r *http.Request) string {
	p := r.URL.EscapedPath()
	switch {
	case p == tokenPath:
		return simkit.OpToken
	case r.Method == http.MethodPost && strings.HasSuffix(p, "/hardware/sims"):
		return simkit.OpProvision
	case strings.Contains(p, "/hardware/sims/") && isStatusURL(p):
		return simkit.OpStatus
	case strings.Contains(p, "/hardware/sims/"):
		return simkit.OpLookup
	}
	return "api"
}
