package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	date := func(d time.Duration) string { return now.Add(d).Format(http.TimeFormat) }
	tests := []struct {
		name string
		v    string
		max  time.Duration
		want time.Duration
	}{
		{"absent", "", time.Minute, 0},
		{"blank", "   ", time.Minute, 0},
		{"seconds", "5", time.Minute, 5 * time.Second},
		{"seconds padded", " 7 ", time.Minute, 7 * time.Second},
		{"zero", "0", time.Minute, 0},
		{"negative", "-5", time.Minute, 0},
		{"seconds at the cap", "60", time.Minute, time.Minute},
		{"seconds over the cap", "120", time.Minute, time.Minute},
		{"seconds beyond int64", "99999999999999999999", time.Minute, 0},
		{"fraction", "1.5", time.Minute, 0},
		{"garbage", "soon", time.Minute, 0},
		{"date", date(30 * time.Second), time.Minute, 30 * time.Second},
		{"date over the cap", date(2 * time.Hour), time.Minute, time.Minute},
		{"date now", date(0), time.Minute, 0},
		{"date past", date(-time.Hour), time.Minute, 0},
		{"date uncapped", date(2 * time.Hour), 0, 2 * time.Hour},
		{"RFC 850 date", now.Add(10 * time.Second).Format("Monday, 02-Jan-06 15:04:05 GMT"), time.Minute, 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseRetryAfter(tt.v, now, tt.max); got != tt.want {
				t.Errorf("ParseRetryAfter(%q, max %v) = %v, want %v", tt.v, tt.max, got, tt.want)
			}
		})
	}
}

func TestStatusError(t *testing.T) {
	ra := func(v string) http.Header { return http.Header{"Retry-After": {v}} }
	tests := []struct {
		status        int
		h             http.Header
		code, msg     string
		wantCode      string
		wantMsg       string
		retryable     bool
		maybeApplied  bool
		wantRetryWait time.Duration
	}{
		{400, nil, "", "", CodeRejected, "Bad Request", false, false, 0},
		{401, nil, "", "", CodeAuth, "Unauthorized", false, false, 0},
		{403, nil, "", "", CodeAuth, "Forbidden", false, false, 0},
		{404, nil, "", "", CodeNotFound, "Not Found", false, false, 0},
		{409, nil, "", "", CodeConflict, "Conflict", false, false, 0},
		{422, ra("5"), "", "", CodeRejected, "Unprocessable Entity", false, false, 0}, // Retry-After ignored: not retryable
		{429, ra("7"), "", "", CodeRateLimited, "Too Many Requests", true, false, 7 * time.Second},
		{429, ra("3600"), "", "", CodeRateLimited, "Too Many Requests", true, false, 30 * time.Second},
		{429, nil, "", "", CodeRateLimited, "Too Many Requests", true, false, 0},
		{500, nil, "", "", CodeServer, "Internal Server Error", true, true, 0},
		{501, nil, "", "", CodeServer, "Not Implemented", false, true, 0},
		{502, nil, "", "", CodeServer, "Bad Gateway", true, true, 0},
		{503, ra("2"), "", "", CodeServer, "Service Unavailable", true, true, 2 * time.Second},
		{504, nil, "", "", CodeServer, "Gateway Timeout", true, true, 0},
		{400, nil, "E1001", "CLI is invalid", "E1001", "CLI is invalid", false, false, 0},
		{503, nil, "MAINT", "", "MAINT", "Service Unavailable", true, true, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d %s", tt.status, tt.code), func(t *testing.T) {
			h := tt.h
			if h == nil {
				h = http.Header{}
			}
			e := StatusError(tt.status, h, tt.code, tt.msg, 30*time.Second)
			if e.Code != tt.wantCode || e.Message != tt.wantMsg || e.HTTPStatus != tt.status ||
				e.Retryable != tt.retryable || e.MaybeApplied != tt.maybeApplied || e.RetryAfter != tt.wantRetryWait {
				t.Errorf("StatusError(%d, %q, %q) = %+v", tt.status, tt.code, tt.msg, *e)
			}
		})
	}
}

func TestRetryableStatus(t *testing.T) {
	for status, want := range map[int]bool{200: false, 400: false, 404: false, 429: true, 500: true, 501: false, 503: true, 599: true} {
		if got := RetryableStatus(status); got != want {
			t.Errorf("RetryableStatus(%d) = %v, want %v", status, got, want)
		}
	}
}

