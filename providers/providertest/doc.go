// Package providertest is the conformance suite every provider client and
// its simulator pass together, over real HTTP: the happy path, the
// provider's validation errors, re-authentication after 401, 429 with
// Retry-After, 5xx, timeouts, garbled bodies, asynchronous completion and
// lookups. A provider package wires itself in with a Harness in its own
// conformance_test.go and calls Run.
package providertest
