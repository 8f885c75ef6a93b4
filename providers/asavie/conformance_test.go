package asavie_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simbulk/simbulk/ingest/checkdigit"
	"github.com/simbulk/simbulk/providers"
	"github.com/simbulk/simbulk/providers/asavie"
	"github.com/simbulk/simbulk/providers/providertest"
)

// testAccount has a space so that every path and StatusUrl carries an
// escape.
const testAccount = "acme ltd"

func TestConformance(t *testing.T) { providertest.Run(t, harness()) }

func harness() providertest.Harness {
	return providertest.Harness{
		Name:      "asavie",
		BatchSize: 1,
		Start: func(t *testing.T, s providertest.Setup) providertest.Pair {
			env := startEnv(t, s, asavie.Config{})
			return providertest.Pair{Client: env.client, Kit: env.sim.Kit(), URL: env.url, ExpireTokens: env.sim.ExpireTokens}
		},
		Order:      order,
		Rejected:   rejected,
		Identifier: func(o providers.Order) string { return o.CLI },
		Extra:      extra,
	}
}

// order is the i-th valid order: an MSISDN CLI in Asavie's form and a
// Luhn-valid 20-digit ICCID.
func order(i int) providers.Order {
	return providers.Order{
		Key:   fmt.Sprintf("row-%d", i),
		CLI:   fmt.Sprintf("(+44)77009%05d", i),
		ICCID: withLuhn(fmt.Sprintf("8944100000000%06d", i)),
		Fields: map[string]string{
			"account":     testAccount,
			"description": fmt.Sprintf("tracker %d", i),
			"tariff":      "IOT-1GB",
		},
	}
}

// rejected passes simbulk's own checks but breaks the SIMCard model's
// 255-character limit on Description: 400, ErrorCode 1002.
func rejected(i int) providers.Order {
	o := order(1000 + i)
	o.Fields["description"] = strings.Repeat("d", 300)
	return o
}

// withLuhn appends the Luhn check digit to digits.
func withLuhn(digits string) string {
	return digits + string(checkdigit.LuhnDigit(digits))
}

// env is a simulator behind a recorder, and a client for it.
type env struct {
	sim    *asavie.Simulator
	client *asavie.Client
	url    string
	rec    *recorder
}

func startEnv(t *testing.T, s providertest.Setup, cfg asavie.Config) env {
	t.Helper()
	if s.ClientTimeout == 0 {
		s.ClientTimeout = 2 * time.Second
	}
	sim := asavie.NewSimulator(asavie.SimOptions{Faults: s.Faults, AsyncDelay: s.AsyncDelay, Forms: s.Forms})
	rec := &recorder{next: sim}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	cfg.BaseURL = srv.URL
	if cfg.ClientID == "" {
		cfg.ClientID = asavie.SimClientID
	}
	if cfg.ClientSecret == "" {
		cfg.ClientSecret = asavie.SimClientSecret
	}
	if s.WrongCredentials {
		cfg.ClientSecret = "not-" + asavie.SimClientSecret
	}
	cfg.Timeout = s.ClientTimeout
	cfg.MaxRetryAfter = s.MaxRetryAfter
	cfg.PollInterval = s.PollInterval
	c, err := asavie.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return env{sim: sim, client: c, url: srv.URL, rec: rec}
}

// seen is one request as it arrived on the wire. RequestURI is the
// request target byte for byte, query included.
type seen struct {
	Method, EscapedPath, RawPath, RequestURI, Accept, ContentType string
}

// recorder notes every request before the simulator sees it, so tests can
// assert the exact bytes of a path (a double-encoded StatusUrl would still
// 404, but this says why).
type recorder struct {
	next http.Handler
	mu   sync.Mutex
	reqs []seen
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.reqs = append(r.reqs, seen{req.Method, req.URL.EscapedPath(), req.URL.RawPath, req.RequestURI, req.Header.Get("Accept"), req.Header.Get("Content-Type")})
	r.mu.Unlock()
	r.next.ServeHTTP(w, req)
}

func (r *recorder) requests() []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seen(nil), r.reqs...)
}
