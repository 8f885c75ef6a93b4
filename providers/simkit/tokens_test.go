package simkit

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

type tokenAnswer struct {
	status int
	header http.Header
	body   map[string]any
}

func requestToken(t *testing.T, tk *Tokens, form url.Values, basicUser, basicPass string) tokenAnswer {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicUser != "" || basicPass != "" {
		r.SetBasicAuth(basicUser, basicPass)
	}
	w := httptest.NewRecorder()
	tk.ServeToken(w, r)
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("answer is not JSON: %q", w.Body.String())
	}
	return tokenAnswer{status: w.Code, header: w.Header(), body: body}
}

func withBearer(tok string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/api", nil)
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	return r
}

func TestTokensWhereCredentialsComeFrom(t *testing.T) {
	grant := url.Values{"grant_type": {"client_credentials"}}
	inForm := url.Values{"grant_type": {"client_credentials"}, "client_id": {"id"}, "client_secret": {"secret"}}
	wrongForm := url.Values{"grant_type": {"client_credentials"}, "client_id": {"id"}, "client_secret": {"wrong"}}
	tests := []struct {
		name       string
		auth       ClientAuth
		form       url.Values
		user, pass string
		want       int
	}{
		{"form: in the form", FormOrBasic, inForm, "", "", 200},
		{"form: Basic when the form has none", FormOrBasic, grant, "id", "secret", 200},
		{"form: the form wins over Basic", FormOrBasic, inForm, "id", "wrong", 200},
		{"form: wrong secret", FormOrBasic, wrongForm, "", "", 401},
		{"basic-or-form: in the form", BasicOrForm, inForm, "", "", 200},
		{"basic-or-form: Basic", BasicOrForm, grant, "id", "secret", 200},
		{"basic-or-form: Basic wins over the form", BasicOrForm, inForm, "id", "wrong", 401},
		{"basic-only: Basic", BasicOnly, grant, "id", "secret", 200},
		{"basic-only: the form is not read for credentials", BasicOnly, inForm, "", "", 401},
		{"basic-only: wrong", BasicOnly, grant, "id", "wrong", 401},
		{"nothing", FormOrBasic, grant, "", "", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tk := &Tokens{ClientID: "id", Secret: "secret", Auth: tt.auth}
			a := requestToken(t, tk, tt.form, tt.user, tt.pass)
			if a.status != tt.want {
				t.Fatalf("status %d, want %d: %v", a.status, tt.want, a.body)
			}
			if tt.want == 200 {
				tok, _ := a.body["access_token"].(string)
				if !tk.Check(withBearer(tok)) {
					t.Errorf("issued token %q not accepted", tok)
				}
			} else if a.body["error"] != "invalid_client" {
				t.Errorf("refusal %v", a.body)
			}
		})
	}
}