// closedAddr returns an address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// hangingServer holds every request until the test ends.
func hangingServer(t *testing.T) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	return srv
}

func TestTransportError(t *testing.T) {
	if TransportError(nil) != nil {
		t.Fatal("TransportError(nil) != nil")
	}
	own := &Error{Code: CodeCredentials, Message: "refused"}
	if got := TransportError(fmt.Errorf("wrapped: %w", own)); got != own {
		t.Errorf("an *Error is not passed through: %+v", got)
	}

	send := func(t *testing.T, ctx context.Context, hc *http.Client, url string) error {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatal("request succeeded")
		}
		return err
	}

	t.Run("refused", func(t *testing.T) {
		err := send(t, context.Background(), http.DefaultClient, "http://"+closedAddr(t)+"/token?client_secret=hunter2")
		e := TransportError(err)
		if e.Code != CodeConnection || !e.Retryable || e.MaybeApplied {
			t.Errorf("refused: %+v", *e)
		}
		if strings.Contains(e.Message, "hunter2") || strings.Contains(e.Message, "client_secret") {
			t.Errorf("message keeps the query: %s", e.Message)
		}
	})
	t.Run("client timeout", func(t *testing.T) {
		srv := hangingServer(t)
		err := send(t, context.Background(), &http.Client{Timeout: 20 * time.Millisecond}, srv.URL)
		if e := TransportError(err); e.Code != CodeTimeout || !e.Retryable || !e.MaybeApplied {
			t.Errorf("timeout: %+v", *e)
		}
	})
	t.Run("context deadline", func(t *testing.T) {
		srv := hangingServer(t)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		err := send(t, ctx, http.DefaultClient, srv.URL)
		if e := TransportError(err); e.Code != CodeTimeout || !e.Retryable || !e.MaybeApplied {
			t.Errorf("deadline: %+v", *e)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		srv := hangingServer(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := send(t, ctx, http.DefaultClient, srv.URL)
		if e := TransportError(err); e.Code != CodeTimeout || e.Message != "request cancelled" || !e.Retryable || !e.MaybeApplied {
			t.Errorf("cancelled: %+v", *e)
		}
	})
	t.Run("reset", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // close with RST
			}
			conn.Close()
		}))
		defer srv.Close()
		err := send(t, context.Background(), http.DefaultClient, srv.URL)
		if e := TransportError(err); e.Code != CodeConnection || !e.Retryable || !e.MaybeApplied {
			t.Errorf("reset: %+v (%v)", *e, err)
		}
	})
	t.Run("unclassified", func(t *testing.T) {
		if e := TransportError(errors.New("boom")); e.Code != CodeConnection || !e.Retryable || !e.MaybeApplied || e.Message != "boom" {
			t.Errorf("plain error: %+v", *e)
		}
	})
}

func TestTokenCacheConcurrentGetsShareOneFetch(t *testing.T) {
	var fetches atomic.Int32
	c := &TokenCache{Fetch: func(ctx context.Context) (Token, error) {
		n := fetches.Add(1)
		time.Sleep(2 * time.Millisecond) // let the others pile up on the lock
		return Token{Value: fmt.Sprintf("t%d", n), Expiry: time.Now().Add(time.Hour)}, nil
	}}
	const workers = 64
	start := make(chan struct{})
	got := make([]string, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			tok, err := c.Get(context.Background())
			if err != nil {
				t.Error(err)
			}
			got[i] = tok
		}()
	}
	close(start)
	wg.Wait()
	if n := fetches.Load(); n != 1 {
		t.Errorf("%d fetches, want 1", n)
	}
	for i, tok := range got {
		if tok != "t1" {
			t.Fatalf("worker %d got %q", i, tok)
		}
	}
}

