package iotconnect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/simbulk/simbulk/providers"
)

// Config configures a Client. BaseURL, TokenURL, ClientID and ClientSecret
// are required.
type Config struct {
	// BaseURL is the API root, e.g. https://api.iot.telenor.com; the
	// documented paths (/iot-connect/subscriptions/v1/...) go after it.
	BaseURL string
	// TokenURL is the OAuth2 token endpoint. It is never derived from
	// BaseURL: the client secret goes only where the configuration says.
	TokenURL     string
	ClientID     string
	ClientSecret string

	// HTTPClient is shared by every request; nil means
	// providers.NewHTTPClient(Timeout).
	HTTPClient *http.Client
	// Timeout bounds one request when HTTPClient is nil; default
	// providers.DefaultTimeout.
	Timeout time.Duration
	// MaxRetryAfter caps a 429's or 5xx's Retry-After; default
	// providers.DefaultMaxRetryAfter.
	MaxRetryAfter time.Duration
	// PollInterval is how long the pipeline should wait between Checks of
	// one accepted registration; default 2s. The client never sleeps.
	PollInterval time.Duration
	// TokenMargin is how long before expiry the token is fetched again;
	// default one minute.
	TokenMargin time.Duration
	// Now is the clock for token expiry (tests); default time.Now.
	Now func() time.Time
}

// DefaultPollInterval is Config.PollInterval when unset.
const DefaultPollInterval = 2 * time.Second

// Client talks to the IoT Connect Subscriptions API. It is safe for
// concurrent use by many workers.
type Client struct {
	base          string
	secret        string
	maxRetryAfter time.Duration
	pollInterval  time.Duration
	tokens        *providers.TokenCache
	caller        *providers.Caller
}

// New validates cfg and returns a Client. Errors name what is missing or
// wrong, never a credential's value.
func New(cfg Config) (*Client, error) {
	base, err := checkURL("base URL", cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	if _, err := checkURL("token URL", cfg.TokenURL); err != nil {
		return nil, err
	}
	switch {
	case strings.TrimSpace(cfg.ClientID) == "":
		return nil, errors.New("iotconnect: missing client_id")
	case cfg.ClientSecret == "":
		return nil, errors.New("iotconnect: missing client_secret")
	case cfg.Timeout < 0, cfg.MaxRetryAfter < 0, cfg.PollInterval < 0, cfg.TokenMargin < 0:
		return nil, errors.New("iotconnect: durations must not be negative")
	}
	if cfg.MaxRetryAfter == 0 {
		cfg.MaxRetryAfter = providers.DefaultMaxRetryAfter
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = providers.NewHTTPClient(cfg.Timeout)
	}
	c := &Client{
		base:          base,
		secret:        cfg.ClientSecret,
		maxRetryAfter: cfg.MaxRetryAfter,
		pollInterval:  cfg.PollInterval,
		tokens:        newTokens(cfg, hc),
	}
	c.caller = &providers.Caller{
		HTTP:       hc,
		Authorize:  c.tokens.Authorize,
		Invalidate: c.tokens.Invalidate,
		Header:     http.Header{"Accept": {"application/json"}},
	}
	return c, nil
}

// checkURL accepts an absolute http(s) URL and returns it without a
// trailing slash. The message shows the URL only without its user info.
func checkURL(what, raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", fmt.Errorf("iotconnect: missing %s", what)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("iotconnect: %s is not a valid URL", what)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("iotconnect: %s %q must be an absolute http(s) URL", what, u.Redacted())
	}
	return strings.TrimRight(raw, "/"), nil
}

// BatchSize is 1: IoT Connect registers one eUICC per request.
func (c *Client) BatchSize() int { return 1 }

// PollInterval is how long to wait between Checks of one registration.
func (c *Client) PollInterval() time.Duration { return c.pollInterval }

// Close releases nothing: the client runs no goroutines.
func (c *Client) Close() error { return nil }

// Submit registers each order's eUICC, one request per order, and returns
// one Outcome per order in order. A registration IoT Connect takes (202) is
// Accepted with the EID as Handle: the IoT subscription is provisioned
// later, and Check learns when.
func (c *Client) Submit(ctx context.Context, orders []providers.Order) []providers.Outcome {
	return providers.SubmitEach(ctx, orders, c.register)
}

func (c *Client) register(ctx context.Context, o providers.Order) providers.Outcome {
	body := Registration{
		EID:              o.EID,
		CMP:              o.Fields["cmp"],
		DomainID:         o.Fields["domain_id"],
		EUICCAgreementID: o.Fields["euicc_agreement_id"],
		LocaleID:         o.Fields["locale_id"],
	}
	resp, err := c.caller.Do(ctx, http.MethodPost, c.base+euiccsPath, body)
	if err != nil {
		return providers.FailedOutcome(err)
	}
	if resp.Status >= 200 && resp.Status < 300 {
		var r registered
		if err := json.Unmarshal(resp.Body, &r); err != nil {
			// The registration may have been taken: the pipeline looks the
			// EID up before sending it again.
			e := c.unreadable(resp, "registration answer", err)
			e.MaybeApplied = true
			return providers.FailedOutcome(e)
		}
		return providers.Outcome{
			Status: providers.Accepted,
			Handle: o.EID,
			Result: nonEmpty(map[string]string{"eid": o.EID, "imsi": r.IMSI, "iccid": r.ICCID, "msisdn": r.MSISDN}),
		}
	}
	e := c.statusError(resp)
	if e.Code == CodeAlreadyRegistered || resp.Status == http.StatusConflict {
		return c.registeredBefore(ctx, o, e)
	}
	return providers.Outcome{Status: providers.Failed, Err: e}
}

