package thingspace

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/simbulk/simbulk/providers"
)

// fetchToken gets an OAuth bearer token: Basic key:secret, form
// grant_type=client_credentials.
func (c *Client) fetchToken(ctx context.Context) (providers.Token, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	return providers.FetchClientCredentials(ctx, c.hc, c.url(pathToken), form, c.cfg.Key, c.cfg.Secret)
}

// authorizeBearer sets the bearer token (the session login needs only it).
func (c *Client) authorizeBearer(ctx context.Context, req *http.Request) (string, error) {
	tok, err := c.bearer.Get(ctx)
	if err != nil {
		return "", authError(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
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
	return sess, nil
}

// authError classifies a failure to authenticate. The call it guarded was
// never sent, so it cannot have taken effect.
func authError(err error) *providers.Error {
	e := *providers.TransportError(err)
	e.MaybeApplied = false
	return &e
}

// newSession logs in: POST /session/login {username,password} with the
// bearer token. A 401 here means the bearer was refused; the login Caller
// fetches a new one and tries once more.
func (c *Client) newSession(ctx context.Context) (string, error) {
	resp, err := c.login.Do(ctx, http.MethodPost, c.url(pathLogin), loginRequest{Username: c.cfg.Username, Password: c.cfg.Password})
	if err != nil {
		return "", authError(err)
	}
	if resp.Status != http.StatusOK {
		e := c.statusError(resp)
		e.MaybeApplied = false
		if !e.Retryable {
			// Credentials or account refused: say so plainly, keeping the
			// service's words (secrets already redacted).
			e.Message = "session login refused (errorCode " + e.Code + "): " + e.Message
			e.Code = providers.CodeAuth
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
}

// Get returns a session token believed valid, logging in when none is held
// or the held one has idled out. Concurrent callers share one login.
func (s *session) Get(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	margin := min(time.Minute, s.idle/10)
	now := s.now()
	if s.token != "" && now.Sub(s.lastUsed) < s.idle-margin {
		s.lastUsed = now
		return s.token, nil
	}
	tok, err := s.login(ctx)
	if err != nil {
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
