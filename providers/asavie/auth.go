package asavie

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/simbulk/simbulk/providers"
)

// tokenPath is Asavie's OAuth2 client-credentials endpoint.
const tokenPath = "/v1/authtoken"

// newTokenCache fetches bearer tokens with a client-credentials grant, the
// credentials in the form. The shared cache refreshes them Margin before
// expiry and shares one fetch among concurrent workers.
func newTokenCache(cfg Config, hc *http.Client, tokenURL string) *providers.TokenCache {
	return providers.ClientCredentials{
		TokenURL: tokenURL, ClientID: cfg.ClientID, Secret: cfg.ClientSecret,
		HTTP: hc, MaxRetryAfter: cfg.MaxRetryAfter, Margin: cfg.TokenMargin, Now: cfg.Now,
	}.Cache()
}

// newCaller sends every request with Accept: application/json (the API
// would otherwise be free to answer XML) and a bearer token, re-
// authenticating once on 401.
func newCaller(hc *http.Client, tokens *providers.TokenCache) *providers.Caller {
	return &providers.Caller{
		HTTP:       hc,
		Authorize:  tokens.Authorize,
		Invalidate: tokens.Invalidate,
		Header:     http.Header{"Accept": {"application/json"}},
	}
}

// send is Caller.Do (which re-authenticates once on HTTP 401) plus the
// envelope's word on it: an HTTP 200 whose envelope says Code 401 refuses
// the token just the same, so the token is dropped and the request sent
// once more. A refused request had no effect, so re-sending a POST is safe.
// If the fresh token is refused too, readAnswer reports CodeCredentials.
func (c *Client) send(ctx context.Context, method, url string, body any) (*providers.Response, error) {
	resp, err := c.call.Do(ctx, method, url, body)
	if err != nil || resp.Status == http.StatusUnauthorized || !envelopeUnauthorized(resp.Body) {
		return resp, err
	}
	if tok, err := c.tokens.Get(ctx); err == nil {
		c.tokens.Invalidate(tok)
	}
	return c.call.Do(ctx, method, url, body)
}

func envelopeUnauthorized(body []byte) bool {
	var r reply
	return json.Unmarshal(body, &r) == nil && r.Success != nil && !*r.Success && r.Code == http.StatusUnauthorized
}
