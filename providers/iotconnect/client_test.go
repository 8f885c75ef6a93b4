package iotconnect_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/simbulk/simbulk/providers"
	"github.com/simbulk/simbulk/providers/iotconnect"
)

const testSecret = "s3cr3t-value-that-must-not-leak"

// fake is a scripted IoT Connect: a token endpoint and one handler for
// everything else, counting token requests.
type fake struct {
	*httptest.Server
	tokens atomic.Int32
	api    http.HandlerFunc
}

func newFake(t *testing.T, expiresIn int, api http.HandlerFunc) *fake {
	t.Helper()
	f := &fake{api: api}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth2/token" {
			n := f.tokens.Add(1)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"access_token":"tok-%d","expires_in":%d}`, n, expiresIn)
			return
		}
		f.api(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fake) client(t *testing.T, tweak func(*iotconnect.Config)) *iotconnect.Client {
	t.Helper()
	cfg := iotconnect.Config{
		BaseURL: f.URL, TokenURL: f.URL + "/oauth2/token",
		ClientID: "id", ClientSecret: testSecret,
		Timeout: 2 * time.Second, MaxRetryAfter: 30 * time.Second,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	c, err := iotconnect.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func reply(status int, header map[string]string, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

func env(name, code, msg, path string) string {
	return fmt.Sprintf(`{"name":%q,"message":"m","errors":[{"message":%q,"errorCode":%q,"path":%q}]}`, name, msg, code, path)
}

// TestClassification covers every documented status of the register call
// and the ones a proxy may add.
func TestClassification(t *testing.T) {
	date := time.Now().Add(20 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name         string
		api          http.HandlerFunc
		code         string
		status       int
		retryable    bool
		maybeApplied bool
		retryAfter   time.Duration // 0: must be 0; -1: positive, at most 20s
		tokens       int32
	}{
		{"400 envelope", reply(400, nil, env("BadRequest", "INVALID_VALUE", "cmp must be one of", "cmp")), "INVALID_VALUE", 400, false, false, 0, 1},
		{"400 name only", reply(400, nil, `{"name":"BadRequest","message":"bad"}`), "BadRequest", 400, false, false, 0, 1},
		{"400 unreadable", reply(400, nil, `<html>`), providers.CodeRejected, 400, false, false, 0, 1},
		// A fresh token refused again: the credentials, not this row.
		{"401 twice", reply(401, nil, env("Unauthorized", "INVALID_TOKEN", "expired", "")), providers.CodeCredentials, 401, false, false, 0, 2},
		// One resource refused (another organisation's domain): this row.
		{"403", reply(403, nil, env("Forbidden", "DOMAIN_FORBIDDEN", "not your domain", "domainId")), providers.CodeAuth, 403, false, false, 0, 1},
		{"404", reply(404, nil, env("NotFound", "AGREEMENT_NOT_FOUND", "no agreement", "euiccAgreementId")), "AGREEMENT_NOT_FOUND", 404, false, false, 0, 1},
		{"429 seconds", reply(429, map[string]string{"Retry-After": "7"}, env("RateLimitError", "RATE_LIMIT", "slow down", "")), providers.CodeRateLimited, 429, true, false, 7 * time.Second, 1},
		{"429 capped", reply(429, map[string]string{"Retry-After": "3600"}, `{}`), providers.CodeRateLimited, 429, true, false, 30 * time.Second, 1},
		{"429 http date", reply(429, map[string]string{"Retry-After": date}, `{}`), providers.CodeRateLimited, 429, true, false, -1, 1},
		{"429 garbage", reply(429, map[string]string{"Retry-After": "soon"}, `{}`), providers.CodeRateLimited, 429, true, false, 0, 1},
		{"500", reply(500, nil, env("InternalServerError", "INTERNAL", "oops", "")), providers.CodeServer, 500, true, true, 0, 1},
		{"501", reply(501, nil, `{}`), providers.CodeServer, 501, false, true, 0, 1},
		{"502 html", reply(502, nil, `<html>bad gateway</html>`), providers.CodeServer, 502, true, true, 0, 1},
		{"503", reply(503, map[string]string{"Retry-After": "2"}, `{}`), providers.CodeServer, 503, true, true, 2 * time.Second, 1},
		{"202 garbled", reply(202, nil, `{"imsi":"2420`), providers.CodeMalformed, 202, true, true, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, 3600, tc.api)
			out := f.client(t, nil).Submit(context.Background(), []providers.Order{order(1)})[0]
			if out.Status != providers.Failed || out.Err == nil {
				t.Fatalf("status %s, want failed", out.Status)
			}
			e := out.Err
			if e.Code != tc.code || e.HTTPStatus != tc.status || e.Retryable != tc.retryable || e.MaybeApplied != tc.maybeApplied {
				t.Errorf("got %+v, want code %s status %d retryable %v maybeApplied %v", e, tc.code, tc.status, tc.retryable, tc.maybeApplied)
			}
			switch {
			case tc.retryAfter == -1:
				if e.RetryAfter <= 0 || e.RetryAfter > 20*time.Second {
					t.Errorf("RetryAfter %v from an HTTP date 20s ahead", e.RetryAfter)
				}
			case e.RetryAfter != tc.retryAfter:
				t.Errorf("RetryAfter %v, want %v", e.RetryAfter, tc.retryAfter)
			}
			if e.Message == "" {
				t.Errorf("no message")
			}
			if n := f.tokens.Load(); n != tc.tokens {
				t.Errorf("%d token requests, want %d", n, tc.tokens)
			}
		})
	}
}

