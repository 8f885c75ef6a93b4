package asavie

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/simbulk/simbulk/ingest/checkdigit"
	"github.com/simbulk/simbulk/providers"
)

// Config configures a Client.
type Config struct {
	// BaseURL is the API root, e.g. https://api.provisioning.asavie.com.
	// Paths (/v1/...) and the relative StatusUrls Asavie returns are
	// appended to it, so a path prefix in BaseURL is kept.
	BaseURL      string
	ClientID     string
	ClientSecret string
	// HTTPClient is shared by every request; nil means
	// providers.NewHTTPClient(Timeout).
	HTTPClient *http.Client
	// Timeout bounds each request when HTTPClient is nil; default 30s.
	Timeout time.Duration
	// MaxRetryAfter caps the Retry-After the client reports; default 60s.
	MaxRetryAfter time.Duration
	// PollInterval is how often accepted work should be checked; the
	// client itself never waits (Check takes one look). Default 2s.
	PollInterval time.Duration
	// TokenMargin is how long before expiry a token is renewed; default 60s.
	TokenMargin time.Duration
	// Now is the clock for token expiry; default time.Now.
	Now func() time.Time
}

// Client provisions SIMs through the Asavie PassBridge API. It is safe for
// concurrent use.
type Client struct {
	base          string // BaseURL without a trailing slash
	baseURL       *url.URL
	call          *providers.Caller
	tokens        *providers.TokenCache
	maxRetryAfter time.Duration
	pollInterval  time.Duration
}

// New checks cfg and returns a Client. Error messages name what is wrong
// but never echo a credential.
func New(cfg Config) (*Client, error) {
	raw := strings.TrimRight(strings.TrimSpace(cfg.BaseURL), "/")
	if raw == "" {
		return nil, errors.New("asavie: base_url is required")
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, errors.New("asavie: base_url is not a valid URL")
	case u.User != nil:
		return nil, errors.New("asavie: base_url must not carry credentials; use client_id and client_secret")
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return nil, fmt.Errorf("asavie: base_url %q must be an absolute http(s) URL", raw)
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("asavie: base_url %q must not have a query or fragment", u.Redacted())
	}
	if strings.TrimSpace(cfg.ClientID) == "" {
		return nil, errors.New("asavie: client_id is required")
	}
	if cfg.ClientSecret == "" {
		return nil, errors.New("asavie: client_secret is required")
	}
	if cfg.MaxRetryAfter <= 0 {
		cfg.MaxRetryAfter = providers.DefaultMaxRetryAfter
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 2 * time.Second
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = providers.NewHTTPClient(cfg.Timeout)
	}
	tokens := newTokenCache(cfg, hc, raw+tokenPath)
	return &Client{
		base:          raw,
		baseURL:       u,
		call:          newCaller(hc, tokens),
		tokens:        tokens,
		maxRetryAfter: cfg.MaxRetryAfter,
		pollInterval:  cfg.PollInterval,
	}, nil
}

// BatchSize is 1: the API creates one SIM per request.
func (c *Client) BatchSize() int { return 1 }

// PollInterval is how often the pipeline should Check accepted work.
func (c *Client) PollInterval() time.Duration { return c.pollInterval }

// Close releases nothing: the client runs no background work.
func (c *Client) Close() error { return nil }

// simsPath is /v1/accounts/{foreignaccountkey}/hardware/sims, the key
// escaped once.
func simsPath(account string) string {
	return "/v1/accounts/" + escapeData(account) + "/hardware/sims"
}

// simPath is the SIM resource of one CLI, escaped the way Asavie's own
// StatusUrls escape it ("(+44)7700900123" as "%28%2B44%297700900123"):
// a literal + in a path is what IIS-style front ends refuse or read as a
// space.
func simPath(account, cli string) string {
	return simsPath(account) + "/" + escapeData(cli)
}

