package thingspace

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simbulk/simbulk/providers"
	"github.com/simbulk/simbulk/providers/simkit"
)

const (
	testAccount = "0000123456-00001"
	testEID     = "89049032123451234512345678901235"
)

// scripted is a ThingSpace whose token and login are the simulator's and
// whose other answers a test scripts.
type scripted struct {
	sim *Simulator
	mu  sync.Mutex
	fn  http.HandlerFunc
	// bodies of scripted requests, by path
	bodies map[string][]string
}

func newScripted(t *testing.T, fn http.HandlerFunc) (*scripted, string) {
	t.Helper()
	s := &scripted{sim: NewSimulator(SimOptions{}), fn: fn, bodies: map[string][]string{}}
	t.Cleanup(s.sim.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == pathToken || r.URL.Path == pathLogin {
			s.sim.ServeHTTP(w, r)
			return
		}
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies[r.URL.Path] = append(s.bodies[r.URL.Path], string(b))
		fn := s.fn
		s.mu.Unlock()
		fn(w, r)
	}))
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func (s *scripted) calls(path string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bodies[path]...)
}

func testConfig(base string) Config {
	return Config{
		BaseURL: base, Key: SimKey, Secret: SimSecret, Username: SimUsername, Password: SimPassword,
		AccountName: testAccount, MaxRetryAfter: 5 * time.Second, Timeout: 2 * time.Second,
	}
}

func newTestClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func testOrder(eid string) providers.Order {
	return providers.Order{Key: "k-" + eid, EID: eid, Fields: map[string]string{}}
}

func answer(status int, header http.Header, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func TestSubmitClassification(t *testing.T) {
	date := func() string { return time.Now().Add(3 * time.Second).UTC().Format(http.TimeFormat) }
	for _, tc := range []struct {
		name      string
		status    int
		header    http.Header
		body      string
		code      string
		retryable bool
		maybe     bool
		after     time.Duration // wanted RetryAfter (0: none); -1: between 1s and 3s
	}{
		{name: "400 envelope", status: 400, body: `{"errorCode":"400","errorMessage":"accountName is required"}`, code: "400"},
		{name: "400 numeric code", status: 400, body: `{"errorCode":400,"errorMessage":"bad"}`, code: "400"},
		{name: "400 named code", status: 400, body: `{"errorCode":"REQUEST_FAILED.UnexpectedError","errorMessage":"x"}`, code: "REQUEST_FAILED.UnexpectedError"},
		{name: "403", status: 403, body: `{"errorCode":"403","errorMessage":"forbidden"}`, code: "403"},
		{name: "404 no body", status: 404, code: providers.CodeNotFound},
		{name: "409 no envelope", status: 409, body: `<html>`, code: providers.CodeConflict},
		{name: "429 seconds capped", status: 429, header: http.Header{"Retry-After": {"7"}}, code: providers.CodeRateLimited, retryable: true, after: 5 * time.Second},
		{name: "429 seconds", status: 429, header: http.Header{"Retry-After": {"2"}}, code: providers.CodeRateLimited, retryable: true, after: 2 * time.Second},
		{name: "429 date", status: 429, header: http.Header{"Retry-After": {date()}}, code: providers.CodeRateLimited, retryable: true, after: -1},
		{name: "500", status: 500, body: `{"errorCode":"500","errorMessage":"oops"}`, code: "500", retryable: true, maybe: true},
		{name: "501", status: 501, code: providers.CodeServer, maybe: true},
		{name: "502", status: 502, code: providers.CodeServer, retryable: true, maybe: true},
		{name: "503", status: 503, code: providers.CodeServer, retryable: true, maybe: true},
		{name: "504", status: 504, code: providers.CodeServer, retryable: true, maybe: true},
		{name: "200 garbled", status: 200, body: `{"requestId":`, code: providers.CodeMalformed, retryable: true, maybe: true},
		{name: "200 without requestId", status: 200, body: `{}`, code: providers.CodeMalformed, retryable: true, maybe: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, base := newScripted(t, answer(tc.status, tc.header, tc.body))
			c := newTestClient(t, testConfig(base))
			out := c.Submit(context.Background(), []providers.Order{testOrder(testEID)})[0]
			e := out.Err
			if out.Status != providers.Failed || e == nil {
				t.Fatalf("status %s, want failed", out.Status)
			}
			if e.Code != tc.code || e.Retryable != tc.retryable || e.MaybeApplied != tc.maybe {
				t.Errorf("got %+v, want code %s retryable %v maybeApplied %v", e, tc.code, tc.retryable, tc.maybe)
			}
			if e.HTTPStatus != tc.status || e.Message == "" {
				t.Errorf("HTTP %d message %q", e.HTTPStatus, e.Message)
			}
			switch {
			case tc.after == -1 && (e.RetryAfter < time.Second || e.RetryAfter > 3*time.Second):
				t.Errorf("Retry-After date gave %v", e.RetryAfter)
			case tc.after >= 0 && e.RetryAfter != tc.after:
				t.Errorf("RetryAfter %v, want %v", e.RetryAfter, tc.after)
			}
		})
	}
}

