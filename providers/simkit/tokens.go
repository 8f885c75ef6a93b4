package simkit

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"time"
)

// ClientAuth says where a simulated token endpoint reads the client's
// credentials.
type ClientAuth int

const (
	// FormOrBasic reads client_id and client_secret from the form, or the
	// Basic header when the form has no client_id (Asavie).
	FormOrBasic ClientAuth = iota
	// BasicOrForm reads the Basic header when there is one, else the form
	// (IoT Connect; RFC 6749 allows both).
	BasicOrForm
	// BasicOnly reads the Basic header only, and checks it before the form
	// is read (ThingSpace).
	BasicOnly
)

// Refusal is why a token request was refused; its Code is the RFC 6749
// error code.
type Refusal int

const (
	RefusedRequest Refusal = iota // the body is not a form
	RefusedGrant                  // grant_type is not client_credentials
	RefusedClient                 // unknown client or wrong secret
)

// Code is the RFC 6749 section 5.2 error code of r.
func (r Refusal) Code() string {
	switch r {
	case RefusedRequest:
		return "invalid_request"
	case RefusedGrant:
		return "unsupported_grant_type"
	}
	return "invalid_client"
}

// maxTokens is how many issued tokens are kept before expired ones are
// dropped.
const maxTokens = 1024

// Tokens is a simulated OAuth2 client-credentials token endpoint and the
// bearer check that goes with it, shared by the simulators. Each
// provider's differences — where the credentials come from, the answer's
// token_type and extra fields, the error bodies — are its fields. Set the
// fields before the first request; the zero value of each is documented.
type Tokens struct {
	ClientID, Secret string
	Auth             ClientAuth
	// TTL is the lifetime of issued tokens (expires_in); default 1h.
	TTL time.Duration
	// Now is the simulator's clock; default time.Now.
	Now func() time.Time
	// TokenType is the answer's token_type; default "bearer".
	TokenType string
	// Extra holds more fields of the answer (e.g. ThingSpace's "scope").
	Extra map[string]any
	// NoStore sets Cache-Control: no-store on every answer, refusals
	// included.
	NoStore bool
	// MaxBody bounds the form read; default 64 KiB.
	MaxBody int64
	// NewToken makes a token value; default 32 random bytes in hex.
	NewToken func() string
	// Refuse writes the answer to a refused request; default
	// WriteOAuthError with 400 (401 for RefusedClient) and no description.
	Refuse func(w http.ResponseWriter, why Refusal)

	mu     sync.Mutex
	issued map[string]time.Time // token -> expiry
}

func (t *Tokens) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

func (t *Tokens) refuse(w http.ResponseWriter, why Refusal) {
	if t.Refuse != nil {
		t.Refuse(w, why)
		return
	}
	status := http.StatusBadRequest
	if why == RefusedClient {
		status = http.StatusUnauthorized
	}
	WriteOAuthError(w, status, why.Code(), "")
}

// ServeToken is the token endpoint: a form with
// grant_type=client_credentials and the client's credentials where Auth
// says, answered {access_token, token_type, expires_in} and Extra.
func (t *Tokens) ServeToken(w http.ResponseWriter, r *http.Request) {
	if t.NoStore {
		w.Header().Set("Cache-Control", "no-store")
	}
	if t.Auth == BasicOnly {
		id, secret, ok := r.BasicAuth()
		if !ok || !t.client(id, secret) {
			t.refuse(w, RefusedClient)
			return
		}
	}
	maxBody := t.MaxBody
	if maxBody <= 0 {
		maxBody = 64 << 10
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		t.refuse(w, RefusedRequest)
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		t.refuse(w, RefusedGrant)
		return
	}
	if t.Auth != BasicOnly {
		id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		if u, p, ok := r.BasicAuth(); ok && (t.Auth == BasicOrForm || id == "") {
			id, secret = u, p
		}
		if !t.client(id, secret) {
			t.refuse(w, RefusedClient)
			return
		}
	}
	tok := t.Issue()
	ttl := t.ttl()
	answer := map[string]any{"access_token": tok, "token_type": t.TokenType, "expires_in": int(ttl / time.Second)}
	if t.TokenType == "" {
		answer["token_type"] = "bearer"
	}
	for k, v := range t.Extra {
		answer[k] = v
	}
	WriteJSON(w, http.StatusOK, answer)
}

func (t *Tokens) ttl() time.Duration {
	if t.TTL > 0 {
		return t.TTL
	}
	return time.Hour
}

// client reports whether id and secret are the accepted ones, in constant
// time.
func (t *Tokens) client(id, secret string) bool {
	return Equal(id, t.ClientID) && Equal(secret, t.Secret)
}

// Issue makes a token valid for TTL from now, as the endpoint does, and
// returns it (tests use it to skip the endpoint).
func (t *Tokens) Issue() string {
	var tok string
	if t.NewToken != nil {
		tok = t.NewToken()
	} else {
		var b [32]byte
		_, _ = rand.Read(b[:])
		tok = hex.EncodeToString(b[:])
	}
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.issued == nil {
		t.issued = map[string]time.Time{}
	}
	if len(t.issued) > maxTokens {
		for k, exp := range t.issued {
			if !now.Before(exp) {
				delete(t.issued, k)
			}
		}
	}
	t.issued[tok] = now.Add(t.ttl())
	return tok
}

// Check reports whether r carries "Authorization: Bearer <token>" with a
// token issued here that has not expired or been expired.
func (t *Tokens) Check(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	tok = strings.TrimSpace(tok)
	if !ok || tok == "" {
		return false
	}
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	exp, ok := t.issued[tok]
	return ok && now.Before(exp)
}

// ExpireAll makes every token issued so far invalid.
func (t *Tokens) ExpireAll() {
	t.mu.Lock()
	clear(t.issued)
	t.mu.Unlock()
}

// WriteOAuthError writes an RFC 6749 error answer: {"error": code} and,
// when desc is not empty, "error_description".
func WriteOAuthError(w http.ResponseWriter, status int, code, desc string) {
	body := map[string]string{"error": code}
	if desc != "" {
		body["error_description"] = desc
	}
	WriteJSON(w, status, body)
}

// Equal compares two secrets in constant time.
func Equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
