package providers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults shared by the clients; each client's Config may override them.
const (
	DefaultTimeout       = 30 * time.Second
	DefaultMaxRetryAfter = 60 * time.Second
	// MaxResponseBody bounds what a client reads of any answer, so a broken
	// or hostile endpoint cannot exhaust memory.
	MaxResponseBody = 4 << 20
)

// NewHTTPClient returns a client tuned for many concurrent requests to one
// host: enough idle connections per host that workers reuse connections
// instead of opening a new one per request.
func NewHTTPClient(timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 512
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	return &http.Client{Timeout: timeout, Transport: t}
}

// RetryableStatus reports whether an HTTP status means "try again later":
// 429 and every 5xx except 501 (Not Implemented never gets better).
func RetryableStatus(status int) bool {
	return status == http.StatusTooManyRequests || (status >= 500 && status != http.StatusNotImplemented)
}

// ParseRetryAfter reads a Retry-After header in either of its forms
// (delta-seconds or HTTP date) and caps it at max. Unparseable or past
// values give 0, which lets the caller's own backoff decide.
func ParseRetryAfter(v string, now time.Time, max time.Duration) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(max/time.Second)+1 {
			return max
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	} else {
		return 0
	}
	if d < 0 {
		return 0
	}
	if max > 0 && d > max {
		return max
	}
	return d
}

// StatusError classifies a non-success HTTP answer. code and message are the
// provider's own words when its error envelope gave them.
func StatusError(status int, h http.Header, code, message string, maxRetryAfter time.Duration) *Error {
	e := &Error{Code: code, Message: message, HTTPStatus: status, Retryable: RetryableStatus(status)}
	if e.Code == "" {
		switch {
		case status == http.StatusTooManyRequests:
			e.Code = CodeRateLimited
		case status >= 500:
			e.Code = CodeServer
		case status == http.StatusUnauthorized || status == http.StatusForbidden:
			e.Code = CodeAuth
		case status == http.StatusNotFound:
			e.Code = CodeNotFound
		case status == http.StatusConflict:
			e.Code = CodeConflict
		default:
			e.Code = CodeRejected
		}
	}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	if e.Retryable {
		e.RetryAfter = ParseRetryAfter(h.Get("Retry-After"), time.Now(), maxRetryAfter)
	}
	// A 5xx may come from a server that did the work and then failed to
	// answer; a 429 is refused at the door.
	e.MaybeApplied = status >= 500
	return e
}

// TransportError classifies a failure to get any answer at all. A refused
// connection never reached the provider; a timeout or reset may have.
func TransportError(err error) *Error {
	if err == nil {
		return nil
	}
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	e := &Error{Code: CodeConnection, Message: redactURLError(err), Retryable: true, MaybeApplied: true}
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		// Our own cancellation (shutdown): the row goes back to be tried
		// again on resume.
		e.Code = CodeTimeout
		e.Message = "request cancelled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		e.Code = CodeTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		e.MaybeApplied = false
	}
	return e
}

// redactURLError drops the query string from *url.Error messages: a query
// could one day carry something that must not reach a log.
func redactURLError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		u := ue.URL
		if i := strings.IndexByte(u, '?'); i >= 0 {
			u = u[:i]
		}
		return fmt.Sprintf("%s %s: %v", ue.Op, u, ue.Err)
	}
	return err.Error()
}

// MalformedError reports an answer that could not be understood. When it was
// a success status the work may have been done.
func MalformedError(status int, what string, err error) *Error {
	return &Error{
		Code:         CodeMalformed,
		Message:      fmt.Sprintf("unreadable %s: %v", what, err),
		HTTPStatus:   status,
		Retryable:    true,
		MaybeApplied: status < 300,
	}
}

// Token is a bearer credential and when it stops being valid.
type Token struct {
	Value  string
	Expiry time.Time
}

// TokenCache hands out a cached token, fetching a new one when none is held
// or the held one is within Margin of expiry. Concurrent callers share one
// fetch. Invalidate drops a token the server refused (HTTP 401).
//
// A fetch refused as CodeCredentials is remembered: every later Get returns
// the same error without asking again. Providers lock accounts after a few
// failed logins (ThingSpace after 5), and credentials that were refused once
// will not be accepted until a person changes the config.
type TokenCache struct {
	Fetch  func(ctx context.Context) (Token, error)
	Margin time.Duration    // refresh this long before expiry; default 60s
	Now    func() time.Time // for tests; default time.Now

	mu      sync.Mutex
	tok     Token
	refused *Error
}

