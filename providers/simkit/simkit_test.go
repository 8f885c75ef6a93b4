package simkit

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// testSim is a minimal simulator: POST /provision/{id} records a
// provisioning of id, GET /lookup answers, and /_sim/ is its control API.
func testSim(t *testing.T, f Faults) (*Kit, *httptest.Server) {
	t.Helper()
	kit := New(f, func(r *http.Request) string {
		switch {
		case strings.HasPrefix(r.URL.Path, "/provision/"):
			return OpProvision
		case r.URL.Path == "/lookup":
			return OpLookup
		}
		return "api"
	})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /provision/{id}", func(w http.ResponseWriter, r *http.Request) {
		kit.Provisioned(r.PathValue("id"))
		WriteJSON(w, http.StatusCreated, map[string]string{"id": r.PathValue("id")})
	})
	mux.HandleFunc("GET /lookup", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]bool{"found": true})
	})
	mux.HandleFunc("GET /_sim/ping", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "pong")
	})
	srv := httptest.NewServer(kit.Wrap(mux))
	t.Cleanup(srv.Close)
	return kit, srv
}

type answer struct {
	status int
	header http.Header
	body   string
	err    error
}

func call(t *testing.T, srv *httptest.Server, method, path string) answer {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func TestInjectedFaultsBeforeTheHandler(t *testing.T) {
	kit, srv := testSim(t, Faults{RetryAfter: 1500 * time.Millisecond})
	kit.Inject(OpProvision, TooMany, 2)
	kit.Inject(OpProvision, Unavailable, 1)
	kit.Inject(OpProvision, Refuse, 1)
	for i, want := range []int{429, 429, 503} {
		a := call(t, srv, http.MethodPost, "/provision/A")
		if a.status != want {
			t.Fatalf("request %d: %d %v, want %d", i, a.status, a.err, want)
		}
		if want == 429 && a.header.Get("Retry-After") != "2" { // rounded up to whole seconds
			t.Errorf("Retry-After %q", a.header.Get("Retry-After"))
		}
	}
	if a := call(t, srv, http.MethodPost, "/provision/A"); a.err == nil {
		t.Fatalf("dropped before: got %d", a.status)
	}
	// A lookup is another operation: the script does not touch it.
	if a := call(t, srv, http.MethodGet, "/lookup"); a.status != 200 {
		t.Fatalf("lookup: %d %v", a.status, a.err)
	}
	if a := call(t, srv, http.MethodPost, "/provision/A"); a.status != 201 {
		t.Fatalf("after the script: %d %v", a.status, a.err)
	}
	s := kit.Stats()
	if s.Requests[OpProvision] != 5 || s.Requests[OpLookup] != 1 {
		t.Errorf("requests %v", s.Requests)
	}
	if s.Faults["429"] != 2 || s.Faults["503"] != 1 || s.Faults["drop-before"] != 1 || len(s.Faults) != 3 {
		t.Errorf("faults %v", s.Faults)
	}
	if s.TooManyRequests != 2 || s.Status["429"] != 2 || s.Status["503"] != 1 || s.Status["201"] != 1 || s.Status["200"] != 1 {
		t.Errorf("statuses %v, too many %d", s.Status, s.TooManyRequests)
	}
	// Faults before the handler: the provider never saw those requests.
	if n := kit.ProvisionCount("A"); n != 1 {
		t.Errorf("ProvisionCount(A) = %d, want 1", n)
	}
	if s.Provisioned != 1 || s.ProvisionRequests != 1 || len(s.Duplicates) != 0 {
		t.Errorf("provisioned %d, requests %d, duplicates %v", s.Provisioned, s.ProvisionRequests, s.Duplicates)
	}
}

func TestInjectedFaultsAfterTheHandlerMakeDuplicates(t *testing.T) {
	kit, srv := testSim(t, Faults{})
	kit.Inject(OpProvision, ServerError, 1)
	kit.Inject(OpProvision, Drop, 1)
	kit.Inject(OpProvision, Garble, 1)
	if a := call(t, srv, http.MethodPost, "/provision/A"); a.status != 500 {
		t.Fatalf("server error: %d %v", a.status, a.err)
	}
	if a := call(t, srv, http.MethodPost, "/provision/A"); a.err == nil {
		t.Fatalf("dropped after: got %d", a.status)
	}
	a := call(t, srv, http.MethodPost, "/provision/A")
	var v any
	if a.status != 201 || json.Unmarshal([]byte(a.body), &v) == nil {
		t.Fatalf("garbled: %d %q", a.status, a.body)
	}
	if a := call(t, srv, http.MethodPost, "/provision/B"); a.status != 201 {
		t.Fatalf("B: %d %v", a.status, a.err)
	}
	// The handler ran every time: A was provisioned three times.
	if n := kit.ProvisionCount("A"); n != 3 {
		t.Errorf("ProvisionCount(A) = %d, want 3", n)
	}
	if n := kit.ProvisionCount("never"); n != 0 {
		t.Errorf("ProvisionCount(never) = %d", n)
	}
	s := kit.Stats()
	if s.Provisioned != 2 || s.ProvisionRequests != 4 || len(s.Duplicates) != 1 || s.Duplicates["A"] != 3 {
		t.Errorf("provisioned %d, requests %d, duplicates %v", s.Provisioned, s.ProvisionRequests, s.Duplicates)
	}
	if s.Faults["500"] != 1 || s.Faults["drop-after"] != 1 || s.Faults["malformed"] != 1 {
		t.Errorf("faults %v", s.Faults)
	}
	kit.ResetStats()
	if s := kit.Stats(); s.Provisioned != 0 || len(s.Requests) != 0 || len(s.Status) != 0 || kit.ProvisionCount("A") != 0 {
		t.Errorf("after ResetStats: %+v", s)
	}
}

func TestInjectAnyOperation(t *testing.T) {
	kit, srv := testSim(t, Faults{})
	kit.Inject("*", Unavailable, 2)
	if a := call(t, srv, http.MethodGet, "/lookup"); a.status != 503 {
		t.Errorf("lookup: %d", a.status)
	}
	if a := call(t, srv, http.MethodPost, "/provision/A"); a.status != 503 {
		t.Errorf("provision: %d", a.status)
	}
	if a := call(t, srv, http.MethodGet, "/lookup"); a.status != 200 {
		t.Errorf("after: %d", a.status)
	}
}

func TestControlPathsPassThrough(t *testing.T) {
	kit, srv := testSim(t, Faults{})
	kit.Inject("*", Unavailable, 1)
	if a := call(t, srv, http.MethodGet, "/_sim/ping"); a.status != 200 || a.body != "pong" {
		t.Errorf("/_sim/ping: %d %q", a.status, a.body)
	}
	if s := kit.Stats(); len(s.Requests) != 0 || len(s.Faults) != 0 {
		t.Errorf("a control request was counted: %+v", s)
	}
}

func TestEnforcedRateLimit(t *testing.T) {
	// A rate so low that no token comes back during the test: the burst is
	// all there is, whatever the machine's speed.
	kit, srv := testSim(t, Faults{Rate: 1e-6, Burst: 3})
	var ok, refused int
	for range 7 {
		switch a := call(t, srv, http.MethodGet, "/lookup"); a.status {
		case 200:
			ok++
		case 429:
			refused++
			if a.header.Get("Retry-After") != "1" {
				t.Errorf("Retry-After %q", a.header.Get("Retry-After"))
			}
		default:
			t.Fatalf("status %d %v", a.status, a.err)
		}
	}
	s := kit.Stats()
	if ok != 3 || refused != 4 || s.RateLimitViolations != 4 || s.TooManyRequests != 4 {
		t.Errorf("%d ok, %d refused; stats violations %d, 429s %d", ok, refused, s.RateLimitViolations, s.TooManyRequests)
	}
	if len(s.Faults) != 0 {
		t.Errorf("enforced limit counted as injected faults: %v", s.Faults)
	}
	// A scripted fault is decided before the limit and is no violation.
	kit.Inject("*", Unavailable, 1)
	if a := call(t, srv, http.MethodGet, "/lookup"); a.status != 503 {
		t.Errorf("scripted: %d", a.status)
	}
	if s := kit.Stats(); s.RateLimitViolations != 4 {
		t.Errorf("violations %d after a scripted fault", s.RateLimitViolations)
	}
	// SetFaults lifts the limit.
	kit.SetFaults(Faults{})
	if a := call(t, srv, http.MethodGet, "/lookup"); a.status != 200 {
		t.Errorf("without a limit: %d", a.status)
	}
}

func TestEnforcedRateLimitDefaultBurst(t *testing.T) {
	kit, srv := testSim(t, Faults{Rate: 1e-6}) // burst max(1, Rate/10) = 1
	call(t, srv, http.MethodGet, "/lookup")
	if a := call(t, srv, http.MethodGet, "/lookup"); a.status != 429 {
		t.Errorf("second request: %d", a.status)
	}
	if s := kit.Stats(); s.RateLimitViolations != 1 {
		t.Errorf("violations %d", s.RateLimitViolations)
	}
}

func TestRandomFaultsAreSeeded(t *testing.T) {
	run := func() map[string]int {
		kit, srv := testSim(t, Faults{FaultRate: 0.5, Kinds: []Fault{TooMany, Unavailable, ServerError}, Seed: 42})
		for range 40 {
			call(t, srv, http.MethodGet, "/lookup")
		}
		return kit.Stats().Faults
	}
	a, b := run(), run()
	total := 0
	for k, n := range a {
		total += n
		if b[k] != n {
			t.Errorf("same seed, different faults: %v vs %v", a, b)
			break
		}
	}
	if total == 0 || total == 40 {
		t.Errorf("fault rate 0.5 injected %d of 40", total)
	}
	for k := range a {
		if k != "429" && k != "503" && k != "500" {
			t.Errorf("fault %q outside Kinds", k)
		}
	}
}

func TestCounters(t *testing.T) {
	kit := New(Faults{}, nil)
	kit.Count("callbacks", 2)
	kit.Count("callbacks", 1)
	if s := kit.Stats(); s.Counters["callbacks"] != 3 {
		t.Errorf("counters %v", s.Counters)
	}
}

func TestProfile(t *testing.T) {
	for _, name := range []string{"", "ok", "flaky", "slow", "ratelimited"} {
		if _, err := Profile(name); err != nil {
			t.Errorf("Profile(%q): %v", name, err)
		}
	}
	if f, _ := Profile("ok"); f.FaultRate != 0 || f.Latency != 0 || f.Rate != 0 {
		t.Errorf("ok is not fault-free: %+v", f)
	}
	if f, _ := Profile("flaky"); f.FaultRate <= 0 {
		t.Errorf("flaky has no faults: %+v", f)
	}
	if f, _ := Profile("slow"); f.Latency <= 0 {
		t.Errorf("slow has no latency: %+v", f)
	}
	if f, _ := Profile("ratelimited"); f.Rate != 20 || f.Burst != 5 {
		t.Errorf("ratelimited: %+v", f)
	}
	_, err := Profile("bogus")
	if err == nil || !strings.Contains(err.Error(), `"bogus"`) || !strings.Contains(err.Error(), "ratelimited") {
		t.Errorf("Profile(bogus): %v", err)
	}
}

func TestParseForms(t *testing.T) {
	for in, want := range map[string]Forms{"": Documented, "documented": Documented, "alternate": Alternate} {
		if got, err := ParseForms(in); err != nil || got != want {
			t.Errorf("ParseForms(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseForms("captured"); err == nil {
		t.Error("ParseForms(captured) accepted")
	}
	if Documented.String() != "documented" || Alternate.String() != "alternate" {
		t.Errorf("String: %q %q", Documented, Alternate)
	}
}

// TestPeakPerSecond: the most requests received in any one second,
// sliding, not in calendar seconds.
func TestPeakPerSecond(t *testing.T) {
	k := New(Faults{}, nil)
	t0 := time.Date(2026, 12, 2, 3, 0, 0, 900_000_000, time.UTC)
	for i := range 5 { // five in the 200ms across a second's boundary
		k.arrived(t0.Add(time.Duration(i) * 50 * time.Millisecond))
	}
	k.arrived(t0.Add(1100 * time.Millisecond)) // the first two are a second old by now
	k.arrived(t0.Add(3 * time.Second))
	if got := k.Stats().PeakPerSecond; got != 5 {
		t.Errorf("PeakPerSecond = %d, want 5", got)
	}
}