// escapeData percent-encodes every byte outside RFC 3986's unreserved set,
// as .NET's Uri.EscapeDataString does.
func escapeData(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// resolve turns a path or a StatusUrl into a request URL. A StatusUrl is
// already URL-encoded: it is appended to the base as it stands, never
// decoded and encoded again (that would turn %28 into %2528). An absolute
// URL is accepted only on the base URL's own host, so the bearer token is
// never sent elsewhere.
func (c *Client) resolve(ref string) (string, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return "", errors.New("empty status URL")
	}
	if strings.Contains(ref, "://") {
		u, err := url.Parse(ref)
		if err != nil {
			return "", fmt.Errorf("status URL: %w", err)
		}
		if u.Scheme != c.baseURL.Scheme || u.Host != c.baseURL.Host {
			return "", fmt.Errorf("status URL on another host %s", u.Host)
		}
		return ref, nil
	}
	if !strings.HasPrefix(ref, "/") {
		ref = "/" + ref
	}
	full := c.base + ref
	if _, err := url.Parse(full); err != nil {
		return "", fmt.Errorf("status URL: %w", err)
	}
	return full, nil
}

// Submit creates each order's SIM, one request per order. Every order gets
// an outcome; once ctx is done the rest fail as cancelled.
func (c *Client) Submit(ctx context.Context, orders []providers.Order) []providers.Outcome {
	return providers.SubmitEach(ctx, orders, c.submit)
}

func (c *Client) submit(ctx context.Context, o providers.Order) providers.Outcome {
	cli := strings.TrimSpace(o.CLI)
	account := strings.TrimSpace(o.Fields["account"])
	if cli == "" {
		return rejectLocally("the order has no CLI")
	}
	if account == "" {
		return rejectLocally("the order has no account (the Asavie foreignaccountkey)")
	}
	resp, err := c.send(ctx, http.MethodPost, c.base+simsPath(account), newCreateSIM(cli, o))
	if err != nil {
		return providers.FailedOutcome(err)
	}
	a, perr := readAnswer(resp, "provisioning answer", true, c.maxRetryAfter)
	if perr != nil {
		if a.conflict() {
			return c.resolveConflict(ctx, o, account, cli, perr)
		}
		return providers.Outcome{Status: providers.Failed, Err: perr}
	}
	res := map[string]string{"cli": cli}
	if id := a.meta("RequestId"); id != "" {
		res["request_id"] = id
	}
	if a.StatusURL != "" {
		if _, err := c.resolve(a.StatusURL); err != nil {
			return providers.Outcome{Status: providers.Failed, Err: providers.MalformedError(resp.Status, "provisioning answer", err)}
		}
		res["status_url"] = a.StatusURL
		return providers.Outcome{Status: providers.Accepted, Handle: a.StatusURL, Result: res}
	}
	// No StatusUrl: acceptable only if the SIM came back already created.
	var card SIMCard
	if a.hasData() {
		if err := json.Unmarshal(a.Data, &card); err != nil {
			return providers.Outcome{Status: providers.Failed, Err: malformed(resp.Status, "provisioning answer", err, resp.Body)}
		}
	}
	if card.CLI == "" || card.ActorStatus != ActorStable {
		return providers.Outcome{Status: providers.Failed, Err: malformed(resp.Status, "provisioning answer", errors.New("accepted without a StatusUrl"), resp.Body)}
	}
	return providers.Outcome{Status: providers.Succeeded, Result: mergeResult(res, cardResult(card))}
}

func newCreateSIM(cli string, o providers.Order) createSIM {
	f := func(k string) string { return strings.TrimSpace(o.Fields[k]) }
	return createSIM{
		CLI:           cli,
		SIMNumber:     strings.TrimSpace(o.ICCID),
		Description:   f("description"),
		InventoryRef:  f("inventory_ref"),
		Tariff:        f("tariff"),
		Bundle:        f("bundle"),
		Operator:      f("operator"),
		SOC:           f("soc"),
		PurchaseOrder: f("purchase_order"),
	}
}

