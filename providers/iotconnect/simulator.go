package iotconnect

import (
	"crypto/rand"
	"crypto/subtle"
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
	DefaultSimClientID     = "demo-iotconnect"
	DefaultSimClientSecret = "demo-iotconnect-secret"
	// DefaultSimDomainID is the caller's own domain, where a registration
	// without domainId lands.
	DefaultSimDomainID = "simbulk1"
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
	// defaults DefaultSimClientID and DefaultSimClientSecret.
	ClientID     string
	ClientSecret string
	// TokenTTL is the lifetime of issued tokens (expires_in); default 1h.
	TokenTTL time.Duration
	// DomainID is the caller's own domain; default DefaultSimDomainID.
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

	mu     sync.Mutex
	tokens map[string]time.Time // token -> expiry
	byEID  map[string]*record
	bySub  map[string]string // IoT subscription id -> EID
	taken  map[string]bool   // assigned identifiers ("imsi:…", "iccid:…", …)
}

// NewSimulator returns a simulator with no registrations.
func NewSimulator(opts SimOptions) *Simulator {
	if opts.ClientID == "" {
		opts.ClientID = DefaultSimClientID
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = DefaultSimClientSecret
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = time.Hour
	}
	if opts.DomainID == "" {
		opts.DomainID = DefaultSimDomainID
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Simulator{
		opts:   opts,
		tokens: map[string]time.Time{},
		byEID:  map[string]*record{},
		bySub:  map[string]string{},
		taken:  map[string]bool{},
	}
	s.kit = simkit.New(opts.Faults, classify)
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+SimTokenPath, s.handleToken)
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

// handleToken is an OAuth2 client-credentials token endpoint. Credentials
// come in the form or, as RFC 6749 also allows, in Basic auth.
func (s *Simulator) handleToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the body must be a form")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported")
		return
	}
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		id, secret = u, p
	}
	if !equal(id, s.opts.ClientID) || !equal(secret, s.opts.ClientSecret) {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	var b [24]byte
	_, _ = rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	now := s.opts.Now()
	s.mu.Lock()
	if len(s.tokens) > 1024 {
		for t, exp := range s.tokens {
			if !now.Before(exp) {
				delete(s.tokens, t)
			}
		}
	}
	s.tokens[tok] = now.Add(s.opts.TokenTTL)
	s.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	simkit.WriteJSON(w, http.StatusOK, map[string]any{
		"access_token": tok,
		"token_type":   "Bearer",
		"expires_in":   int(s.opts.TokenTTL / time.Second),
	})
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Cache-Control", "no-store")
	simkit.WriteJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// ExpireTokens makes every token issued so far invalid: the next API call
// with one is answered 401.
func (s *Simulator) ExpireTokens() {
	s.mu.Lock()
	clear(s.tokens)
	s.mu.Unlock()
}

// authorized answers 401 in the documented envelope unless the request
// carries a live bearer token.
func (s *Simulator) authorized(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if ok {
			s.mu.Lock()
			exp, known := s.tokens[strings.TrimSpace(tok)]
			s.mu.Unlock()
			ok = known && s.opts.Now().Before(exp)
		}
		if !ok {
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