func TestProviderWordsKeptForRetryable(t *testing.T) {
	f := newFake(t, 3600, reply(429, nil, env("RateLimitError", "RATE_LIMIT", "slow down", "")))
	e := f.client(t, nil).Submit(context.Background(), []providers.Order{order(1)})[0].Err
	if !strings.Contains(e.Message, "RATE_LIMIT") || !strings.Contains(e.Message, "slow down") {
		t.Errorf("message %q lost the provider's words", e.Message)
	}
}

// TestTokenRefreshBeforeExpiry drives the token cache with a fake clock:
// the token is reused while valid and fetched again inside the margin.
func TestTokenRefreshBeforeExpiry(t *testing.T) {
	f := newFake(t, 3600, reply(404, nil, `{}`))
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	c := f.client(t, func(cfg *iotconnect.Config) { cfg.Now = clock; cfg.TokenMargin = time.Minute })
	lookup := func() {
		t.Helper()
		if _, err := c.Lookup(context.Background(), order(1)); err != nil {
			t.Fatal(err)
		}
	}
	lookup()
	lookup()
	advance(58 * time.Minute) // 2 minutes left: still outside the margin
	lookup()
	if n := f.tokens.Load(); n != 1 {
		t.Fatalf("%d token requests while the token was valid, want 1", n)
	}
	advance(90 * time.Second) // 30s left: inside the margin
	lookup()
	if n := f.tokens.Load(); n != 2 {
		t.Fatalf("%d token requests after entering the margin, want 2", n)
	}
	lookup()
	if n := f.tokens.Load(); n != 2 {
		t.Fatalf("%d token requests with a fresh token, want 2", n)
	}
}

func TestTokenSharedByWorkers(t *testing.T) {
	f := newFake(t, 3600, reply(404, nil, `{}`))
	c := f.client(t, nil)
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			if _, err := c.Lookup(context.Background(), order(i)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := f.tokens.Load(); n != 1 {
		t.Errorf("%d token requests for 32 concurrent calls, want 1", n)
	}
}

func TestTokenEndpointFailures(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		code      string
		retryable bool
	}{
		{"refused", 401, `{"error":"invalid_client"}`, providers.CodeCredentials, false},
		{"bad request", 400, `{"error":"invalid_request"}`, providers.CodeCredentials, false},
		{"down", 503, ``, providers.CodeServer, true},
		{"garbled", 200, `{"access_tok`, providers.CodeMalformed, true},
		{"no token", 200, `{"expires_in":3600}`, providers.CodeMalformed, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var api, tokens atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/token" {
					tokens.Add(1)
					w.WriteHeader(tc.status)
					_, _ = w.Write([]byte(tc.body))
					return
				}
				api.Add(1)
			}))
			defer srv.Close()
			c, err := iotconnect.New(iotconnect.Config{BaseURL: srv.URL, TokenURL: srv.URL + "/token", ClientID: "id", ClientSecret: testSecret})
			if err != nil {
				t.Fatal(err)
			}
			out := c.Submit(context.Background(), []providers.Order{order(1)})[0]
			if out.Status != providers.Failed || out.Err.Code != tc.code || out.Err.Retryable != tc.retryable || out.Err.MaybeApplied {
				t.Errorf("got %s %+v, want code %s retryable %v", out.Status, out.Err, tc.code, tc.retryable)
			}
			_, lerr := c.Lookup(context.Background(), order(1))
			if lerr == nil {
				t.Errorf("lookup without a token: no error")
			}
			for _, s := range []string{out.Err.Error(), fmt.Sprintf("%+v", out), fmt.Sprint(lerr)} {
				if strings.Contains(s, testSecret) {
					t.Errorf("secret in %q", s)
				}
			}
			if api.Load() != 0 {
				t.Errorf("API called without a token")
			}
			// Refused credentials are asked for once per process: a
			// provider may lock the account after a few refusals.
			if tc.code == providers.CodeCredentials && tokens.Load() != 1 {
				t.Errorf("%d token requests after a refusal, want 1", tokens.Load())
			}
		})
	}
}