func TestUnauthorizedReauthenticatesOnce(t *testing.T) {
	s, base := newScripted(t, answer(401, nil, `{"errorCode":"401","errorMessage":"session token invalid or expired"}`))
	c := newTestClient(t, testConfig(base))
	out := c.Submit(context.Background(), []providers.Order{testOrder(testEID)})[0]
	if out.Status != providers.Failed || out.Err.Retryable || out.Err.Code != "401" || out.Err.MaybeApplied {
		t.Errorf("after two 401s: %s %+v", out.Status, out.Err)
	}
	if n := len(s.calls(pathActivate)); n != 2 {
		t.Errorf("activate sent %d times, want 2 (one re-login)", n)
	}
	if n := s.sim.Kit().Stats().Requests[simkit.OpLogin]; n != 2 {
		t.Errorf("%d logins, want 2", n)
	}
}

func TestCheckPoll(t *testing.T) {
	status := func(reqStatus, devStatus string, extra string) string {
		return fmt.Sprintf(`{"requestId":"r1","status":%q,"devices":[{"deviceIds":[{"kind":"eid","id":%q},{"kind":"iccid","id":"89012600000000000011"},{"kind":"mdn","id":"2015550100"}],"status":%q,"state":"active"%s}]}`,
			reqStatus, testEID, devStatus, extra)
	}
	for _, tc := range []struct {
		name      string
		status    int
		body      string
		want      providers.Status
		code      string
		withErr   bool
		maybe     bool
		retryable bool
	}{
		{name: "pending", status: 200, body: status("Pending", "Pending", ""), want: providers.Accepted},
		{name: "success", status: 200, body: status("Success", "Success", ""), want: providers.Succeeded},
		{name: "device failed", status: 200, body: status("Failed", "Failed", `,"errorCode":"1.2.500","errorMessage":"download failed"`), want: providers.Failed, code: "1.2.500", withErr: true},
		// The same body answers the device list too: an empty list, so the
		// device is unknown there as well.
		{name: "device missing, request done", status: 200, body: `{"requestId":"r1","status":"Success","devices":[]}`, want: providers.Failed, code: providers.CodeNotFound, withErr: true, maybe: true, retryable: true},
		{name: "device missing, request pending", status: 200, body: `{"requestId":"r1","status":"Pending","devices":[]}`, want: providers.Accepted},
		{name: "503 stays accepted", status: 503, want: providers.Accepted, code: providers.CodeServer, withErr: true, maybe: true, retryable: true},
		{name: "429 stays accepted", status: 429, want: providers.Accepted, code: providers.CodeRateLimited, withErr: true, retryable: true},
		{name: "garbled fails unreadable", status: 200, body: `{"devices":[`, want: providers.Failed, code: providers.CodeMalformed, withErr: true, maybe: true, retryable: true},
		{name: "unknown request status", status: 200, body: `{"requestId":"r1","status":"Mystery","subRequests":[]}`, want: providers.Failed, code: providers.CodeMalformed, withErr: true, maybe: true, retryable: true},
		{name: "unknown device status", status: 200, body: status("Success", "Sideways", ""), want: providers.Failed, code: providers.CodeMalformed, withErr: true, maybe: true, retryable: true},
		{name: "no status at all", status: 200, body: `{}`, want: providers.Failed, code: providers.CodeMalformed, withErr: true, maybe: true, retryable: true},
		{name: "404 fails, may be applied", status: 404, body: `{"errorCode":"404","errorMessage":"request not found"}`, want: providers.Failed, code: "404", withErr: true, maybe: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, base := newScripted(t, answer(tc.status, nil, tc.body))
			c := newTestClient(t, testConfig(base))
			out := c.Check(context.Background(), testOrder(testEID), "r1")
			if out.Status != tc.want {
				t.Fatalf("status %s (%v), want %s", out.Status, out.Err, tc.want)
			}
			if (out.Err != nil) != tc.withErr {
				t.Fatalf("err %v, want error: %v", out.Err, tc.withErr)
			}
			if out.Err != nil && (out.Err.Code != tc.code || out.Err.MaybeApplied != tc.maybe || out.Err.Retryable != tc.retryable) {
				t.Errorf("err %+v, want code %s maybeApplied %v retryable %v", out.Err, tc.code, tc.maybe, tc.retryable)
			}
			if out.Status == providers.Accepted && out.Handle != "r1" {
				t.Errorf("accepted without the handle")
			}
			if out.Status == providers.Succeeded && (out.Result["msisdn"] != "2015550100" || out.Result["iccid"] == "" || out.Result["request_id"] != "r1") {
				t.Errorf("result %v", out.Result)
			}
			want := pathAccountsV2 + testAccount + "/requests/r1/status"
			if calls := s.calls(want); len(calls) != 1 {
				t.Errorf("%d calls to %s", len(calls), want)
			}
		})
	}
}

