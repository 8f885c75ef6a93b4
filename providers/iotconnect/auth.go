package iotconnect

import (
	"net/http"

	"github.com/simbulk/simbulk/providers"
)

// newTokens returns the OAuth2 client-credentials token cache, the
// credentials in the form: one token shared by every worker, fetched again
// shortly before it expires or after the API refused it.
func newTokens(cfg Config, hc *http.Client) *providers.TokenCache {
	return providers.ClientCredentials{
		TokenURL: cfg.TokenURL, ClientID: cfg.ClientID, Secret: cfg.ClientSecret,
		HTTP: hc, MaxRetryAfter: cfg.MaxRetryAfter, Margin: cfg.TokenMargin, Now: cfg.Now,
	}.Cache()
}