// TestSecretScrubbed: even a server that echoes the secret does not get it
// into an outcome.
func TestSecretScrubbed(t *testing.T) {
	f := newFake(t, 3600, reply(400, nil, env("BadRequest", "X", "client_secret="+testSecret+" is wrong", "")))
	out := f.client(t, nil).Submit(context.Background(), []providers.Order{order(1)})[0]
	if strings.Contains(fmt.Sprintf("%+v", out.Err), testSecret) {
		t.Errorf("secret echoed into the outcome: %v", out.Err)
	}
}

func TestNewValidates(t *testing.T) {
	ok := iotconnect.Config{BaseURL: "https://api.example", TokenURL: "https://auth.example/token", ClientID: "id", ClientSecret: testSecret}
	tests := []struct {
		name string
		edit func(*iotconnect.Config)
		want string
	}{
		{"no base", func(c *iotconnect.Config) { c.BaseURL = "" }, "missing base URL"},
		{"relative base", func(c *iotconnect.Config) { c.BaseURL = "api.example" }, "absolute http(s) URL"},
		{"bad scheme", func(c *iotconnect.Config) { c.BaseURL = "ftp://api.example" }, "absolute http(s) URL"},
		{"no token URL", func(c *iotconnect.Config) { c.TokenURL = "" }, "missing token URL"},
		{"user info", func(c *iotconnect.Config) { c.TokenURL = "ftp://u:" + testSecret + "@h/t" }, "absolute http(s) URL"},
		{"unparseable", func(c *iotconnect.Config) { c.TokenURL = "http://a b/%zz" + testSecret }, "not a valid URL"},
		{"no id", func(c *iotconnect.Config) { c.ClientID = " " }, "missing client_id"},
		{"no secret", func(c *iotconnect.Config) { c.ClientSecret = "" }, "missing client_secret"},
		{"negative", func(c *iotconnect.Config) { c.Timeout = -1 }, "negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.edit(&cfg)
			_, err := iotconnect.New(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want it to say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Errorf("secret in %q", err)
			}
		})
	}
	c, err := iotconnect.New(ok)
	if err != nil {
		t.Fatal(err)
	}
	if c.BatchSize() != 1 || c.PollInterval() != iotconnect.DefaultPollInterval {
		t.Errorf("batch %d poll %v", c.BatchSize(), c.PollInterval())
	}
}

// TestFallbackToIoTSubscription: an eUICC answer that names its IoT
// subscription without embedding the connectivity subscription makes the
// client read the subscription resource.
func TestFallbackToIoTSubscription(t *testing.T) {
	o := order(1)
	const subID = "8546U5LX6B24P3AZ8X"
	var subCalls atomic.Int32
	f := newFake(t, 3600, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/iot-connect/subscriptions/v1/euiccs/" + o.EID:
			if got := r.URL.Query().Get("include"); got != "iotSubscription,profiles,connectivitySubscriptions" {
				t.Errorf("eUICC include=%q", got)
			}
			fmt.Fprintf(w, `{"attributes":{"eid":%q,"enabledProfile":"89000000000000000002"},
				"relationships":{"iotSubscription":{"url":"/iot-connect/subscriptions/v1/iot-subscriptions/%s"}}}`, o.EID, subID)
		case "/iot-connect/subscriptions/v1/iot-subscriptions/" + subID:
			subCalls.Add(1)
			// The eUICC answer embedded no identifiers: Lookup and Check
			// ask only for the connectivity subscriptions, IoTSubscription
			// for everything.
			if got := r.URL.Query().Get("include"); got != "connectivitySubscriptions" && got != "euiccs,profiles,connectivitySubscriptions" {
				t.Errorf("subscription include=%q", got)
			}
			fmt.Fprintf(w, `{"attributes":{"id":%q,"subscriptionType":"IOT_CONNECT","domain":{"domainId":"a1ce25s2-c23edcs9"}},
				"relationships":{"euiccs":[{"url":"/iot-connect/subscriptions/v1/euiccs/%s"}],
				"profiles":[{"url":"/iot-connect/subscriptions/v1/profiles/89000000000000000001"}],
				"connectivitySubscriptions":[
				 {"url":"/x/1","attributes":{"imsi":"230000000000001","iccid":"89000000000000000001","msisdn":"46000000001","mode":"DEACTIVATED"}},
				 {"url":"/x/2","attributes":{"imsi":"230000000000002","iccid":"89000000000000000002","msisdn":"46000000002","mode":"PAUSED"}}]}}`, subID, o.EID)
		default:
			t.Errorf("unexpected %s", r.URL)
			w.WriteHeader(404)
		}
	})
	c := f.client(t, nil)
	sub, err := c.Lookup(context.Background(), o)
	if err != nil || !sub.Found || sub.Pending || sub.State != "PAUSED" || sub.Active {
		t.Fatalf("lookup %+v %v, want the enabled profile's PAUSED subscription", sub, err)
	}
	if sub.Identifiers["iccid"] != "89000000000000000002" || sub.Identifiers["imsi"] != "230000000000002" {
		t.Errorf("identifiers %v", sub.Identifiers)
	}
	out := c.Check(context.Background(), o, o.EID)
	if out.Status != providers.Succeeded || out.Result["subscription_id"] != subID {
		t.Errorf("check %s %v", out.Status, out.Result)
	}
	s, found, err := c.IoTSubscription(context.Background(), subID)
	if err != nil || !found || len(s.EIDs) != 1 || s.EIDs[0] != o.EID || len(s.ICCIDs) != 1 || s.DomainID != "a1ce25s2-c23edcs9" {
		t.Errorf("IoTSubscription %+v %v %v", s, found, err)
	}
	if subCalls.Load() != 3 {
		t.Errorf("%d subscription reads, want 3", subCalls.Load())
	}
}