// registeredBefore decides what an "already registered" answer means. The
// eUICC is this very registration, sent before (by an earlier run, or by a
// retry whose first answer was lost), unless the provider shows otherwise
// (see euiccView.conflict): then it is somebody else's, a conflict.
// Otherwise it is reported as it stands, as if this request had been taken.
func (c *Client) registeredBefore(ctx context.Context, o providers.Order, refused *providers.Error) providers.Outcome {
	v, found, err := c.readEUICC(ctx, o.EID)
	if err != nil {
		// The EID is registered; whose it is stays open. Another POST would
		// only be refused again, so the next try should look it up instead.
		e := *providers.AsError(err)
		e.Message = fmt.Sprintf("EID %s is already registered; looking it up failed: %s", o.EID, e.Message)
		e.MaybeApplied = true
		return providers.Outcome{Status: providers.Failed, Err: &e}
	}
	if !found {
		// Registered a moment ago and gone now; the refusal stands.
		return providers.Outcome{Status: providers.Failed, Err: refused}
	}
	if why := v.conflict(o); why != "" {
		return providers.Outcome{Status: providers.Failed, Err: &providers.Error{
			Code:       providers.CodeConflict,
			Message:    fmt.Sprintf("%s (%s)", why, refused.Message),
			HTTPStatus: refused.HTTPStatus,
		}}
	}
	out := v.outcome(o.EID)
	out.Result["already_registered"] = "true"
	return out
}

// Check makes one GET of the eUICC (two when it names its IoT subscription
// without embedding an IMSI or ICCID): Succeeded once the subscription is
// there with its identifiers, Accepted before. A transient failure of the
// look itself (429, 5xx, timeout) is Accepted too, with the error attached
// for the log: the registration is not in doubt, only this look failed. An
// answer it cannot read fails, retryable: "pending" would hide it, and the
// pipeline bounds how often a row is read in vain.
func (c *Client) Check(ctx context.Context, o providers.Order, handle string) providers.Outcome {
	eid := handle
	if eid == "" {
		eid = o.EID
	}
	v, found, err := c.readEUICC(ctx, eid)
	if err != nil {
		e := providers.AsError(err)
		if e.Retryable && e.Code != providers.CodeMalformed {
			return providers.Outcome{Status: providers.Accepted, Handle: eid, Err: e}
		}
		return providers.Outcome{Status: providers.Failed, Err: e}
	}
	if !found {
		// Accepted but unknown now. Registering again is safe (an
		// existing registration answers "already registered"), so the
		// failure is retryable.
		return providers.Outcome{Status: providers.Failed, Err: &providers.Error{
			Code:       providers.CodeNotFound,
			Message:    fmt.Sprintf("eUICC %s is no longer known to IoT Connect after its registration was accepted", eid),
			HTTPStatus: http.StatusNotFound,
			Retryable:  true,
		}}
	}
	return v.outcome(eid)
}

// Lookup reports what IoT Connect holds for the order's EID: not found,
// registered but still waiting for its IoT subscription (Pending), or the
// subscription with its identifiers and mode. The mode comes from the
// eUICC answer when it embeds it, else from the IoT subscription
// (get-subscription); when neither says, State is "" and Active is true:
// the subscription exists with its identifiers, which is all a completed
// registration is known to leave behind, and calling it inactive would
// report every row as drift. Conflict is set only when the provider shows
// the eUICC is not the order's (see euiccView.conflict).
func (c *Client) Lookup(ctx context.Context, o providers.Order) (providers.Subscription, error) {
	if o.EID == "" {
		return providers.Subscription{}, &providers.Error{Code: providers.CodeRejected, Message: "order has no EID to look up"}
	}
	v, found, err := c.readEUICC(ctx, o.EID)
	if err != nil || !found {
		return providers.Subscription{}, err
	}
	if v.ready() && v.mode == "" && v.subscriptionID != "" && !v.subscriptionRead {
		if err := c.readMode(ctx, &v); err != nil {
			return providers.Subscription{}, err
		}
	}
	sub := providers.Subscription{Found: true, Identifiers: v.identifiers(o.EID), Conflict: v.conflict(o)}
	if !v.ready() {
		sub.Pending = true
		return sub, nil
	}
	sub.State = v.mode
	sub.Active = v.mode == "" || v.mode == ModeActive || v.mode == ModeActiveNoBilling
	return sub, nil
}

// nonEmpty drops empty values so reports do not show blank columns as if
// the provider had said "".
func nonEmpty(m map[string]string) map[string]string {
	for k, v := range m {
		if v == "" {
			delete(m, k)
		}
	}
	return m
}