func TestTokensRefusals(t *testing.T) {
	var refused []Refusal
	tk := &Tokens{ClientID: "id", Secret: "secret", Auth: BasicOnly, Refuse: func(w http.ResponseWriter, why Refusal) {
		refused = append(refused, why)
		WriteOAuthError(w, http.StatusTeapot, why.Code(), "custom")
	}}
	// A Basic-only endpoint checks the client before the form.
	a := requestToken(t, tk, url.Values{"grant_type": {"password"}}, "id", "wrong")
	if a.status != http.StatusTeapot || a.body["error"] != "invalid_client" || a.body["error_description"] != "custom" {
		t.Errorf("wrong client: %d %v", a.status, a.body)
	}
	a = requestToken(t, tk, url.Values{"grant_type": {"password"}}, "id", "secret")
	if a.body["error"] != "unsupported_grant_type" {
		t.Errorf("wrong grant: %v", a.body)
	}
	if len(refused) != 2 || refused[0] != RefusedClient || refused[1] != RefusedGrant {
		t.Errorf("refusals %v", refused)
	}

	// Defaults: 400 for a bad request or grant, 401 for the client, no
	// description.
	tk = &Tokens{ClientID: "id", Secret: "secret"}
	r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader("%zz"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	tk.ServeToken(w, r)
	if w.Code != 400 || !strings.Contains(w.Body.String(), `"invalid_request"`) || strings.Contains(w.Body.String(), "error_description") {
		t.Errorf("not a form: %d %s", w.Code, w.Body)
	}
	if a := requestToken(t, tk, url.Values{"client_id": {"id"}, "client_secret": {"secret"}}, "", ""); a.status != 400 || a.body["error"] != "unsupported_grant_type" {
		t.Errorf("no grant: %d %v", a.status, a.body)
	}
	// A body over MaxBody is not a form.
	tk.MaxBody = 16
	if a := requestToken(t, tk, url.Values{"grant_type": {"client_credentials"}, "client_id": {"id"}, "client_secret": {"secret"}}, "", ""); a.status != 400 || a.body["error"] != "invalid_request" {
		t.Errorf("body over MaxBody: %d %v", a.status, a.body)
	}
}

func TestTokensAnswer(t *testing.T) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"id"}, "client_secret": {"secret"}}
	a := requestToken(t, &Tokens{ClientID: "id", Secret: "secret"}, form, "", "")
	if a.body["token_type"] != "bearer" || a.body["expires_in"] != float64(3600) || a.header.Get("Cache-Control") != "" {
		t.Errorf("defaults: %v %v", a.body, a.header)
	}
	if tok, _ := a.body["access_token"].(string); len(tok) != 64 {
		t.Errorf("default token %q", tok)
	}
	tk := &Tokens{
		ClientID: "id", Secret: "secret", TTL: 90 * time.Second, TokenType: "Bearer", NoStore: true,
		Extra: map[string]any{"scope": "m2m"}, NewToken: func() string { return "fixed" },
	}
	a = requestToken(t, tk, form, "", "")
	if a.body["access_token"] != "fixed" || a.body["token_type"] != "Bearer" || a.body["expires_in"] != float64(90) ||
		a.body["scope"] != "m2m" || a.header.Get("Cache-Control") != "no-store" {
		t.Errorf("configured: %v %v", a.body, a.header)
	}
	form.Set("client_secret", "wrong")
	if a := requestToken(t, tk, form, "", ""); a.header.Get("Cache-Control") != "no-store" {
		t.Errorf("refusal without no-store: %v", a.header)
	}
}

func TestTokensCheck(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tk := &Tokens{ClientID: "id", Secret: "secret", TTL: time.Minute, Now: func() time.Time { return now }}
	tok := tk.Issue()
	for _, r := range []*http.Request{
		withBearer(""), withBearer("unknown"),
		func() *http.Request { r := withBearer(""); r.Header.Set("Authorization", "Basic "+tok); return r }(),
		func() *http.Request { r := withBearer(""); r.Header.Set("Authorization", "bearer"+tok); return r }(),
	} {
		if tk.Check(r) {
			t.Errorf("accepted %q", r.Header.Get("Authorization"))
		}
	}
	if !tk.Check(withBearer(tok)) {
		t.Fatal("fresh token refused")
	}
	now = now.Add(59 * time.Second)
	if !tk.Check(withBearer(tok)) {
		t.Fatal("token refused before its expiry")
	}
	now = now.Add(time.Second)
	if tk.Check(withBearer(tok)) {
		t.Fatal("token accepted at its expiry")
	}
	a, b := tk.Issue(), tk.Issue()
	if a == b {
		t.Fatal("two tokens alike")
	}
	tk.ExpireAll()
	if tk.Check(withBearer(a)) || tk.Check(withBearer(b)) {
		t.Fatal("token accepted after ExpireAll")
	}
	if c := tk.Issue(); !tk.Check(withBearer(c)) {
		t.Fatal("token issued after ExpireAll refused")
	}
}

func TestTokensDropExpiredWhenMany(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tk := &Tokens{TTL: time.Minute, Now: func() time.Time { return now }}
	old := tk.Issue()
	for range maxTokens {
		tk.Issue()
	}
	now = now.Add(2 * time.Minute)
	live := tk.Issue()
	tk.mu.Lock()
	n := len(tk.issued)
	_, kept := tk.issued[old]
	tk.mu.Unlock()
	if n != 1 || kept || !tk.Check(withBearer(live)) {
		t.Errorf("%d tokens held (old kept %v) after expiry", n, kept)
	}
}
