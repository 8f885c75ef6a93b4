package providertest

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/simbulk/simbulk/providers"
	"github.com/simbulk/simbulk/providers/simkit"
)

// Setup is how a test wants the simulator and client configured.
type Setup struct {
	Faults        simkit.Faults
	AsyncDelay    time.Duration // how long the simulator takes to complete accepted work
	ClientTimeout time.Duration // per-request timeout of the client's HTTP client
	MaxRetryAfter time.Duration // cap on Retry-After the client honours
	PollInterval  time.Duration // for clients that poll inside Check
	// Forms is the public wire form the simulator answers in; the client
	// must understand every form (see simkit.Forms).
	Forms simkit.Forms
	// WrongCredentials starts the client with a secret (ThingSpace: a
	// password) the simulator refuses.
	WrongCredentials bool
}

// Pair is a running simulator and a client pointed at it.
type Pair struct {
	Client providers.Client
	Kit    *simkit.Kit
	URL    string // simulator base URL
	// ExpireTokens makes the simulator refuse every token issued so far,
	// so the client's next call is answered 401.
	ExpireTokens func()
}

// Harness describes one provider to the suite.
type Harness struct {
	Name      string
	BatchSize int // most orders one Submit may carry
	// Start runs the simulator (httptest.NewServer) and a client for it;
	// cleanup goes through t.Cleanup.
	Start func(t *testing.T, s Setup) Pair
	// Order returns the i-th valid order; different i, different identifiers.
	Order func(i int) providers.Order
	// Rejected returns an order that passes simbulk's own checks but that
	// the provider refuses with a documented 4xx (e.g. an unknown enum).
	Rejected func(i int) providers.Order
	// Identifier is the identifier the simulator counts provisioning by.
	Identifier func(o providers.Order) string
	// Extra runs provider-specific cases (conflicts, callbacks, batching).
	Extra func(t *testing.T, h Harness)
}

func defaults(s Setup) Setup {
	if s.ClientTimeout == 0 {
		s.ClientTimeout = 2 * time.Second
	}
	if s.MaxRetryAfter == 0 {
		s.MaxRetryAfter = 5 * time.Second
	}
	if s.PollInterval == 0 {
		s.PollInterval = 10 * time.Millisecond
	}
	return s
}

// Run runs the whole suite against h.
func Run(t *testing.T, h Harness) {
	t.Run("HappyPath", func(t *testing.T) { testHappyPath(t, h, simkit.Documented) })
	t.Run("ValidationError", func(t *testing.T) { testRejected(t, h) })
	t.Run("Reauthenticate401", func(t *testing.T) { testReauth(t, h) })
	t.Run("TooManyRequests", func(t *testing.T) { testTooMany(t, h) })
	t.Run("ServerError", func(t *testing.T) { testServerError(t, h) })
	t.Run("Timeout", func(t *testing.T) { testTimeout(t, h) })
	t.Run("MalformedBody", func(t *testing.T) { testMalformed(t, h) })
	t.Run("AsyncCompletion", func(t *testing.T) { testAsync(t, h, simkit.Documented) })
	t.Run("Lookup", func(t *testing.T) { testLookup(t, h, simkit.Documented) })
	t.Run("CredentialsRefused", func(t *testing.T) { testCredentialsRefused(t, h) })
	// The same client against the other public form of every shape.
	t.Run("AlternateForms", func(t *testing.T) {
		t.Run("HappyPath", func(t *testing.T) { testHappyPath(t, h, simkit.Alternate) })
		t.Run("AsyncCompletion", func(t *testing.T) { testAsync(t, h, simkit.Alternate) })
		t.Run("Lookup", func(t *testing.T) { testLookup(t, h, simkit.Alternate) })
	})
	if h.Extra != nil {
		t.Run("Provider", func(t *testing.T) { h.Extra(t, h) })
	}
}

