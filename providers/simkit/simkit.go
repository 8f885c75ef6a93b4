package simkit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Fault is something that goes wrong with one request.
type Fault string

const (
	None Fault = ""
	// Before the handler runs: the provider never sees the request.
	TooMany     Fault = "429"         // 429 with Retry-After
	Unavailable Fault = "503"         // 503, request not processed
	Hang        Fault = "hang"        // no answer until the client gives up
	Refuse      Fault = "drop-before" // connection closed without an answer, request not processed
	// After the handler runs: the provider did the work, the client cannot
	// tell. These are what make blind retries send duplicates.
	ServerError Fault = "500"        // 500 instead of the real answer
	Drop        Fault = "drop-after" // connection closed instead of the answer
	Garble      Fault = "malformed"  // a truncated, unparseable body
	HangAfter   Fault = "hang-after" // work done, answer never comes
)

// RandomFaults is the mix drawn from when FaultRate fires.
var RandomFaults = []Fault{TooMany, Unavailable, ServerError, Drop, Garble, Hang, HangAfter, Refuse}

// Faults configures the fault model of one simulator.
type Faults struct {
	Latency    time.Duration // added to every answer
	FaultRate  float64       // probability in [0,1] that a request gets a random fault
	Kinds      []Fault       // faults to draw from; nil means RandomFaults
	RetryAfter time.Duration // sent with 429s; default 1s
	Rate       float64       // enforced requests per second across the API (0 = unlimited)
	Burst      int           // burst of the enforced limit; default max(1, Rate/10)
	HangFor    time.Duration // how long Hang waits at most; default 30s
	Seed       uint64
}

// Profile returns the named fault profile of `simbulk sim serve`.
func Profile(name string) (Faults, error) {
	switch name {
	case "", "ok":
		return Faults{}, nil
	case "flaky":
		return Faults{Latency: 5 * time.Millisecond, FaultRate: 0.1, RetryAfter: time.Second, HangFor: 5 * time.Second}, nil
	case "slow":
		return Faults{Latency: 400 * time.Millisecond}, nil
	case "ratelimited":
		return Faults{Rate: 20, Burst: 5, RetryAfter: time.Second}, nil
	}
	return Faults{}, fmt.Errorf("unknown simulator profile %q (profiles: ok, flaky, slow, ratelimited)", name)
}

// Forms says which of the public wire forms a simulator answers in. Where
// a provider's public sources disagree on a shape (a reference page and a
// generated SDK, or a documented sample and a captured live reply), the
// clients accept both; the simulators answer in one or the other so that
// tests exercise each.
type Forms string

const (
	// Documented is the default: the form the provider's own reference
	// material shows (for Asavie, whose reference page only has a
	// placeholder sample, the replies captured from the live API).
	Documented Forms = ""
	// Alternate is the other public form of every shape that has two.
	Alternate Forms = "alternate"
)

// ParseForms reads the --forms flag of `simbulk sim serve`.
func ParseForms(name string) (Forms, error) {
	switch name {
	case "", "documented":
		return Documented, nil
	case "alternate":
		return Alternate, nil
	}
	return Documented, fmt.Errorf("unknown simulator forms %q (forms: documented, alternate)", name)
}

// String is the flag value of f.
func (f Forms) String() string {
	if f == Documented {
		return "documented"
	}
	return string(f)
}

// Operation names shared by the simulators, so stats and scripted faults
// read the same across providers.
const (
	OpToken     = "token"     // OAuth token
	OpLogin     = "login"     // ThingSpace session login
	OpProvision = "provision" // the provisioning call
	OpStatus    = "status"    // polling for completion
	OpLookup    = "lookup"    // looking an identifier up
	OpCallback  = "callback"  // ThingSpace callback registration
)

// Classifier names the operation a request performs ("token", "provision",
// "poll", "lookup", ...) so stats and scripted faults can target it.
type Classifier func(r *http.Request) string

// Kit holds one simulator's fault model, scripted faults and counters.
type Kit struct {
	classify Classifier

	mu       sync.Mutex
	faults   Faults
	rng      *rand.Rand
	limiter  *rate.Limiter
	script   []scripted
	requests map[string]int // by operation
	status   map[int]int
	injected map[Fault]int
	perID    map[string]int // provisioning requests the provider processed, per identifier
	tooMany  int
	overRate int
	extra    map[string]int
	// lastSecond holds the arrival times of the requests of the last
	// second; peak is the most it ever held.
	lastSecond []time.Time
	peak       int
}

