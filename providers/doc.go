// Package providers holds what every provider integration shares: the
// Order a provider is asked to provision, the Outcome it answers with, the
// classification of errors into retryable and permanent, and the HTTP
// plumbing (OAuth token caching, Retry-After, secret-free errors) the three
// clients build on.
//
// Each provider's whole story — client, simulator, error mapping — lives in
// its own sub-package: iotconnect, asavie, thingspace. The pipeline never
// sees a wire format: it hands Orders to a client and gets Outcomes back.
package providers
