package thingspace

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/net/netutil"

	"github.com/simbulk/simbulk/providers"
)

// MaxCallbackBody bounds one callback delivery. A device profile callback
// is about 2 KB (see the callback fixtures in testdata); 256 KiB leaves
// room for any form of it while MaxCallbackConns bodies in flight stay
// within 64 MiB.
const MaxCallbackBody = 256 << 10

// Timeouts of the callback listener: a sender gets 5 seconds for its
// headers and 15 for the whole request, so a slow one holds a connection
// slot briefly; a kept-alive connection idles at most a minute.
const (
	callbackReadHeaderTimeout = 5 * time.Second
	callbackReadTimeout       = 15 * time.Second
	callbackWriteTimeout      = 20 * time.Second // counted from the end of the headers: past the read
	callbackIdleTimeout       = time.Minute
)

// Start, in callback mode, starts the listener and registers it as the
// DeviceProfileService callback of Config.AccountName (other accounts are
// registered when first used). It returns once the listener accepts
// deliveries; a failed registration stops it again and is returned.
// Without Config.Callback it does nothing.
func (c *Client) Start(ctx context.Context) error {
	cb := c.cfg.Callback
	if cb == nil {
		return nil
	}
	c.cbMu.Lock()
	defer c.cbMu.Unlock()
	if c.srv != nil {
		return errors.New("thingspace: callback listener already started")
	}
	ln, err := net.Listen("tcp", cb.Listen)
	if err != nil {
		return fmt.Errorf("thingspace: callback listener: %w", err)
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(c.serveCallback),
		ReadHeaderTimeout: callbackReadHeaderTimeout,
		ReadTimeout:       callbackReadTimeout,
		WriteTimeout:      callbackWriteTimeout,
		IdleTimeout:       callbackIdleTimeout,
		MaxHeaderBytes:    MaxCallbackHeader,
		// The server logs accept errors and bad requests one by one: a
		// flood must not become a flood of the log.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	limited := netutil.LimitListener(ln, MaxCallbackConns)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(limited) // ends with ErrServerClosed on Close
	}()
	c.srv, c.ln, c.served = srv, ln, served
	c.publicURL = cb.PublicURL
	if c.publicURL == "" {
		c.publicURL = "http://" + ln.Addr().String() + "/callbacks"
	}
	if acct := c.cfg.AccountName; acct != "" {
		if err := c.register(ctx, acct); err != nil {
			c.shutdownLocked()
			return err
		}
		c.registered[acct] = true
	}
	return nil
}

// CallbackAddr is the address the listener is bound to, nil when it is not
// running.
func (c *Client) CallbackAddr() net.Addr {
	c.cbMu.Lock()
	defer c.cbMu.Unlock()
	if c.ln == nil {
		return nil
	}
	return c.ln.Addr()
}

// CallbackURLForLog is the URL registered for Config.AccountName with its
// token cut to the first 4 characters ("…/callbacks/1a2b…"): the whole URL
// lets anyone past the listener's first check, so it is never logged. ""
// when the listener is not running or there is no such account.
func (c *Client) CallbackURLForLog() string {
	acct := c.cfg.AccountName
	if acct == "" || c.tokens == nil {
		return ""
	}
	u := c.callbackURL(acct)
	if u == "" {
		return ""
	}
	return shortenToken(u, c.tokens.add(acct))
}

// callbackURL is the URL registered for the account: the public URL with
// the account's token as the last path segment; "" when the listener is
// not running.
func (c *Client) callbackURL(account string) string {
	c.cbMu.Lock()
	base := c.publicURL
	running := c.srv != nil
	c.cbMu.Unlock()
	if !running {
		return ""
	}
	return withToken(base, c.tokens.add(account))
}

// CallbackStats counts what the listener received.
func (c *Client) CallbackStats() CallbackStats {
	if c.box == nil {
		return CallbackStats{}
	}
	s := c.box.statsSnapshot()
	s.Unauthorized = int(c.rejected.get(RejectBadCredentials))
	s.Malformed = int(c.rejected.get(RejectMalformed))
	s.TooLarge = int(c.rejected.get(RejectTooLarge))
	return s
}

func (c *Client) stopListener() error {
	c.cbMu.Lock()
	defer c.cbMu.Unlock()
	return c.shutdownLocked()
}