type scripted struct {
	op    string
	fault Fault
	left  int
}

// New returns a Kit. classify may be nil (every request is operation "api").
func New(f Faults, classify Classifier) *Kit {
	k := &Kit{classify: classify}
	k.reset()
	k.SetFaults(f)
	return k
}

func (k *Kit) reset() {
	k.requests = map[string]int{}
	k.status = map[int]int{}
	k.injected = map[Fault]int{}
	k.perID = map[string]int{}
	k.extra = map[string]int{}
	k.tooMany, k.overRate = 0, 0
	k.lastSecond, k.peak = nil, 0
}

// SetFaults replaces the fault model (tests change it mid-run).
func (k *Kit) SetFaults(f Faults) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if f.RetryAfter == 0 {
		f.RetryAfter = time.Second
	}
	if f.HangFor == 0 {
		f.HangFor = 30 * time.Second
	}
	k.faults = f
	k.rng = rand.New(rand.NewPCG(f.Seed, f.Seed^0x9e3779b97f4a7c15))
	k.limiter = nil
	if f.Rate > 0 {
		burst := f.Burst
		if burst <= 0 {
			burst = max(1, int(f.Rate/10))
		}
		k.limiter = rate.NewLimiter(rate.Limit(f.Rate), burst)
	}
}

// Faults returns the current fault model.
func (k *Kit) Faults() Faults {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.faults
}

// Inject makes the next n requests of operation op ("*" for any) suffer
// fault f, before any random fault is drawn.
func (k *Kit) Inject(op string, f Fault, n int) {
	k.mu.Lock()
	k.script = append(k.script, scripted{op: op, fault: f, left: n})
	k.mu.Unlock()
}

// arrived counts a request in the sliding second behind PeakPerSecond.
// Call it with k.mu held.
func (k *Kit) arrived(now time.Time) {
	i := 0
	for i < len(k.lastSecond) && now.Sub(k.lastSecond[i]) >= time.Second {
		i++
	}
	k.lastSecond = append(k.lastSecond[i:], now)
	k.peak = max(k.peak, len(k.lastSecond))
}

// Provisioned records that the provider processed a provisioning request
// for an identifier. Call it once per identifier per request the handler
// acts on (created, rejected as existing, or refused by validation alike).
func (k *Kit) Provisioned(id string) {
	k.mu.Lock()
	k.perID[id]++
	k.mu.Unlock()
}

// Count adds n to a named simulator-specific counter (e.g. callbacks sent).
func (k *Kit) Count(name string, n int) {
	k.mu.Lock()
	k.extra[name] += n
	k.mu.Unlock()
}

// Rand returns a random float in [0,1) from the seeded source.
func (k *Kit) Rand() float64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.rng.Float64()
}

// Stats is the JSON shape of GET /_sim/stats for one simulator.
type Stats struct {
	Requests            map[string]int `json:"requests"`              // by operation
	Status              map[string]int `json:"status"`                // answers by HTTP status
	Faults              map[string]int `json:"faults"`                // injected faults by kind
	TooManyRequests     int            `json:"too_many_requests"`     // 429s sent, injected or enforced
	RateLimitViolations int            `json:"rate_limit_violations"` // requests over the enforced rate
	PeakPerSecond       int            `json:"peak_per_second"`       // most requests received in any one second
	Provisioned         int            `json:"provisioned"`           // distinct identifiers provisioned
	ProvisionRequests   int            `json:"provision_requests"`    // provisioning requests processed
	Duplicates          map[string]int `json:"duplicates"`            // identifiers provisioned more than once, with counts
	Counters            map[string]int `json:"counters,omitempty"`
}

// Stats returns a snapshot of the counters.
func (k *Kit) Stats() Stats {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := Stats{
		Requests: map[string]int{}, Status: map[string]int{}, Faults: map[string]int{},
		Duplicates: map[string]int{}, Counters: map[string]int{},
		TooManyRequests: k.tooMany, RateLimitViolations: k.overRate, PeakPerSecond: k.peak, Provisioned: len(k.perID),
	}
	for op, n := range k.requests {
		s.Requests[op] = n
	}
	for st, n := range k.status {
		s.Status[strconv.Itoa(st)] = n
	}
	for f, n := range k.injected {
		s.Faults[string(f)] = n
	}
	for id, n := range k.perID {
		s.ProvisionRequests += n
		if n > 1 {
			s.Duplicates[id] = n
		}
	}
	for name, n := range k.extra {
		s.Counters[name] = n
	}
	return s
}