// TestJunkAnswers: whatever a server sends, the client classifies it and
// does not panic.
func TestJunkAnswers(t *testing.T) {
	bodies := []string{"", "null", "[]", `"x"`, "{", `{"attributes":null,"relationships":null}`,
		`{"relationships":{"iotSubscription":{"url":""}}}`,
		`{"relationships":{"iotSubscription":{"url":"/a/b/8546U5LX6B24P3AZ8X"},"connectivitySubscriptions":[null,{"attributes":null}]}}`,
		`{"relationships":{"iotSubscription":{"attributes":{"id":"bad id"}}}}`,
		`{"imsi":1}`, "\x00\xff", strings.Repeat("[", 10000)}
	for _, status := range []int{200, 202, 400, 404, 500} {
		for _, b := range bodies {
			f := newFake(t, 3600, reply(status, nil, b))
			c := f.client(t, nil)
			o := order(1)
			_ = c.Submit(context.Background(), []providers.Order{o})
			_ = c.Check(context.Background(), o, o.EID)
			_, _ = c.Lookup(context.Background(), o)
			_, _, _ = c.IoTSubscription(context.Background(), "8546U5LX6B24P3AZ8X")
		}
	}
}

func TestLookupWithoutEID(t *testing.T) {
	f := newFake(t, 3600, reply(500, nil, ``))
	_, err := f.client(t, nil).Lookup(context.Background(), providers.Order{Key: "r"})
	if err == nil {
		t.Fatal("lookup without an EID gave no error")
	}
}

// TestRegisterBody checks the exact documented request: path, headers and
// body, with domainId omitted when empty.
func TestRegisterBody(t *testing.T) {
	var got []string
	var mu sync.Mutex
	f := newFake(t, 3600, func(w http.ResponseWriter, r *http.Request) {
		buf := new(strings.Builder)
		_, _ = fmt.Fprint(buf, r.Method, " ", r.URL.RequestURI(), " ", r.Header.Get("Authorization"), " ", r.Header.Get("Content-Type"), " ")
		b := make([]byte, 1024)
		n, _ := r.Body.Read(b)
		buf.Write(b[:n])
		mu.Lock()
		got = append(got, buf.String())
		mu.Unlock()
		reply(202, nil, `{"imsi":"230000000000001","iccid":"89000000000000000001","msisdn":"46000000001"}`)(w, r)
	})
	c := f.client(t, nil)
	o0, o1 := order(0), order(1)
	outs := c.Submit(context.Background(), []providers.Order{o0, o1})
	want := []string{
		`POST /iot-connect/subscriptions/v1/euiccs Bearer tok-1 application/json {"eid":"` + o0.EID + `","cmp":"IOTA_EU","euiccAgreementId":"AGR-DEMO-0001","localeId":"en_GB"}`,
		`POST /iot-connect/subscriptions/v1/euiccs Bearer tok-1 application/json {"eid":"` + o1.EID + `","cmp":"IOTA_EU","domainId":"a1ce25s2-c23edcs9","euiccAgreementId":"AGR-DEMO-0001","localeId":"en_GB"}`,
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("request %d:\n got %s\nwant %s", i, got[i], want[i])
		}
		if outs[i].Status != providers.Accepted || outs[i].Handle != []string{o0.EID, o1.EID}[i] || outs[i].Result["iccid"] != "89000000000000000001" {
			t.Errorf("outcome %d: %+v", i, outs[i])
		}
	}
}
