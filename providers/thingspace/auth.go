package thingspace

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/simbulk/simbulk/providers"
)

// usedTokens records the credentials an M2M call went out with, so that an
// answer saying they expired drops exactly those (see do).
type usedTokens struct {
	mu              sync.Mutex
	session, bearer string
}

type usedKey struct{}

// authorizeBearer sets the bearer token (the session login needs only it).
func (c *Client) authorizeBearer(ctx context.Context, req *http.Request) (string, error) {
	tok, err := c.bearer.Authorize(ctx, req)
	if err != nil {
		return "", authError(err)
	}
	return tok, nil
}

// authorizeM2M sets both credentials of an M2M call and returns the
// session token, which is what a 401 invalidates: the login that follows
// renews the bearer too if that is what the service refused.
func (c *Client) authorizeM2M(ctx context.Context, req *http.Request) (string, error) {
	sess, err := c.session.Get(ctx)
	if err != nil {
		return "", authError(err)
	}
	tok, err := c.bearer.Get(ctx)
	if err != nil {
		return "", authError(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("VZ-M2M-Token", sess)
	if u, ok := ctx.Value(usedKey{}).(*usedTokens); ok {
		u.mu.Lock()
		u.session, u.bearer = sess, tok
		u.mu.Unlock()
	}
	return sess, nil
}

// authError classifies a failure to authenticate. The call it guarded was
// never sent, so it cannot have taken effect. A refusal of our credentials
// (CodeCredentials, from the token cache or the session) keeps its code and
// stays not retryable: TransportError passes an *Error through unchanged.
func authError(err error) *providers.Error {
	e := *providers.TransportError(err)
	e.MaybeApplied = false
	return &e
}

// do sends an M2M call. The Caller already logs in again once on a 401;
// ThingSpace documents no status for an expired session, only that one
// should log in again when an error says the token expired, so an answer
// of any other status whose errorCode or errorMessage says so drops the
// session (and the bearer, when the words are about that) and sends once
// more. Once: a second such answer is returned as it is.
func (c *Client) do(ctx context.Context, method, u string, body any) (*providers.Response, error) {
	used := &usedTokens{}
	ctx = context.WithValue(ctx, usedKey{}, used)
	resp, err := c.m2m.Do(ctx, method, u, body)
	if err != nil || resp.Status == http.StatusUnauthorized || (resp.Status >= 200 && resp.Status <= 299) {
		return resp, err
	}
	what := tokenExpired(resp.Body)
	if what == "" {
		return resp, nil
	}
	used.mu.Lock()
	sess, bearer := used.session, used.bearer
	used.mu.Unlock()
	c.session.Invalidate(sess)
	if what == "bearer" {
		c.bearer.Invalidate(bearer)
	}
	return c.m2m.Do(ctx, method, u, body)
}

// tokenExpired reads an error answer: "session" when it says the session
// token expired or is invalid, "bearer" when it says so of another token,
// "" otherwise.
func tokenExpired(body []byte) string {
	code, msg := envelopeOf(body)
	t := strings.ToLower(code + " " + msg)
	if !strings.Contains(t, "expire") && !strings.Contains(t, "invalid") {
		return ""
	}
	switch {
	case strings.Contains(t, "session"):
		return "session"
	case strings.Contains(t, "token"):
		return "bearer"
	}
	return ""
}

// newSession logs in: POST /session/login {username,password} with the
// bearer token. A 401 here may mean the bearer was refused; the login
// Caller fetches a new one and tries once more. A login still refused after
// that is a refusal of our credentials: ThingSpace locks the contact after
// 5 failed logins in a row and only Verizon support unlocks it, so it
// becomes CodeCredentials, which the session remembers (see session.Get).
// Answers that say "later" (429, 5xx, no answer) are not failed logins and
// stay retryable.
func (c *Client) newSession(ctx context.Context) (string, error) {
	resp, err := c.login.Do(ctx, http.MethodPost, c.url(pathLogin), loginRequest{Username: c.cfg.Username, Password: c.cfg.Password})
	if err != nil {
		return "", authError(err)
	}
	if resp.Status != http.StatusOK {
		e := c.statusError(resp)
		e.MaybeApplied = false
		if !e.Retryable {
			// Keep the service's words (secrets already redacted).
			e.Message = fmt.Sprintf("session login refused (errorCode %s): %s; fix the username and password before running again", e.Code, e.Message)
			e.Code = providers.CodeCredentials
		}
		return "", e
	}
	var lr loginResponse
	if err := json.Unmarshal(resp.Body, &lr); err != nil || lr.SessionToken == "" {
		if err == nil {
			err = errors.New("no sessionToken")
		}
		e := providers.MalformedError(resp.Status, "session login response", err)
		e.MaybeApplied = false
		return "", e
	}
	return lr.SessionToken, nil
}

// session holds the M2M session token. ThingSpace ends a session after it
// has been idle for 20 minutes, so a session left idle nearly that long is
// replaced before use rather than spent on a 401.
type session struct {
	login func(ctx context.Context) (string, error)
	idle  time.Duration
	now   func() time.Time

	mu       sync.Mutex
	token    string
	lastUsed time.Time
	// refused is the login refusal, once there has been one: every later
	// Get returns it without logging in, so one process makes at most the
	// two attempts of a single refused login (see newSession).
	refused *providers.Error
}

// Get returns a session token believed valid, logging in when none is held
// or the held one has idled out. Concurrent callers share one login.
func (s *session) Get(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refused != nil {
		return "", s.refused
	}
	margin := min(time.Minute, s.idle/10)
	now := s.now()
	if s.token != "" && now.Sub(s.lastUsed) < s.idle-margin {
		s.lastUsed = now
		return s.token, nil
	}
	tok, err := s.login(ctx)
	if err != nil {
		if pe := providers.CredentialsRefused(err); pe != nil {
			s.refused = pe
		}
		return "", err
	}
	s.token, s.lastUsed = tok, s.now()
	return tok, nil
}

// Invalidate drops the session if it is still the one the service refused,
// so a burst of 401s from concurrent workers causes one login.
func (s *session) Invalidate(stale string) {
	s.mu.Lock()
	if s.token == stale {
		s.token = ""
	}
	s.mu.Unlock()
}