// Start runs h's simulator and client with the suite's defaults filled in.
func Start(t *testing.T, h Harness, s Setup) Pair {
	t.Helper()
	return h.Start(t, defaults(s))
}

// Complete submits orders and checks until every one is final, failing the
// test if that takes longer than wait.
func Complete(t *testing.T, p Pair, orders []providers.Order, wait time.Duration) []providers.Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	outs := p.Client.Submit(ctx, orders)
	if len(outs) != len(orders) {
		t.Fatalf("Submit returned %d outcomes for %d orders", len(outs), len(orders))
	}
	for i := range outs {
		outs[i] = Await(t, ctx, p, orders[i], outs[i])
	}
	return outs
}

// Await checks an accepted outcome until it is final.
func Await(t *testing.T, ctx context.Context, p Pair, o providers.Order, out providers.Outcome) providers.Outcome {
	t.Helper()
	for out.Status == providers.Accepted {
		handle := out.Handle
		if handle == "" {
			t.Fatalf("order %s accepted without a handle", o.Key)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("order %s still accepted (not completed) when the wait ran out", o.Key)
		case <-time.After(5 * time.Millisecond):
		}
		out = p.Client.Check(ctx, o, handle)
		if out.Status == providers.Accepted && out.Handle == "" {
			out.Handle = handle
		}
	}
	return out
}

func testHappyPath(t *testing.T, h Harness, forms simkit.Forms) {
	p := Start(t, h, Setup{Forms: forms})
	n := 5
	if h.BatchSize > 1 {
		n = min(h.BatchSize, 5)
	}
	orders := make([]providers.Order, n)
	for i := range orders {
		orders[i] = h.Order(i)
	}
	var outs []providers.Outcome
	if h.BatchSize > 1 {
		outs = Complete(t, p, orders, 10*time.Second)
	} else {
		for _, o := range orders {
			outs = append(outs, Complete(t, p, []providers.Order{o}, 10*time.Second)...)
		}
	}
	for i, out := range outs {
		if out.Status != providers.Succeeded {
			t.Errorf("order %d: status %s, err %v; want succeeded", i, out.Status, out.Err)
		}
		if got := p.Kit.ProvisionCount(h.Identifier(orders[i])); got != 1 {
			t.Errorf("order %d: simulator processed %d provisioning requests, want 1", i, got)
		}
	}
}

func testRejected(t *testing.T, h Harness) {
	p := Start(t, h, Setup{})
	o := h.Rejected(1)
	outs := Complete(t, p, []providers.Order{o}, 10*time.Second)
	out := outs[0]
	if out.Status != providers.Failed || out.Err == nil {
		t.Fatalf("status %s, want failed", out.Status)
	}
	if out.Err.Retryable {
		t.Errorf("provider validation error marked retryable: %v", out.Err)
	}
	if out.Err.Message == "" || out.Err.Code == "" {
		t.Errorf("validation error lacks the provider's code or message: %+v", out.Err)
	}
}

func testReauth(t *testing.T, h Harness) {
	p := Start(t, h, Setup{})
	first := Complete(t, p, []providers.Order{h.Order(1)}, 10*time.Second)
	if first[0].Status != providers.Succeeded {
		t.Fatalf("first order: %s %v", first[0].Status, first[0].Err)
	}
	tokensBefore := p.Kit.Stats().Requests[simkit.OpToken]
	p.ExpireTokens()
	second := Complete(t, p, []providers.Order{h.Order(2)}, 10*time.Second)
	if second[0].Status != providers.Succeeded {
		t.Fatalf("after token expiry: %s %v; want the client to re-authenticate and succeed", second[0].Status, second[0].Err)
	}
	if after := p.Kit.Stats().Requests[simkit.OpToken]; after <= tokensBefore {
		t.Errorf("token requests %d -> %d: client did not re-authenticate", tokensBefore, after)
	}
	if got := p.Kit.ProvisionCount(h.Identifier(h.Order(2))); got != 1 {
		t.Errorf("provisioning requests for order 2 = %d, want 1", got)
	}
}

