package thingspace

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/simbulk/simbulk/providers"
)

// MaxCallbackBody bounds one callback delivery; a device profile callback
// is a few hundred bytes.
const MaxCallbackBody = 1 << 20

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
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln) // ends with ErrServerClosed on Close
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

// CallbackStats counts what the listener received.
func (c *Client) CallbackStats() CallbackStats {
	if c.box == nil {
		return CallbackStats{}
	}
	return c.box.statsSnapshot()
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
	c.cbMu.Lock()
	defer c.cbMu.Unlock()
	if c.srv == nil || c.registered[account] {
		return
	}
	if c.register(ctx, account) == nil {
		c.registered[account] = true
	}
}

// register points the account's DeviceProfileService callback at us.
func (c *Client) register(ctx context.Context, account string) error {
	cb := c.cfg.Callback
	body := callbackRegistration{Name: callbackService, URL: c.publicURL, Username: cb.Username, Password: cb.Password}
	resp, err := c.do(ctx, http.MethodPost, c.url(pathCallbacks+url.PathEscape(account)), body)
	if err != nil {
		return fmt.Errorf("thingspace: register %s callback for account %s: %w", callbackService, account, providers.TransportError(err))
	}
	if resp.Status < 200 || resp.Status > 299 {
		return fmt.Errorf("thingspace: register %s callback for account %s: %w", callbackService, account, c.statusError(resp))
	}
	return nil
}

// serveCallback takes one delivery: authenticated by the username and
// password in its body, stored, answered at once. Anything it cannot
// use is refused with a 4xx and changes nothing.
func (c *Client) serveCallback(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxCallbackBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			c.box.count(func(s *CallbackStats) { s.TooLarge++ })
			http.Error(w, "callback body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "unreadable body", http.StatusBadRequest)
		return
	}
	var cb callbackBody
	if err := json.Unmarshal(body, &cb); err != nil {
		c.box.count(func(s *CallbackStats) { s.Malformed++ })
		http.Error(w, "malformed callback", http.StatusBadRequest)
		return
	}
	if !c.callbackAuthorized(cb.Username, cb.Password) {
		c.box.count(func(s *CallbackStats) { s.Unauthorized++ })
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	d, err := parseDelivery(&cb, c.now())
	if err != nil {
		c.box.count(func(s *CallbackStats) { s.Malformed++ })
		http.Error(w, "malformed callback: "+err.Error(), http.StatusBadRequest)
		return
	}
	c.box.put(d)
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