func (c *Client) shutdownLocked() error {
	if c.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := c.srv.Shutdown(ctx)
	if err != nil {
		// Deliveries still running after the grace: cut them off; the
		// service retries them.
		_ = c.srv.Close()
	}
	<-c.served
	c.srv, c.ln, c.served = nil, nil, nil
	c.registered = map[string]bool{}
	if err != nil {
		return fmt.Errorf("thingspace: stop callback listener: %w", err)
	}
	return nil
}

// ensureCallback registers the listener for an account seen for the first
// time. A failure is not fatal: rows of that account complete by polling
// after CallbackGrace, and the next Submit tries again.
func (c *Client) ensureCallback(ctx context.Context, account string) {
	if c.cfg.Callback == nil {
		return
	}
	c.tokens.add(account)
	c.cbMu.Lock()
	defer c.cbMu.Unlock()
	if c.srv == nil || c.registered[account] {
		return
	}
	if c.register(ctx, account) == nil {
		c.registered[account] = true
	}
}

// register points the account's DeviceProfileService callback at us: the
// public URL with the account's token.
func (c *Client) register(ctx context.Context, account string) error {
	cb := c.cfg.Callback
	u := withToken(c.publicURL, c.tokens.add(account))
	body := callbackRegistration{Name: callbackService, URL: u, Username: cb.Username, Password: cb.Password}
	resp, err := c.do(ctx, http.MethodPost, c.url(pathCallbacks+url.PathEscape(account)), body)
	if err != nil {
		return fmt.Errorf("thingspace: register %s callback for account %s: %w", callbackService, account, providers.TransportError(err))
	}
	if resp.Status < 200 || resp.Status > 299 {
		return fmt.Errorf("thingspace: register %s callback for account %s: %w", callbackService, account, c.statusError(resp))
	}
	return nil
}

// serveCallback takes one delivery. Everything a stranger can be refused
// for without reading the body is checked first, from the request line
// and headers: the token at the end of the path, the method, the declared
// length, and how many deliveries the sender already has in progress.
// Only then is the body read (capped), and the username and password in
// it checked.
func (c *Client) serveCallback(w http.ResponseWriter, r *http.Request) {
	if !c.tokens.known(lastSegment(r.URL.Path)) {
		c.hangUp(w, RejectBadPath, http.StatusNotFound, "not found")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		c.refuse(w, RejectBadMethod, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	if r.ContentLength > MaxCallbackBody {
		c.refuse(w, RejectTooLarge, http.StatusRequestEntityTooLarge, "callback body too large")
		return
	}
	ip := clientIP(r.RemoteAddr)
	slot := c.clients.acquire(ip, callbackClientWait)
	if slot == nil {
		w.Header().Set("Retry-After", "1")
		c.refuse(w, RejectTooMany, http.StatusTooManyRequests, "too many deliveries in progress")
		return
	}
	defer c.clients.release(ip, slot)
	c.takeDelivery(w, r)
}

// takeDelivery reads a delivery that passed the checks outside its body:
// authenticated by the username and password in the body, stored,
// answered at once. Anything it cannot use is refused with a 4xx and
// changes nothing.
func (c *Client) takeDelivery(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxCallbackBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) { // chunked, without a Content-Length to refuse it by
			c.refuse(w, RejectTooLarge, http.StatusRequestEntityTooLarge, "callback body too large")
			return
		}
		c.refuse(w, RejectMalformed, http.StatusBadRequest, "unreadable body")
		return
	}
	var cb callbackBody
	if err := json.Unmarshal(body, &cb); err != nil {
		c.refuse(w, RejectMalformed, http.StatusBadRequest, "malformed callback")
		return
	}
	if !c.callbackAuthorized(cb.Username, cb.Password) {
		c.refuse(w, RejectBadCredentials, http.StatusUnauthorized, "unauthorized")
		return
	}
	d, err := parseDelivery(&cb, c.now())
	if err != nil {
		c.refuse(w, RejectMalformed, http.StatusBadRequest, "malformed callback: "+err.Error())
		return
	}
	c.box.put(d)
	sctx, cancel := context.WithTimeout(r.Context(), sharedWait)
	c.share(sctx, d)
	cancel()
	w.WriteHeader(http.StatusOK)
}

// callbackAuthorized compares in constant time (hashing first so that the
// lengths do not leak either), checking both fields whatever the first
// gave.
func (c *Client) callbackAuthorized(user, pass string) bool {
	cb := c.cfg.Callback
	eq := func(a, b string) int {
		ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
		return subtle.ConstantTimeCompare(ha[:], hb[:])
	}
	return eq(user, cb.Username)&eq(pass, cb.Password) == 1
}