func TestTokenCacheInvalidateOnlyTheStaleToken(t *testing.T) {
	var fetches atomic.Int32
	c := &TokenCache{Fetch: func(ctx context.Context) (Token, error) {
		return Token{Value: fmt.Sprintf("t%d", fetches.Add(1))}, nil // no expiry: valid until refused
	}}
	ctx := context.Background()
	get := func(want string) {
		t.Helper()
		if tok, err := c.Get(ctx); err != nil || tok != want {
			t.Fatalf("Get = %q, %v; want %q", tok, err, want)
		}
	}
	get("t1")
	c.Invalidate("something else")
	get("t1")
	c.Invalidate("t1")
	get("t2")
	// A 401 to a worker that still held t1 arrives after the renewal: the
	// fresh token stays.
	const workers = 32
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() { defer wg.Done(); c.Invalidate("t1") }()
	}
	wg.Wait()
	get("t2")
	// A burst of 401s for t2 causes one new fetch.
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Invalidate("t2")
		}()
	}
	wg.Wait()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if tok, _ := c.Get(ctx); tok != "t3" {
				t.Errorf("after the burst: %q", tok)
			}
		}()
	}
	wg.Wait()
	if n := fetches.Load(); n != 3 {
		t.Errorf("%d fetches, want 3", n)
	}
}

func TestTokenCacheRenewsWithinMargin(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var fetches int
	c := &TokenCache{
		Now:    func() time.Time { return now },
		Margin: 30 * time.Second,
		Fetch: func(ctx context.Context) (Token, error) {
			fetches++
			return Token{Value: fmt.Sprintf("t%d", fetches), Expiry: now.Add(time.Minute)}, nil
		},
	}
	ctx := context.Background()
	if tok, _ := c.Get(ctx); tok != "t1" {
		t.Fatal(tok)
	}
	now = now.Add(29 * time.Second) // 31s left: more than the margin
	if tok, _ := c.Get(ctx); tok != "t1" {
		t.Fatalf("renewed %q with 31s left", tok)
	}
	now = now.Add(2 * time.Second) // 29s left
	if tok, _ := c.Get(ctx); tok != "t2" {
		t.Fatalf("kept %q within the margin", tok)
	}
}

func TestTokenCacheRefusalIsSticky(t *testing.T) {
	var fetches atomic.Int32
	refused := &Error{Code: CodeCredentials, Message: "client credentials refused", HTTPStatus: 401}
	c := &TokenCache{Fetch: func(ctx context.Context) (Token, error) {
		fetches.Add(1)
		return Token{}, refused
	}}
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Get(context.Background())
			if CredentialsRefused(err) != refused {
				t.Errorf("Get: %v", err)
			}
		}()
	}
	wg.Wait()
	c.Invalidate("")
	if _, err := c.Get(context.Background()); CredentialsRefused(err) == nil {
		t.Errorf("after Invalidate: %v", err)
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("%d fetches, want 1: a refused client must not be asked again", n)
	}
}

func TestTokenCacheTransientFailureIsNotSticky(t *testing.T) {
	var fetches int
	c := &TokenCache{Fetch: func(ctx context.Context) (Token, error) {
		fetches++
		if fetches == 1 {
			return Token{}, &Error{Code: CodeServer, HTTPStatus: 503, Retryable: true}
		}
		return Token{Value: "ok"}, nil
	}}
	if _, err := c.Get(context.Background()); err == nil {
		t.Fatal("first Get succeeded")
	}
	if tok, err := c.Get(context.Background()); err != nil || tok != "ok" {
		t.Fatalf("second Get = %q, %v", tok, err)
	}
}

// tokenServer is an OAuth token endpoint that answers with answer.
func tokenServer(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		answer(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestClientCredentialsForm(t *testing.T) {
	srv, _ := tokenServer(t, func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		_, _, basic := r.BasicAuth()
		if r.Method != http.MethodPost || basic || r.PostForm.Get("grant_type") != "client_credentials" ||
			r.PostForm.Get("client_id") != "id" || r.PostForm.Get("client_secret") != "s3cret" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		_, _ = io.WriteString(w, `{"access_token":"tok","expires_in":"3600"}`) // a string at some providers
	})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tok, err := ClientCredentials{TokenURL: srv.URL, ClientID: "id", Secret: "s3cret", HTTP: srv.Client(),
		Now: func() time.Time { return now }}.Fetch(context.Background())
	if err != nil || tok.Value != "tok" {
		t.Fatalf("Fetch = %+v, %v", tok, err)
	}
	// Dated by the client's clock, not the wall clock.
	if d := tok.Expiry.Sub(now); d < 59*time.Minute || d > time.Hour {
		t.Errorf("expiry %v after the client's now", d)
	}
}

func TestClientCredentialsBasic(t *testing.T) {
	srv, _ := tokenServer(t, func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		u, p, ok := r.BasicAuth()
		if !ok || u != "key" || p != "secret" || r.PostForm.Has("client_id") || r.PostForm.Has("client_secret") {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, `{"access_token":"tok","expires_in":60}`)
	})
	tok, err := ClientCredentials{TokenURL: srv.URL, ClientID: "key", Secret: "secret", Basic: true}.Fetch(context.Background())
	if err != nil || tok.Value != "tok" || tok.Expiry.IsZero() {
		t.Fatalf("Fetch = %+v, %v", tok, err)
	}
}