func testTooMany(t *testing.T, h Harness) {
	p := Start(t, h, Setup{Faults: simkit.Faults{RetryAfter: 3 * time.Second}, MaxRetryAfter: 2 * time.Second})
	p.Kit.Inject(simkit.OpProvision, simkit.TooMany, 1)
	outs := p.Client.Submit(context.Background(), []providers.Order{h.Order(1)})
	e := failed(t, outs[0])
	if !e.Retryable || e.HTTPStatus != http.StatusTooManyRequests {
		t.Errorf("429: retryable=%v status=%d, want retryable 429", e.Retryable, e.HTTPStatus)
	}
	if e.RetryAfter != 2*time.Second {
		t.Errorf("Retry-After 3s with cap 2s gave %v, want 2s", e.RetryAfter)
	}
	if e.MaybeApplied {
		t.Errorf("429 marked MaybeApplied: the provider refused it at the door")
	}
	if got := p.Kit.ProvisionCount(h.Identifier(h.Order(1))); got != 0 {
		t.Errorf("429'd request was processed %d times", got)
	}
	// The same order goes through once the limit passes.
	if out := Complete(t, p, []providers.Order{h.Order(1)}, 10*time.Second)[0]; out.Status != providers.Succeeded {
		t.Errorf("retry after 429: %s %v", out.Status, out.Err)
	}
}

func testServerError(t *testing.T, h Harness) {
	p := Start(t, h, Setup{})
	p.Kit.Inject(simkit.OpProvision, simkit.Unavailable, 1)
	e := failed(t, p.Client.Submit(context.Background(), []providers.Order{h.Order(1)})[0])
	if !e.Retryable || e.HTTPStatus != http.StatusServiceUnavailable {
		t.Errorf("503: %+v, want retryable", e)
	}
	p.Kit.Inject(simkit.OpProvision, simkit.ServerError, 1)
	e = failed(t, p.Client.Submit(context.Background(), []providers.Order{h.Order(2)})[0])
	if !e.Retryable || !e.MaybeApplied {
		t.Errorf("500 after processing: %+v, want retryable and MaybeApplied", e)
	}
	// What the 500 hid: the provider has the record, and Lookup says so.
	sub, err := lookupEventually(p, h.Order(2))
	if err != nil || !sub.Found {
		t.Errorf("lookup after a 500 that was processed: found=%v err=%v", sub.Found, err)
	}
}