func TestLookupAnswers(t *testing.T) {
	dev := func(state, carrierState string) string {
		return fmt.Sprintf(`{"devices":[{"deviceIds":[{"kind":"eid","id":%q},{"kind":"iccid","id":"89012600000000000011"}],"state":%q,"carrierInformations":[{"state":%q}]}]}`, testEID, state, carrierState)
	}
	for _, tc := range []struct {
		name                   string
		status                 int
		body                   string
		found, active, pending bool
		state                  string
		err                    bool
	}{
		{name: "active", status: 200, body: dev("active", "active"), found: true, active: true, state: "active"},
		{name: "pending", status: 200, body: dev("pending activation", ""), found: true, pending: true, state: "pending activation"},
		{name: "carrier state only", status: 200, body: dev("", "suspend"), found: true, state: "suspend"},
		{name: "empty list", status: 200, body: `{"devices":[]}`},
		{name: "other device only", status: 200, body: `{"devices":[{"deviceIds":[{"kind":"eid","id":"89049032123451234512345678901999"}],"state":"active"}]}`},
		{name: "404", status: 404, body: `{"errorCode":"404","errorMessage":"not found"}`},
		{name: "503", status: 503, err: true},
		{name: "garbled", status: 200, body: `{"devices":`, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, base := newScripted(t, answer(tc.status, nil, tc.body))
			c := newTestClient(t, testConfig(base))
			sub, err := c.Lookup(context.Background(), testOrder(testEID))
			if (err != nil) != tc.err {
				t.Fatalf("err %v", err)
			}
			if sub.Found != tc.found || sub.Active != tc.active || sub.Pending != tc.pending || sub.State != tc.state {
				t.Errorf("got %+v", sub)
			}
			if sub.Found && sub.Identifiers["eid"] != testEID {
				t.Errorf("identifiers %v", sub.Identifiers)
			}
		})
	}
}

func TestVerdict(t *testing.T) {
	for _, tc := range []struct {
		status, euicc string
		want          verdictKind
	}{
		{"SUCCESS", "EXECUTED_SUCCESS", done},
		{"SUCCESS", "", done},
		{"Success", "", done},
		{"SUCCESS", "EXECUTED_FAILURE", refused},
		{"FAILED", "", refused},
		{"Failed", "", refused},
		{"ERROR", "", refused},
		{"SUCCESS", "IN_PROGRESS", pendingVerdict},
		{"Pending", "", pendingVerdict},
		{"", "", pendingVerdict},
		{"QUEUED", "", pendingVerdict},
	} {
		if got := verdict(tc.status, tc.euicc); got != tc.want {
			t.Errorf("verdict(%q,%q) = %v, want %v", tc.status, tc.euicc, got, tc.want)
		}
	}
}

func TestFlexString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`"400"`, "400"}, {`400`, "400"}, {`null`, ""}, {`"a.b.c"`, "a.b.c"}, {`{"x":1}`, ""}, {`[1]`, ""}, {`true`, "true"},
	} {
		var f flexString
		if err := json.Unmarshal([]byte(tc.in), &f); err != nil || string(f) != tc.want {
			t.Errorf("%s: %q %v, want %q", tc.in, f, err, tc.want)
		}
	}
	var env errorEnvelope
	if err := json.Unmarshal([]byte(`{"errorCode":12x}`), &env); err == nil {
		t.Errorf("invalid JSON accepted")
	}
}