func TestClientCredentialsAnswers(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		header    http.Header
		body      string
		maxRA     time.Duration
		code      string
		retryable bool
		retryWait time.Duration
	}{
		{"400 invalid_client", 400, nil, `{"error":"invalid_client"}`, 0, CodeCredentials, false, 0},
		{"401", 401, nil, `{}`, 0, CodeCredentials, false, 0},
		{"403", 403, nil, `{}`, 0, CodeCredentials, false, 0},
		{"429 capped by MaxRetryAfter", 429, http.Header{"Retry-After": {"50"}}, `{}`, 10 * time.Second, CodeRateLimited, true, 10 * time.Second},
		{"429 never above the default cap", 429, http.Header{"Retry-After": {"3600"}}, `{}`, time.Hour, CodeRateLimited, true, DefaultMaxRetryAfter},
		{"503", 503, http.Header{"Retry-After": {"2"}}, `{}`, 0, CodeServer, true, 2 * time.Second},
		{"no access_token", 200, nil, `{"token_type":"bearer"}`, 0, CodeMalformed, true, 0},
		{"not JSON", 200, nil, `<html>`, 0, CodeMalformed, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := tokenServer(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header()[k] = v
				}
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			})
			_, err := ClientCredentials{TokenURL: srv.URL, ClientID: "id", Secret: "s3cret-value", MaxRetryAfter: tt.maxRA}.Fetch(context.Background())
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Fetch error %v is not an *Error", err)
			}
			if e.Code != tt.code || e.Retryable != tt.retryable || e.RetryAfter != tt.retryWait || e.MaybeApplied {
				t.Errorf("Fetch error = %+v", *e)
			}
			if strings.Contains(e.Error(), "s3cret-value") {
				t.Errorf("error shows the secret: %v", e)
			}
		})
	}
}

func TestClientCredentialsCacheRefusalSticks(t *testing.T) {
	srv, requests := tokenServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	})
	cache := ClientCredentials{TokenURL: srv.URL, ClientID: "id", Secret: "bad"}.Cache()
	for range 3 {
		if _, err := cache.Get(context.Background()); CredentialsRefused(err) == nil {
			t.Fatalf("Get: %v", err)
		}
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
}

func TestCallerReauthenticatesOnceOn401(t *testing.T) {
	type seen struct{ auth, body string }
	newServer := func(accept string) (*httptest.Server, *[]seen) {
		var mu sync.Mutex
		var got []seen
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			got = append(got, seen{r.Header.Get("Authorization"), string(b)})
			mu.Unlock()
			if r.Header.Get("Authorization") != "Bearer "+accept {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			_, _ = io.WriteString(w, `{"ok":true}`)
		}))
		t.Cleanup(srv.Close)
		return srv, &got
	}
	newCaller := func() (*Caller, *atomic.Int32) {
		var fetches atomic.Int32
		tokens := &TokenCache{Fetch: func(ctx context.Context) (Token, error) {
			return Token{Value: fmt.Sprintf("t%d", fetches.Add(1))}, nil
		}}
		return &Caller{Authorize: tokens.Authorize, Invalidate: tokens.Invalidate, Header: http.Header{"Accept": {"application/json"}}}, &fetches
	}
	body := map[string]string{"cli": "(+44)7700900123"}
	want, _ := json.Marshal(body)

	t.Run("expired token renewed", func(t *testing.T) {
		srv, got := newServer("t2")
		c, fetches := newCaller()
		resp, err := c.Do(context.Background(), http.MethodPost, srv.URL, body)
		if err != nil || resp.Status != http.StatusOK {
			t.Fatalf("Do = %+v, %v", resp, err)
		}
		if len(*got) != 2 || fetches.Load() != 2 {
			t.Fatalf("%d requests, %d fetches; want 2, 2", len(*got), fetches.Load())
		}
		for i, s := range *got {
			if s.body != string(want) {
				t.Errorf("request %d body %q, want %q", i, s.body, want)
			}
		}
		if (*got)[0].auth != "Bearer t1" || (*got)[1].auth != "Bearer t2" {
			t.Errorf("credentials sent: %+v", *got)
		}
	})
	t.Run("refused twice", func(t *testing.T) {
		srv, got := newServer("never")
		c, fetches := newCaller()
		resp, err := c.Do(context.Background(), http.MethodPost, srv.URL, body)
		if err != nil || resp.Status != http.StatusUnauthorized {
			t.Fatalf("Do = %+v, %v; want the second 401 as an answer", resp, err)
		}
		if len(*got) != 2 || fetches.Load() != 2 {
			t.Errorf("%d requests, %d fetches; want exactly one re-authentication", len(*got), fetches.Load())
		}
	})
	t.Run("no Invalidate, no retry", func(t *testing.T) {
		srv, got := newServer("never")
		c, _ := newCaller()
		c.Invalidate = nil
		resp, err := c.Do(context.Background(), http.MethodGet, srv.URL, nil)
		if err != nil || resp.Status != http.StatusUnauthorized || len(*got) != 1 {
			t.Errorf("Do = %+v, %v after %d requests", resp, err, len(*got))
		}
	})
	t.Run("authorization fails", func(t *testing.T) {
		srv, got := newServer("t1")
		refused := &Error{Code: CodeCredentials}
		c := &Caller{Authorize: func(ctx context.Context, req *http.Request) (string, error) { return "", refused }}
		if _, err := c.Do(context.Background(), http.MethodGet, srv.URL, nil); err != refused {
			t.Errorf("Do error %v", err)
		}
		if len(*got) != 0 {
			t.Errorf("%d requests sent without credentials", len(*got))
		}
	})
}

