package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"
)

// User is a console user from the config: a name and a bcrypt hash of the
// password (`simbulk serve hash-password` makes one).
type User struct {
	Name         string `yaml:"name"`
	PasswordHash string `yaml:"password_hash"`
}

// ProxyAuth trusts a reverse proxy that authenticates people itself and
// names them in Header, but only on requests that come from one of
// Trusted: anyone else could send the header too.
type ProxyAuth struct {
	Header  string
	Trusted []netip.Prefix
}

// HashPassword returns a bcrypt hash of password for the config.
func HashPassword(password string) (string, error) {
	if len(password) < 8 {
		return "", errors.New("a console password needs at least 8 characters")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	return string(h), err
}

const (
	sessionCookie = "simbulk_session"
	loginCookie   = "simbulk_login" // the login form's CSRF token, before there is a session
	csrfField     = "csrf"
	csrfHeader    = "X-CSRF-Token"
	sessionTTL    = 12 * time.Hour
	// Past this many addresses with recent login attempts the oldest are
	// forgotten, so a flood from many addresses cannot grow memory.
	maxLimitedAddrs = 10000
)

// session is a logged-in person.
type session struct {
	user    string
	csrf    string
	expires time.Time
	// basic is set for an API request with HTTP Basic credentials: no
	// cookie, so no CSRF to check (a page cannot make a browser send
	// them: the console never asks for Basic authentication).
	basic bool
}

type auth struct {
	users   map[string][]byte
	proxy   ProxyAuth
	secure  bool
	now     func() time.Time
	dummy   []byte // compared against for unknown users, so timing does not tell who exists
	mu      sync.Mutex
	byToken map[string]*session
	limits  map[netip.Addr]*rate.Limiter
}

func newAuth(users []User, proxy ProxyAuth, secure bool, now func() time.Time) (*auth, error) {
	a := &auth{users: map[string][]byte{}, proxy: proxy, secure: secure, now: now,
		byToken: map[string]*session{}, limits: map[netip.Addr]*rate.Limiter{}}
	for _, u := range users {
		if u.Name == "" {
			return nil, errors.New("console.users: a user without a name")
		}
		if _, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil {
			return nil, fmt.Errorf("console.users: %s: password_hash is not a bcrypt hash (make one with simbulk serve hash-password)", u.Name)
		}
		a.users[u.Name] = []byte(u.PasswordHash)
	}
	a.dummy, _ = bcrypt.GenerateFromPassword([]byte("not a password"), bcrypt.MinCost)
	if len(users) > 0 {
		a.dummy = a.users[users[0].Name] // same cost as the real ones
	}
	return a, nil
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// check reports whether name and password are a configured user's.
func (a *auth) check(name, password string) bool {
	hash, ok := a.users[name]
	if !ok {
		_ = bcrypt.CompareHashAndPassword(a.dummy, []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil
}

// limiter is addr's budget of failed logins: five at once, then one
// every 12 seconds. Only failures spend it, so a script that logs in right
// on every API call is never slowed, and a guesser soon is.
func (a *auth) limiter(addr netip.Addr) *rate.Limiter {
	a.mu.Lock()
	defer a.mu.Unlock()
	l, ok := a.limits[addr]
	if !ok {
		if len(a.limits) >= maxLimitedAddrs {
			clear(a.limits)
		}
		l = rate.NewLimiter(rate.Every(12*time.Second), 5)
		a.limits[addr] = l
	}
	return l
}

// tryLogin checks name and password for a request from addr. limited is
// set, without checking, when addr has failed too often lately.
func (a *auth) tryLogin(addr netip.Addr, name, password string) (ok, limited bool) {
	l := a.limiter(addr)
	if l.TokensAt(a.now()) < 1 {
		return false, true
	}
	if a.check(name, password) {
		return true, false
	}
	l.AllowN(a.now(), 1)
	return false, false
}

func (a *auth) newSession(w http.ResponseWriter, user string) *session {
	s := &session{user: user, csrf: randomToken(), expires: a.now().Add(sessionTTL)}
	token := randomToken()
	a.mu.Lock()
	for t, old := range a.byToken { // forget expired sessions as new ones come
		if a.now().After(old.expires) {
			delete(a.byToken, t)
		}
	}
	a.byToken[token] = s
	a.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: token, Path: "/", HttpOnly: true,
		Secure: a.secure, SameSite: http.SameSiteStrictMode, MaxAge: int(sessionTTL.Seconds())})
	return s
}

func (a *auth) cookieSession(r *http.Request) (*session, string) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, ""
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.byToken[c.Value]
	if !ok || a.now().After(s.expires) {
		return nil, ""
	}
	return s, c.Value
}

func (a *auth) endSession(w http.ResponseWriter, r *http.Request) {
	if _, token := a.cookieSession(r); token != "" {
		a.mu.Lock()
		delete(a.byToken, token)
		a.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true,
		Secure: a.secure, SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

// remoteAddr is the address the request came from (not a header: only a
// trusted proxy's header is believed, and only for the user's name).
func remoteAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, _ := netip.ParseAddr(host)
	return addr.Unmap()
}

// proxyUser is the user a trusted proxy names, "" when the request did
// not come through one.
func (a *auth) proxyUser(r *http.Request) string {
	if a.proxy.Header == "" {
		return ""
	}
	name := strings.TrimSpace(r.Header.Get(a.proxy.Header))
	if name == "" {
		return ""
	}
	addr := remoteAddr(r)
	for _, p := range a.proxy.Trusted {
		if p.Contains(addr) {
			return name
		}
	}
	return ""
}

// authenticate finds who makes the request: a session cookie, a trusted
// proxy's header (which gets a session of its own, for the CSRF token), or
// for the API HTTP Basic credentials. It returns nil for nobody.
func (a *auth) authenticate(w http.ResponseWriter, r *http.Request, api bool) *session {
	s, _ := a.cookieSession(r)
	if pu := a.proxyUser(r); pu != "" {
		if s == nil || s.user != pu {
			s = a.newSession(w, pu)
		}
		return s
	}
	if s != nil {
		return s
	}
	if name, password, ok := r.BasicAuth(); ok && api {
		if ok, _ := a.tryLogin(remoteAddr(r), name, password); ok {
			return &session{user: name, basic: true}
		}
	}
	return nil
}

// csrfOK reports whether a state-changing request carries the session's
// CSRF token (form field or header). A cross-site page can make a browser
// send the cookie, never read the token.
func csrfOK(r *http.Request, s *session) bool {
	if s.basic {
		return true
	}
	got := r.Header.Get(csrfHeader)
	switch {
	case got != "":
	case strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/"):
		// An upload's body is read as a stream by its handler, never
		// parsed here; a form posting one carries the token in its URL.
		got = r.URL.Query().Get(csrfField)
	default:
		got = r.PostFormValue(csrfField)
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) == 1
}

type ctxKey struct{}

func userOf(ctx context.Context) *session {
	s, _ := ctx.Value(ctxKey{}).(*session)
	return s
}

// guard authenticates a request, checks the CSRF token of state-changing
// ones, and calls h; refuse answers the others.
func (s *Server) guard(api bool, h http.HandlerFunc, refuse func(w http.ResponseWriter, r *http.Request, status int, msg string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := s.auth.authenticate(w, r, api)
		if u == nil {
			refuse(w, r, http.StatusUnauthorized, "log in first")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !csrfOK(r, u) {
				s.log.Warn("console: request refused: missing or wrong CSRF token", "user", u.user, "path", r.URL.Path)
				refuse(w, r, http.StatusForbidden, "this request did not carry the page's security token (CSRF); reload the page and try again")
				return
			}
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, u)))
	})
}