// callbackClient is a client in callback mode whose handler is called
// directly, with a controllable clock.
func callbackClient(t *testing.T, now func() time.Time) *Client {
	cfg := testConfig("http://127.0.0.1:1")
	cfg.Callback = &CallbackConfig{Listen: "127.0.0.1:0", Username: "cb", Password: "cb-secret"}
	cfg.Now = now
	return newTestClient(t, cfg)
}

// post hands the body to the handler on the path registered for the
// test account.
func post(c *Client, body string) int {
	rec := httptest.NewRecorder()
	path := "/callbacks/" + callbackToken(c.cfg.Callback.Password, testAccount)
	c.serveCallback(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
	return rec.Code
}

func cbBody(requestID, status, euicc, deviceResponse string) string {
	if deviceResponse == "" {
		deviceResponse = fmt.Sprintf(`{"deviceProfileResponse":{"state":"Active","euiccStatus":%q,"euiccStatusCode":"1.2.9","euiccStatusDesc":"desc %s"}}`, euicc, euicc)
	}
	return fmt.Sprintf(`{"username":"cb","password":"cb-secret","requestId":%q,"deviceIds":[{"kind":"eid","id":%q},{"kind":"mdn","id":"2015550100"}],"deviceResponse":%s,"status":%q,"callbackCount":"2","maxCallbackThreshold":4}`,
		requestID, testEID, deviceResponse, status)
}

func TestCallbackDeliveries(t *testing.T) {
	o := testOrder(testEID)
	check := func(c *Client, id string) providers.Outcome { return c.Check(context.Background(), o, id) }

	t.Run("forms the docs disagree on", func(t *testing.T) {
		c := callbackClient(t, time.Now)
		arr := `[{"deviceProfileResponse":[{"state":"Active","euiccStatus":"EXECUTED_SUCCESS"}]}]`
		if code := post(c, cbBody("r1", "SUCCESS", "", arr)); code != 200 {
			t.Fatalf("array form: %d", code)
		}
		if out := check(c, "r1"); out.Status != providers.Succeeded || out.Result["msisdn"] != "2015550100" || out.Result["euicc_status"] != "EXECUTED_SUCCESS" {
			t.Errorf("array form: %+v", out)
		}
	})
	t.Run("final result is not replaced", func(t *testing.T) {
		c := callbackClient(t, time.Now)
		post(c, cbBody("r2", "SUCCESS", "EXECUTED_SUCCESS", ""))
		post(c, cbBody("r2", "FAILED", "EXECUTED_FAILURE", ""))
		post(c, cbBody("r2", "IN_PROGRESS", "", ""))
		if out := check(c, "r2"); out.Status != providers.Succeeded {
			t.Errorf("first final result lost: %+v", out)
		}
		if st := c.CallbackStats(); st.Received != 3 || st.Duplicates != 2 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("progress then failure", func(t *testing.T) {
		c := callbackClient(t, time.Now)
		post(c, cbBody("r3", "IN_PROGRESS", "", ""))
		if out := check(c, "r3"); out.Status != providers.Accepted {
			t.Errorf("progress report completed the row: %+v", out)
		}
		post(c, cbBody("r3", "FAILED", "EXECUTED_FAILURE", ""))
		out := check(c, "r3")
		if out.Status != providers.Failed || out.Err.Code != "1.2.9" || out.Err.Message != "desc EXECUTED_FAILURE" || out.Err.Retryable {
			t.Errorf("failure: %+v %+v", out, out.Err)
		}
	})
	t.Run("other request or device", func(t *testing.T) {
		c := callbackClient(t, time.Now)
		post(c, cbBody("r4", "SUCCESS", "EXECUTED_SUCCESS", ""))
		if out := check(c, "r5"); out.Status != providers.Accepted {
			t.Errorf("callback of another request matched: %+v", out)
		}
		if out := c.Check(context.Background(), testOrder("89049032123451234512345678901999"), "r4"); out.Status != providers.Accepted {
			t.Errorf("callback of another device matched: %+v", out)
		}
	})
	t.Run("refused deliveries", func(t *testing.T) {
		c := callbackClient(t, time.Now)
		bad := strings.Replace(cbBody("r6", "SUCCESS", "", ""), `"password":"cb-secret"`, `"password":"cb-secreT"`, 1)
		if code := post(c, bad); code != http.StatusUnauthorized {
			t.Errorf("wrong password: %d", code)
		}
		if code := post(c, `{"username":"cb","password":"cb-secret","requestId":"r6","deviceIds":[{"kind":"eid","id":"1"}],"deviceResponse":"x"}`); code != http.StatusBadRequest {
			t.Errorf("deviceResponse a string: %d", code)
		}
		if code := post(c, "\x00garbage"); code != http.StatusBadRequest {
			t.Errorf("garbage: %d", code)
		}
		if st := c.CallbackStats(); st.Received != 0 || st.Held != 0 {
			t.Errorf("refused deliveries stored: %+v", st)
		}
	})
	t.Run("grace then poll", func(t *testing.T) {
		clk := &fakeClock{t: time.Now()}
		c := callbackClient(t, clk.Now) // base URL unreachable: a poll fails fast
		if out := check(c, "r7"); out.Status != providers.Accepted || out.Err != nil {
			t.Fatalf("within grace: %+v", out)
		}
		clk.Advance(DefaultCallbackGrace + time.Second)
		out := check(c, "r7")
		if out.Status != providers.Accepted || out.Err == nil || out.Err.Code != providers.CodeConnection {
			t.Errorf("after grace Check should have polled (and failed to connect): %+v %v", out, out.Err)
		}
	})
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

func TestSessionRenewedBeforeIdleExpiry(t *testing.T) {
	s, base := newScripted(t, answer(200, nil, `{"devices":[]}`))
	clk := &fakeClock{t: time.Now()}
	cfg := testConfig(base)
	cfg.Now = clk.Now
	c := newTestClient(t, cfg)
	lookup := func() {
		if _, err := c.Lookup(context.Background(), testOrder(testEID)); err != nil {
			t.Fatal(err)
		}
	}
	logins := func() int { return s.sim.Kit().Stats().Requests[simkit.OpLogin] }
	lookup()
	clk.Advance(10 * time.Minute)
	lookup()
	clk.Advance(10 * time.Minute) // 10 idle minutes since the last use
	lookup()
	if n := logins(); n != 1 {
		t.Errorf("%d logins while the session was in use, want 1", n)
	}
	clk.Advance(19*time.Minute + 30*time.Second) // within a minute of idling out
	lookup()
	if n := logins(); n != 2 {
		t.Errorf("%d logins, want a fresh session before the idle limit", n)
	}
	if n := len(s.calls(pathList)); n != 4 {
		t.Errorf("%d list calls, want 4 (no 401 round trips)", n)
	}
}

func TestTokenRefreshedBeforeExpiry(t *testing.T) {
	var tokens int
	var mu sync.Mutex
	clk := &fakeClock{t: time.Now()}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case pathToken:
			mu.Lock()
			tokens++
			mu.Unlock()
			io.WriteString(w, `{"access_token":"t","expires_in":"120"}`)
		case pathLogin:
			io.WriteString(w, `{"sessionToken":"s"}`)
		default:
			io.WriteString(w, `{"devices":[]}`)
		}
	}))
	defer srv.Close()
	cfg := testConfig(srv.URL)
	cfg.Now = clk.Now
	cfg.SessionIdle = time.Hour
	c := newTestClient(t, cfg)
	for _, step := range []time.Duration{0, 30 * time.Second, 40 * time.Second} {
		clk.Advance(step)
		if _, err := c.Lookup(context.Background(), testOrder(testEID)); err != nil {
			t.Fatal(err)
		}
	}
	// 70s into a 120s token: within the 60s margin, so fetched again.
	mu.Lock()
	defer mu.Unlock()
	if tokens != 2 {
		t.Errorf("%d token fetches, want 2", tokens)
	}
}

