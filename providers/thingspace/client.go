package thingspace

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/simbulk/simbulk/providers"
)

// Defaults of the client's provider-specific knobs.
const (
	DefaultBatchSize   = maxDevices
	DefaultSessionIdle = 20 * time.Minute
	// DefaultCallbackGrace outlasts ThingSpace's callback retry gap: an
	// undelivered callback is retried 3 times, 5 minutes apart, so polling
	// sooner would answer for a callback that is merely between attempts.
	DefaultCallbackGrace = 6 * time.Minute
	DefaultPollInterval  = 5 * time.Second
)

// Config configures a Client. BaseURL and the four credentials are
// required.
type Config struct {
	BaseURL  string // e.g. https://thingspace.verizon.com
	Key      string // OAuth client key
	Secret   string // OAuth client secret
	Username string // M2M session login
	Password string

	// AccountName is the account used for orders without an account_name
	// field and the one whose callback Start registers.
	AccountName string
	// BatchSize is the most devices per activate request: 1..100,
	// default 100.
	BatchSize int

	HTTPClient    *http.Client  // nil: providers.NewHTTPClient(Timeout)
	Timeout       time.Duration // per request; default providers.DefaultTimeout
	MaxRetryAfter time.Duration // cap on Retry-After; default providers.DefaultMaxRetryAfter
	// PollInterval is how often a caller should Check accepted work
	// (PollInterval()); Check itself never waits. Default 5s.
	PollInterval time.Duration
	// SessionIdle is how long the service keeps an unused session; the
	// client logs in again before using a session idle that long.
	// Default 20 minutes.
	SessionIdle time.Duration

	// Callback, when set, makes Start run a listener for DeviceProfileService
	// callbacks and register it; nil means Check polls the request status.
	Callback *CallbackConfig
	// CallbackGrace is how long after a row's first Check the client waits
	// for its callback before polling instead. Default 6 minutes (see
	// DefaultCallbackGrace).
	CallbackGrace time.Duration

	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// CallbackConfig is the callback block of simbulk.yaml.
type CallbackConfig struct {
	// Listen is the address the listener binds, e.g. "0.0.0.0:9001"
	// (":0" or "127.0.0.1:0" picks a free port; see CallbackAddr).
	Listen string
	// PublicURL is the URL registered with ThingSpace, reaching Listen
	// through whatever proxy sits between. Empty means
	// http://<bound address>/callbacks, which only works when ThingSpace
	// (or the simulator) can reach this host directly.
	PublicURL string
	// Username and Password are registered with the callback and must be
	// present in every delivery.
	Username string
	Password string
}

// Client talks to ThingSpace M2M. It is safe for concurrent use.
type Client struct {
	cfg     Config
	base    string
	hc      *http.Client
	ownHC   bool
	now     func() time.Time
	bearer  *providers.TokenCache
	session *session
	login   *providers.Caller // bearer only, for the session login
	m2m     *providers.Caller // bearer + session, for everything else

	// callback mode
	box       *inbox
	shared    providers.CallbackStore // the run's other hosts' deliveries too (ShareCallbacks)
	firstMu   sync.Mutex
	firstSeen map[string]time.Time // requestId|eid -> first Check

	cbMu       sync.Mutex
	srv        *http.Server
	ln         net.Listener
	served     chan struct{}
	publicURL  string
	registered map[string]bool // accounts whose callback points at us

	tokens   *tokenSet      // the callback URL tokens the listener takes
	clients  *clientLimiter // deliveries in progress per remote IP
	rejected rejections     // refused deliveries by reason
}

// New validates cfg and returns a client. It sends nothing.
func New(cfg Config) (*Client, error) {
	if err := validate(&cfg); err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, base: strings.TrimRight(cfg.BaseURL, "/"), now: cfg.Now, registered: map[string]bool{}}
	if c.now == nil {
		c.now = time.Now
	}
	c.hc = cfg.HTTPClient
	if c.hc == nil {
		c.hc = providers.NewHTTPClient(cfg.Timeout)
		c.ownHC = true
	}
	// The OAuth token: Basic key:secret, form grant_type=client_credentials.
	c.bearer = providers.ClientCredentials{
		TokenURL: c.url(pathToken), ClientID: cfg.Key, Secret: cfg.Secret, Basic: true,
		HTTP: c.hc, Now: c.now,
	}.Cache()
	c.session = &session{login: c.newSession, idle: cfg.SessionIdle, now: c.now}
	// The reference pages list Content-Type: application/json as required
	// on every call, GETs included; the Caller sets it only with a body.
	hdr := http.Header{"Accept": {"application/json"}, "Content-Type": {"application/json"}}
	c.login = &providers.Caller{HTTP: c.hc, Header: hdr, Authorize: c.authorizeBearer, Invalidate: c.bearer.Invalidate}
	c.m2m = &providers.Caller{HTTP: c.hc, Header: hdr, Authorize: c.authorizeM2M, Invalidate: c.session.Invalidate}
	if cb := cfg.Callback; cb != nil {
		c.box = newInbox(c.now)
		c.firstSeen = map[string]time.Time{}
		c.tokens = newTokenSet(cb.Password)
		if cfg.AccountName != "" {
			c.tokens.add(cfg.AccountName)
		}
		c.clients = newClientLimiter(MaxCallbackPerClient)
		c.rejected = newRejections()
	}
	return c, nil
}