func TestSubmitEach(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	orders := []Order{{Key: "a"}, {Key: "b"}, {Key: "c"}}
	var sent []string
	outs := SubmitEach(ctx, orders, func(ctx context.Context, o Order) Outcome {
		sent = append(sent, o.Key)
		cancel() // shutdown arrives while the first order is in flight
		return Outcome{Status: Succeeded, Handle: o.Key}
	})
	if len(outs) != 3 || strings.Join(sent, ",") != "a" {
		t.Fatalf("sent %v, %d outcomes", sent, len(outs))
	}
	if outs[0].Status != Succeeded || outs[0].Handle != "a" {
		t.Errorf("first outcome %+v", outs[0])
	}
	for _, o := range outs[1:] {
		if o.Status != Failed || o.Err == nil || o.Err.Code != CodeTimeout || !o.Err.Retryable || o.Err.MaybeApplied {
			t.Errorf("unsent order's outcome %+v (%+v)", o, o.Err)
		}
	}
	if outs := SubmitEach(context.Background(), nil, nil); len(outs) != 0 {
		t.Errorf("no orders: %v", outs)
	}
}

// TestCallerPacesEveryRequest: a call's context pacer is asked before each
// HTTP request, the resend after a 401 included, so a pipeline lane's rate
// counts requests; a pacer's refusal (the run stopping) sends nothing.
func TestCallerPacesEveryRequest(t *testing.T) {
	var served atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if served.Add(1) == 1 {
			w.WriteHeader(http.StatusUnauthorized) // the first token has expired
			return
		}
		_, _ = io.WriteString(w, `{}`)
	}))
	t.Cleanup(srv.Close)
	var fetches atomic.Int32
	tokens := &TokenCache{Fetch: func(context.Context) (Token, error) {
		return Token{Value: fmt.Sprintf("t%d", fetches.Add(1))}, nil
	}}
	c := &Caller{Authorize: tokens.Authorize, Invalidate: tokens.Invalidate}
	var paced atomic.Int32
	ctx := WithPacer(context.Background(), func(context.Context) error { paced.Add(1); return nil })
	for range 2 {
		if _, err := c.Do(ctx, http.MethodGet, srv.URL, nil); err != nil {
			t.Fatal(err)
		}
	}
	if paced.Load() != served.Load() || served.Load() != 3 {
		t.Errorf("paced %d times for %d requests; want one pace per request, 3 requests", paced.Load(), served.Load())
	}
	stop := WithPacer(context.Background(), func(context.Context) error { return context.Canceled })
	if _, err := c.Do(stop, http.MethodGet, srv.URL, nil); err == nil || served.Load() != 3 {
		t.Errorf("a refusing pacer: err %v, %d requests served", err, served.Load())
	}
}