func TestSecretsNeverInErrors(t *testing.T) {
	const secret, password, cbPassword = "s3cr3t-client-secret", "pa55-word-xyz", "cb-pa55-word"
	// A service that refuses everything and echoes what it was sent.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, pass, _ := r.BasicAuth()
		msg, _ := json.Marshal(map[string]string{"errorCode": "400", "errorMessage": "you sent " + string(b) + " " + pass})
		switch r.URL.Path {
		case pathToken:
			w.WriteHeader(http.StatusUnauthorized)
		case pathLogin:
			w.WriteHeader(http.StatusBadRequest)
		default:
			w.WriteHeader(http.StatusBadRequest)
		}
		w.Write(msg)
	}))
	defer srv.Close()
	texts := func(c *Client) []string {
		var out []string
		ctx := context.Background()
		o := testOrder(testEID)
		for _, oc := range []providers.Outcome{c.Submit(ctx, []providers.Order{o})[0], c.Check(ctx, o, "r1")} {
			if oc.Err != nil {
				out = append(out, oc.Err.Error(), fmt.Sprintf("%+v", *oc.Err))
			}
			out = append(out, fmt.Sprint(oc.Result))
		}
		if _, err := c.Lookup(ctx, o); err != nil {
			out = append(out, err.Error())
		}
		if err := c.Start(ctx); err != nil {
			out = append(out, err.Error())
		}
		return out
	}
	cfg := testConfig(srv.URL)
	cfg.Secret, cfg.Password = secret, password
	cfg.Callback = &CallbackConfig{Listen: "127.0.0.1:0", Username: "cb", Password: cbPassword}
	// Token refused.
	all := texts(newTestClient(t, cfg))
	// Token granted, login refused with an echo of the password.
	tokenOK := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == pathToken {
			io.WriteString(w, `{"access_token":"tok","expires_in":3600}`)
			return
		}
		srv.Config.Handler.ServeHTTP(w, r)
	}))
	defer tokenOK.Close()
	cfg.BaseURL = tokenOK.URL
	all = append(all, texts(newTestClient(t, cfg))...)
	// Session granted too: activate and registration echo their bodies.
	loginOK := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == pathLogin {
			io.WriteString(w, `{"sessionToken":"sess"}`)
			return
		}
		tokenOK.Config.Handler.ServeHTTP(w, r)
	}))
	defer loginOK.Close()
	cfg.BaseURL = loginOK.URL
	all = append(all, texts(newTestClient(t, cfg))...)
	if len(all) < 6 {
		t.Fatalf("too few errors to judge: %q", all)
	}
	for _, s := range all {
		for _, v := range []string{secret, password, cbPassword} {
			if strings.Contains(s, v) {
				t.Errorf("secret %q leaked in %q", v, s)
			}
		}
	}
	// Config errors never echo values either.
	_, err := New(Config{BaseURL: "ftp://" + secret, Secret: secret})
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("config error %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	ok := testConfig("https://thingspace.example")
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"ok", func(*Config) {}, ""},
		{"no base", func(c *Config) { c.BaseURL = "" }, "base_url"},
		{"relative base", func(c *Config) { c.BaseURL = "/api" }, "base_url"},
		{"no secret", func(c *Config) { c.Secret = "" }, "missing secret"},
		{"no user and password", func(c *Config) { c.Username, c.Password = "", "" }, "missing username, password"},
		{"batch too big", func(c *Config) { c.BatchSize = 101 }, "batch_size"},
		{"callback without listen", func(c *Config) { c.Callback = &CallbackConfig{Username: "u", Password: "p"} }, "callback.listen"},
		{"callback without credentials", func(c *Config) { c.Callback = &CallbackConfig{Listen: ":0"} }, "callback.username"},
		{"callback bad public url", func(c *Config) {
			c.Callback = &CallbackConfig{Listen: ":0", Username: "u", Password: "p", PublicURL: "host:9001"}
		}, "public_url"},
	} {
		cfg := ok
		tc.mod(&cfg)
		c, err := New(cfg)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want error about %s", tc.name, err, tc.want)
		case err == nil && c.BatchSize() != DefaultBatchSize:
			t.Errorf("%s: default batch size %d", tc.name, c.BatchSize())
		}
	}
}