func validate(cfg *Config) error {
	u, err := url.Parse(cfg.BaseURL)
	if cfg.BaseURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("thingspace: base_url must be an absolute http(s) URL")
	}
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"key", cfg.Key}, {"secret", cfg.Secret}, {"username", cfg.Username}, {"password", cfg.Password},
	} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("thingspace: missing %s", strings.Join(missing, ", "))
	}
	switch {
	case cfg.BatchSize == 0:
		cfg.BatchSize = DefaultBatchSize
	case cfg.BatchSize < 0 || cfg.BatchSize > maxDevices:
		return fmt.Errorf("thingspace: batch_size %d out of range 1..%d", cfg.BatchSize, maxDevices)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = providers.DefaultTimeout
	}
	if cfg.MaxRetryAfter <= 0 {
		cfg.MaxRetryAfter = providers.DefaultMaxRetryAfter
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.SessionIdle <= 0 {
		cfg.SessionIdle = DefaultSessionIdle
	}
	if cfg.CallbackGrace <= 0 {
		cfg.CallbackGrace = DefaultCallbackGrace
	}
	if cb := cfg.Callback; cb != nil {
		if cb.Listen == "" {
			return errors.New("thingspace: callback.listen is required when a callback is configured")
		}
		// Without credentials anyone who finds the listener could mark
		// rows provisioned.
		if cb.Username == "" || cb.Password == "" {
			return errors.New("thingspace: callback.username and callback.password are required when a callback is configured")
		}
		if cb.PublicURL != "" {
			pu, err := url.Parse(cb.PublicURL)
			if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
				return errors.New("thingspace: callback.public_url must be an absolute http(s) URL")
			}
		}
		if err := checkCallbackPort(cb); err != nil {
			return err
		}
	}
	return nil
}

// CallbackPorts are the ports ThingSpace delivers callbacks to (API
// reference "Register Callback Listener"): 80, 443, 9001-9006,
// 50551-50559 and 28200-28220.
var CallbackPorts = [][2]int{{80, 80}, {443, 443}, {9001, 9006}, {50551, 50559}, {28200, 28220}}

// checkCallbackPort refuses a callback URL on a port ThingSpace will not
// deliver to: registration would succeed and every callback be lost, and
// rows would complete only by polling, minutes late. The port is the
// public URL's (its scheme's default when it names none) or, without a
// public URL, the listen address's.
//
// A loopback URL is exempt: ThingSpace can never reach it, so whatever
// delivers to it is a simulator on this host (`simbulk sim serve`).
func checkCallbackPort(cb *CallbackConfig) error {
	what, host, port := "callback.listen", "", ""
	if cb.PublicURL != "" {
		u, _ := url.Parse(cb.PublicURL) // validated above
		what, host, port = "callback.public_url", u.Hostname(), u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
	} else if h, p, err := net.SplitHostPort(cb.Listen); err == nil {
		host, port = h, p
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return nil
	}
	n, err := strconv.Atoi(port)
	if err == nil {
		for _, r := range CallbackPorts {
			if n >= r[0] && n <= r[1] {
				return nil
			}
		}
	}
	var allowed []string
	for _, r := range CallbackPorts {
		if r[0] == r[1] {
			allowed = append(allowed, strconv.Itoa(r[0]))
		} else {
			allowed = append(allowed, fmt.Sprintf("%d-%d", r[0], r[1]))
		}
	}
	return fmt.Errorf("thingspace: %s port %q is not one ThingSpace delivers callbacks to (allowed: %s)",
		what, port, strings.Join(allowed, ", "))
}

// BatchSize is the most orders one activate request carries.
func (c *Client) BatchSize() int { return c.cfg.BatchSize }

// PollInterval is how often a caller should Check accepted work.
func (c *Client) PollInterval() time.Duration { return c.cfg.PollInterval }

// Close stops the callback listener, if running, letting deliveries in
// progress finish.
func (c *Client) Close() error {
	err := c.stopListener()
	if c.ownHC {
		c.hc.CloseIdleConnections()
	}
	return err
}

func (c *Client) url(path string) string { return c.base + path }

// accountOf is the account an order is activated under.
func (c *Client) accountOf(o providers.Order) string {
	if a := strings.TrimSpace(o.Fields["account_name"]); a != "" {
		return a
	}
	return c.cfg.AccountName
}
