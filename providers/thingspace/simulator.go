package thingspace

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/simbulk/simbulk/providers/simkit"
)

// Credentials the simulator accepts when SimOptions leaves them empty; the
// rest of the product (--simulate, the demo config) relies on them.
const (
	SimKey      = "demo-thingspace-key"
	SimSecret   = "demo-thingspace-secret"
	SimUsername = "demo-user"
	SimPassword = "demo-password"
)

// SimOptions configures a Simulator. The zero value is a well-behaved
// service that completes activations at once.
type SimOptions struct {
	Faults     simkit.Faults
	AsyncDelay time.Duration // from acceptance to completion
	// Forms is the public form the simulator answers in (see the package
	// doc): simkit.Documented, the reference pages' examples, or
	// simkit.Alternate, the SDK models' shapes, with a first "warning"
	// callback for devices that take time (AsyncDelay > 0).
	Forms simkit.Forms
	// BulkStatusUnlisted answers the status of a request of more than one
	// device without listing any, as the reference page allows ("Bulk
	// operation: Not Supported"): clients must then ask the device list.
	BulkStatusUnlisted bool

	// Credentials accepted; empty fields take the Sim* defaults.
	Key, Secret, Username, Password string

	TokenTTL    time.Duration // bearer token lifetime; default 1h
	SessionIdle time.Duration // session idle expiry; default 20m

	// Callback faults. A callback is sent per device at completion plus
	// CallbackDelay plus a random share of CallbackJitter (so they arrive
	// late and out of order); CallbackDuplicate is the probability a
	// callback is delivered twice, CallbackLoss that it is never sent.
	CallbackDelay     time.Duration
	CallbackJitter    time.Duration
	CallbackDuplicate float64
	CallbackLoss      float64
	// CallbackRetryWait is the pause between attempts of a failed
	// delivery (4 attempts in all, as ThingSpace); default 500ms.
	CallbackRetryWait time.Duration
	// CallbackClient sends deliveries; default a client with a 5s timeout.
	CallbackClient *http.Client

	Now func() time.Time // default time.Now
}

// Simulator is a stateful stand-in for ThingSpace M2M: OAuth token,
// session login, activate, request status, device list and callback
// registration, with callbacks pushed to the registered URL. Every request
// goes through its simkit.Kit, so faults and counters apply.
type Simulator struct {
	opts    SimOptions
	kit     *simkit.Kit
	handler http.Handler
	now     func() time.Time
	hc      *http.Client
	ctx     context.Context // cancelled by Close: stops deliveries
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	tokens *simkit.Tokens // the OAuth bearer tokens

	mu        sync.Mutex
	sessions  map[string]time.Time // session -> last use
	devices   map[string]*simDevice
	requests  map[string]*simRequest
	callbacks map[string]callbackRegistration // by account
	failing   map[string]bool                 // EIDs whose next activation fails
	timers    map[string]*time.Timer          // callback schedules by requestId
	seq       int
	closed    bool
}

// NewSimulator returns a simulator; Close stops its callback deliveries.
func NewSimulator(opts SimOptions) *Simulator {
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	def(&opts.Key, SimKey)
	def(&opts.Secret, SimSecret)
	def(&opts.Username, SimUsername)
	def(&opts.Password, SimPassword)
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = time.Hour
	}
	if opts.SessionIdle <= 0 {
		opts.SessionIdle = DefaultSessionIdle
	}
	if opts.CallbackRetryWait <= 0 {
		opts.CallbackRetryWait = 500 * time.Millisecond
	}
	s := &Simulator{
		opts: opts, now: opts.Now, hc: opts.CallbackClient,
		sessions: map[string]time.Time{},
		devices:  map[string]*simDevice{}, requests: map[string]*simRequest{},
		callbacks: map[string]callbackRegistration{}, failing: map[string]bool{},
		timers: map[string]*time.Timer{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.hc == nil {
		s.hc = &http.Client{Timeout: 5 * time.Second}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.tokens = newSimTokens(opts, s.now)
	s.kit = simkit.New(opts.Faults, classify)
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+pathToken, s.tokens.ServeToken)
	mux.HandleFunc("POST "+pathLogin, s.handleLogin)
	mux.HandleFunc("POST "+pathActivate, s.m2m(s.handleActivate))
	mux.HandleFunc("GET "+pathAccountsV2+"{account}/requests/{requestId}/status", s.m2m(s.handleStatus))
	mux.HandleFunc("POST "+pathList, s.m2m(s.handleList))
	mux.HandleFunc("POST "+pathCallbacks+"{account}", s.m2m(s.handleRegister))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		simError(w, http.StatusNotFound, "no such resource: "+r.Method+" "+r.URL.Path)
	})
	s.handler = s.kit.Wrap(mux)
	return s
}

// classify names the operation of a request for the Kit.
func classify(r *http.Request) string {
	p := r.URL.Path
	switch {
	case p == pathToken:
		return simkit.OpToken
	case p == pathLogin:
		return simkit.OpLogin
	case p == pathActivate:
		return simkit.OpProvision
	case p == pathList:
		return simkit.OpLookup
	case strings.HasPrefix(p, pathAccountsV2) && strings.HasSuffix(p, "/status"):
		return simkit.OpStatus
	case strings.HasPrefix(p, pathCallbacks):
		return simkit.OpCallback
	}
	return "api"
}

func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Kit is the simulator's fault model and counters.
func (s *Simulator) Kit() *simkit.Kit { return s.kit }

// ExpireTokens makes every bearer token and session issued so far invalid.
func (s *Simulator) ExpireTokens() {
	s.tokens.ExpireAll()
	s.mu.Lock()
	s.sessions = map[string]time.Time{}
	s.mu.Unlock()
}

// Close stops scheduled and running callback deliveries and waits for
// them. The handler keeps answering.
func (s *Simulator) Close() {
	s.mu.Lock()
	s.closed = true
	for id, t := range s.timers {
		t.Stop()
		delete(s.timers, id)
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	if s.opts.CallbackClient == nil {
		// Spare connections the transport dialed but never used would
		// hold up the receiver's graceful shutdown.
		s.hc.CloseIdleConnections()
	}
}

// simError writes the ThingSpace error envelope.
func simError(w http.ResponseWriter, status int, msg string) {
	simkit.WriteJSON(w, status, errorEnvelope{ErrorCode: flexString(strconv.Itoa(status)), ErrorMessage: msg})
}

// gatewayRefusal answers 401 for a missing, unknown or expired bearer
// token. In the documented form it is the API gateway's fault envelope
// (its code and words here are illustrative); in the alternate form the
// M2M envelope.
func (s *Simulator) gatewayRefusal(w http.ResponseWriter, msg string) {
	if s.opts.Forms == simkit.Alternate {
		simError(w, http.StatusUnauthorized, msg)
		return
	}
	simkit.WriteJSON(w, http.StatusUnauthorized, map[string]any{"fault": fault{
		Code: "900901", Message: "Invalid Credentials", Description: msg,
	}})
}

// newID returns a request id in the docs' UUID form.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