func rejectLocally(msg string) providers.Outcome {
	return providers.Outcome{Status: providers.Failed, Err: &providers.Error{Code: providers.CodeRejected, Message: msg}}
}

// resolveConflict answers a 409 (the CLI exists): the SIM is looked up, and
// if it is the row's SIM (same SIM number where the row has one) the row
// succeeded earlier, perhaps through a request whose answer was lost;
// otherwise it is a conflict a person must resolve.
func (c *Client) resolveConflict(ctx context.Context, o providers.Order, account, cli string, conflict *providers.Error) providers.Outcome {
	card, found, err := c.fetchSIM(ctx, account, cli)
	if err != nil {
		e := *providers.AsError(err)
		e.Message = fmt.Sprintf("CLI %s already exists; looking it up failed: %s", cli, e.Message)
		// The 409 says our request created nothing, but the CLI exists:
		// another POST would only be refused again, so the next try
		// should look it up (Lookup tells ours from somebody else's).
		e.MaybeApplied = true
		return providers.Outcome{Status: providers.Failed, Err: &e}
	}
	if !found {
		return providers.Outcome{Status: providers.Failed, Err: &providers.Error{
			Code:       providers.CodeConflict,
			Message:    fmt.Sprintf("CLI %s already exists at Asavie, but not on account %s (%s)", cli, account, conflict.Message),
			HTTPStatus: http.StatusConflict,
		}}
	}
	if diff := difference(o, card); diff != "" {
		return providers.Outcome{Status: providers.Failed, Err: &providers.Error{
			Code: providers.CodeConflict, Message: diff, HTTPStatus: http.StatusConflict,
		}}
	}
	res := cardResult(card)
	res["note"] = "already existed"
	switch card.ActorStatus {
	case ActorPending:
		// Still being created (an earlier request of ours, most likely):
		// follow the SIM resource itself, Check understands both shapes.
		return providers.Outcome{Status: providers.Accepted, Handle: simPath(account, cli), Result: res}
	case ActorStalled:
		return providers.Outcome{Status: providers.Failed, Result: res, Err: stalledError(card)}
	}
	return providers.Outcome{Status: providers.Succeeded, Result: res}
}

// difference says how an existing SIM differs from the row, "" if it is
// the row's SIM.
func difference(o providers.Order, card SIMCard) string {
	want := strings.TrimSpace(o.ICCID)
	have := strings.TrimSpace(card.SIMNumber)
	switch {
	case want == "" || sameICCID(want, have):
		return ""
	case have == "":
		return fmt.Sprintf("CLI %s exists without a SIM number; row has %s", card.CLI, want)
	}
	return fmt.Sprintf("CLI %s exists with SIM number %s; row has %s", card.CLI, have, want)
}

// sameICCID compares ICCIDs allowing one side to omit the Luhn check
// digit, as some manifests do.
func sameICCID(a, b string) bool {
	if strings.EqualFold(a, b) {
		return true
	}
	if len(a) > len(b) {
		a, b = b, a
	}
	return len(b) == len(a)+1 && strings.EqualFold(a, b[:len(a)]) && checkdigit.LuhnValid(b)
}

func stalledError(card SIMCard) *providers.Error {
	return &providers.Error{
		Code:    "stalled",
		Message: fmt.Sprintf("SIM %s is stalled at Asavie (an unrecoverable error that needs their support desk)", card.CLI),
	}
}

// cardResult is what a report wants to show of a SIM.
func cardResult(card SIMCard) map[string]string {
	res := map[string]string{"cli": card.CLI, "state": card.State.String()}
	if card.SIMNumber != "" {
		res["sim_number"] = card.SIMNumber
	}
	return res
}

func mergeResult(a, b map[string]string) map[string]string {
	for k, v := range b {
		a[k] = v
	}
	return a
}
