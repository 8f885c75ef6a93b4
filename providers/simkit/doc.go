// Package simkit is what the three provider simulators share: the fault
// model (latency, 429 with Retry-After, 5xx, hangs, dropped connections,
// garbled bodies, an enforced rate limit), scripted one-off faults for
// tests, and the counters a test asserts on — above all provisioning
// requests per identifier, so that a duplicate request is visible.
//
// It also holds the OAuth2 client-credentials token endpoint and bearer
// check every simulator needs (Tokens), with each provider's differences
// as fields.
//
// A simulator is an http.Handler that follows its provider's documents; it
// wraps itself with Kit.Wrap and reports provisioning with Kit.Provisioned.
package simkit