// page guards a page: nobody logged in goes to the login page.
func (s *Server) page(h http.HandlerFunc) http.Handler {
	return s.guard(false, h, func(w http.ResponseWriter, r *http.Request, status int, msg string) {
		if status == http.StatusUnauthorized {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		s.errorPage(w, r, status, msg)
	})
}

// api guards an API call: errors are JSON.
func (s *Server) api(h http.HandlerFunc) http.Handler {
	return s.guard(true, h, func(w http.ResponseWriter, _ *http.Request, status int, msg string) {
		writeJSONError(w, status, msg)
	})
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.renderLogin(w, r, http.StatusOK, "")
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	token := randomToken()
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: token, Path: "/login", HttpOnly: true,
		Secure: s.auth.secure, SameSite: http.SameSiteStrictMode})
	s.render(w, r, status, "login", map[string]any{"Error": msg, "Token": token, "Next": safeNext(r.FormValue("next"))})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(loginCookie)
	if err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue(csrfField))) != 1 {
		s.renderLogin(w, r, http.StatusForbidden, "The login form expired; please try again.")
		return
	}
	name := r.PostFormValue("user")
	ok, limited := s.auth.tryLogin(remoteAddr(r), name, r.PostFormValue("password"))
	if limited {
		s.log.Warn("console: login attempts rate-limited", "addr", remoteAddr(r).String())
		w.Header().Set("Retry-After", "12")
		s.renderLogin(w, r, http.StatusTooManyRequests, "Too many failed logins from your address; wait a minute and try again.")
		return
	}
	if !ok {
		s.log.Warn("console: login refused", "user", name, "addr", remoteAddr(r).String())
		s.renderLogin(w, r, http.StatusUnauthorized, "Wrong user name or password.")
		return
	}
	s.auth.newSession(w, name)
	s.log.Info("console: logged in", "user", name, "addr", remoteAddr(r).String())
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	s.auth.endSession(w, r)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// safeNext keeps a post-login redirect on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}