// Get returns a valid token value.
func (c *TokenCache) Get(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	margin := c.Margin
	if margin == 0 {
		margin = time.Minute
	}
	if c.refused != nil {
		return "", c.refused
	}
	if c.tok.Value != "" && (c.tok.Expiry.IsZero() || now().Add(margin).Before(c.tok.Expiry)) {
		return c.tok.Value, nil
	}
	t, err := c.Fetch(ctx)
	if err != nil {
		if pe := CredentialsRefused(err); pe != nil {
			c.refused = pe
		}
		return "", err
	}
	c.tok = t
	return t.Value, nil
}

// Invalidate forgets the token if it is still the one the server refused,
// so a burst of 401s from concurrent workers causes one new fetch, not many.
func (c *TokenCache) Invalidate(stale string) {
	c.mu.Lock()
	if c.tok.Value == stale {
		c.tok = Token{}
	}
	c.mu.Unlock()
}

// Authorize sets the cached token as the request's bearer credential and
// returns it, so that a 401 invalidates exactly the token that was
// refused. It fits Caller.Authorize.
func (c *TokenCache) Authorize(ctx context.Context, req *http.Request) (string, error) {
	tok, err := c.Get(ctx)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	return tok, nil
}

// CredentialsRefused returns err as an *Error when it says the provider
// refused simbulk's credentials (CodeCredentials), nil otherwise.
func CredentialsRefused(err error) *Error {
	var pe *Error
	if errors.As(err, &pe) && pe.Code == CodeCredentials {
		return pe
	}
	return nil
}

// ClientCredentials is an OAuth2 client-credentials grant (RFC 6749
// section 4.4), the way all three providers hand out bearer tokens: POST a
// form with grant_type=client_credentials to TokenURL, answer
// {access_token, expires_in}. Cache turns it into the TokenCache a client
// authorizes its requests with.
type ClientCredentials struct {
	TokenURL string
	ClientID string
	Secret   string
	// Basic sends ClientID and Secret in an Authorization: Basic header
	// (ThingSpace) instead of the form's client_id and client_secret
	// (IoT Connect, Asavie).
	Basic bool
	// HTTP sends the request; nil means http.DefaultClient.
	HTTP *http.Client
	// MaxRetryAfter, when set, caps the Retry-After of a token request
	// answered 429 or 5xx below DefaultMaxRetryAfter, which always applies.
	MaxRetryAfter time.Duration
	// Margin is the TokenCache's: renew this long before expiry; default
	// 60s.
	Margin time.Duration
	// Now is the client's clock (tests). Token expiry is dated by it, so
	// that the cache compares like with like; default time.Now.
	Now func() time.Time
}

// Cache returns a TokenCache that fetches with cc: one token shared by
// every worker, fetched again shortly before it expires or after the API
// refused it, and never again once the token endpoint refused the
// credentials themselves (CodeCredentials; see TokenCache).
func (cc ClientCredentials) Cache() *TokenCache {
	return &TokenCache{Fetch: cc.Fetch, Margin: cc.Margin, Now: cc.Now}
}

// Fetch performs the grant once. Error messages never contain the
// credentials. A refusal of the client (400, 401, 403) is CodeCredentials;
// 429 and 5xx are retryable. No failure is MaybeApplied: a token request
// has no effect worth protecting.
func (cc ClientCredentials) Fetch(ctx context.Context) (Token, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	user, pass := "", ""
	if cc.Basic {
		user, pass = cc.ClientID, cc.Secret
	} else {
		form.Set("client_id", cc.ClientID)
		form.Set("client_secret", cc.Secret)
	}
	hc := cc.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	maxRetryAfter := DefaultMaxRetryAfter
	if cc.MaxRetryAfter > 0 && cc.MaxRetryAfter < maxRetryAfter {
		maxRetryAfter = cc.MaxRetryAfter
	}
	t, err := fetchClientCredentials(ctx, hc, cc.TokenURL, form, user, pass, maxRetryAfter)
	if err == nil && cc.Now != nil && !t.Expiry.IsZero() {
		// The answer's expires_in is dated by the wall clock; re-date it
		// by the client's.
		t.Expiry = cc.Now().Add(time.Until(t.Expiry))
	}
	return t, err
}