func testTimeout(t *testing.T, h Harness) {
	p := Start(t, h, Setup{ClientTimeout: 300 * time.Millisecond, Faults: simkit.Faults{HangFor: 2 * time.Second}})
	p.Kit.Inject(simkit.OpProvision, simkit.Hang, 1)
	e := failed(t, p.Client.Submit(context.Background(), []providers.Order{h.Order(1)})[0])
	if !e.Retryable || e.Code != providers.CodeTimeout {
		t.Errorf("hang: %+v, want retryable timeout", e)
	}
	// A cancelled context ends the call promptly, too.
	p.Kit.Inject(simkit.OpProvision, simkit.Hang, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	e = failed(t, p.Client.Submit(ctx, []providers.Order{h.Order(2)})[0])
	if !e.Retryable {
		t.Errorf("cancelled: %+v, want retryable", e)
	}
}

func testMalformed(t *testing.T, h Harness) {
	p := Start(t, h, Setup{})
	p.Kit.Inject(simkit.OpProvision, simkit.Garble, 1)
	e := failed(t, p.Client.Submit(context.Background(), []providers.Order{h.Order(1)})[0])
	if e.Code != providers.CodeMalformed || !e.Retryable || !e.MaybeApplied {
		t.Errorf("garbled success body: %+v, want retryable malformed, MaybeApplied", e)
	}
	p.Kit.Inject(simkit.OpProvision, simkit.Drop, 1)
	e = failed(t, p.Client.Submit(context.Background(), []providers.Order{h.Order(2)})[0])
	if !e.Retryable || !e.MaybeApplied {
		t.Errorf("dropped connection: %+v, want retryable, MaybeApplied", e)
	}
}

func testAsync(t *testing.T, h Harness, forms simkit.Forms) {
	p := Start(t, h, Setup{AsyncDelay: 200 * time.Millisecond, Forms: forms})
	o := h.Order(1)
	out := p.Client.Submit(context.Background(), []providers.Order{o})[0]
	if out.Status != providers.Accepted {
		t.Fatalf("with a 200ms completion delay, Submit gave %s (%v), want accepted", out.Status, out.Err)
	}
	if c := p.Client.Check(context.Background(), o, out.Handle); c.Status != providers.Accepted {
		t.Errorf("Check right after submit: %s, want still accepted", c.Status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if final := Await(t, ctx, p, o, out); final.Status != providers.Succeeded {
		t.Errorf("after completion: %s %v", final.Status, final.Err)
	}
}

func testLookup(t *testing.T, h Harness, forms simkit.Forms) {
	p := Start(t, h, Setup{Forms: forms})
	sub, err := p.Client.Lookup(context.Background(), h.Order(7))
	if err != nil {
		t.Fatalf("lookup of unknown identifier: %v, want Found=false and no error", err)
	}
	if sub.Found {
		t.Errorf("unknown identifier found: %+v", sub)
	}
	Complete(t, p, []providers.Order{h.Order(7)}, 10*time.Second)
	sub, err = p.Client.Lookup(context.Background(), h.Order(7))
	if err != nil || !sub.Found || !sub.Active {
		t.Errorf("lookup after provisioning: %+v err=%v, want found and active", sub, err)
	}
	if len(sub.Identifiers) == 0 {
		t.Errorf("lookup returned no identifiers")
	}
}

// testCredentialsRefused: refused credentials fail every call as
// CodeCredentials at once, and the provider sees at most two failed logins
// however many calls are made (ThingSpace locks an account after five).
func testCredentialsRefused(t *testing.T, h Harness) {
	p := Start(t, h, Setup{WrongCredentials: true})
	for i := range 4 {
		e := failed(t, p.Client.Submit(context.Background(), []providers.Order{h.Order(i)})[0])
		if e.Code != providers.CodeCredentials || e.Retryable || e.MaybeApplied {
			t.Errorf("submit %d with refused credentials: %+v, want credentials_refused, not retryable, not applied", i, e)
		}
		if _, err := p.Client.Lookup(context.Background(), h.Order(i)); providers.CredentialsRefused(err) == nil {
			t.Errorf("lookup %d with refused credentials: %v, want credentials_refused", i, err)
		}
	}
	st := p.Kit.Stats()
	// A provider with a session login (ThingSpace) refuses the login; the
	// others refuse the token request.
	logins := st.Requests[simkit.OpLogin]
	if logins == 0 {
		logins = st.Requests[simkit.OpToken]
	}
	if logins == 0 || logins > 2 {
		t.Errorf("refused login attempts = %d (token requests %d, session logins %d), want 1 or 2",
			logins, st.Requests[simkit.OpToken], st.Requests[simkit.OpLogin])
	}
	if n := st.Requests[simkit.OpProvision]; n != 0 {
		t.Errorf("%d provisioning requests reached the provider with refused credentials", n)
	}
}

func failed(t *testing.T, out providers.Outcome) *providers.Error {
	t.Helper()
	if out.Status != providers.Failed || out.Err == nil {
		t.Fatalf("status %s err %v, want failed", out.Status, out.Err)
	}
	return out.Err
}

func lookupEventually(p Pair, o providers.Order) (providers.Subscription, error) {
	var sub providers.Subscription
	var err error
	for range 50 {
		sub, err = p.Client.Lookup(context.Background(), o)
		var pe *providers.Error
		if err == nil || !(errors.As(err, &pe) && pe.Retryable) {
			return sub, err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return sub, err
}
