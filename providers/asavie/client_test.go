package asavie

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/simbulk/simbulk/providers"
)

func TestNewValidatesConfig(t *testing.T) {
	const secret = "s3cr3t-value"
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no base URL", Config{ClientID: "a", ClientSecret: secret}, "base_url is required"},
		{"relative base URL", Config{BaseURL: "api.example.com", ClientID: "a", ClientSecret: secret}, "absolute http(s) URL"},
		{"ftp", Config{BaseURL: "ftp://api.example.com", ClientID: "a", ClientSecret: secret}, "absolute http(s) URL"},
		{"credentials in URL", Config{BaseURL: "https://u:" + secret + "@api.example.com", ClientID: "a", ClientSecret: secret}, "must not carry credentials"},
		{"query", Config{BaseURL: "https://api.example.com/?k=v", ClientID: "a", ClientSecret: secret}, "query"},
		{"no client id", Config{BaseURL: "https://api.example.com", ClientSecret: secret}, "client_id is required"},
		{"no secret", Config{BaseURL: "https://api.example.com", ClientID: "a"}, "client_secret is required"},
	}
	for _, tc := range cases {
		_, err := New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("%s: secret in %q", tc.name, err)
		}
	}
	c, err := New(Config{BaseURL: "https://api.example.com/", ClientID: "a", ClientSecret: secret})
	if err != nil || c.BatchSize() != 1 || c.PollInterval() != 2*time.Second {
		t.Fatalf("valid config: %v", err)
	}
}

func TestResolve(t *testing.T) {
	c, err := New(Config{BaseURL: "https://api.example.com/asavie/", ClientID: "a", ClientSecret: "b"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ ref, want, err string }{
		{"/v1/accounts/acme%20ltd/hardware/sims/%28%2B44%297700900123/status/3f", "https://api.example.com/asavie/v1/accounts/acme%20ltd/hardware/sims/%28%2B44%297700900123/status/3f", ""},
		{"v1/x/status/1", "https://api.example.com/asavie/v1/x/status/1", ""},
		{"https://api.example.com/v1/x/status/1", "https://api.example.com/v1/x/status/1", ""},
		{"https://evil.example.net/v1/x/status/1", "", "another host"},
		// The captured form: the cmdid's %2F and %3D must reach the wire as
		// they stand, and the host check holds for it too.
		{"/v1/accounts/cardilink/hardware/sims/204046868148000/status?cmdid=Z2Ev%2FLEZu%3D%3D", "https://api.example.com/asavie/v1/accounts/cardilink/hardware/sims/204046868148000/status?cmdid=Z2Ev%2FLEZu%3D%3D", ""},
		{"https://evil.example.net/v1/x/status?cmdid=Z2Ev%2F", "", "another host"},
		{"", "", "empty"},
		{"/v1/%zz", "", "status URL"},
	}
	for _, tc := range cases {
		got, err := c.resolve(tc.ref)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %q %v, want error %q", tc.ref, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %q %v, want %q", tc.ref, got, err, tc.want)
		}
	}
}

// fakeAPI is a minimal Asavie: a token endpoint issuing numbered tokens and
// a lookup that accepts any of them.
type fakeAPI struct {
	tokens    atomic.Int32
	expiresIn int
	lastAuth  atomic.Value
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == tokenPath {
		n := f.tokens.Add(1)
		fmt.Fprintf(w, `{"access_token":"tok-%d","token_type":"bearer","expires_in":%d}`, n, f.expiresIn)
		return
	}
	f.lastAuth.Store(r.Header.Get("Authorization"))
	fmt.Fprint(w, `{"Success":true,"Code":200,"Data":{"CLI":"(+44)7700900123","State":1,"ActorStatus":0}}`)
}