// ProvisionCount returns how many provisioning requests the provider
// processed for one identifier.
func (k *Kit) ProvisionCount(id string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.perID[id]
}

// ResetStats zeroes the counters (not the simulator's records).
func (k *Kit) ResetStats() {
	k.mu.Lock()
	k.reset()
	k.mu.Unlock()
}

// decide picks the fault for one request: scripted first, then the
// enforced rate limit, then a random draw.
func (k *Kit) decide(op string) (f Faults, fault Fault, overRate bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.requests[op]++
	k.arrived(time.Now())
	f = k.faults
	for i := range k.script {
		s := &k.script[i]
		if s.left > 0 && (s.op == "*" || s.op == op) {
			s.left--
			fault = s.fault
			if s.left == 0 {
				k.script = append(k.script[:i], k.script[i+1:]...)
			}
			k.injected[fault]++
			return f, fault, false
		}
	}
	if k.limiter != nil && !k.limiter.Allow() {
		k.overRate++
		return f, TooMany, true
	}
	if f.FaultRate > 0 && k.rng.Float64() < f.FaultRate {
		kinds := f.Kinds
		if len(kinds) == 0 {
			kinds = RandomFaults
		}
		fault = kinds[k.rng.IntN(len(kinds))]
		k.injected[fault]++
	}
	return f, fault, false
}

func (k *Kit) recordStatus(status int) {
	k.mu.Lock()
	k.status[status]++
	if status == http.StatusTooManyRequests {
		k.tooMany++
	}
	k.mu.Unlock()
}

// Wrap puts the fault model and counters in front of a simulator handler.
// Paths under /_sim/ pass straight through.
func (k *Kit) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.URL.Path) >= 6 && r.URL.Path[:6] == "/_sim/" {
			next.ServeHTTP(w, r)
			return
		}
		op := "api"
		if k.classify != nil {
			op = k.classify(r)
		}
		f, fault, _ := k.decide(op)
		if f.Latency > 0 {
			select {
			case <-time.After(f.Latency):
			case <-r.Context().Done():
				return
			}
		}
		switch fault {
		case TooMany:
			w.Header().Set("Retry-After", strconv.Itoa(int((f.RetryAfter+time.Second-1)/time.Second)))
			k.write(w, http.StatusTooManyRequests, []byte(`{"message":"Too Many Requests"}`))
			return
		case Unavailable:
			k.write(w, http.StatusServiceUnavailable, []byte(`{"message":"Service Unavailable"}`))
			return
		case Hang:
			k.hang(w, r, f.HangFor)
			return
		case Refuse:
			k.drop(w)
			return
		}
		rec := &recorder{header: http.Header{}, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		switch fault {
		case ServerError:
			k.write(w, http.StatusInternalServerError, []byte(`{"message":"Internal Server Error"}`))
			return
		case Drop:
			k.drop(w)
			return
		case HangAfter:
			k.hang(w, r, f.HangFor)
			return
		case Garble:
			body := rec.body.Bytes()
			rec.body.Reset()
			rec.body.Write(body[:len(body)/2])
			rec.body.WriteString("\x00{<garbled")
		}
		for key, vs := range rec.header {
			w.Header()[key] = vs
		}
		w.Header().Del("Content-Length")
		k.write(w, rec.status, rec.body.Bytes())
	})
}

func (k *Kit) write(w http.ResponseWriter, status int, body []byte) {
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
	k.recordStatus(status)
}

// hang holds the request until the client gives up or d passes, then
// closes the connection without an answer.
func (k *Kit) hang(w http.ResponseWriter, r *http.Request, d time.Duration) {
	// net/http notices a client that gave up only once the request body has
	// been read; until then the hang would outlast the client.
	_, _ = io.Copy(io.Discard, r.Body)
	select {
	case <-r.Context().Done():
	case <-time.After(d):
	}
	k.drop(w)
}

// drop closes the connection without an answer. The client sees EOF or a
// reset, as when a load balancer drops a connection.
func (k *Kit) drop(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	// HTTP/2 or a recorder: abort the handler, which net/http turns into a
	// reset stream / closed connection.
	panic(http.ErrAbortHandler)
}

// WriteJSON writes v as a JSON answer; simulators use it for every body.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
	wrote  bool
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(status int) {
	if !r.wrote {
		r.status = status
		r.wrote = true
	}
}
