package iotconnect

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/simbulk/simbulk/providers"
)

// newTokens returns the OAuth2 client-credentials token cache: one token
// shared by every worker, fetched again shortly before it expires or after
// the API refused it.
func newTokens(cfg Config, hc *http.Client) *providers.TokenCache {
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {cfg.ClientID},
		"client_secret": {cfg.ClientSecret},
	}
	tokenURL, now := cfg.TokenURL, cfg.Now
	return &providers.TokenCache{
		Fetch: func(ctx context.Context) (providers.Token, error) {
			t, err := providers.FetchClientCredentials(ctx, hc, tokenURL, form, "", "")
			if err == nil && now != nil && !t.Expiry.IsZero() {
				// FetchClientCredentials dates expiry by the wall clock;
				// the cache compares it with Config.Now.
				t.Expiry = now().Add(time.Until(t.Expiry))
			}
			return t, err
		},
		Margin: cfg.TokenMargin,
		Now:    cfg.Now,
	}
}

// authorize puts the bearer token on a request and returns it, so that a
// 401 invalidates exactly the token that was refused.
func (c *Client) authorize(ctx context.Context, req *http.Request) (string, error) {
	tok, err := c.tokens.Get(ctx)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	return tok, nil
}
