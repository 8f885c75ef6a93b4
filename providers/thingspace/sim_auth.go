package thingspace

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/simbulk/simbulk/providers/simkit"
)

// maxSimBody bounds what the simulator reads of a request.
const maxSimBody = 4 << 20

// newSimTokens is POST /api/ts/v1/oauth2/token: Basic key:secret, form
// grant_type=client_credentials, refusals in the M2M error envelope.
func newSimTokens(opts SimOptions, now func() time.Time) *simkit.Tokens {
	return &simkit.Tokens{
		ClientID: opts.Key, Secret: opts.Secret, Auth: simkit.BasicOnly,
		TTL: opts.TokenTTL, Now: now, Extra: map[string]any{"scope": "m2m"},
		MaxBody: maxSimBody, NewToken: newID,
		Refuse: func(w http.ResponseWriter, why simkit.Refusal) {
			if why == simkit.RefusedClient {
				w.Header().Set("WWW-Authenticate", `Basic realm="thingspace"`)
				simError(w, http.StatusUnauthorized, "invalid client credentials")
				return
			}
			simError(w, http.StatusBadRequest, "grant_type must be client_credentials")
		},
	}
}

// handleLogin is POST /api/m2m/v1/session/login: bearer token, JSON
// {username,password} -> {sessionToken}.
func (s *Simulator) handleLogin(w http.ResponseWriter, r *http.Request) {
	if !s.tokens.Check(r) {
		s.gatewayRefusal(w, "invalid or expired access token")
		return
	}
	var req loginRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if !simkit.Equal(req.Username, s.opts.Username) || !simkit.Equal(req.Password, s.opts.Password) {
		simError(w, http.StatusUnauthorized, "invalid username or password")
		return
	}
	sess := newID()
	s.mu.Lock()
	s.sessions[sess] = s.now()
	s.mu.Unlock()
	simkit.WriteJSON(w, http.StatusOK, loginResponse{SessionToken: sess})
}

// m2m guards an M2M call: a valid bearer and a session that has not idled
// out (using it restarts its idle clock), else 401; and Content-Type:
// application/json, which the reference pages list as required on every
// call, GETs included, else 415.
func (s *Simulator) m2m(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.tokens.Check(r) {
			s.gatewayRefusal(w, "invalid or expired access token")
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			simError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
			return
		}
		sess := r.Header.Get("VZ-M2M-Token")
		s.mu.Lock()
		last, ok := s.sessions[sess]
		now := s.now()
		if ok && now.Sub(last) >= s.opts.SessionIdle {
			delete(s.sessions, sess)
			ok = false
		}
		if ok {
			s.sessions[sess] = now
		}
		s.mu.Unlock()
		if !ok {
			simError(w, http.StatusUnauthorized, "session token invalid or expired")
			return
		}
		h(w, r)
	}
}

// decodeJSON reads a JSON request body, answering 400 when it is not one.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		simError(w, http.StatusBadRequest, "Content-Type must be application/json")
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSimBody))
	if err != nil {
		simError(w, http.StatusBadRequest, "unreadable request body")
		return false
	}
	if err := json.Unmarshal(body, v); err != nil {
		simError(w, http.StatusBadRequest, "malformed JSON: "+err.Error())
		return false
	}
	return true
}
