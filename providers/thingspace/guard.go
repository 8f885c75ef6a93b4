package thingspace

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Limits of the callback listener. A delivery is a few KB (the fixtures in
// testdata are about 2 KB), and ThingSpace retries a refused one 5 minutes
// later, so the limits are far above what Verizon sends and far below what
// lets strangers exhaust the host.
const (
	// MaxCallbackHeader bounds a delivery's request line and headers.
	MaxCallbackHeader = 16 << 10
	// MaxCallbackConns bounds the listener's open connections; more wait
	// in the kernel's accept queue.
	MaxCallbackConns = 256
	// MaxCallbackPerClient bounds the deliveries one remote IP has being
	// read at once. A request over it waits up to callbackClientWait for
	// a slot (a burst of genuine deliveries takes milliseconds each) and
	// is then refused 429.
	MaxCallbackPerClient = 16

	callbackClientWait = time.Second
	// callbackTokenLen is how many hex digits of the HMAC the URL carries:
	// 128 bits, not guessable.
	callbackTokenLen = 32
	// tokenLogLen is how much of a token may appear in a log.
	tokenLogLen = 4
)

// Reasons a delivery is refused: the keys of CallbackRejections.
const (
	RejectBadPath        = "bad_path"        // the path does not end with a known token: 404
	RejectBadMethod      = "bad_method"      // not a POST: 405
	RejectTooLarge       = "too_large"       // Content-Length or body over MaxCallbackBody: 413
	RejectTooMany        = "too_many"        // the sender's IP has MaxCallbackPerClient deliveries in progress: 429
	RejectBadCredentials = "bad_credentials" // wrong username or password in the body: 401
	RejectMalformed      = "malformed"       // unreadable body, not JSON, or no requestId or device: 400
)

var rejectReasons = []string{RejectBadPath, RejectBadMethod, RejectTooLarge, RejectTooMany, RejectBadCredentials, RejectMalformed}

// rejections counts refused deliveries by reason. The map is filled once
// and only read afterwards, so counting takes no lock: a flood counts at
// the speed it is refused.
type rejections map[string]*atomic.Int64

func newRejections() rejections {
	r := rejections{}
	for _, k := range rejectReasons {
		r[k] = new(atomic.Int64)
	}
	return r
}

func (r rejections) add(reason string) { r[reason].Add(1) }

func (r rejections) get(reason string) int64 { return r[reason].Load() }

func (r rejections) snapshot() map[string]int64 {
	m := make(map[string]int64, len(r))
	for k, v := range r {
		m[k] = v.Load()
	}
	return m
}

// CallbackRejections counts the deliveries the listener refused since New,
// by reason (the Reject* keys, all present, zero included). It is nil
// without Config.Callback. Safe for concurrent use; refusals are never
// logged one by one, so that a flood cannot flood the log: report these
// instead.
func (c *Client) CallbackRejections() map[string]int64 {
	if c.rejected == nil {
		return nil
	}
	return c.rejected.snapshot()
}

// callbackToken is the secret last path segment of an account's callback
// URL. ThingSpace puts the credentials in the body, so without something
// outside the body the listener would have to read every stranger's body
// before it could refuse it. Derived from the callback password rather than
// drawn at random, so that a restarted simbulk still takes deliveries to
// the URL registered before (ThingSpace retries one for 15 minutes); per
// account, so that one account's URL does not open the others'.
func callbackToken(password, account string) string {
	m := hmac.New(sha256.New, []byte(password))
	m.Write([]byte("simbulk-callback|" + account))
	return hex.EncodeToString(m.Sum(nil))[:callbackTokenLen]
}

// tokenSet holds the tokens of the accounts whose deliveries the listener
// takes: Config.AccountName's and every account the client has submitted
// or checked for, registered or not (after a restart a row may be checked
// before its account is registered again, and its callback must still be
// taken).
type tokenSet struct {
	password string
	mu       sync.RWMutex
	byAcct   map[string]string
	all      []string
}

func newTokenSet(password string) *tokenSet {
	return &tokenSet{password: password, byAcct: map[string]string{}}
}

// add makes an account's token known and returns it; no account, no
// token.
func (s *tokenSet) add(account string) string {
	if account == "" {
		return ""
	}
	s.mu.RLock()
	tok, ok := s.byAcct[account]
	s.mu.RUnlock()
	if ok {
		return tok
	}
	tok = callbackToken(s.password, account)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byAcct[account]; !ok {
		s.byAcct[account] = tok
		s.all = append(s.all, tok)
	}
	return tok
}

// known compares the candidate with every token in constant time, so
// that response times do not spell out a token.
func (s *tokenSet) known(candidate string) bool {
	if len(candidate) != callbackTokenLen {
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	found := 0
	for _, tok := range s.all {
		found |= subtle.ConstantTimeCompare([]byte(candidate), []byte(tok))
	}
	return found == 1
}

// secrets lists the tokens, for redaction.
func (s *tokenSet) secrets() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]string(nil), s.all...)
}

