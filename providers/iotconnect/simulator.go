package iotconnect

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/simbulk/simbulk/providers/simkit"
)

// Credentials the simulator accepts when SimOptions leaves them empty. The
// rest of the product (`--simulate`, `sim serve`, the demo) relies on them.
const (
	SimClientID     = "demo-iotconnect"
	SimClientSecret = "demo-iotconnect-secret"
	// SimDomainID is the caller's own domain, where a registration
	// without domainId lands.
	SimDomainID = "simbulk1"
	// SimTokenPath is the simulated token endpoint (the real one is
	// whatever token_url says).
	SimTokenPath = "/oauth2/token"
)

// SimOptions configures a Simulator.
type SimOptions struct {
	Faults simkit.Faults
	// AsyncDelay is how long after a registration its IoT subscription
	// appears; 0 means at once (but still only visible through the GET).
	AsyncDelay time.Duration
	// ClientID and ClientSecret are the accepted client credentials;
	// defaults SimClientID and SimClientSecret.
	ClientID     string
	ClientSecret string
	// TokenTTL is the lifetime of issued tokens (expires_in); default 1h.
	TokenTTL time.Duration
	// DomainID is the caller's own domain; default SimDomainID.
	DomainID string
	// Now is the simulator's clock; default time.Now.
	Now func() time.Time
	// Forms is the wire form of GET /euiccs/{eid}: simkit.Documented (the
	// default) answers exactly as get-e-uicc documents, simkit.Alternate
	// with complete embedded attributes and the euiccAgreementId (see
	// doc.go).
	Forms simkit.Forms
}

// Simulator is a stateful stand-in for IoT Connect's token endpoint and
// the Subscriptions API paths simbulk uses. It is an http.Handler.
type Simulator struct {
	opts    SimOptions
	kit     *simkit.Kit
	handler http.Handler

	tokens *simkit.Tokens

	mu    sync.Mutex
	byEID map[string]*record
	bySub map[string]string // IoT subscription id -> EID
	taken map[string]bool   // assigned identifiers ("imsi:…", "iccid:…", …)
}

// NewSimulator returns a simulator with no registrations.
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
	if opts.DomainID == "" {
		opts.DomainID = SimDomainID
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Simulator{
		opts:  opts,
		byEID: map[string]*record{},
		bySub: map[string]string{},
		taken: map[string]bool{},
	}
	// An OAuth2 client-credentials token endpoint. Credentials come in the
	// form or, as RFC 6749 also allows, in Basic auth.
	s.tokens = &simkit.Tokens{
		ClientID: opts.ClientID, Secret: opts.ClientSecret, Auth: simkit.BasicOrForm,
		TTL: opts.TokenTTL, Now: opts.Now, TokenType: "Bearer", NoStore: true,
		NewToken: func() string {
			var b [24]byte
			_, _ = rand.Read(b[:])
			return hex.EncodeToString(b[:])
		},
		Refuse: func(w http.ResponseWriter, why simkit.Refusal) {
			switch why {
			case simkit.RefusedRequest:
				simkit.WriteOAuthError(w, http.StatusBadRequest, why.Code(), "the body must be a form")
			case simkit.RefusedGrant:
				simkit.WriteOAuthError(w, http.StatusBadRequest, why.Code(), "only client_credentials is supported")
			default:
				simkit.WriteOAuthError(w, http.StatusUnauthorized, why.Code(), "client authentication failed")
			}
		},
	}
	s.kit = simkit.New(opts.Faults, classify)
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+SimTokenPath, s.tokens.ServeToken)
	mux.HandleFunc("POST "+euiccsPath, s.authorized(s.handleRegister))
	mux.HandleFunc("GET "+euiccsPath+"/{eid}", s.authorized(s.handleGetEUICC))
	mux.HandleFunc("GET "+subscriptionsPath+"/{id}", s.authorized(s.handleGetSubscription))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NotFound", "The specified resource was not found",
			envelopeError{Message: "no such endpoint: " + r.Method + " " + r.URL.Path, ErrorCode: "NOT_FOUND"})
	})
	s.handler = s.kit.Wrap(mux)
	return s
}

// ServeHTTP serves the API through the fault model.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Kit returns the fault model and counters.
func (s *Simulator) Kit() *simkit.Kit { return s.kit }

// classify names a request's operation for the Kit. The eUICC GET serves
// both completion polling and lookups; it counts as status, and the IoT
// subscription GET as lookup.
func classify(r *http.Request) string {
	p := r.URL.Path
	switch {
	case p == SimTokenPath:
		return simkit.OpToken
	case p == euiccsPath && r.Method == http.MethodPost:
		return simkit.OpProvision
	case strings.HasPrefix(p, euiccsPath+"/"):
		return simkit.OpStatus
	case strings.HasPrefix(p, subscriptionsPath+"/"):
		return simkit.OpLookup
	}
	return "api"
}

// ExpireTokens makes every token issued so far invalid: the next API call
// with one is answered 401.
func (s *Simulator) ExpireTokens() {
	s.tokens.ExpireAll()
}

// authorized answers 401 in the documented envelope unless the request
// carries a live bearer token.
func (s *Simulator) authorized(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.tokens.Check(r) {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "Unauthorized", "Your token is not valid.",
				envelopeError{Message: "missing, unknown or expired bearer token", ErrorCode: "INVALID_TOKEN"})
			return
		}
		next(w, r)
	}
}

// writeError answers in the documented error envelope.
func writeError(w http.ResponseWriter, status int, name, message string, errs ...envelopeError) {
	if errs == nil {
		errs = []envelopeError{}
	}
	simkit.WriteJSON(w, status, envelope{Name: name, Message: message, Errors: errs})
}