func TestTokenRefreshedBeforeExpiry(t *testing.T) {
	api := &fakeAPI{expiresIn: 600}
	srv := httptest.NewServer(api)
	defer srv.Close()
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	c, err := New(Config{BaseURL: srv.URL, ClientID: "id", ClientSecret: "secret", TokenMargin: time.Minute, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	o := providers.Order{CLI: "(+44)7700900123", Fields: map[string]string{"account": "a"}}
	steps := []struct {
		advance    time.Duration
		wantTokens int32
	}{
		{0, 1},
		{4 * time.Minute, 1},  // 6 minutes left: cached
		{4 * time.Minute, 1},  // 2 minutes left: still outside the margin
		{90 * time.Second, 2}, // 30 seconds left: inside the margin, renewed
		{time.Minute, 2},
	}
	for i, s := range steps {
		advance(s.advance)
		if _, err := c.Lookup(context.Background(), o); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := api.tokens.Load(); got != s.wantTokens {
			t.Errorf("step %d: %d token requests, want %d", i, got, s.wantTokens)
		}
		if got := api.lastAuth.Load(); got != fmt.Sprintf("Bearer tok-%d", s.wantTokens) {
			t.Errorf("step %d: sent %v", i, got)
		}
	}
}

// TestSecretsNeverLeak drives every call against endpoints that refuse or
// echo what they were sent, and looks for the secret in every text the
// client produces.
func TestSecretsNeverLeak(t *testing.T) {
	const secret = "TopSecret-9f8e7d"
	handlers := map[string]http.HandlerFunc{
		"token refused, echoing the form": func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, `{"error":"invalid_client","error_description":%q}`, b)
		},
		"token server error echoing the form": func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write(b)
		},
		"token garbled": func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			_, _ = w.Write(append([]byte(`{"access_token":`), b...))
		},
		"API refuses the token": func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == tokenPath {
				fmt.Fprint(w, `{"access_token":"`+secret+`-token","expires_in":3600}`)
				return
			}
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"Success":false,"Code":401,"ErrorDescription":"Authorization has been denied for this request."}`)
		},
	}
	for name, h := range handlers {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(h)
			defer srv.Close()
			c, err := New(Config{BaseURL: srv.URL, ClientID: "id", ClientSecret: secret})
			if err != nil {
				t.Fatal(err)
			}
			o := providers.Order{CLI: "(+44)7700900123", ICCID: "89441000000000000034", Fields: map[string]string{"account": "a"}}
			var texts []string
			out := c.Submit(context.Background(), []providers.Order{o})[0]
			if out.Status != providers.Failed || out.Err.Retryable && name != "token server error echoing the form" && name != "token garbled" {
				t.Errorf("submit: %s %+v", out.Status, out.Err)
			}
			texts = append(texts, out.Err.Error(), fmt.Sprint(out.Result))
			chk := c.Check(context.Background(), o, "/v1/accounts/a/hardware/sims/x/status/1")
			texts = append(texts, chk.Err.Error(), fmt.Sprint(chk.Result))
			_, lerr := c.Lookup(context.Background(), o)
			texts = append(texts, lerr.Error())
			for _, s := range texts {
				if strings.Contains(s, secret) {
					t.Errorf("secret in %q", s)
				}
			}
		})
	}
}

func TestSubmitCancelled(t *testing.T) {
	c, err := New(Config{BaseURL: "http://127.0.0.1:1", ClientID: "a", ClientSecret: "b"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	orders := []providers.Order{{CLI: "1"}, {CLI: "2"}, {CLI: "3"}}
	outs := c.Submit(ctx, orders)
	if len(outs) != len(orders) {
		t.Fatalf("%d outcomes for %d orders", len(outs), len(orders))
	}
	for i, out := range outs {
		if out.Status != providers.Failed || !out.Err.Retryable || out.Err.MaybeApplied {
			t.Errorf("order %d: %s %+v, want retryable, not applied", i, out.Status, out.Err)
		}
	}
}

// TestCheckAnswers covers the status resource shapes Check must read.
func TestCheckAnswers(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		want   providers.Status
		code   string
		retry  bool
	}{
		{"pending", 200, `{"Success":true,"Code":200,"Data":{"Id":"1","Status":"pending"}}`, providers.Accepted, "", false},
		{"queued spelling", 200, `{"Success":true,"Code":200,"Data":{"Id":"1","Status":"Queued"}}`, providers.Accepted, "", false},
		{"complete", 200, `{"Success":true,"Code":200,"Data":{"Id":"1","Status":"complete","SIMCard":{"CLI":"(+44)7700900123","SIMNumber":"8944","State":1}}}`, providers.Succeeded, "", false},
		{"complete without SIM", 200, `{"Success":true,"Data":{"Status":"Complete"}}`, providers.Succeeded, "", false},
		{"failed with envelope error", 200, `{"Success":false,"Code":422,"ErrorCode":2105,"ErrorDescription":"rejected","Data":{"Status":"failed"}}`, providers.Failed, "2105", false},
		{"failed with Code 500", 200, `{"Success":false,"Code":500,"ErrorCode":5001,"Data":{"Status":"failed"}}`, providers.Failed, "5001", false},
		{"failed without error", 200, `{"Success":true,"Data":{"Status":"failed"}}`, providers.Failed, providers.CodeRejected, false},
		{"unknown status word", 200, `{"Success":true,"Data":{"Status":"sleeping"}}`, providers.Failed, providers.CodeMalformed, true},
		{"no data", 200, `{"Success":true,"Code":200}`, providers.Failed, providers.CodeMalformed, true},
		{"SIM resource pending", 200, `{"Success":true,"Data":{"CLI":"(+44)7700900123","State":0,"ActorStatus":1}}`, providers.Accepted, "", false},
		{"SIM resource stable", 200, `{"Success":true,"Data":{"CLI":"(+44)7700900123","State":"ready","ActorStatus":"stable"}}`, providers.Succeeded, "", false},
		{"SIM resource stalled", 200, `{"Success":true,"Data":{"CLI":"(+44)7700900123","ActorStatus":10}}`, providers.Failed, "stalled", false},
		{"poll rate limited", 429, `{"message":"slow down"}`, providers.Failed, providers.CodeRateLimited, true},
		{"poll server error in envelope", 200, `{"Success":false,"Code":503}`, providers.Failed, providers.CodeServer, true},
		{"garbled", 200, `{"Success":tr`, providers.Failed, providers.CodeMalformed, true},
		{"captured envelope, complete", 200, `{"Data":{"Id":"x","Status":"complete","SIMCard":{"CLI":"(+44)7700900123","Description":null,"Hints":null,"State":3}},"Success":true,"Code":200,"ErrorCode":0,"ErrorSubCode":0,"ErrorDescription":"","Meta":"","StatusUrl":null,"ContinuationToken":""}`, providers.Succeeded, "", false},
		{"numeric status", 200, `{"Success":true,"Meta":"","Data":{"Status":2}}`, providers.Failed, providers.CodeMalformed, true},
		{"status as an object", 200, `{"Success":true,"Data":{"Status":{"Value":"complete"}}}`, providers.Failed, providers.CodeMalformed, true},
		{"Data as text", 200, `{"Success":true,"Data":"queued"}`, providers.Failed, providers.CodeMalformed, true},
		{"neither status nor SIM", 200, `{"Success":true,"Data":{"Id":"1"}}`, providers.Failed, providers.CodeMalformed, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == tokenPath {
					fmt.Fprint(w, `{"access_token":"t","expires_in":3600}`)
					return
				}
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.body)
			}))
			defer srv.Close()
			c, _ := New(Config{BaseURL: srv.URL, ClientID: "a", ClientSecret: "b"})
			o := providers.Order{CLI: "(+44)7700900123", Fields: map[string]string{"account": "a"}}
			out := c.Check(context.Background(), o, "/v1/accounts/a/hardware/sims/%28%2B44%297700900123/status?cmdid=Zm9v%2F")
			if out.Status != tc.want {
				t.Fatalf("%s %+v, want %s", out.Status, out.Err, tc.want)
			}
			if tc.code == providers.CodeMalformed && !strings.Contains(out.Err.Message, "Asavie said ") {
				t.Errorf("malformed answer %q does not quote Asavie", out.Err.Message)
			}
			if out.Status == providers.Accepted && out.Handle == "" {
				t.Errorf("accepted without a handle")
			}
			if tc.want == providers.Failed {
				if out.Err.Code != tc.code || out.Err.Retryable != tc.retry || out.Err.MaybeApplied {
					t.Errorf("err %+v, want code %s retryable %v, not maybe-applied", out.Err, tc.code, tc.retry)
				}
			}
		})
	}
}

// TestConflictSpellings: "a failure result with a 409 error code" may
// carry the 409 as the HTTP status, the envelope's Code or its ErrorCode
// only; each is looked up, and the SIM found decides.
func TestConflictSpellings(t *testing.T) {
	spellings := []struct {
		name   string
		status int
		body   string
	}{
		{"HTTP 409", 409, `{"Success":false,"Code":409,"ErrorCode":3009,"ErrorDescription":"exists"}`},
		{"Code 409 under HTTP 200", 200, `{"Success":false,"Code":409,"ErrorDescription":"exists"}`},
		{"ErrorCode 409 under HTTP 400", 400, `{"Success":false,"Code":400,"ErrorCode":409,"ErrorDescription":"exists"}`},
		{"ErrorCode 409 under HTTP 200", 200, `{"Success":false,"Code":200,"ErrorCode":409,"ErrorDescription":"exists"}`},
		{"HTTP 409 without an envelope", 409, `{"message":"Conflict"}`},
	}
	for _, sp := range spellings {
		for _, simNumber := range []string{"89441000000000000034", "89441000000000000042"} {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.URL.Path == tokenPath:
					fmt.Fprint(w, `{"access_token":"t","expires_in":3600}`)
				case r.Method == http.MethodPost:
					w.WriteHeader(sp.status)
					fmt.Fprint(w, sp.body)
				default:
					fmt.Fprintf(w, `{"Data":{"CLI":"(+44)7700900123","SIMNumber":%q,"Description":null,"State":3,"ActorStatus":0},"Success":true,"Code":200,"ErrorCode":0,"ErrorSubCode":0,"ErrorDescription":"","Meta":"","StatusUrl":null,"ContinuationToken":""}`, simNumber)
				}
			}))
			c, _ := New(Config{BaseURL: srv.URL, ClientID: "a", ClientSecret: "b"})
			o := providers.Order{CLI: "(+44)7700900123", ICCID: "89441000000000000034", Fields: map[string]string{"account": "a"}}
			out := c.Submit(context.Background(), []providers.Order{o})[0]
			srv.Close()
			if simNumber == o.ICCID {
				if out.Status != providers.Succeeded || out.Result["note"] != "already existed" || out.Result["state"] != "live" {
					t.Errorf("%s, same SIM: %s %v %v", sp.name, out.Status, out.Result, out.Err)
				}
				continue
			}
			if out.Status != providers.Failed || out.Err.Code != providers.CodeConflict || out.Err.Retryable ||
				out.Err.Message != "CLI (+44)7700900123 exists with SIM number 89441000000000000042; row has 89441000000000000034" {
				t.Errorf("%s, different SIM: %s %+v", sp.name, out.Status, out.Err)
			}
		}
	}
}

// TestEnvelope401Reauthenticates: a token refused in the envelope only
// (HTTP 200, Code 401) is renewed like one refused by HTTP 401.
func TestEnvelope401Reauthenticates(t *testing.T) {
	for _, always := range []bool{false, true} {
		var tokens, calls atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == tokenPath {
				fmt.Fprintf(w, `{"access_token":"tok-%d","expires_in":3600}`, tokens.Add(1))
				return
			}
			calls.Add(1)
			if always || r.Header.Get("Authorization") == "Bearer tok-1" {
				fmt.Fprint(w, `{"Success":false,"Code":401,"ErrorDescription":"Authorization has been denied for this request."}`)
				return
			}
			fmt.Fprint(w, `{"Success":true,"Code":200,"Data":{"CLI":"(+44)7700900123","State":1}}`)
		}))
		c, _ := New(Config{BaseURL: srv.URL, ClientID: "a", ClientSecret: "b"})
		sub, err := c.Lookup(context.Background(), providers.Order{CLI: "(+44)7700900123", Fields: map[string]string{"account": "a"}})
		srv.Close()
		if !always {
			if err != nil || !sub.Found || tokens.Load() != 2 {
				t.Errorf("renewed once: %+v %v, %d tokens", sub, err, tokens.Load())
			}
			continue
		}
		var pe *providers.Error
		// A token fetched a moment ago and refused again: the credentials,
		// not the token, are what Asavie will not take.
		if !errors.As(err, &pe) || pe.Code != providers.CodeCredentials || pe.Retryable || pe.MaybeApplied || calls.Load() > 2 {
			t.Errorf("always refused: %v after %d calls, want one permanent credentials_refused after 2", err, calls.Load())
		}
	}
}

// TestProvisioningRequest pins the wire form of the create call: path
// with the account escaped once, headers, and the SIMCard body with empty
// fields left out.
func TestProvisioningRequest(t *testing.T) {
	var got struct {
		path, accept, contentType, auth string
		body                            []byte
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == tokenPath {
			_ = r.ParseForm()
			if r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("client_id") != "id" || r.PostForm.Get("client_secret") != "secret" {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			fmt.Fprint(w, `{"access_token":"tok","token_type":"bearer","expires_in":3600}`)
			return
		}
		got.path, got.accept, got.contentType, got.auth = r.URL.EscapedPath(), r.Header.Get("Accept"), r.Header.Get("Content-Type"), r.Header.Get("Authorization")
		got.body, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprint(w, `{"Success":true,"Code":202,"StatusUrl":"/v1/accounts/acme%20ltd/hardware/sims/%28%2B44%297700900123/status/9","Meta":{"RequestId":"9"}}`)
	}))
	defer srv.Close()
	c, _ := New(Config{BaseURL: srv.URL, ClientID: "id", ClientSecret: "secret"})
	o := providers.Order{CLI: "(+44)7700900123", ICCID: "89441000000000000034", Fields: map[string]string{
		"account": "acme ltd", "description": "van 12", "inventory_ref": "INV-1", "tariff": "IOT-1GB", "bundle": "",
		"operator": "EE", "soc": "S1", "purchase_order": "PO-7", "cmp": "ignored",
	}}
	out := c.Submit(context.Background(), []providers.Order{o})[0]
	if out.Status != providers.Accepted || out.Result["request_id"] != "9" {
		t.Fatalf("%s %v %v", out.Status, out.Result, out.Err)
	}
	const body = `{"CLI":"(+44)7700900123","SIMNumber":"89441000000000000034","Description":"van 12","InventoryRef":"INV-1","Tariff":"IOT-1GB","Operator":"EE","SOC":"S1","PurchaseOrder":"PO-7"}`
	if got.path != "/v1/accounts/acme%20ltd/hardware/sims" || got.accept != "application/json" ||
		got.contentType != "application/json" || got.auth != "Bearer tok" || string(got.body) != body {
		t.Errorf("sent %+v body %s", got, got.body)
	}
}