// lastSegment is what follows the path's last slash: the listener takes
// any path that ends with a token, so that a proxy in front of it may add
// a prefix.
func lastSegment(path string) string {
	return path[strings.LastIndexByte(path, '/')+1:]
}

// withToken appends the token to the base URL's path, keeping any query.
func withToken(base, token string) string {
	u, err := url.Parse(base)
	if err != nil { // validated by New, or built by Start
		return ""
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/" + token
	u.RawPath = ""
	return u.String()
}

// shortenToken cuts a URL's token to its first characters, for a log.
func shortenToken(u, token string) string {
	return strings.Replace(u, token, token[:tokenLogLen]+"…", 1)
}

// clientLimiter bounds the deliveries each remote IP has in progress.
// Entries live only while an IP has a request holding or waiting for a
// slot, so the map is bounded by the open connections.
type clientLimiter struct {
	max int
	mu  sync.Mutex
	by  map[string]*clientSlots
}

type clientSlots struct {
	sem   chan struct{}
	users int // requests holding or waiting for a slot
}

func newClientLimiter(max int) *clientLimiter {
	return &clientLimiter{max: max, by: map[string]*clientSlots{}}
}

// acquire takes a slot for the IP, waiting up to wait; nil if none came.
// The caller gives a slot it got back with release.
func (l *clientLimiter) acquire(ip string, wait time.Duration) *clientSlots {
	l.mu.Lock()
	s := l.by[ip]
	if s == nil {
		s = &clientSlots{sem: make(chan struct{}, l.max)}
		l.by[ip] = s
	}
	s.users++
	l.mu.Unlock()
	select {
	case s.sem <- struct{}{}:
		return s
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case s.sem <- struct{}{}:
		return s
	case <-t.C:
		l.leave(ip, s)
		return nil
	}
}

func (l *clientLimiter) release(ip string, s *clientSlots) {
	<-s.sem
	l.leave(ip, s)
}

func (l *clientLimiter) leave(ip string, s *clientSlots) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s.users--; s.users == 0 {
		delete(l.by, ip)
	}
}

// clientIP is the remote address without its port.
func clientIP(remoteAddr string) string {
	if host, _, err := net.SplitHostPort(remoteAddr); err == nil {
		return host
	}
	return remoteAddr
}

// refuse answers a delivery the listener will not take, and counts it:
// never a log line, which a flood would turn into a flood of the log. The
// connection is closed after the answer, and a read deadline already past
// stops the server from draining the body it was not asked to read (it
// would otherwise read up to 256 KiB of it, at the sender's pace, before
// closing).
func (c *Client) refuse(w http.ResponseWriter, reason string, code int, msg string) {
	c.rejected.add(reason)
	writeRefusal(w, code, msg)
}

func writeRefusal(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Connection", "close")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg + "\n"))
	_ = http.NewResponseController(w).SetReadDeadline(time.Now()) // unsupported by test recorders: nothing to drain there
}

// hangUp refuses a request whose path carries no known token: someone who
// does not know the URL. It answers and closes the connection at once,
// without the half-second linger net/http grants a client whose unread
// body exceeds 256 KiB (so that it can read its error before the reset):
// that linger would let each stranger's request hold one of the
// MaxCallbackConns slots for half a second. Such a client may see a reset
// instead of its 404, which is all it needs to know.
func (c *Client) hangUp(w http.ResponseWriter, reason string, code int, msg string) {
	c.rejected.add(reason)
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil { // not a hijackable connection (tests' recorders)
		writeRefusal(w, code, msg)
		return
	}
	defer conn.Close()
	_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = fmt.Fprintf(conn, "HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n\r\n%s\n",
		code, http.StatusText(code), len(msg)+1, msg)
}