func TestSubmitGrouping(t *testing.T) {
	s, base := newScripted(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"requestId":"req"}`)
	})
	cfg := testConfig(base)
	cfg.BatchSize = 2
	c := newTestClient(t, cfg)
	eids := []string{
		"89049032123451234512345678901235", "89049032123451234512345678901236",
		"89049032123451234512345678901237", "89049032123451234512345678901238",
	}
	os := []providers.Order{
		testOrder(eids[0]), testOrder(eids[1]), testOrder(eids[0]), // duplicate EID rides along
		testOrder(eids[2]), testOrder("1234"), // bad EID: refused alone, never sent
		{EID: eids[3], Fields: map[string]string{"account_name": "0000999999-00002", "first_name": "Ada", "state": "TX"}},
	}
	outs := c.Submit(context.Background(), os)
	for i, want := range []providers.Status{providers.Accepted, providers.Accepted, providers.Accepted, providers.Accepted, providers.Failed, providers.Accepted} {
		if outs[i].Status != want {
			t.Errorf("order %d: %s %v, want %s", i, outs[i].Status, outs[i].Err, want)
		}
	}
	if e := outs[4].Err; e == nil || e.Code != providers.CodeRejected || e.Retryable {
		t.Errorf("bad EID: %+v", e)
	}
	calls := s.calls(pathActivate)
	if len(calls) != 3 {
		t.Fatalf("%d activate requests, want 3: %q", len(calls), calls)
	}
	var reqs []activateRequest
	for _, b := range calls {
		var r activateRequest
		if err := json.Unmarshal([]byte(b), &r); err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, r)
	}
	if len(reqs[0].Devices) != 2 || len(reqs[1].Devices) != 1 || reqs[0].AccountName != testAccount || reqs[0].PrimaryPlaceOfUse != nil {
		t.Errorf("first group: %+v / %+v", reqs[0], reqs[1])
	}
	r := reqs[2]
	if r.AccountName != "0000999999-00002" || r.PrimaryPlaceOfUse == nil || r.PrimaryPlaceOfUse.CustomerName.FirstName != "Ada" ||
		r.PrimaryPlaceOfUse.Address.State != "TX" || r.Devices[0].DeviceIDs[0] != (deviceID{ID: eids[3], Kind: kindEID}) {
		t.Errorf("second account's request: %+v", r)
	}
}

func TestCancelledSubmitSendsNothing(t *testing.T) {
	s, base := newScripted(t, answer(200, nil, `{"requestId":"r"}`))
	c := newTestClient(t, testConfig(base))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := c.Submit(ctx, []providers.Order{testOrder(testEID)})[0]
	if out.Status != providers.Failed || !out.Err.Retryable || out.Err.MaybeApplied {
		t.Errorf("cancelled: %+v", out.Err)
	}
	if n := len(s.calls(pathActivate)); n != 0 {
		t.Errorf("%d requests sent after cancel", n)
	}
}

func TestCheckWithoutHandleUsesDeviceState(t *testing.T) {
	sim := NewSimulator(SimOptions{AsyncDelay: time.Hour})
	defer sim.Close()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	c := newTestClient(t, testConfig(srv.URL))
	o := testOrder(testEID)
	ctx := context.Background()
	if out := c.Check(ctx, o, ""); out.Status != providers.Failed || out.Err.Code != providers.CodeNotFound || !out.Err.Retryable {
		t.Errorf("unknown device: %+v", out)
	}
	c.Submit(ctx, []providers.Order{o})
	if out := c.Check(ctx, o, ""); out.Status != providers.Accepted {
		t.Errorf("activating device: %+v", out)
	}
	sim.SetState(testEID, StateActive)
	if out := c.Check(ctx, o, ""); out.Status != providers.Succeeded || out.Result["iccid"] == "" || out.Result["state"] != "Activate" {
		t.Errorf("active device: %+v", out)
	}
	sim.SetState(testEID, StateSuspend)
	if out := c.Check(ctx, o, ""); out.Status != providers.Failed || out.Err.Retryable {
		t.Errorf("suspended device: %+v", out)
	}
}

func TestBatchKey(t *testing.T) {
	c := newTestClient(t, testConfig("http://127.0.0.1:1"))
	order := func(eid, first, account string) providers.Order {
		return providers.Order{EID: eid, Fields: map[string]string{
			"account_name": account, "service_plan": "M2M", "first_name": first, "last_name": "Lovelace", "zip": "78701"}}
	}
	a := c.BatchKey(order("1", "Ada", "acct-1"))
	if b := c.BatchKey(order("2", "Ada", "acct-1")); a != b {
		t.Errorf("devices with the same request fields get keys %q and %q; they can share a request", a, b)
	}
	if b := c.BatchKey(order("1", "Bob", "acct-1")); a == b {
		t.Error("another customer name gets the same key: one request would carry the wrong primaryPlaceOfUse")
	}
	if b := c.BatchKey(order("1", "Ada", "acct-2")); a == b {
		t.Error("another account gets the same key")
	}
	// The account falls back to the config's default, as in Submit.
	if b := c.BatchKey(order("1", "Ada", "")); b != c.BatchKey(order("1", "Ada", testAccount)) {
		t.Error("an order without account_name is not keyed with the default account")
	}
}