// fetchClientCredentials POSTs form to tokenURL and reads the token.
// basicUser/basicPass, when set, go in an Authorization: Basic header.
func fetchClientCredentials(ctx context.Context, hc *http.Client, tokenURL string, form url.Values, basicUser, basicPass string, maxRetryAfter time.Duration) (Token, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return Token{}, &Error{Code: CodeCredentials, Message: "bad token URL"}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if basicUser != "" || basicPass != "" {
		req.SetBasicAuth(basicUser, basicPass)
	}
	resp, err := hc.Do(req)
	if err != nil {
		e := TransportError(err)
		e.MaybeApplied = false // a token request has no effect worth protecting
		return Token{}, e
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBody))
	if err != nil {
		return Token{}, TransportError(err)
	}
	if resp.StatusCode != http.StatusOK {
		e := StatusError(resp.StatusCode, resp.Header, "", "token request refused", maxRetryAfter)
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusForbidden {
			// RFC 6749 answers a refused client 400 or 401 (invalid_client,
			// unauthorized_client); asking again changes nothing.
			e.Code = CodeCredentials
			e.Message = "client credentials refused by the token endpoint"
		}
		e.MaybeApplied = false
		return Token{}, e
	}
	var tr struct {
		AccessToken string          `json:"access_token"`
		ExpiresIn   json.RawMessage `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		if err == nil {
			err = errors.New("no access_token")
		}
		e := MalformedError(resp.StatusCode, "token response", err)
		e.MaybeApplied = false
		return Token{}, e
	}
	// expires_in is a number at most providers and a string at some.
	secs, _ := strconv.ParseInt(strings.Trim(string(tr.ExpiresIn), `"`), 10, 64)
	t := Token{Value: tr.AccessToken}
	if secs > 0 {
		t.Expiry = time.Now().Add(time.Duration(secs) * time.Second)
	}
	return t, nil
}

// Response is an HTTP answer with its body read.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Caller sends JSON requests with a provider's authentication, and on HTTP
// 401 re-authenticates once and sends again: tokens expire mid-rollout.
type Caller struct {
	HTTP *http.Client
	// Authorize sets the credentials on a request and returns the token it
	// used, so that a 401 can invalidate exactly that token.
	Authorize func(ctx context.Context, req *http.Request) (token string, err error)
	// Invalidate drops a token the server refused.
	Invalidate func(token string)
	// Header is set on every request (e.g. Accept).
	Header http.Header
}

// Do sends method url with body (nil, []byte, or a value to JSON-encode) and
// returns the answer whatever its status. Only failures to get an answer
// are errors, classified by TransportError.
func (c *Caller) Do(ctx context.Context, method, url string, body any) (*Response, error) {
	var payload []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		payload = b
	default:
		var err error
		if payload, err = json.Marshal(b); err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
	}
	for attempt := 0; ; attempt++ {
		resp, token, err := c.once(ctx, method, url, payload)
		if err != nil {
			return nil, err
		}
		if resp.Status == http.StatusUnauthorized && attempt == 0 && c.Invalidate != nil {
			c.Invalidate(token)
			continue
		}
		return resp, nil
	}
}

// pacerKey carries a call's Pacer in its context.
type pacerKey struct{}

// Pacer spaces a provider's HTTP requests to the rate configured for it.
// The pipeline paces each client call (Submit, Check, Lookup) before
// making it; a call that makes more than one request (an IoT Connect
// lookup reads the eUICC, then its subscription; a 401 sends again) waits
// on the context's Pacer before each, so the provider sees the rate the
// config promises it, not a multiple of it.
type Pacer func(ctx context.Context) error

// WithPacer returns ctx carrying p for the requests made under it.
func WithPacer(ctx context.Context, p Pacer) context.Context {
	return context.WithValue(ctx, pacerKey{}, p)
}

// PacerFrom returns the Pacer ctx carries, nil if none.
func PacerFrom(ctx context.Context) Pacer {
	p, _ := ctx.Value(pacerKey{}).(Pacer)
	return p
}

func (c *Caller) once(ctx context.Context, method, url string, payload []byte) (*Response, string, error) {
	if pace := PacerFrom(ctx); pace != nil {
		if err := pace(ctx); err != nil {
			return nil, "", TransportError(err)
		}
	}
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, "", fmt.Errorf("build request %s %s: %w", method, url, err)
	}
	for k, vs := range c.Header {
		req.Header[k] = vs
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	var token string
	if c.Authorize != nil {
		if token, err = c.Authorize(ctx, req); err != nil {
			return nil, "", err
		}
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, token, TransportError(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBody))
	if err != nil {
		return nil, token, TransportError(err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, token, nil
}
